// Persistence: the outbox (queued notifications) and alerts.json (what
// receivers have been told), both in outbox_dir.

package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/alerting/outbox"
)

// enqueue writes entries to the outbox and wakes their delivery loops.
func (e *Engine) enqueue(entries []outbox.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	stored, err := e.outbox.Enqueue(entries...)
	if err != nil {
		e.metrics.outboxWriteErrors.Inc()
		return err
	}
	for _, en := range stored {
		e.recent.add(deliveryFor(en, "queued"))
		if t := e.byKey[en.Target()]; t != nil {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// openOutbox opens the durable queue and quarantines entries whose receiver
// left the configuration.
func (e *Engine) openOutbox() error {
	ob, err := outbox.Open(outbox.Options{
		Dir:        e.cfg.OutboxDir,
		MaxEntries: e.cfg.OutboxMaxEntries,
		Logger:     e.logger,
		OnDrop:     func(en outbox.Entry) { e.recent.update(en.ID, "dropped", 0, "outbox full") },
	})
	if err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	e.outbox = ob
	for _, en := range ob.All() {
		if e.byKey[en.Target()] == nil {
			ob.Quarantine(en.ID, fmt.Sprintf("receiver %q (url %q) is no longer configured", en.Receiver, notify.RedactURL(en.URL)))
			continue
		}
		e.recent.add(deliveryFor(en, "queued"))
	}
	return nil
}

type stateDoc struct {
	Version int      `json:"version"`
	Alerts  []*Alert `json:"alerts"`
}

func (e *Engine) statePath() string { return filepath.Join(e.cfg.OutboxDir, stateFile) }

func (e *Engine) loadState() error {
	b, err := os.ReadFile(e.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read alert state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil || doc.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unsupported version %d", doc.Version)
		}
		to := e.statePath() + ".corrupt-" + e.now().UTC().Format("20060102T150405")
		rerr := os.Rename(e.statePath(), to)
		e.logger.Error("alert state unreadable, starting afresh: alerts still active will fire again", "path", e.statePath(), "quarantine", to, "err", err, "rename_err", rerr)
		return nil
	}
	for _, a := range doc.Alerts {
		if a == nil || a.Fingerprint == "" || len(a.Labels) == 0 {
			continue
		}
		e.alerts[a.Fingerprint] = a
	}
	return nil
}

func (e *Engine) saveStateLocked() {
	doc := stateDoc{Version: 1, Alerts: e.sortedAlertsLocked()}
	b, err := json.Marshal(doc)
	if err == nil {
		err = outbox.WriteFileAtomic(e.statePath(), b)
	}
	if err != nil {
		e.logger.Error("cannot save alert state", "path", e.statePath(), "err", err)
	}
}
