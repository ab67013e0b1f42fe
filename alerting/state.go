// State stage: the alert state machine over findings (pending, firing,
// resolved, flap damping) and the notifications each transition causes.

package alerting

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/spof"
)

// Observe feeds one evaluation into the state machine and durably queues
// the notifications it causes. It does disk I/O but never network I/O.
//
// A nil *Engine (alerting not configured) ignores every call.
func (e *Engine) Observe(res spof.Result, now time.Time) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		// A reload replaced this engine; the new one owns the outbox.
		return
	}
	defer e.publishLocked()
	dirty := e.healLocked()
	minSev := e.cfg.EffectiveMinSeverity()
	active := map[string]bool{}
	for _, f := range res.Findings {
		// An accepted finding sends nothing, whatever min_severity says
		// (it counts as info, and even an info threshold must not page on
		// a risk the operator accepted); an alert firing for it resolves.
		if f.Accepted != nil || f.Severity < minSev {
			continue
		}
		labels := e.labelsFor(f)
		fp := fingerprint(labels)
		if active[fp] {
			continue
		}
		active[fp] = true
		a := e.alerts[fp]
		if a == nil || a.State == StateResolved {
			if a != nil && a.Notified == notify.StatusFiring {
				// The resolve of the previous instance was never queued;
				// the receivers still see it firing, so just carry on.
				a.State, a.ResolvedAt, a.ResolvedPosts = StateFiring, time.Time{}, 0
			} else {
				a = &Alert{Fingerprint: fp, Code: f.Code, Severity: f.Severity, Labels: labels, State: StatePending, ActiveAt: now}
				e.alerts[fp] = a
			}
			dirty = true
		}
		// Summaries change often (rebuild ETA, UPS runtime); the new text is
		// used by the next message but is not worth an fsync by itself.
		if ann := e.annotationsFor(f); !maps.Equal(ann, a.Annotations) {
			a.Annotations = ann
		}
		if !a.ClearedAt.IsZero() {
			a.ClearedAt = time.Time{}
			dirty = true
		}
		if a.State == StatePending && now.Sub(a.ActiveAt) >= e.cfg.PendingFor(f.Code, f.Severity) {
			a.State, a.FiredAt = StateFiring, now
			e.amDirty, dirty = true, true
		}
	}
	for fp, a := range e.alerts {
		if active[fp] {
			continue
		}
		switch a.State {
		case StatePending:
			// Never fired, nobody was told: forget it.
			delete(e.alerts, fp)
			dirty = true
		case StateFiring:
			if a.ClearedAt.IsZero() {
				a.ClearedAt = now
				dirty = true
			}
			if now.Sub(a.ClearedAt) >= e.cfg.EffectiveKeepFiringFor() {
				a.State, a.ResolvedAt = StateResolved, a.ClearedAt
				e.amDirty, dirty = true, true
			}
		}
	}
	if e.enqueueLocked(now) {
		dirty = true
	}
	if dirty {
		e.saveStateLocked()
	}
}

// healLocked retries the disk while it refused writes: held notifications
// are written out (or the disk probed) and the state is saved again. It
// reports whether the state needs saving.
func (e *Engine) healLocked() bool {
	if e.outbox.WriteErr() == nil && e.outbox.Stats().Held == 0 && e.stateErr.Load() == nil {
		return false
	}
	if err := e.outbox.Flush(); err != nil {
		e.logger.Debug("outbox still not writable", "err", err)
	}
	return true
}

