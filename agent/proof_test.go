package agent

import (
	"context"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// A never-proven provable group ages from when the scheduler first saw it;
// the first sighting survives a reload (SeedFirstSeen), and the proof
// policy decides when redundancy_untested appears.
func TestFirstSeenDrivesRedundancyUntested(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	mirror := spof.Group{ID: "storage/md/md0", Kind: spof.KindStorage, Function: "md0 (raid1)", Required: 1, Provable: spof.Provable,
		Members: []spof.Member{{Name: "sda1", State: spof.MemberOK}, {Name: "sdb1", State: spof.MemberOK}}}
	c := funcCollector{name: "md", fn: func(ctx context.Context) (Result, error) {
		return Result{Groups: []spof.Group{mirror, pairGroup("power/ipmi/psu", spof.MemberOK)}}, nil
	}}
	entries := []Entry{{Collector: c, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}}}
	policy := spof.ProofPolicy{MaxAge: 7 * 24 * time.Hour}
	first := NewScheduler(SchedulerOptions{Entries: entries, Now: clock, ProofPolicy: policy})
	snap := first.CollectOnce(context.Background())
	if got := snap.FirstSeen["storage/md/md0"]; !got.Equal(now) {
		t.Fatalf("first seen = %v, want %v", got, now)
	}
	if _, ok := hasFinding(snap, spof.CodeRedundancyUntested, "storage/md/md0"); ok {
		t.Fatal("redundancy_untested on a group first seen just now")
	}

	// Eight days later, after a reload that carries the first sighting.
	seen := now
	now = now.Add(8 * 24 * time.Hour)
	second := NewScheduler(SchedulerOptions{Entries: entries, Now: clock, ProofPolicy: policy, SeedFirstSeen: first.Snapshot().FirstSeen})
	snap = second.CollectOnce(context.Background())
	if got := snap.FirstSeen["storage/md/md0"]; !got.Equal(seen) {
		t.Errorf("first seen after reload = %v, want %v", got, seen)
	}
	if _, ok := hasFinding(snap, spof.CodeRedundancyUntested, "storage/md/md0"); !ok {
		t.Error("no redundancy_untested 8 days after first sight with a 7-day policy")
	}
	if _, ok := hasFinding(snap, spof.CodeRedundancyUntested, "power/ipmi/psu"); ok {
		t.Error("redundancy_untested on PSUs, which are not provable here")
	}

	// A longer policy: no finding.
	third := NewScheduler(SchedulerOptions{Entries: entries, Now: clock, ProofPolicy: spof.ProofPolicy{MaxAge: 30 * 24 * time.Hour}, SeedFirstSeen: first.Snapshot().FirstSeen})
	if _, ok := hasFinding(third.CollectOnce(context.Background()), spof.CodeRedundancyUntested, "storage/md/md0"); ok {
		t.Error("redundancy_untested with a 30-day policy 8 days after first sight")
	}
}
