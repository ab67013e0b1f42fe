package spof

import (
	"fmt"
	"testing"
)

func TestStateOrder(t *testing.T) {
	// Best to worst: by margin first, then by whether something failed.
	order := []GroupState{StateRedundant, StateDegraded, StateNoRedundancy, StateRedundancyLost, StateDown}
	for i, a := range order {
		if got := StateRank(a); got != i {
			t.Errorf("StateRank(%s) = %d, want %d", a, got, i)
		}
		for j, b := range order {
			want := order[max(i, j)]
			if got := Worse(a, b); got != want {
				t.Errorf("Worse(%s, %s) = %s, want %s", a, b, got, want)
			}
		}
		if got := Worse(a, StateUnknown); got != StateUnknown {
			t.Errorf("Worse(%s, unknown) = %s, want unknown", a, got)
		}
		if got := Worse(StateUnknown, a); got != StateUnknown {
			t.Errorf("Worse(unknown, %s) = %s, want unknown", a, got)
		}
	}
	if StateRank(StateUnknown) != -1 || StateRank("bogus") != -1 {
		t.Error("unknown and non-states must be outside the order")
	}
}

func TestCountVerdict(t *testing.T) {
	tests := []struct {
		members  []Member
		required int
		state    GroupState
		working  int
	}{
		{[]Member{m("a", MemberOK), m("b", MemberOK)}, 1, StateRedundant, 2},
		{[]Member{m("a", MemberOK), m("b", MemberDegraded), m("c", MemberFailed)}, 1, StateDegraded, 2},
		{[]Member{m("a", MemberOK), m("b", MemberOK)}, 2, StateNoRedundancy, 2},
		{[]Member{m("a", MemberOK), m("b", MemberMissing)}, 1, StateRedundancyLost, 1},
		{[]Member{m("a", MemberOK), m("b", MemberRebuilding)}, 2, StateDown, 1},
		{[]Member{m("a", MemberOK)}, 0, StateNoRedundancy, 1}, // required below 1 counts as 1
		{[]Member{m("a", MemberOK), m("b", MemberUnknown)}, 1, StateUnknown, 1},
		// An unknown member that cannot change the verdict does not hide it.
		{[]Member{m("a", MemberFailed), m("b", MemberUnknown)}, 2, StateDown, 0},
	}
	for _, tt := range tests {
		st, w := CountVerdict(tt.members, tt.required)
		if st != tt.state || w != tt.working {
			t.Errorf("CountVerdict(%v, %d) = %s, %d; want %s, %d", tt.members, tt.required, st, w, tt.state, tt.working)
		}
		// The count alone is what Evaluate reports for a group without
		// source verdicts.
		g := Group{ID: "x/y/z", Members: tt.members, Required: tt.required}
		if got := Evaluate(Input{Groups: []Group{g}}).Groups[0].State; got != tt.state {
			t.Errorf("Evaluate state %s, CountVerdict %s", got, tt.state)
		}
	}
}

// verdictCodes are the findings that state a group's verdict.
var verdictCodes = map[Code]GroupState{
	CodeGroupDown: StateDown, CodeRedundancyLost: StateRedundancyLost,
	CodeRedundancyDegraded: StateDegraded, CodeNoRedundancy: StateNoRedundancy,
}

// agreementCounts are member sets with each count verdict, including
// required == total, and one whose verdict depends on an unreadable member.
var agreementCounts = []struct {
	name     string
	state    GroupState
	members  []Member
	required int
}{
	{"redundant", StateRedundant, []Member{m("PSU1", MemberOK), m("PSU2", MemberOK)}, 1},
	{"degraded", StateDegraded, []Member{m("PSU1", MemberOK), m("PSU2", MemberOK), m("PSU3", MemberFailed)}, 1},
	{"no redundancy, required == total", StateNoRedundancy, []Member{m("PSU1", MemberOK), m("PSU2", MemberOK)}, 2},
	{"no redundancy, one member", StateNoRedundancy, []Member{m("PSU1", MemberOK)}, 1},
	{"redundancy lost", StateRedundancyLost, []Member{m("PSU1", MemberOK), m("PSU2", MemberFailed)}, 1},
	{"down, required == total", StateDown, []Member{m("PSU1", MemberOK), m("PSU2", MemberFailed)}, 2},
	{"unknown member decides", StateUnknown, []Member{m("PSU1", MemberOK), m("PSU2", MemberUnknown)}, 1},
}

// agreementSources are source verdicts in both forms a condition carries
// them: by State (any verdict, redundant included) and by code.
func agreementSources() []Condition {
	cs := []Condition{{}} // no source verdict
	for _, s := range stateOrder {
		cs = append(cs, Condition{State: s, Summary: "BMC sensor says " + string(s)})
	}
	for code := range verdictCodes {
		cs = append(cs, Condition{Code: code, Summary: "controller says " + string(code)})
	}
	return cs
}

