package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spofwatch/spofwatch/spof"
)

// funcCollector is a test collector made of a function.
type funcCollector struct {
	name string
	fn   func(ctx context.Context) (Result, error)
}

func (f funcCollector) Name() string                                { return f.name }
func (f funcCollector) Collect(ctx context.Context) (Result, error) { return f.fn(ctx) }

func pairGroup(id string, second spof.MemberState) spof.Group {
	return spof.Group{ID: id, Kind: spof.KindPower, Function: "power supplies", Required: 1,
		Members: []spof.Member{{Name: "PSU1", State: spof.MemberOK}, {Name: "PSU2", State: second}}}
}

func findGroup(t *testing.T, snap *Snapshot, id string) spof.GroupResult {
	t.Helper()
	for _, g := range snap.Evaluation.Groups {
		if g.Group.ID == id {
			return g
		}
	}
	t.Fatalf("group %s missing from snapshot", id)
	return spof.GroupResult{}
}

func hasFinding(snap *Snapshot, code spof.Code, group string) (spof.Finding, bool) {
	for _, f := range snap.Evaluation.Findings {
		if f.Code == code && f.Group == group {
			return f, true
		}
	}
	return spof.Finding{}, false
}

// A collector that blocks past its timeout, ignoring its context, turns its
// groups unknown with collector_unavailable, while /metrics keeps answering
// from the snapshot.
func TestBlockingCollectorTimesOut(t *testing.T) {
	var block atomic.Bool
	release := make(chan struct{})
	defer close(release)
	stuck := funcCollector{name: "ipmi", fn: func(ctx context.Context) (Result, error) {
		if block.Load() {
			<-release // ignores ctx on purpose: a wedged BMC library
		}
		return Result{Groups: []spof.Group{pairGroup("power/ipmi/psu", spof.MemberOK)}}, nil
	}}
	fine := funcCollector{name: "mounts", fn: func(ctx context.Context) (Result, error) {
		return Result{Groups: []spof.Group{{ID: "storage/mount/root", Required: 1, Members: []spof.Member{{Name: "sda", State: spof.MemberOK}}}}}, nil
	}}
	s := NewScheduler(SchedulerOptions{Entries: []Entry{
		{Collector: stuck, Schedule: Schedule{Interval: time.Hour, Timeout: 50 * time.Millisecond}},
		{Collector: fine, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}},
	}})
	snap := s.CollectOnce(context.Background())
	if g := findGroup(t, snap, "power/ipmi/psu"); g.State != spof.StateRedundant {
		t.Fatalf("first collection: state %s, want redundant", g.State)
	}

	block.Store(true)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewExporter(s, map[string]string{"rack": "r1"}))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	done := make(chan *Snapshot)
	go func() { done <- s.CollectOnce(context.Background()) }()
	// While the BMC is wedged, a scrape still answers from the snapshot.
	resp, err := http.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape during a blocked collection: %v %v", resp, err)
	}
	resp.Body.Close()
	snap = <-done

	g := findGroup(t, snap, "power/ipmi/psu")
	if g.State != spof.StateUnknown {
		t.Errorf("state after timeout = %s, want unknown", g.State)
	}
	f, ok := hasFinding(snap, spof.CodeCollectorUnavailable, "collector/ipmi")
	if !ok || !strings.Contains(f.Summary, "timed out after 50ms") {
		t.Errorf("collector_unavailable with the timeout missing: %+v", snap.Evaluation.Findings)
	}
	if _, ok := hasFinding(snap, spof.CodeCollectorUnavailable, "power/ipmi/psu"); !ok {
		t.Errorf("the group of the failed collector must be unknown with a reason: %+v", snap.Evaluation.Findings)
	}
	if g := findGroup(t, snap, "storage/mount/root"); g.State != spof.StateNoRedundancy {
		t.Errorf("a slow collector must not affect another: %s", g.State)
	}
	if got := testutil.ToFloat64(collectorUp(t, reg, "ipmi")); got != 0 {
		t.Errorf("spofwatch_collector_up{collector=ipmi} = %v, want 0", got)
	}

	// While the wedged call is still running, the next attempt is refused
	// instead of piling up goroutines.
	snap = s.CollectOnce(context.Background())
	if f, _ := hasFinding(snap, spof.CodeCollectorUnavailable, "collector/ipmi"); !strings.Contains(f.Summary, "still running") {
		t.Errorf("second attempt during a wedge: %+v", f)
	}
}

// collectorUp returns a gauge holding spofwatch_collector_up for one
// collector, read from the registry.
func collectorUp(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "spofwatch_collector_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "collector" && l.GetValue() == name {
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
					g.Set(m.GetGauge().GetValue())
					return g
				}
			}
		}
	}
	t.Fatalf("no spofwatch_collector_up for %s", name)
	return nil
}

