package spof

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func m(name string, st MemberState, domains ...string) Member {
	mem := Member{Name: name, State: st}
	if len(domains) > 0 {
		mem.Domains = map[string]string{}
		for i := 0; i+1 < len(domains); i += 2 {
			mem.Domains[domains[i]] = domains[i+1]
		}
	}
	return mem
}

type wantFinding struct {
	code     Code
	severity Severity
	member   string
	contains string // a substring the summary must have
}

func TestEvaluateGroups(t *testing.T) {
	psu := func(members ...Member) Group {
		return Group{ID: "power/ipmi/psu", Kind: KindPower, Function: "power supplies", Required: 1, Members: members}
	}
	tests := []struct {
		name  string
		group Group
		state GroupState
		want  []wantFinding
	}{
		{"redundant pair", psu(m("PSU1", MemberOK), m("PSU2", MemberOK)), StateRedundant, nil},
		{"redundancy lost names the failure and what is left",
			psu(m("PSU1", MemberOK), m("PSU2", MemberFailed)), StateRedundancyLost,
			[]wantFinding{{CodeRedundancyLost, SeverityCritical, "", "PSU2 failed, runs on PSU1 alone"}}},
		{"missing member counts as a failure",
			psu(m("PSU1", MemberOK), m("PSU2", MemberMissing)), StateRedundancyLost,
			[]wantFinding{{CodeRedundancyLost, SeverityCritical, "", "PSU2 missing"}}},
		{"group down",
			psu(m("PSU1", MemberFailed), m("PSU2", MemberFailed)), StateDown,
			[]wantFinding{{CodeGroupDown, SeverityCritical, "", "0 working of 1 required"}}},
		{"degraded with margin left",
			Group{ID: "storage/md/md0", Function: "md0 (raid6)", Required: 2, Members: []Member{m("a", MemberOK), m("b", MemberOK), m("c", MemberOK), m("d", MemberFailed)}},
			StateDegraded, []wantFinding{{CodeRedundancyDegraded, SeverityWarning, "", "1 more may fail"}}},
		{"no redundancy by design",
			Group{ID: "storage/md/md1", Function: "md1 (raid0)", Required: 2, Members: []Member{m("a", MemberOK), m("b", MemberOK)}},
			StateNoRedundancy, []wantFinding{{CodeNoRedundancy, SeverityWarning, "", "needs all of a, b"}}},
		{"single member",
			Group{ID: "storage/mount/root", Function: "root filesystem /", Required: 1, Members: []Member{m("vda", MemberOK)}},
			StateNoRedundancy, []wantFinding{{CodeNoRedundancy, SeverityWarning, "", "runs on vda alone"}}},
		{"degraded member works but is reported",
			psu(m("PSU1", MemberOK), Member{Name: "PSU2", State: MemberDegraded, Detail: "predictive failure"}), StateRedundant,
			[]wantFinding{{CodeMemberDegraded, SeverityWarning, "PSU2", "predictive failure"}}},
		{"rebuilding member does not count as working",
			Group{ID: "storage/md/md0", Function: "md0 (raid1)", Required: 1, Members: []Member{m("sda1", MemberOK), {Name: "sdb1", State: MemberRebuilding, Detail: "recovery 42%"}}},
			StateRedundancyLost, []wantFinding{
				{CodeRedundancyLost, SeverityCritical, "", "sdb1 rebuilding"},
				{CodeRebuildInProgress, SeverityInfo, "sdb1", "recovery 42%"},
			}},
		{"unknown reason makes the group unknown, never healthy",
			Group{ID: "power/ipmi/psu", Function: "power supplies", Required: 1, UnknownReason: "BMC timed out", Members: []Member{m("PSU1", MemberOK), m("PSU2", MemberOK)}},
			StateUnknown, []wantFinding{{CodeCollectorUnavailable, SeverityWarning, "", "BMC timed out"}}},
		{"no members and nothing required is unknown",
			Group{ID: "x/y/z"}, StateUnknown, []wantFinding{{CodeCollectorUnavailable, SeverityWarning, "", "no members reported"}}},
		{"an unknown member that decides the verdict makes the group unknown",
			psu(m("PSU1", MemberOK), Member{Name: "PSU2", State: MemberUnknown, Detail: "sensor reading not available"}), StateUnknown,
			[]wantFinding{{CodeCollectorUnavailable, SeverityWarning, "PSU2", "sensor reading not available"}}},
		{"an unknown member leaves known failures as a lower bound",
			psu(m("PSU1", MemberFailed), m("PSU2", MemberFailed), m("PSU3", MemberUnknown)), StateUnknown,
			[]wantFinding{
				{CodeCollectorUnavailable, SeverityWarning, "PSU3", ""},
				{CodeRedundancyLost, SeverityCritical, "", "even if the unreadable members work: PSU1 failed, PSU2 failed"},
			}},
		{"down reason wins over members",
			Group{ID: "storage/md/md9", Function: "md9 (raid1)", Required: 1, DownReason: "array md9 is inactive", Members: []Member{m("sda1", MemberOK)}},
			StateDown, []wantFinding{{CodeGroupDown, SeverityCritical, "", "array md9 is inactive"}}},
		{"shared disk domain",
			Group{ID: "storage/md/md0", Function: "md0 (raid1)", Required: 1, Members: []Member{m("sda1", MemberOK, DomainDisk, "sda"), m("sda2", MemberOK, DomainDisk, "sda")}},
			StateRedundant, []wantFinding{{CodeSharedFailureDomain, SeverityWarning, "disk=sda", "disk sda carries sda1, sda2"}}},
		{"shared NIC card",
			Group{ID: "network/bond/bond0", Required: 1, Members: []Member{m("ens1f0", MemberOK, DomainNICCard, "0000:3b:00"), m("ens1f1", MemberOK, DomainNICCard, "0000:3b:00")}},
			StateRedundant, []wantFinding{{CodeSharedFailureDomain, SeverityWarning, "nic_card=0000:3b:00", "nic_card 0000:3b:00"}}},
		{"one UPS feeding both PSUs",
			psu(m("PSU1", MemberOK, DomainFeed, "ups-a"), m("PSU2", MemberOK, DomainFeed, "ups-a")), StateRedundant,
			[]wantFinding{{CodeSharedFailureDomain, SeverityWarning, "feed=ups-a", "feed ups-a"}}},
		{"PSUs split across feeds: no finding",
			psu(m("PSU1", MemberOK, DomainFeed, "ups-a"), m("PSU2", MemberOK, DomainFeed, "ups-b")), StateRedundant, nil},
		{"several domain kinds: only the shared one is reported",
			Group{ID: "storage/md/md0", Required: 1, Members: []Member{
				m("sda1", MemberOK, DomainDisk, "sda", DomainController, "0000:00:17.0"),
				m("sdb1", MemberOK, DomainDisk, "sdb", DomainController, "0000:00:17.0"),
			}},
			StateRedundant, []wantFinding{{CodeSharedFailureDomain, SeverityInfo, "controller=0000:00:17.0", "controller 0000:00:17.0"}}},
		{"raid6 tolerates one shared disk holding one leg",
			Group{ID: "storage/md/md2", Required: 2, Members: []Member{
				m("a", MemberOK, DomainDisk, "sda"), m("b", MemberOK, DomainDisk, "sda"), m("c", MemberOK, DomainDisk, "sdc"), m("d", MemberOK, DomainDisk, "sdd"),
			}},
			StateRedundant, nil},
		{"domain rule is silent once margin is already zero",
			Group{ID: "storage/md/md0", Required: 1, Members: []Member{m("sda1", MemberOK, DomainDisk, "sda"), m("sdb1", MemberFailed, DomainDisk, "sdb")}},
			StateRedundancyLost, []wantFinding{{CodeRedundancyLost, SeverityCritical, "", ""}}},
		{"conditions become findings with their severity",
			Group{ID: "network/bond/bond0", Required: 1, Members: []Member{m("eth0", MemberOK), m("eth1", MemberOK)}, Conditions: []Condition{
				{Code: CodeFailureUndetectable, Summary: "bond0 has miimon=0 and no ARP monitor"},
				{Code: CodeNotice, Severity: SeverityInfo, Member: "eth1", Summary: "active slave eth1 is not the primary eth0"},
			}},
			StateRedundant, []wantFinding{
				{CodeFailureUndetectable, SeverityWarning, "", "miimon=0"},
				{CodeNotice, SeverityInfo, "eth1", "not the primary"},
			}},
		{"UPS conditions",
			Group{ID: "ups/nut/ups-a", Kind: KindUPS, Required: 1, Members: []Member{m("ups-a", MemberOK)}, Conditions: []Condition{
				{Code: CodeUPSOnBattery, Summary: "ups-a on battery"},
				{Code: CodeUPSLowBattery, Summary: "ups-a low battery"},
				{Code: CodeUPSBypass, Summary: "ups-a bypass"},
				{Code: CodeUPSOverload, Summary: "ups-a overload"},
			}},
			StateNoRedundancy, []wantFinding{
				{CodeNoRedundancy, SeverityWarning, "", ""},
				{CodeUPSOnBattery, SeverityCritical, "", ""},
				{CodeUPSLowBattery, SeverityCritical, "", ""},
				{CodeUPSBypass, SeverityWarning, "", ""},
				{CodeUPSOverload, SeverityWarning, "", ""},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Evaluate(Input{Groups: []Group{tt.group}})
			if got := res.Groups[0].State; got != tt.state {
				t.Errorf("state = %s, want %s", got, tt.state)
			}
			if len(res.Findings) != len(tt.want) {
				t.Fatalf("findings = %+v, want %d", res.Findings, len(tt.want))
			}
			for _, w := range tt.want {
				found := false
				for _, f := range res.Findings {
					if f.Code == w.code && f.Severity == w.severity && f.Member == w.member && strings.Contains(f.Summary, w.contains) && f.Group == tt.group.ID {
						found = true
					}
				}
				if !found {
					t.Errorf("missing %+v in %+v", w, res.Findings)
				}
			}
		})
	}
}