// TestVerdictFindingAgreesWithState: for every count verdict and every
// source verdict, the group's state is the worse of the two, and the one
// finding that states a verdict is the state's. A source that is outvoted
// shows as an info notice, never under a verdict code.
func TestVerdictFindingAgreesWithState(t *testing.T) {
	for _, c := range agreementCounts {
		for _, src := range agreementSources() {
			g := Group{ID: "power/ipmi/psu", Function: "power supplies", Members: c.members, Required: c.required}
			if src.Summary != "" {
				g.Conditions = []Condition{src}
			}
			srcState, hasSrc := conditionVerdict(src)
			t.Run(fmt.Sprintf("count %s, source %s%s", c.name, srcState, src.Code), func(t *testing.T) {
				res := Evaluate(Input{Groups: []Group{g}})
				got := res.Groups[0].State
				want := c.state
				if hasSrc && c.state != StateUnknown {
					want = Worse(c.state, srcState)
				}
				if hasSrc && c.state == StateUnknown && StateRank(srcState) >= StateRank(StateRedundancyLost) {
					// PSU2 unknown: counted failed it is redundancy lost,
					// counted working redundant. A source at least as bad
					// as the worst case decides whatever PSU2 is.
					want = srcState
				}
				if got != want {
					t.Fatalf("state %s, want %s\n%+v", got, want, res.Findings)
				}
				var verdicts []Finding
				for _, f := range res.Findings {
					if _, ok := verdictCodes[f.Code]; ok && f.Member == "" {
						verdicts = append(verdicts, f)
					}
					if f.Code == CodeNotice && (!hasSrc || f.Summary != src.Summary) {
						t.Errorf("notice not from the source: %+v", f)
					}
				}
				switch {
				case got == StateUnknown:
					// A lower bound at most, never a verdict worse than
					// the worst case.
					if len(verdicts) > 1 {
						t.Errorf("unknown state with %d verdict findings: %+v", len(verdicts), verdicts)
					}
					for _, f := range verdicts {
						if StateRank(verdictCodes[f.Code]) > StateRank(StateRedundancyLost) {
							t.Errorf("lower bound %s is worse than the worst case", f.Code)
						}
					}
				case got == StateRedundant:
					if len(verdicts) != 0 {
						t.Errorf("redundant with verdict findings %+v", verdicts)
					}
				default:
					if len(verdicts) != 1 || verdictCodes[verdicts[0].Code] != got {
						t.Errorf("state %s, verdict findings %+v", got, verdicts)
					}
				}
				// The source's word is the finding exactly when it decided
				// the state (strictly worse than the count).
				if hasSrc && c.state != StateUnknown && got != StateRedundant {
					fromSource := len(verdicts) == 1 && verdicts[0].Summary == src.Summary
					if decided := StateRank(srcState) > StateRank(c.state); fromSource != decided {
						t.Errorf("source decided %v, its summary is the finding %v: %+v", decided, fromSource, verdicts)
					}
				}
			})
		}
	}
}

func TestMemberlessGroupTakesItsSourceVerdict(t *testing.T) {
	for _, s := range stateOrder {
		g := Group{ID: "cooling/ipmi/fans", Function: "fans",
			Conditions: []Condition{{State: s, Summary: `BMC sensor "Fan Redundancy" says ` + string(s)}}}
		res := Evaluate(Input{Groups: []Group{g}})
		if got := res.Groups[0].State; got != s {
			t.Errorf("state %s, want the sensor's %s", got, s)
		}
		want := 1
		if s == StateRedundant {
			want = 0
		}
		if len(res.Findings) != want || want == 1 && (verdictCodes[res.Findings[0].Code] != s || res.Findings[0].Group != g.ID) {
			t.Errorf("sensor says %s: findings %+v", s, res.Findings)
		}
	}
	// Without any verdict a member-less group is unknown, never healthy.
	res := Evaluate(Input{Groups: []Group{{ID: "cooling/ipmi/fans", Conditions: []Condition{{Code: CodeNotice, Summary: "x"}}}}})
	if res.Groups[0].State != StateUnknown {
		t.Errorf("member-less group without a verdict: %s", res.Groups[0].State)
	}
}

// TestHardwareFindingsHaveAGroup guards the contract that every finding
// about hardware names its group: only host-wide codes may stand without.
func TestHardwareFindingsHaveAGroup(t *testing.T) {
	var groups []Group
	for i, c := range agreementCounts {
		for j, src := range agreementSources() {
			g := Group{ID: fmt.Sprintf("power/test/g%d-%d", i, j), Members: c.members, Required: c.required}
			if src.Summary != "" {
				g.Conditions = []Condition{src, {Code: CodeMemberDegraded, Member: "PSU1", Summary: "member condition"}}
			}
			groups = append(groups, g)
		}
	}
	groups = append(groups,
		Group{ID: "storage/md/md0", Required: 1, Members: []Member{m("sda1", MemberOK, DomainDisk, "sda"), m("sda2", MemberOK, DomainDisk, "sda"), {Name: "sdb1", State: MemberRebuilding}}},
		Group{ID: "storage/md/md9", Required: 1, DownReason: "inactive", Members: []Member{m("sda1", MemberOK)},
			Conditions: []Condition{{Code: CodeRedundancyDegraded, Summary: "controller says degraded"}}},
		Group{ID: "cooling/ipmi/fans", Conditions: []Condition{{State: StateRedundancyLost, Summary: "sensor"}, {Code: CodeChassisCoolingFault, Summary: "chassis"}}},
		Group{ID: "ups/nut/ups-a", Kind: KindUPS, Required: 1, Members: []Member{m("ups-a", MemberOK)},
			Conditions: []Condition{{Code: CodeUPSOnBattery, Summary: "on battery"}, {Code: CodeGroupDown, Summary: "FSD"}}},
		Group{ID: "power/ipmi/psu", UnknownReason: "BMC timed out"},
	)
	ids := map[string]bool{}
	for _, g := range groups {
		ids[g.ID] = true
	}
	res := Evaluate(Input{Groups: groups,
		Collectors:     []CollectorStatus{{Name: "ipmi", Error: "timeout"}},
		HostConditions: []Condition{{Code: CodeVirtualMachine, Summary: "kvm"}, {Code: CodeNotice, Summary: "fact"}}})
	hardware := 0
	for _, f := range res.Findings {
		if HostWide(f.Code) {
			continue
		}
		hardware++
		if f.Group == "" || !ids[f.Group] {
			t.Errorf("finding about hardware without its group: %+v", f)
		}
	}
	if hardware == 0 {
		t.Fatal("no hardware findings: the guard checked nothing")
	}
}