func TestFailedCollectorKeepsLastGroupsAsUnknownAndRecovers(t *testing.T) {
	var fail atomic.Bool
	c := funcCollector{name: "ups", fn: func(ctx context.Context) (Result, error) {
		if fail.Load() {
			return Result{}, errors.New("dial tcp 127.0.0.1:3493: connection refused")
		}
		return Result{Groups: []spof.Group{pairGroup("ups/nut/ups-a", spof.MemberOK)}}, nil
	}}
	s := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}})
	s.CollectOnce(context.Background())
	fail.Store(true)
	snap := s.CollectOnce(context.Background())
	if g := findGroup(t, snap, "ups/nut/ups-a"); g.State != spof.StateUnknown {
		t.Errorf("state = %s, want unknown", g.State)
	}
	if f, ok := hasFinding(snap, spof.CodeCollectorUnavailable, "collector/ups"); !ok || !strings.Contains(f.Summary, "connection refused") {
		t.Errorf("findings = %+v", snap.Evaluation.Findings)
	}
	fail.Store(false)
	snap = s.CollectOnce(context.Background())
	if g := findGroup(t, snap, "ups/nut/ups-a"); g.State != spof.StateRedundant {
		t.Errorf("after recovery state = %s", g.State)
	}
	if len(snap.Evaluation.Findings) != 0 {
		t.Errorf("findings after recovery = %+v", snap.Evaluation.Findings)
	}
}

func TestNoDataIsQuiet(t *testing.T) {
	c := funcCollector{name: "zfs", fn: func(ctx context.Context) (Result, error) {
		return Result{}, ErrNoData
	}}
	s := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}})
	snap := s.CollectOnce(context.Background())
	if len(snap.Evaluation.Findings) != 0 || !snap.Outcomes[0].NoData || !snap.Outcomes[0].OK {
		t.Errorf("absent source: findings %+v outcome %+v", snap.Evaluation.Findings, snap.Outcomes[0])
	}
}

func TestStaleDataIsNotFresh(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	c := funcCollector{name: "md", fn: func(ctx context.Context) (Result, error) {
		return Result{Groups: []spof.Group{pairGroup("storage/md/md0", spof.MemberOK)}}, nil
	}}
	s := NewScheduler(SchedulerOptions{
		Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Minute, Timeout: time.Second}}},
		Now:     func() time.Time { return *clock.Load() },
	})
	s.CollectOnce(context.Background())
	later := now.Add(2 * time.Minute)
	clock.Store(&later)
	s.markStale()
	if g := findGroup(t, s.Snapshot(), "storage/md/md0"); g.State != spof.StateRedundant {
		t.Fatalf("2 intervals old is still fresh, got %s", g.State)
	}
	later = now.Add(5 * time.Minute)
	clock.Store(&later)
	s.markStale()
	snap := s.Snapshot()
	if g := findGroup(t, snap, "storage/md/md0"); g.State != spof.StateUnknown {
		t.Errorf("5 intervals old: state %s, want unknown", g.State)
	}
	if f, ok := hasFinding(snap, spof.CodeCollectorUnavailable, "collector/md"); !ok || !strings.Contains(f.Summary, "stale") {
		t.Errorf("findings = %+v", snap.Evaluation.Findings)
	}
}

func TestTriggerCollectsAtOnce(t *testing.T) {
	var n atomic.Int64
	c := funcCollector{name: "md", fn: func(ctx context.Context) (Result, error) {
		n.Add(1)
		return Result{}, nil
	}}
	trigger := make(chan struct{}, 1)
	s := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second, Trigger: trigger}}}})
	sub := s.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	<-sub // first collection at start
	Notify(trigger)
	<-sub // the triggered one, long before the hourly tick
	if got := n.Load(); got != 2 {
		t.Errorf("collections = %d, want 2", got)
	}
}

func TestSeedKeepsSinceAcrossReload(t *testing.T) {
	c := funcCollector{name: "ipmi", fn: func(ctx context.Context) (Result, error) {
		return Result{Groups: []spof.Group{pairGroup("power/ipmi/psu", spof.MemberFailed)}}, nil
	}}
	first := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}})
	old, _ := hasFinding(first.CollectOnce(context.Background()), spof.CodeRedundancyLost, "power/ipmi/psu")
	time.Sleep(10 * time.Millisecond)
	second := NewScheduler(SchedulerOptions{Seed: first.Snapshot().Evaluation.Findings,
		Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}})
	f, ok := hasFinding(second.CollectOnce(context.Background()), spof.CodeRedundancyLost, "power/ipmi/psu")
	if !ok || !f.Since.Equal(old.Since) {
		t.Errorf("since after reload = %v, want %v", f.Since, old.Since)
	}
}