// enqueueLocked queues what the receivers have not been told yet. It
// reports whether the alert state changed.
func (e *Engine) enqueueLocked(now time.Time) bool {
	repeat := e.cfg.EffectiveRepeatInterval()
	var due []*Alert
	for _, a := range e.sortedAlertsLocked() {
		switch {
		case a.State == StateFiring && (a.Notified != notify.StatusFiring || now.Sub(a.LastSent) >= repeat):
			due = append(due, a)
		case a.State == StateResolved && a.Notified == notify.StatusFiring:
			due = append(due, a)
		}
	}
	var entries []outbox.Entry
	created := e.now()
	if len(due) > 0 {
		for _, r := range e.cfg.Receivers {
			if r.Type != TypeWebhook {
				continue
			}
			var alerts []notify.Alert
			for _, a := range due {
				status := notify.StatusFiring
				if a.State == StateResolved {
					status = notify.StatusResolved
				}
				alerts = append(alerts, e.webhookAlert(a, status))
			}
			for chunk := range slices.Chunk(alerts, cmp.Or(r.MaxAlerts, len(alerts))) {
				entries = append(entries, outbox.Entry{Receiver: r.Name, Created: created, Alerts: chunk})
			}
		}
	}
	var pushed []*Alert
	if e.amDirty {
		entries, pushed = e.pushEntriesLocked(entries, created, nil)
	}
	if len(entries) == 0 {
		return e.forgetLocked()
	}
	if err := e.enqueue(entries); err != nil {
		e.logger.Error("cannot queue notifications; will retry at the next evaluation", "err", err)
		return false
	}
	for _, a := range due {
		a.LastSent = now
		a.Notified = notify.StatusFiring
		if a.State == StateResolved {
			a.Notified = notify.StatusResolved
		}
	}
	if e.amDirty {
		e.markPushedLocked(pushed, created, nil)
	}
	e.forgetLocked()
	return true
}

// pushEntriesLocked adds one Alertmanager push per instance of the
// receivers in only (all when nil) holding every firing alert and the
// recently resolved ones.
func (e *Engine) pushEntriesLocked(entries []outbox.Entry, now time.Time, only map[string]bool) ([]outbox.Entry, []*Alert) {
	var pushed []*Alert
	for _, a := range e.sortedAlertsLocked() {
		if a.State == StateFiring || (a.State == StateResolved && a.ResolvedPosts < ResolvedPosts) {
			pushed = append(pushed, a)
		}
	}
	for _, r := range e.cfg.Receivers {
		if r.Type != TypeAlertmanager || (only != nil && !only[r.Name]) || len(pushed) == 0 {
			continue
		}
		alerts := make([]notify.Alert, 0, len(pushed))
		for _, a := range pushed {
			alerts = append(alerts, e.pushAlert(a, now, r.EffectiveResendInterval()))
		}
		for i := range r.URLs {
			entries = append(entries, outbox.Entry{Receiver: r.Name, Instance: i + 1, Created: now, Alerts: alerts})
		}
	}
	return entries, pushed
}

func (e *Engine) markPushedLocked(pushed []*Alert, now time.Time, only map[string]bool) {
	for _, r := range e.cfg.Receivers {
		if r.Type == TypeAlertmanager && (only == nil || only[r.Name]) {
			e.lastPush[r.Name] = now
		}
	}
	for _, a := range pushed {
		if a.State == StateResolved {
			a.ResolvedPosts++
		}
	}
	e.amDirty = false
}

// forgetLocked drops resolved alerts every receiver has been told about.
func (e *Engine) forgetLocked() bool {
	hasAM := slices.ContainsFunc(e.cfg.Receivers, func(r Receiver) bool { return r.Type == TypeAlertmanager })
	changed := false
	for fp, a := range e.alerts {
		if a.State == StateResolved && a.Notified != notify.StatusFiring && (!hasAM || a.ResolvedPosts >= ResolvedPosts) {
			delete(e.alerts, fp)
			changed = true
		}
	}
	return changed
}

func (e *Engine) sortedAlertsLocked() []*Alert {
	out := slices.Collect(maps.Values(e.alerts))
	slices.SortFunc(out, func(a, b *Alert) int {
		return cmp.Or(a.ActiveAt.Compare(b.ActiveAt), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
	return out
}
