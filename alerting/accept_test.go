package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/spof"
)

// An accepted finding counts as info: it never fires, and an alert that
// was firing for it resolves when the acceptance arrives.
func TestAcceptedFindingResolvesAndSendsNothing(t *testing.T) {
	h := newHookReceiver(t)
	e := mustNew(t, webhookConfig(t, h.url()), fastOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	f := finding(spof.CodeRedundancyLost, "power/ipmi/psu", "")
	e.Observe(result(f), time.Now())
	if ms := h.waitFor(1, 10*time.Second); ms[0].Status != notify.StatusFiring {
		t.Fatalf("got %+v, want the firing", ms[0])
	}
	accepted := f
	accepted.Accepted = &spof.Accepted{Reason: "PSU on order", Until: time.Now().Add(time.Hour)}
	e.Observe(result(accepted), time.Now())
	if ms := h.waitFor(2, 10*time.Second); ms[1].Status != notify.StatusResolved {
		t.Fatalf("got %+v, want the resolve once accepted", ms[1])
	}

	other := finding(spof.CodeNoRedundancy, "storage/mount/root", "")
	other.Accepted = &spof.Accepted{Reason: "stateless", Until: time.Now().Add(time.Hour)}
	for range 3 {
		e.Observe(result(accepted, other), time.Now())
	}
	// The resolve's entry leaves the outbox once delivered; after that
	// nothing may be queued: an accepted finding never enqueues a message.
	for deadline := time.Now().Add(5 * time.Second); e.outbox.Stats().Entries != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.outbox.Stats(); st.Entries != 0 || st.Held != 0 {
		t.Errorf("outbox holds %+v after accepted findings only", st)
	}
	if n := len(h.messages()); n != 2 {
		t.Errorf("%d notifications, want none beyond the firing and its resolve", n)
	}
	if len(e.Alerts()) != 0 {
		for _, a := range e.Alerts() {
			if a.State == StateFiring || a.State == StatePending {
				t.Errorf("an accepted finding has an active alert: %+v", a)
			}
		}
	}
}
