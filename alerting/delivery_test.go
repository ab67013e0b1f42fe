package alerting

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/spof"
)

// TestReceiverOutage: the receiver is unreachable (odd rounds: nothing
// listens; even rounds: it answers 503 with Retry-After) while an alert
// fires and resolves. Once it is back, both notifications arrive, firing
// before resolved, and none is lost over all rounds.
func TestReceiverOutage(t *testing.T) {
	const rounds = 6
	h := newHookReceiver(t)
	cfg := webhookConfig(t, h.url())
	e := mustNew(t, cfg, fastOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()

	for i := range rounds {
		member := fmt.Sprintf("PSU%d", i)
		retryAfter := i%2 == 1
		if retryAfter {
			h.mu.Lock()
			h.status, h.header = http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}
			h.mu.Unlock()
		} else {
			h.stop()
		}
		e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", member)), time.Now())
		e.Observe(result(), time.Now())
		time.Sleep(100 * time.Millisecond) // let some attempts fail
		h.mu.Lock()
		failedAttempts := len(h.attempts)
		h.mu.Unlock()
		if retryAfter {
			h.mu.Lock()
			h.status, h.header = 0, nil
			h.mu.Unlock()
		} else {
			h.start()
		}
		h.waitUntil(func(ms []notify.WebhookMessage) bool { return len(missing(ms, 0, i+1)) == 0 }, 30*time.Second)
		if retryAfter {
			// The retry after the 503 came no sooner than Retry-After says,
			// although the backoff alone (<= 200ms here) would be sooner.
			h.mu.Lock()
			gap := h.attempts[failedAttempts].Sub(h.attempts[failedAttempts-1])
			h.mu.Unlock()
			if gap < time.Second {
				t.Errorf("round %d: retried %s after a 503 with Retry-After: 1", i, gap)
			}
		}
	}

	// A long outage across an agent restart: ten alerts fire and resolve
	// while the receiver is down, the engine is replaced by a new one on
	// the same outbox, then the receiver returns.
	h.stop()
	for i := rounds; i < rounds+10; i++ {
		e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", fmt.Sprintf("PSU%d", i))), time.Now())
		e.Observe(result(), time.Now())
	}
	cancel()
	<-done
	e.Close() // a stopped process releases the outbox lock
	e = mustNew(t, cfg, fastOptions(t))
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { e.Run(ctx2); close(done2) }()
	defer func() { cancel2(); <-done2 }()
	h.start()
	total := rounds + 10
	h.waitUntil(func(ms []notify.WebhookMessage) bool { return len(missing(ms, 0, total)) == 0 }, 30*time.Second)

	// Every round's firing and resolved arrived, in that order; count the
	// lost ones.
	ms := h.messages()
	lost := len(missing(ms, 0, total))
	count := map[string]int{}
	for _, m := range ms {
		for _, a := range m.Alerts {
			count[a.Labels["member"]+" "+a.Status]++
		}
	}
	for k, n := range count {
		if n > 1 {
			t.Logf("%s arrived %d times (at-least-once redelivery)", k, n)
		}
	}
	for i := range total {
		member := fmt.Sprintf("PSU%d", i)
		fired, resolved := -1, -1
		for j, m := range ms {
			if len(m.Alerts) != 1 || m.Alerts[0].Labels["member"] != member {
				continue
			}
			switch {
			case m.Status == notify.StatusFiring && fired < 0:
				fired = j
			case m.Status == notify.StatusResolved && resolved < 0:
				resolved = j
			}
		}
		if fired >= 0 && resolved >= 0 && resolved < fired {
			t.Errorf("round %d: resolved (message %d) arrived before firing (message %d)", i, resolved, fired)
		}
	}
	t.Logf("receiver outage: %d notifications over %d rounds and one long outage across a restart: %d messages received (%d at-least-once duplicates), %d lost", 2*total, rounds, len(ms), len(ms)-2*total+lost, lost)
	if lost != 0 {
		t.Fatalf("%d of %d notifications lost", lost, 2*total)
	}
}

const crashHelperEnv = "SPOFWATCH_ALERTING_CRASH_HELPER"

// TestCrashHelperProcess is the agent that TestCrashBetweenEnqueueAndDelivery
// kills; it does nothing in a normal test run.
func TestCrashHelperProcess(t *testing.T) {
	spec := os.Getenv(crashHelperEnv)
	if spec == "" {
		return
	}
	dir, url, _ := strings.Cut(spec, "|")
	cfg := Config{OutboxDir: dir, KeepFiringFor: dur(0), Receivers: []Receiver{{Name: "ops", Type: TypeWebhook, URL: url}}}
	e, err := New(cfg, Options{Instance: "host1", BackoffBase: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	go e.Run(context.Background())
	e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")), time.Now())
	// Observe returned: the notification is durable. Say so, then keep
	// trying to deliver to the dead receiver until killed.
	fmt.Println("ENQUEUED")
	select {}
}

// TestCrashBetweenEnqueueAndDelivery SIGKILLs an agent process after it
// queued a notification that its receiver could not take yet; a new engine
// on the same outbox delivers it, does not fire it twice, and delivers the
// resolve.
func TestCrashBetweenEnqueueAndDelivery(t *testing.T) {
	h := newHookReceiver(t)
	h.stop() // the receiver is down while the agent runs
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir+"|"+h.url())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	enqueued := false
	for sc.Scan() {
		if sc.Text() == "ENQUEUED" {
			enqueued = true
			break
		}
		t.Log("helper:", sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if !enqueued {
		t.Fatalf("helper never queued the notification: %v", err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", cmd.ProcessState)
	}
	if n := len(h.messages()); n != 0 {
		t.Fatalf("receiver got %d messages while down", n)
	}

	h.start()
	cfg := Config{OutboxDir: dir, KeepFiringFor: dur(0), Receivers: []Receiver{{Name: "ops", Type: TypeWebhook, URL: h.url()}}}
	opts := fastOptions(t)
	opts.HostLabels = nil // as the helper: same labels, same alerts
	e := mustNew(t, cfg, opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	ms := h.waitFor(1, 10*time.Second)
	if ms[0].Status != notify.StatusFiring || ms[0].Alerts[0].Labels["member"] != "PSU2" {
		t.Fatalf("after restart got %+v", ms[0])
	}
	// Still active after the restart: no second firing. Then it clears.
	lost := finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")
	lost.Details = "PSU2 reports AC lost."
	e.Observe(result(lost), time.Now())
	e.Observe(result(), time.Now())
	ms = h.waitFor(2, 10*time.Second)
	if ms[1].Status != notify.StatusResolved {
		t.Fatalf("second message after restart is %q, want resolved (no duplicate firing)", ms[1].Status)
	}
	t.Logf("crash: 1 notification queued before SIGKILL, delivered after restart; 0 lost")
}

// missing lists the notifications of rounds [from, to) (member PSU<i>,
// firing and resolved) that have not arrived.
func missing(ms []notify.WebhookMessage, from, to int) []string {
	seen := map[string]bool{}
	for _, m := range ms {
		for _, a := range m.Alerts {
			seen[a.Labels["member"]+" "+a.Status] = true
		}
	}
	var out []string
	for i := from; i < to; i++ {
		for _, st := range []string{notify.StatusFiring, notify.StatusResolved} {
			if k := fmt.Sprintf("PSU%d %s", i, st); !seen[k] {
				out = append(out, k)
			}
		}
	}
	return out
}
