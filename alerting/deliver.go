// Delivery stage: one loop per target sends queued entries in order, with
// exponential backoff, jitter and Retry-After; Alertmanager receivers also
// get the active set re-pushed every resend_interval.

package alerting

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/internal/redact"
)

// resendLoop re-posts active alerts to every Alertmanager receiver each
// resend_interval: Alertmanager forgets pushed alerts when it restarts and
// resolves them itself once endsAt passes.
func (e *Engine) resendLoop(ctx context.Context) {
	if !slices.ContainsFunc(e.cfg.Receivers, func(r Receiver) bool { return r.Type == TypeAlertmanager }) {
		return
	}
	e.resend(nil)
	for {
		// Sleep until the earliest receiver is due; a push caused by a
		// state change in between just makes the next wake-up find nothing due.
		now := e.now()
		e.mu.Lock()
		due := map[string]bool{}
		var next time.Time
		for _, r := range e.cfg.Receivers {
			if r.Type != TypeAlertmanager {
				continue
			}
			at := e.lastPush[r.Name].Add(r.EffectiveResendInterval())
			if !now.Before(at) {
				due[r.Name] = true
			} else if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		e.mu.Unlock()
		if len(due) > 0 {
			e.resend(due)
			continue
		}
		timer := time.NewTimer(max(next.Sub(now), 10*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// resend queues a push of the active set to the Alertmanager receivers in
// only (every one when nil, or when a state change is still unpushed).
func (e *Engine) resend(only map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	defer e.publishLocked()
	if e.amDirty {
		only = nil
	}
	now := e.now()
	entries, pushed := e.pushEntriesLocked(nil, now, only)
	if len(entries) == 0 {
		e.markPushedLocked(nil, now, only)
		return
	}
	if err := e.enqueue(entries); err != nil {
		e.logger.Error("cannot queue Alertmanager push; will retry", "err", err)
		return
	}
	e.markPushedLocked(pushed, now, only)
	e.forgetLocked()
	e.saveStateLocked()
}

// deliverLoop sends one target's entries in order. Webhook entries go one
// message each; for Alertmanager every pending entry is merged into one
// post (later alert versions win), since each push restates the active set.
func (e *Engine) deliverLoop(ctx context.Context, t *target) {
	attempt := 0
	for {
		pending := e.outbox.Pending(t.key)
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			}
		}
		batch := pending[:1]
		alerts := pending[0].Alerts
		if t.kind == TypeAlertmanager {
			batch, alerts = pending, mergeAlerts(pending)
		}
		actx, cancel := context.WithTimeout(ctx, t.timeout)
		err := t.send(actx, alerts)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // shutting down: the entry stays queued
		}
		ids := make([]uint64, len(batch))
		for i, en := range batch {
			ids[i] = en.ID
		}
		attempt++
		if err == nil {
			e.outbox.Remove(ids...)
			e.metrics.sent.WithLabelValues(t.receiver).Add(float64(len(batch)))
			e.recent.updateAll(ids, "delivered", attempt, "")
			e.logger.Debug("notification delivered", "receiver", t.receiver, "peer", redact.URL(t.url), "alerts", len(alerts), "attempts", attempt)
			attempt = 0
			continue
		}
		e.metrics.failed.WithLabelValues(t.receiver).Inc()
		if !notify.Retryable(err) {
			e.outbox.Remove(ids...)
			e.recent.updateAll(ids, "failed", attempt, err.Error())
			e.logger.Error("notification rejected, not retrying", "receiver", t.receiver, "peer", redact.URL(t.url), "attempts", attempt, "err", err)
			attempt = 0
			continue
		}
		delay := backoff(attempt, e.backoffMin, t.maxDelay)
		if ra := notify.RetryAfter(err); ra > delay {
			delay = min(ra, maxRetryAfter)
		}
		e.recent.updateAll(ids, "retrying", attempt, err.Error())
		e.logger.Warn("notification failed, will retry", "receiver", t.receiver, "peer", redact.URL(t.url), "attempts", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// maxRetryAfter caps a receiver's Retry-After, so a bogus header cannot
// park a queue for a day.
const maxRetryAfter = 15 * time.Minute

// backoff is exponential from base, capped at maxDelay, with equal jitter
// (a random delay between half and all of the step) so a fleet of agents
// does not retry in lockstep.
func backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

func mergeAlerts(entries []outbox.Entry) []notify.Alert {
	idx := map[string]int{}
	var out []notify.Alert
	for _, en := range entries {
		for _, a := range en.Alerts {
			if i, ok := idx[a.Fingerprint]; ok {
				out[i] = a
				continue
			}
			idx[a.Fingerprint] = len(out)
			out = append(out, a)
		}
	}
	return out
}
