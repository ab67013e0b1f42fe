package collectors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	dto "github.com/prometheus/client_model/go"

	"github.com/spofwatch/spofwatch/bonding"
	"github.com/spofwatch/spofwatch/internal/ttar"
	"github.com/spofwatch/spofwatch/spof"
)

func bondingTree(t *testing.T, name string) (sys, proc string) {
	t.Helper()
	dir := ttar.Extract(t, filepath.Join("testdata", "bonding", name+".ttar"))
	return filepath.Join(dir, "sys"), filepath.Join(dir, "proc")
}

func collectBonding(t *testing.T, tree string) (agent.Result, spof.Result) {
	t.Helper()
	sys, proc := bondingTree(t, tree)
	res, err := NewBonding(BondingOptions{SysPath: sys, ProcPath: proc}).Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return res, spof.Evaluate(spof.Input{Groups: res.Groups, Now: time.Unix(0, 0)})
}

func findingCodes(r spof.Result, group string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Group == group {
			out = append(out, string(f.Code)+"/"+f.Severity.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestBondingVerdicts(t *testing.T) {
	tests := []struct {
		tree, group string
		state       spof.GroupState
		function    string
		required    int
		codes       []string
		// member -> "state: detail substring"
		members map[string]string
		// finding summary substrings that must appear
		summaries []string
	}{
		{
			tree: "active-backup", group: "network/bond/bond0", state: spof.StateRedundant,
			function: "bond0 (active-backup)", required: 1,
		},
		{
			tree: "active-backup-failover", group: "network/bond/bond0", state: spof.StateRedundancyLost,
			function: "bond0 (active-backup)", required: 1,
			codes:     []string{"notice/info", "redundancy_lost/critical"},
			members:   map[string]string{"eno1": "failed: link down, 1 link failures so far", "ens2f0": "ok: "},
			summaries: []string{"runs on ens2f0, not on its primary eno1", "redundancy lost: eno1 failed"},
		},
		{
			tree: "one-card", group: "network/bond/bond0", state: spof.StateRedundant, required: 1,
			function:  "bond0 (active-backup)",
			codes:     []string{"shared_failure_domain/warning"},
			summaries: []string{"nic_card 0000:3b:00 carries eno1, eno2"},
		},
		{
			tree: "vfs-one-port", group: "network/bond/bond0", state: spof.StateRedundant, required: 1,
			function:  "bond0 (active-backup)",
			codes:     []string{"shared_failure_domain/warning"},
			summaries: []string{"nic_card 0000:3b:00 carries enp59s2, enp59s10"},
		},
		{
			tree: "miimon0", group: "network/bond/bond0", state: spof.StateRedundant, required: 1,
			function:  "bond0 (active-backup)",
			codes:     []string{"failure_undetectable/warning"},
			summaries: []string{"no link monitoring (miimon=0, arp_interval=0)"},
		},
		{
			tree: "arp-no-target", group: "network/bond/bond0", state: spof.StateRedundant, required: 1,
			function:  "bond0 (active-backup)",
			codes:     []string{"failure_undetectable/warning"},
			summaries: []string{"no arp_ip_target"},
		},
		{
			tree: "single-slave", group: "network/bond/bond0", state: spof.StateNoRedundancy, required: 1,
			function: "bond0 (active-backup)",
			codes:    []string{"no_redundancy/warning"},
		},
		{
			tree: "split-aggregator", group: "network/bond/bondm", state: spof.StateRedundancyLost, required: 1,
			function: "bondm (802.3ad)",
			codes:    []string{"redundancy_lost/critical"},
			members: map[string]string{
				"enp197s0f2": "failed: in aggregator 1, active aggregator is 2",
				"enp197s0f0": "ok: ",
			},
		},
		{
			tree: "unprivileged-8023ad", group: "network/bond/bondM", state: spof.StateRedundant, required: 1,
			function: "bondM (802.3ad)",
		},
		{
			tree: "lacp-not-negotiated", group: "network/bond/bond0", state: spof.StateRedundancyLost, required: 1,
			function:  "bond0 (802.3ad)",
			codes:     []string{"notice/warning", "redundancy_lost/critical"},
			members:   map[string]string{"enp145s0f1": "failed: in aggregator 2, active aggregator is 1"},
			summaries: []string{"LACP was never negotiated with the switch (partner MAC 00:00:00:00:00:00)"},
		},
		{
			// Real kernel: carrier up, in the active aggregator, but the
			// partner went silent.
			tree: "lacp-partner-expired", group: "network/bond/bond2", state: spof.StateRedundancyLost, required: 1,
			function: "bond2 (802.3ad)", codes: []string{"redundancy_lost/critical"},
			members: map[string]string{
				"eth3": "failed: link up but LACP not distributing (actor port state 143: in sync, expired)",
				"eth2": "ok: ",
			},
		},
		{
			tree: "old-naming", group: "network/bond/int", state: spof.StateRedundancyLost, required: 1,
			function: "int", codes: []string{"redundancy_lost/critical"},
			members: map[string]string{"eth1": "failed: link down", "eth5": "ok: "},
		},
		{
			tree: "old-naming", group: "network/bond/dmz", state: spof.StateRedundant, required: 1, function: "dmz",
		},
		{
			// A bond without slaves carries nothing.
			tree: "old-naming", group: "network/bond/bond0", state: spof.StateDown, required: 1, function: "bond0",
			codes: []string{"group_down/critical"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.tree+"/"+tt.group, func(t *testing.T) {
			_, ev := collectBonding(t, tt.tree)
			var gr *spof.GroupResult
			for i := range ev.Groups {
				if ev.Groups[i].Group.ID == tt.group {
					gr = &ev.Groups[i]
				}
			}
			if gr == nil {
				t.Fatalf("group %s not reported; have %+v", tt.group, ev.Groups)
			}
			if gr.State != tt.state {
				t.Errorf("state = %s, want %s", gr.State, tt.state)
			}
			if gr.Group.Function != tt.function || gr.Group.Required != tt.required {
				t.Errorf("function %q required %d, want %q %d", gr.Group.Function, gr.Group.Required, tt.function, tt.required)
			}
			if codes := findingCodes(ev, tt.group); !reflect.DeepEqual(codes, tt.codes) {
				t.Errorf("findings = %q, want %q\n%+v", codes, tt.codes, ev.Findings)
			}
			for name, want := range tt.members {
				found := false
				for _, m := range gr.Group.Members {
					if m.Name != name {
						continue
					}
					found = true
					got := string(m.State) + ": " + m.Detail
					if !strings.HasPrefix(got, want) {
						t.Errorf("member %s = %q, want prefix %q", name, got, want)
					}
				}
				if !found {
					t.Errorf("member %s missing", name)
				}
			}
			for _, s := range tt.summaries {
				found := false
				for _, f := range ev.Findings {
					found = found || strings.Contains(f.Summary, s)
				}
				if !found {
					t.Errorf("no finding says %q: %+v", s, ev.Findings)
				}
			}
		})
	}
}

func TestBondingAttributes(t *testing.T) {
	tests := []struct {
		tree  string
		attrs map[string]string
	}{
		{"active-backup-failover", map[string]string{"mode": "active-backup", "active_slave": "ens2f0", "primary": "eno1", "miimon": "100 ms", "arp": "off"}},
		{"unprivileged-8023ad", map[string]string{"mode": "802.3ad", "aggregator": "1 (2 ports)", "partner_mac": "hidden (needs CAP_NET_ADMIN)", "lacp_rate": "fast", "min_links": "0"}},
		{"arp-no-target", map[string]string{"miimon": "off", "arp": "1000 ms, no target"}},
		{"split-aggregator", map[string]string{"aggregator": "2 (1 ports)", "partner_mac": "00:23:04:ee:be:66"}},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			res, _ := collectBonding(t, tt.tree)
			got := map[string]string{}
			for _, a := range res.Groups[0].Attributes {
				got[a.Key] = a.Value
			}
			for k, v := range tt.attrs {
				if got[k] != v {
					t.Errorf("attribute %s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func metricValues(t *testing.T, res agent.Result) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range res.Metrics {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		var labels []string
		for _, l := range pb.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		key := name + "{" + strings.Join(labels, ",") + "}"
		if _, dup := out[key]; dup {
			t.Errorf("duplicate series %s", key)
		}
		switch {
		case pb.Gauge != nil:
			out[key] = pb.GetGauge().GetValue()
		case pb.Counter != nil:
			out[key] = pb.GetCounter().GetValue()
		}
	}
	return out
}

func TestBondingMetrics(t *testing.T) {
	res, _ := collectBonding(t, "active-backup-failover")
	got := metricValues(t, res)
	want := map[string]float64{
		"spofwatch_bond_miimon_seconds{bond=bond0}":                         0.1,
		"spofwatch_bond_arp_interval_seconds{bond=bond0}":                   0,
		"spofwatch_bond_slave_link_failures_total{bond=bond0,slave=eno1}":   1,
		"spofwatch_bond_slave_link_failures_total{bond=bond0,slave=ens2f0}": 0,
		"spofwatch_bond_slave_mii_up{bond=bond0,slave=eno1}":                0,
		"spofwatch_bond_slave_mii_up{bond=bond0,slave=ens2f0}":              1,
		"spofwatch_bond_active_slave{bond=bond0,slave=eno1}":                0,
		"spofwatch_bond_active_slave{bond=bond0,slave=ens2f0}":              1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics\n got %v\nwant %v", got, want)
	}
	if len(res.Descs) == 0 {
		t.Error("no descriptors declared")
	}

	res, _ = collectBonding(t, "split-aggregator")
	got = metricValues(t, res)
	for k, v := range map[string]float64{
		"spofwatch_bond_active_aggregator_id{bond=bondm}":                                2,
		"spofwatch_bond_slave_aggregator_id{bond=bondm,slave=enp197s0f2}":                1,
		"spofwatch_bond_slave_lacp_port_state{bond=bondm,side=actor,slave=enp197s0f2}":   7,
		"spofwatch_bond_slave_lacp_port_state{bond=bondm,side=partner,slave=enp197s0f0}": 63,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestBondingNoBonds(t *testing.T) {
	dir := t.TempDir()
	_, err := NewBonding(BondingOptions{SysPath: filepath.Join(dir, "sys"), ProcPath: filepath.Join(dir, "proc")}).Collect(context.Background())
	if !errors.Is(err, agent.ErrNoData) {
		t.Fatalf("err = %v, want agent.ErrNoData", err)
	}
}

// BondGroup is what the uplink collector reuses: same members, required
// and conditions as the bond's own group.
func TestBondGroup(t *testing.T) {
	sys, proc := bondingTree(t, "one-card")
	g, err := BondGroup(sys, proc, "bond0")
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != "network/bond/bond0" || g.Required != 1 || len(g.Members) != 2 {
		t.Fatalf("group = %+v", g)
	}
	for _, m := range g.Members {
		if m.Domains[spof.DomainNICCard] != "0000:3b:00" {
			t.Errorf("member %s domains = %v", m.Name, m.Domains)
		}
	}
	g, err = BondGroup(sys, proc, "bond9")
	if err == nil || g.UnknownReason == "" {
		t.Errorf("missing bond: err=%v group=%+v, want an error and an unknown group", err, g)
	}
}

// The uplink over a bond is judged by the bonding rules: a default route
// over bondm whose second port sits outside the active aggregator has lost
// its redundancy, although both links are up.
func TestUplinkOverBondUsesBondingRules(t *testing.T) {
	sys, proc := bondingTree(t, "split-aggregator")
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"bondm\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	if err := os.WriteFile(filepath.Join(proc, "net", "route"), []byte(route), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := NewUplink(UplinkOptions{SysPath: sys, ProcPath: proc}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev := spof.Evaluate(spof.Input{Groups: res.Groups, Now: time.Unix(0, 0)})
	if len(ev.Groups) != 1 || ev.Groups[0].State != spof.StateRedundancyLost {
		t.Fatalf("uplink = %+v, want redundancy_lost", ev.Groups)
	}
	for _, m := range ev.Groups[0].Group.Members {
		if m.Name == "enp197s0f2" && (m.State != spof.MemberFailed || m.Detail != "in aggregator 1, active aggregator is 2") {
			t.Errorf("enp197s0f2 = %s %q", m.State, m.Detail)
		}
	}
}

// A bond whose slave list cannot be read is unknown, never down or healthy.
func TestBondUnreadableSlavesIsUnknown(t *testing.T) {
	g := BondToGroup(bonding.Bond{Name: "bond0", Mode: bonding.ModeActiveBackup, Problems: []string{"read slaves: permission denied"}})
	ev := spof.Evaluate(spof.Input{Groups: []spof.Group{g}, Now: time.Unix(0, 0)})
	if ev.Groups[0].State != spof.StateUnknown || !strings.Contains(g.UnknownReason, "permission denied") {
		t.Fatalf("state %s reason %q, want unknown naming the cause", ev.Groups[0].State, g.UnknownReason)
	}
	g = BondToGroup(bonding.Bond{Name: "bond0", Mode: bonding.ModeActiveBackup, SlavesKnown: true})
	ev = spof.Evaluate(spof.Input{Groups: []spof.Group{g}, Now: time.Unix(0, 0)})
	if ev.Groups[0].State != spof.StateDown {
		t.Fatalf("a bond with no slaves: state %s, want down", ev.Groups[0].State)
	}
}

func TestBondingDriverWithoutBondsIsNoData(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sys", "class", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sys", "class", "net", "bonding_masters"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewBonding(BondingOptions{SysPath: filepath.Join(dir, "sys"), ProcPath: filepath.Join(dir, "proc")}).Collect(context.Background())
	if !errors.Is(err, agent.ErrNoData) {
		t.Fatalf("err = %v, want agent.ErrNoData", err)
	}
}

// BenchmarkBondingCollect is one full collection of a two-port LACP bond
// from a sysfs/procfs tree: what every netlink notify costs.
func BenchmarkBondingCollect(b *testing.B) {
	dir := ttar.Extract(b, filepath.Join("testdata", "bonding", "split-aggregator.ttar"))
	c := NewBonding(BondingOptions{SysPath: filepath.Join(dir, "sys"), ProcPath: filepath.Join(dir, "proc")})
	for b.Loop() {
		if _, err := c.Collect(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// A bond with a spare slave can be proven (by a drill, later) but has no
// evidence yet; a single-slave bond has nothing to prove.
func TestBondProvable(t *testing.T) {
	for _, tc := range []struct {
		slaves []bonding.Slave
		want   spof.Provability
	}{
		{[]bonding.Slave{{Name: "eth0", MIIStatus: "up"}, {Name: "eth1", MIIStatus: "up"}}, spof.Provable},
		{[]bonding.Slave{{Name: "eth0", MIIStatus: "up"}}, spof.NotProvable},
	} {
		g := BondToGroup(bonding.Bond{Name: "bond0", Mode: bonding.ModeActiveBackup, MIIStatus: "up", MIIMon: 100, SlavesKnown: true, Slaves: tc.slaves})
		if g.Provable != tc.want || g.Proof != nil {
			t.Errorf("%d slaves: provable %v proof %+v, want %v and no proof", len(tc.slaves), g.Provable, g.Proof, tc.want)
		}
	}
}