func TestFollowUpNotifiesAgainAfterAnEvent(t *testing.T) {
	calls := make(chan time.Time, 10)
	event, stop := FollowUp(func() { calls <- time.Now() }, 30*time.Millisecond)
	defer stop()
	start := time.Now()
	event()
	select {
	case <-calls: // synchronous: the first collection is asked for at once
	default:
		t.Fatal("event did not notify at once")
	}
	if second := <-calls; second.Sub(start) < 30*time.Millisecond {
		t.Errorf("follow-up after %s, before its delay", second.Sub(start))
	}
	event()
	<-calls
	stop()
	select {
	case <-calls:
		t.Error("stop must cancel the pending follow-up")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestOverallDeadlineIsRecorded: when the caller's deadline (check
// --timeout) runs out before a collector does, the collector is unknown
// with a reason, never left out of the verdict.
func TestOverallDeadlineIsRecorded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := funcCollector{name: "megaraid", fn: func(ctx context.Context) (Result, error) {
		<-release
		return Result{}, nil
	}}
	s := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: hung, Schedule: Schedule{Interval: time.Hour, Timeout: 30 * time.Second}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	snap := s.CollectOnce(ctx)
	if f, ok := hasFinding(snap, spof.CodeCollectorUnavailable, "collector/megaraid"); !ok || !strings.Contains(f.Summary, "overall deadline") {
		t.Errorf("findings = %+v", snap.Evaluation.Findings)
	}
}

// TestVanishedSourceIsUnknown: a group that stops being reported, or a
// source that goes from groups to "nothing here", turns unknown instead of
// silently clearing its alarm.
func TestVanishedSourceIsUnknown(t *testing.T) {
	var step atomic.Int64
	c := funcCollector{name: "zfs", fn: func(ctx context.Context) (Result, error) {
		switch step.Load() {
		case 0:
			return Result{Groups: []spof.Group{pairGroup("storage/zfs/tank/mirror-0", spof.MemberFailed), pairGroup("storage/zfs/tank/mirror-1", spof.MemberOK)}}, nil
		case 1:
			return Result{Groups: []spof.Group{pairGroup("storage/zfs/tank/mirror-1", spof.MemberOK)}}, nil
		}
		return Result{}, ErrNoData
	}}
	s := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}})
	s.CollectOnce(context.Background())
	step.Store(1)
	snap := s.CollectOnce(context.Background())
	if g := findGroup(t, snap, "storage/zfs/tank/mirror-0"); g.State != spof.StateUnknown || !strings.Contains(g.Group.UnknownReason, "no longer reported") {
		t.Errorf("vanished vdev: %s %q", g.State, g.Group.UnknownReason)
	}
	if g := findGroup(t, snap, "storage/zfs/tank/mirror-1"); g.State != spof.StateRedundant {
		t.Errorf("the vdev still reported: %s", g.State)
	}
	step.Store(2)
	snap = s.CollectOnce(context.Background())
	if f, ok := hasFinding(snap, spof.CodeCollectorUnavailable, "collector/zfs"); !ok || !strings.Contains(f.Summary, "source disappeared") {
		t.Errorf("all pools gone: %+v", snap.Evaluation.Findings)
	}
	// A collector that never had groups stays quiet on ErrNoData.
	fresh := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}})
	if snap := fresh.CollectOnce(context.Background()); len(snap.Evaluation.Findings) != 0 {
		t.Errorf("absent from the start must be quiet: %+v", snap.Evaluation.Findings)
	}
}

// TestSeedOutcomesStandInUntilFirstRun: after a reload, a collector that
// has not run yet shows its previous result, not an "all clear".
func TestSeedOutcomesStandInUntilFirstRun(t *testing.T) {
	release := make(chan struct{})
	slow := funcCollector{name: "ipmi", fn: func(ctx context.Context) (Result, error) {
		<-release
		return Result{Groups: []spof.Group{pairGroup("power/ipmi/psu", spof.MemberOK)}}, nil
	}}
	prev := Outcome{Name: "ipmi", OK: true, Collections: 7, Groups: []spof.Group{pairGroup("power/ipmi/psu", spof.MemberFailed)}}
	s := NewScheduler(SchedulerOptions{SeedOutcomes: []Outcome{prev},
		Entries: []Entry{{Collector: slow, Schedule: Schedule{Interval: time.Hour, Timeout: time.Minute}}}})
	if _, ok := hasFinding(s.Snapshot(), spof.CodeRedundancyLost, "power/ipmi/psu"); !ok {
		t.Fatalf("before the first run the previous verdict must stand: %+v", s.Snapshot().Evaluation.Findings)
	}
	if s.Ready() {
		t.Error("not ready before the first run, whatever the seed")
	}
	close(release)
	snap := s.CollectOnce(context.Background())
	if _, ok := hasFinding(snap, spof.CodeRedundancyLost, "power/ipmi/psu"); ok {
		t.Errorf("after its own run the seed must be gone: %+v", snap.Evaluation.Findings)
	}
}