func TestEvaluateCollectorsAndHost(t *testing.T) {
	res := Evaluate(Input{
		Collectors:     []CollectorStatus{{Name: "ipmi", OK: false, Error: "dial udp 127.0.0.1:623: timeout"}, {Name: "mounts", OK: true}},
		HostConditions: []Condition{{Code: CodeVirtualMachine, Summary: "this host is virtualised (kvm)"}},
	})
	if len(res.Findings) != 2 {
		t.Fatalf("findings = %+v", res.Findings)
	}
	f := res.Findings[0]
	if f.Code != CodeCollectorUnavailable || f.Group != "collector/ipmi" || !strings.Contains(f.Summary, "timeout") || f.Severity != SeverityWarning {
		t.Errorf("collector finding = %+v", f)
	}
	if res.Findings[1].Code != CodeVirtualMachine || res.Findings[1].Severity != SeverityInfo {
		t.Errorf("host finding = %+v", res.Findings[1])
	}
}

func TestEvaluateSinceCarriesOver(t *testing.T) {
	g := Group{ID: "power/ipmi/psu", Required: 1, Members: []Member{m("PSU1", MemberOK), m("PSU2", MemberFailed)}}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	first := Evaluate(Input{Groups: []Group{g}, Now: t0})
	if !first.Findings[0].Since.Equal(t0) {
		t.Fatalf("since = %v, want %v", first.Findings[0].Since, t0)
	}
	second := Evaluate(Input{Groups: []Group{g}, Now: t0.Add(time.Hour), Previous: first.Findings})
	if !second.Findings[0].Since.Equal(t0) {
		t.Errorf("since after an hour = %v, want the first sighting %v", second.Findings[0].Since, t0)
	}
	g.Members[1].State = MemberOK
	cleared := Evaluate(Input{Groups: []Group{g}, Now: t0.Add(2 * time.Hour), Previous: second.Findings})
	if len(cleared.Findings) != 0 {
		t.Fatalf("findings after recovery = %+v", cleared.Findings)
	}
	g.Members[1].State = MemberFailed
	again := Evaluate(Input{Groups: []Group{g}, Now: t0.Add(3 * time.Hour), Previous: cleared.Findings})
	if !again.Findings[0].Since.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("a finding that returns starts a new since, got %v", again.Findings[0].Since)
	}
}

