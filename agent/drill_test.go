package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// Drill outcomes from one collector apply to another collector's groups,
// and a drill log that becomes unreadable keeps the last known outcomes:
// the failed member stays failed and the collector is unavailable, so an
// unreadable log never makes a group healthy.
func TestDrillOutcomesReachTheEvaluation(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	bond := spof.Group{ID: "network/bond/bond0", Kind: spof.KindNetwork, Function: "bond0", Required: 1, Provable: spof.Provable,
		Members: []spof.Member{{Name: "eth0", State: spof.MemberOK}, {Name: "eth1", State: spof.MemberOK}}}
	failed := spof.DrillOutcome{Group: bond.ID, Method: "bond-failover", Result: spof.ProofFailed, Reason: "eth1 cannot reach the gateway", At: now.Add(-time.Hour),
		FailedMembers: map[string]string{"eth1": "no ARP reply"}}
	var readable atomic.Bool
	readable.Store(true)
	entries := []Entry{
		{Collector: funcCollector{name: "bonding", fn: func(context.Context) (Result, error) { return Result{Groups: []spof.Group{bond}}, nil }}, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}},
		{Collector: funcCollector{name: "drills", fn: func(context.Context) (Result, error) {
			if !readable.Load() {
				return Result{}, errors.New("open the drill audit log: permission denied")
			}
			return Result{Drills: []spof.DrillOutcome{failed}}, nil
		}}, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}},
	}
	s := NewScheduler(SchedulerOptions{Entries: entries, Now: func() time.Time { return now }})
	check := func(stage string) *Snapshot {
		t.Helper()
		snap := s.CollectOnce(context.Background())
		g := findGroup(t, snap, bond.ID)
		if g.State != spof.StateRedundancyLost || g.Group.Members[1].State != spof.MemberFailed {
			t.Fatalf("%s: bond0 %s, eth1 %s; want redundancy_lost with eth1 failed", stage, g.State, g.Group.Members[1].State)
		}
		if _, ok := hasFinding(snap, spof.CodeDrillFailed, bond.ID); !ok {
			t.Fatalf("%s: no drill_failed", stage)
		}
		if p := g.Group.Proof; p == nil || p.Result != spof.ProofFailed || p.Method != "bond-failover" {
			t.Errorf("%s: proof = %+v, want the failed drill", stage, p)
		}
		return snap
	}
	check("readable")
	readable.Store(false)
	snap := check("unreadable")
	if _, ok := hasFinding(snap, spof.CodeCollectorUnavailable, spof.CollectorGroupID("drills")); !ok {
		t.Error("an unreadable drill log raised no collector_unavailable")
	}
}

// A passing drill is a proof like any other: it is the group's
// spofwatch_group_last_proven_timestamp_seconds, labelled with its method.
func TestDrillProofIsExported(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	bond := spof.Group{ID: "network/bond/bond0", Kind: spof.KindNetwork, Function: "bond0", Required: 1, Provable: spof.Provable,
		Members: []spof.Member{{Name: "eth0", State: spof.MemberOK}, {Name: "eth1", State: spof.MemberOK}}}
	passed := spof.DrillOutcome{Group: bond.ID, Method: "bond-failover", Result: spof.ProofPassed, At: now.Add(-time.Minute)}
	entries := []Entry{
		{Collector: funcCollector{name: "bonding", fn: func(context.Context) (Result, error) { return Result{Groups: []spof.Group{bond}}, nil }}, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}},
		{Collector: funcCollector{name: "drills", fn: func(context.Context) (Result, error) { return Result{Drills: []spof.DrillOutcome{passed}}, nil }}, Schedule: Schedule{Interval: time.Hour, Timeout: time.Second}},
	}
	s := NewScheduler(SchedulerOptions{Entries: entries, Now: func() time.Time { return now }})
	s.CollectOnce(context.Background())
	mfs, err := NewExporter(s, nil).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "spofwatch_group_last_proven_timestamp_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] == bond.ID && labels["method"] == "bond-failover" && m.GetGauge().GetValue() == float64(passed.At.Unix()) {
				return
			}
		}
	}
	t.Fatal("no spofwatch_group_last_proven_timestamp_seconds for the passing drill")
}