// An acceptance expires on the injected clock, never by sleeping: the
// finding returns at its severity with a notice; an acceptance that stops
// matching is reported stale a day after its last match, and a reload keeps
// that memory.
func TestAcceptanceExpiryAndStalenessOnTheClock(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	failed := true
	c := funcCollector{name: "ipmi", fn: func(ctx context.Context) (Result, error) {
		second := spof.MemberOK
		if failed {
			second = spof.MemberFailed
		}
		return Result{Groups: []spof.Group{pairGroup("power/ipmi/psu", second)}}, nil
	}}
	acc := spof.Acceptance{ID: "redundancy_lost:power/ipmi/psu", Code: spof.CodeRedundancyLost, Group: "power/ipmi/psu", Reason: "PSU on order", Until: now.Add(48 * time.Hour)}
	entries := []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}
	s := NewScheduler(SchedulerOptions{Entries: entries, Now: clock, Acceptances: []spof.Acceptance{acc}})
	snap := s.CollectOnce(context.Background())
	if f, ok := hasFinding(snap, spof.CodeRedundancyLost, "power/ipmi/psu"); !ok || f.Accepted == nil {
		t.Fatalf("not accepted before until: %+v", f)
	}
	if w, _ := snap.Evaluation.Worst(); w != spof.SeverityInfo {
		t.Errorf("worst while accepted = %s", w)
	}

	now = now.Add(49 * time.Hour)
	snap = s.CollectOnce(context.Background())
	if f, ok := hasFinding(snap, spof.CodeRedundancyLost, "power/ipmi/psu"); !ok || f.Accepted != nil {
		t.Fatalf("still accepted after until: %+v", f)
	}
	if w, _ := snap.Evaluation.Worst(); w != spof.SeverityCritical {
		t.Errorf("worst after expiry = %s, want critical", w)
	}
	notice, _ := hasFinding(snap, spof.CodeNotice, "power/ipmi/psu")
	if !strings.Contains(notice.Summary, "expired") {
		t.Errorf("no expiry notice: %+v", snap.Evaluation.Findings)
	}

	// A fresh acceptance; then the PSU is replaced and nothing matches.
	now = time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	acc.Until = now.Add(90 * 24 * time.Hour)
	s = NewScheduler(SchedulerOptions{Entries: entries, Now: clock, Acceptances: []spof.Acceptance{acc}})
	s.CollectOnce(context.Background())
	failed = false
	now = now.Add(23 * time.Hour)
	if _, stale := hasFinding(s.CollectOnce(context.Background()), spof.CodeNotice, ""); stale {
		t.Error("stale after 23 hours")
	}
	reloaded := NewScheduler(SchedulerOptions{Entries: entries, Now: clock, Acceptances: []spof.Acceptance{acc}, SeedAcceptanceMatches: map[string]time.Time{acc.ID: s.Snapshot().Acceptances[0].LastMatched}})
	now = now.Add(2 * time.Hour)
	notice, stale := hasFinding(reloaded.CollectOnce(context.Background()), spof.CodeNotice, "")
	if !stale || !strings.Contains(notice.Summary, "stale acceptance") {
		t.Errorf("no stale notice 25 hours after the last match, across a reload: %+v", reloaded.Snapshot().Evaluation.Findings)
	}
}

// A seeded proof (from the history) stands in while the source reports
// none or an older one, and never makes a not-provable group proven.
func TestSeedProofs(t *testing.T) {
	old := spof.Proof{At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Method: "md check", Result: spof.ProofPassed}
	newer := spof.Proof{At: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Method: "md check", Result: spof.ProofPassed}
	for _, c := range []struct {
		name     string
		provable spof.Provability
		source   *spof.Proof
		seed     spof.Proof
		want     *spof.Proof
	}{
		{"source has none", spof.Provable, nil, old, &old},
		{"source older", spof.Provable, &old, newer, &newer},
		{"source newer", spof.Provable, &newer, old, &newer},
		{"not provable", spof.NotProvable, nil, old, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			coll := funcCollector{name: "md", fn: func(ctx context.Context) (Result, error) {
				g := pairGroup("storage/md/md0", spof.MemberOK)
				g.Kind, g.Provable, g.Proof = spof.KindStorage, c.provable, c.source
				return Result{Groups: []spof.Group{g}}, nil
			}}
			s := NewScheduler(SchedulerOptions{Entries: []Entry{{Collector: coll, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}},
				SeedProofs: map[string]spof.Proof{"storage/md/md0": c.seed}})
			got := findGroup(t, s.CollectOnce(context.Background()), "storage/md/md0").Group.Proof
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Errorf("proof = %+v, want %+v", got, c.want)
			}
		})
	}
}
