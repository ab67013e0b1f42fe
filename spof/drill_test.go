package spof

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var drillNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// activeBackup is a bond with one active and one backup slave, as the
// bonding collector reports it (provable: it has a spare slave).
func activeBackup(proof *Proof) Group {
	return Group{ID: "network/bond/bond0", Kind: KindNetwork, Function: "bond bond0 (active-backup)", Required: 1, Provable: Provable, Proof: proof,
		Members: []Member{{Name: "eth0", State: MemberOK}, {Name: "eth1", State: MemberOK}}}
}

func drillAt(res ProofResult, minutes int, failed map[string]string) DrillOutcome {
	return DrillOutcome{Group: "network/bond/bond0", Method: "bond-failover", Result: res, Reason: "eth1 cannot reach gateway 10.9.0.1",
		At: drillNow.Add(time.Duration(minutes) * time.Minute), FailedMembers: failed}
}

func TestDrillOutcomes(t *testing.T) {
	md := &Proof{At: drillNow.Add(-time.Hour), Method: "md check", Result: ProofPassed}
	newer := &Proof{At: drillNow.Add(time.Hour), Method: "source", Result: ProofPassed}
	eth1 := map[string]string{"eth1": "no ARP reply from 10.9.0.1 on eth1"}
	tests := []struct {
		name       string
		group      Group
		drills     []DrillOutcome
		acc        []Acceptance
		wantState  GroupState
		wantEth1   MemberState
		wantCodes  []Code // among drill_failed, redundancy_lost, redundancy_degraded
		wantProof  string // method/result of the group's proof
		wantDrill  string // LastDrill result, "" for nil
		wantDetail string // in eth1's detail
	}{
		{"no drill", activeBackup(nil), nil, nil, StateRedundant, MemberOK, nil, "", "", ""},
		{"passed drill is the proof", activeBackup(md), []DrillOutcome{drillAt(ProofPassed, 0, nil)}, nil, StateRedundant, MemberOK, nil, "bond-failover/passed", "passed", ""},
		{"older drill does not replace a newer source proof", activeBackup(newer), []DrillOutcome{drillAt(ProofPassed, 0, nil)}, nil, StateRedundant, MemberOK, nil, "source/passed", "passed", ""},
		{"failed drill fails its member: redundancy lost", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 0, eth1)}, nil,
			StateRedundancyLost, MemberFailed, []Code{CodeDrillFailed, CodeRedundancyLost}, "bond-failover/failed", "failed", "no ARP reply from 10.9.0.1 on eth1"},
		{"failed then passed clears", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 0, eth1), drillAt(ProofPassed, 10, nil)}, nil,
			StateRedundant, MemberOK, nil, "bond-failover/passed", "passed", ""},
		{"passed then failed stands failed, whatever the order given", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 10, eth1), drillAt(ProofPassed, 0, nil)}, nil,
			StateRedundancyLost, MemberFailed, []Code{CodeDrillFailed, CodeRedundancyLost}, "bond-failover/failed", "failed", "failed its bond-failover drill on 2026-12-04"},
		{"failed member that no longer exists is ignored", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 0, map[string]string{"eth9": "gone"})}, nil,
			StateRedundant, MemberOK, []Code{CodeDrillFailed}, "bond-failover/failed", "failed", ""},
		{"failed drill without members: finding only", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 0, nil)}, nil,
			StateRedundant, MemberOK, []Code{CodeDrillFailed}, "bond-failover/failed", "failed", ""},
		{"member reason empty: the drill's reason", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 0, map[string]string{"eth1": ""})}, nil,
			StateRedundancyLost, MemberFailed, []Code{CodeDrillFailed, CodeRedundancyLost}, "bond-failover/failed", "failed", "eth1 cannot reach gateway 10.9.0.1"},
		{"drill of another group changes nothing", activeBackup(nil), []DrillOutcome{{Group: "network/bond/bond1", Method: "bond-failover", Result: ProofFailed, At: drillNow, FailedMembers: eth1}}, nil,
			StateRedundant, MemberOK, nil, "", "", ""},
		{"accepted drill_failed: accepted, the count still says redundancy lost", activeBackup(nil), []DrillOutcome{drillAt(ProofFailed, 0, eth1)},
			[]Acceptance{{ID: "a", Code: CodeDrillFailed, Group: "network/bond/*", Reason: "VLAN fix scheduled", By: "ops", Until: drillNow.Add(24 * time.Hour)}},
			StateRedundancyLost, MemberFailed, []Code{CodeDrillFailed, CodeRedundancyLost}, "bond-failover/failed", "failed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before []MemberState
			for _, m := range tc.group.Members {
				before = append(before, m.State)
			}
			r := Evaluate(Input{Groups: []Group{tc.group}, Drills: tc.drills, Acceptances: tc.acc, Now: drillNow})
			if tc.group.Members[0].State != before[0] || tc.group.Members[1].State != before[1] {
				t.Fatal("Evaluate changed its input's members")
			}
			gr := r.Groups[0]
			if gr.State != tc.wantState {
				t.Errorf("state = %s, want %s", gr.State, tc.wantState)
			}
			eth1 := gr.Group.Members[1]
			if eth1.State != tc.wantEth1 || !strings.Contains(eth1.Detail, tc.wantDetail) {
				t.Errorf("eth1 = %s (%q), want %s with %q", eth1.State, eth1.Detail, tc.wantEth1, tc.wantDetail)
			}
			var codes []Code
			for _, f := range r.Findings {
				if f.Code == CodeDrillFailed || f.Code == CodeRedundancyLost || f.Code == CodeRedundancyDegraded {
					codes = append(codes, f.Code)
				}
			}
			slices.Sort(codes)
			want := slices.Clone(tc.wantCodes)
			slices.Sort(want)
			if !slices.Equal(codes, want) {
				t.Errorf("codes = %v, want %v (%+v)", codes, want, r.Findings)
			}
			proof := ""
			if p := gr.Group.Proof; p != nil {
				proof = p.Method + "/" + string(p.Result)
			}
			if proof != tc.wantProof {
				t.Errorf("proof = %q, want %q", proof, tc.wantProof)
			}
			drill := ""
			if gr.LastDrill != nil {
				drill = string(gr.LastDrill.Result)
			}
			if drill != tc.wantDrill {
				t.Errorf("last drill = %q, want %q", drill, tc.wantDrill)
			}
			for _, f := range r.Findings {
				switch f.Code {
				case CodeDrillFailed:
					if f.Severity != SeverityWarning || !strings.Contains(f.Summary, "bond-failover") || !strings.Contains(f.Summary, "cannot reach gateway") {
						t.Errorf("drill_failed = %+v: want a warning naming the method and reason", f)
					}
					if (f.Accepted != nil) != (len(tc.acc) > 0) {
						t.Errorf("drill_failed accepted = %+v with acceptances %v", f.Accepted, tc.acc)
					}
				case CodeRedundancyLost:
					if f.Accepted != nil {
						t.Error("the drill_failed acceptance covered redundancy_lost")
					}
				}
			}
		})
	}
}

// A failed drill is a failed proof: redundancy_untested ages from it like
// from any proof, and a later passing drill resets the clock.
func TestDrillProofAndUntested(t *testing.T) {
	day := 24 * time.Hour
	policy := ProofPolicy{MaxAge: 7 * day}
	old := &Proof{At: drillNow.Add(-30 * day), Method: "md check", Result: ProofPassed}
	untested := func(drills ...DrillOutcome) bool {
		r := Evaluate(Input{Groups: []Group{activeBackup(old)}, Drills: drills, ProofPolicy: policy, Now: drillNow})
		for _, f := range r.Findings {
			if f.Code == CodeRedundancyUntested {
				return true
			}
		}
		return false
	}
	if !untested() {
		t.Fatal("no redundancy_untested with a 30-day-old proof and a 7-day policy")
	}
	if untested(drillAt(ProofPassed, -60, nil)) {
		t.Error("redundancy_untested after a drill passed an hour ago")
	}
	if !untested(drillAt(ProofPassed, -int(8*day/time.Minute), nil)) {
		t.Error("no redundancy_untested after a drill that passed 8 days ago")
	}
}
