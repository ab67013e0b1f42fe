// Persistence: the outbox (queued notifications) and alerts.json (what
// receivers have been told), both in outbox_dir.

package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/internal/redact"
)

// enqueue writes entries to the outbox and wakes their delivery loops.
func (e *Engine) enqueue(entries []outbox.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	entries, superseded := e.mergePendingPushes(entries)
	if len(superseded) > 0 {
		// Before the new entry is stored, so the merged pushes never count
		// against the bound. Should we crash before it is written, the
		// next start pushes the whole active set anyway.
		e.outbox.Remove(superseded...)
		e.recent.updateAll(superseded, "merged", 0, "")
	}
	stored, err := e.outbox.Enqueue(entries...)
	if err != nil {
		// The disk refused (full, read-only): deliver from memory rather
		// than not at all. Health reports it; Observe retries the disk.
		e.metrics.outboxWriteErrors.Inc()
		e.logger.Error("cannot write notifications to the outbox; delivering them from memory (lost if the agent stops before delivery)", "err", err)
		stored = e.outbox.Hold(entries...)
	}
	for _, en := range stored {
		e.recent.add(e.deliveryFor(en, "queued"))
		if t := e.byKey[en.Target()]; t != nil {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// mergePendingPushes keeps one pending entry per Alertmanager target: a
// new push absorbs the target's pending ones (later alert versions win, as
// delivery would merge them anyway), which are returned to be removed once
// the new one is stored. Otherwise the once-a-minute pushes to an
// Alertmanager that is down for long fill the shared outbox and
// drop-oldest evicts unique webhook notifications.
func (e *Engine) mergePendingPushes(entries []outbox.Entry) ([]outbox.Entry, []uint64) {
	var superseded []uint64
	for i, en := range entries {
		t := e.byKey[en.Target()]
		if t == nil || t.kind != TypeAlertmanager {
			continue
		}
		pending := e.outbox.Pending(t.key)
		if len(pending) == 0 {
			continue
		}
		for _, p := range pending {
			superseded = append(superseded, p.ID)
		}
		entries[i].Alerts = mergeAlerts(append(pending, en))
	}
	return entries, superseded
}

// openOutbox opens the durable queue, maps old-format entries (naming an
// Alertmanager by URL) to instance numbers, and quarantines entries whose
// receiver left the configuration.
func (e *Engine) openOutbox(fs outbox.FS) error {
	ob, err := outbox.Open(outbox.Options{
		Dir:        e.cfg.OutboxDir,
		MaxEntries: e.cfg.OutboxMaxEntries,
		Logger:     e.logger,
		OnDrop:     func(en outbox.Entry) { e.recent.update(en.ID, "dropped", 0, "outbox full") },
		FS:         fs,
	})
	if err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	e.outbox = ob
	for _, en := range ob.All() {
		if en.URL != "" {
			if n := e.instanceOf(en.Receiver, en.URL); n > 0 {
				if err := ob.Retarget(en.ID, n); err == nil {
					en.URL, en.Instance = "", n
				}
			}
		}
		if e.byKey[en.Target()] == nil {
			ob.Quarantine(en.ID, fmt.Sprintf("receiver %q (instance %d, url %q) is no longer configured", en.Receiver, en.Instance, redact.URL(en.URL)))
			continue
		}
		e.recent.add(e.deliveryFor(en, "queued"))
	}
	return nil
}

// instanceOf finds an Alertmanager URL among a receiver's configured ones
// (1-based; 0 when absent).
func (e *Engine) instanceOf(receiver, url string) int {
	for _, t := range e.targets {
		if t.receiver == receiver && t.url == url && t.instance > 0 {
			return t.instance
		}
	}
	return 0
}

type stateDoc struct {
	Version int      `json:"version"`
	Alerts  []*Alert `json:"alerts"`
}

func (e *Engine) statePath() string { return filepath.Join(e.cfg.OutboxDir, stateFile) }

// maxStateBytes bounds alerts.json: about 1 KiB per alert.
const maxStateBytes = 64 << 20

func (e *Engine) loadState() error {
	b, err := readBounded(e.statePath(), maxStateBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil && !errors.Is(err, errTooLarge) {
		if werr := e.outbox.WriteErr(); werr != nil {
			// The outbox directory itself is unusable: run from memory
			// rather than not alert at all; Health reports it.
			e.logger.Error("cannot read alert state, starting afresh: alerts still active will fire again", "path", e.statePath(), "err", err)
			return nil
		}
		return fmt.Errorf("read alert state: %w", err)
	}
	var doc stateDoc
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err != nil || doc.Version != 1 {
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
		err = e.outbox.WriteFile(stateFile, b)
	}
	if err != nil {
		if e.stateErr.Load() == nil {
			e.logger.Error("cannot save alert state; a restart may re-send or miss notifications", "path", e.statePath(), "err", err)
		}
		e.stateErr.Store(&err)
		return
	}
	e.stateErr.Store(nil)
}

var errTooLarge = errors.New("file is over its size limit")

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, errTooLarge, limit)
	}
	return b, nil
}
