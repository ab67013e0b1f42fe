package alerting

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// BenchmarkFindingToWebhook measures end to end, on loopback, from a
// finding changing (Observe called) to the webhook message arriving at a
// real HTTP receiver, excluding `for` (critical, for 0; keep_firing_for 0).
// Each iteration alternates firing and resolved, so every one is a state
// change that goes through the fsynced outbox (ext4 on this machine).
func BenchmarkFindingToWebhook(b *testing.B) {
	h := newHookReceiver(b)
	cfg := webhookConfig(b, h.url())
	opts := fastOptions(b)
	opts.Logger = nil
	e := mustNew(b, cfg, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	lost := result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2"))
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if i%2 == 0 {
			e.Observe(lost, start)
		} else {
			e.Observe(result(), start)
		}
		select {
		case <-h.notify:
		case <-time.After(10 * time.Second):
			b.Fatalf("message %d never arrived", i)
		}
		h.mu.Lock()
		lat = append(lat, h.arrivals[len(h.arrivals)-1].Sub(start))
		h.mu.Unlock()
	}
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("finding change -> webhook arrival over %d changes: p50 %s p99 %s max %s", len(lat), q(0.5), q(0.99), lat[len(lat)-1])
}

// BenchmarkObserveSteadyState is the cost the scheduler pays per
// evaluation when nothing changes (20 active findings, no disk writes).
func BenchmarkObserveSteadyState(b *testing.B) {
	cfg := webhookConfig(b, "http://127.0.0.1:1/hook")
	opts := fastOptions(b)
	opts.Logger = nil
	e := mustNew(b, cfg, opts)
	var fs []spof.Finding
	for i := range 20 {
		fs = append(fs, finding(spof.CodeRedundancyLost, fmt.Sprintf("storage/md/md%d", i), "sda"))
	}
	now := time.Now()
	e.Observe(result(fs...), now)
	for b.Loop() {
		e.Observe(result(fs...), now)
	}
}