func TestEvaluateOrderIsDeterministic(t *testing.T) {
	groups := []Group{
		{ID: "b", Required: 1, Members: []Member{m("x", MemberOK)}},
		{ID: "a", Required: 1, Members: []Member{m("x", MemberOK), m("y", MemberFailed)}},
		{ID: "c", Required: 1, Members: []Member{m("x", MemberFailed)}},
	}
	res := Evaluate(Input{Groups: groups})
	var ids, order []string
	for _, g := range res.Groups {
		ids = append(ids, g.Group.ID)
	}
	for _, f := range res.Findings {
		order = append(order, f.Severity.String()+":"+f.Group)
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Errorf("groups = %v", ids)
	}
	if !slices.Equal(order, []string{"critical:a", "critical:c", "warning:b"}) {
		t.Errorf("finding order = %v", order)
	}
	again := Evaluate(Input{Groups: groups})
	if fmt.Sprint(again) != fmt.Sprint(res) {
		t.Error("Evaluate is not deterministic")
	}
}

func TestCodes(t *testing.T) {
	if got := CodeRedundancyLost.AlertName(); got != "SpofRedundancyLost" {
		t.Errorf("AlertName = %s", got)
	}
	if got := CodeUPSOnBattery.AlertName(); got != "SpofUpsOnBattery" {
		t.Errorf("AlertName = %s", got)
	}
	seen := map[Code]bool{}
	for _, c := range Codes {
		if seen[c.Code] || c.Severity == 0 || c.Meaning == "" {
			t.Errorf("code table entry %+v is duplicate or incomplete", c)
		}
		seen[c.Code] = true
	}
	for _, s := range Severities {
		back, err := ParseSeverity(s.String())
		if err != nil || back != s {
			t.Errorf("severity %v round trip: %v %v", s, back, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity accepted fatal")
	}
}

// BenchmarkEvaluate1000Groups measures one evaluation of a large host's
// worth of groups (1,000), a mix of states and domains.
func BenchmarkEvaluate1000Groups(b *testing.B) {
	groups := make([]Group, 1000)
	states := []MemberState{MemberOK, MemberOK, MemberOK, MemberFailed, MemberDegraded, MemberRebuilding}
	for i := range groups {
		g := Group{ID: fmt.Sprintf("storage/md/md%d", i), Kind: KindStorage, Function: fmt.Sprintf("md%d (raid6)", i), Required: 4}
		for j := 0; j < 6; j++ {
			g.Members = append(g.Members, m(fmt.Sprintf("sd%c%d", 'a'+j, i), states[(i+j)%len(states)], DomainDisk, fmt.Sprintf("sd%c", 'a'+j), DomainController, fmt.Sprintf("c%d", j%2)))
		}
		groups[i] = g
	}
	prev := Evaluate(Input{Groups: groups}).Findings
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(Input{Groups: groups, Previous: prev, Now: now})
	}
}

func TestSourceVerdictWorseThanCountWins(t *testing.T) {
	g := Group{ID: "power/ipmi/psu", Function: "power supplies", Required: 1,
		Members:    []Member{m("PSU1", MemberOK), m("PSU2", MemberOK)},
		Conditions: []Condition{{Code: CodeRedundancyLost, Summary: "BMC sensor PS Redundancy says redundancy lost; PSU count says 2 of 2 working"}}}
	res := Evaluate(Input{Groups: []Group{g}})
	if res.Groups[0].State != StateRedundancyLost {
		t.Errorf("state = %s, want redundancy_lost from the BMC", res.Groups[0].State)
	}
	if len(res.Findings) != 1 || !strings.Contains(res.Findings[0].Summary, "PS Redundancy") || res.Findings[0].Severity != SeverityCritical {
		t.Errorf("findings = %+v", res.Findings)
	}
	// A better source verdict never hides a worse count.
	g.Members[1].State = MemberFailed
	g.Conditions = []Condition{{Code: CodeRedundancyDegraded, Summary: "BMC says degraded"}}
	if st := Evaluate(Input{Groups: []Group{g}}).Groups[0].State; st != StateRedundancyLost {
		t.Errorf("state = %s, want the count's redundancy_lost", st)
	}
	// A member-level condition does not change the group state.
	g.Members[1].State = MemberOK
	g.Conditions = []Condition{{Code: CodeGroupDown, Member: "PSU2", Summary: "x"}}
	if st := Evaluate(Input{Groups: []Group{g}}).Groups[0].State; st != StateRedundant {
		t.Errorf("state = %s, want redundant", st)
	}
}

func TestUnknownMemberKeepsKnownFailuresVisible(t *testing.T) {
	g := Group{ID: "storage/md/md5", Function: "md5 (raid5)", Required: 2,
		Members: []Member{m("a", MemberOK), m("b", MemberFailed), {Name: "c", State: MemberUnknown, Detail: "state unreadable"}}}
	res := Evaluate(Input{Groups: []Group{g}})
	if res.Groups[0].State != StateUnknown {
		t.Errorf("state = %s, want unknown", res.Groups[0].State)
	}
	var lost *Finding
	for i, f := range res.Findings {
		if f.Code == CodeRedundancyLost {
			lost = &res.Findings[i]
		}
	}
	if lost == nil || lost.Severity != SeverityCritical || !strings.Contains(lost.Summary, "b failed") {
		t.Errorf("the known failure must stay visible as a critical lower bound: %+v", res.Findings)
	}
}
