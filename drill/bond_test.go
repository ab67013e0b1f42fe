package drill

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRoutesGateway(t *testing.T) {
	tests := []struct {
		file  string
		iface string
		want  string // "" = no gateway
	}{
		{"host-eth0.txt", "eth0", "192.0.2.1"},
		{"host-eth0.txt", "bond0", ""},
		// Lowest metric of the up default routes with a gateway; the
		// metric 10 route lacks RTF_UP, the VLAN's route is not the bond's.
		{"bond-metrics-constructed.txt", "bond0", "10.9.0.254"},
		{"bond-metrics-constructed.txt", "eth9", "192.168.1.1"},
		{"bond-metrics-constructed.txt", "bond0.100", "198.100.0.1"},
		{"bond-no-gateway-constructed.txt", "bond0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.iface, func(t *testing.T) {
			gw, err := defaultGateway(filepath.Join("testdata", "route", tt.file), tt.iface)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if gw.IsValid() {
				got = gw.String()
			}
			if got != tt.want {
				t.Errorf("gateway via %s = %q, want %q", tt.iface, got, tt.want)
			}
		})
	}
}

func TestParseRoutesRejects(t *testing.T) {
	for name, text := range map[string]string{
		"empty":         "",
		"no header":     "bond0\t00000000\t0100090A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
		"short line":    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nbond0\t00000000\n",
		"bad gateway":   "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nbond0\t00000000\tXYZ0090A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
		"short gw":      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nbond0\t00000000\t90A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
		"bad metric":    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nbond0\t00000000\t0100090A\t0003\t0\t0\tx\t00000000\t0\t0\t0\n",
		"line too long": "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" + strings.Repeat("x", 5000) + "\n",
	} {
		if rs, err := parseRoutes(strings.NewReader(text)); err == nil {
			t.Errorf("%s: parsed %+v, want an error", name, rs)
		}
	}
}

func FuzzParseRoutes(f *testing.F) {
	for _, n := range []string{"host-eth0.txt", "bond-metrics-constructed.txt", "bond-no-gateway-constructed.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", "route", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseRoutes(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for _, r := range rs {
			if !r.Dst.Is4() || !r.Gateway.Is4() || !r.Mask.Is4() {
				t.Fatalf("non-IPv4 address in %+v", r)
			}
		}
		_ = gatewayVia(rs, "bond0")
	})
}

func TestSourceFor(t *testing.T) {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	gw := netip.MustParseAddr("10.9.0.1")
	tests := []struct {
		prefixes []netip.Prefix
		want     string
	}{
		{[]netip.Prefix{p("192.0.2.5/24"), p("10.9.0.2/24")}, "10.9.0.2"},
		{[]netip.Prefix{p("192.0.2.5/24")}, "192.0.2.5"},
		{nil, "invalid IP"},
	}
	for _, tt := range tests {
		if got := sourceFor(tt.prefixes, gw).String(); got != tt.want {
			t.Errorf("sourceFor(%v) = %s, want %s", tt.prefixes, got, tt.want)
		}
	}
}

// bondTree is a sysfs/procfs fixture of one bond; the drill writes
// active_slave there as it would to the kernel.
type bondTree struct {
	sys, proc, bond string
}

type slaveSpec struct{ name, mii string }

func newBondTree(t *testing.T, mode, active, primary string, slaves []slaveSpec, routes string) bondTree {
	t.Helper()
	root := t.TempDir()
	bt := bondTree{sys: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc"), bond: "bond0"}
	write := func(p, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(bt.sys, "class", "net", "bond0", "bonding")
	var names []string
	for _, s := range slaves {
		names = append(names, s.name)
		sd := filepath.Join(bt.sys, "class", "net", s.name, "bonding_slave")
		write(filepath.Join(sd, "mii_status"), s.mii+"\n")
		state := "backup"
		if s.name == active {
			state = "active"
		}
		write(filepath.Join(sd, "state"), state+"\n")
	}
	write(filepath.Join(b, "mode"), mode+" 1\n")
	write(filepath.Join(b, "slaves"), strings.Join(names, " ")+"\n")
	write(filepath.Join(b, "active_slave"), active+"\n")
	write(filepath.Join(b, "primary"), primary+"\n")
	write(filepath.Join(b, "primary_reselect"), "always 0\n")
	write(filepath.Join(b, "mii_status"), "up\n")
	write(filepath.Join(b, "miimon"), "100\n")
	write(filepath.Join(bt.proc, "net", "route"), routes)
	return bt
}

func (bt bondTree) active(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bt.sys, "class", "net", bt.bond, "bonding", "active_slave"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const routeViaBond = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
	"bond0\t00000000\t0100090A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
	"bond0\t0000090A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"

// probeLog records which slave was active at each probe; reach says which
// slaves reach the target. The stand-in prober reads the fixture's
// active_slave, as the real one depends on the kernel's.
type probeLog struct {
	t      *testing.T
	bt     bondTree
	reach  map[string]bool
	during func(active string, n int) // hook run inside a probe
	seen   []string
}

func (pl *probeLog) probe(ctx context.Context, ifname string, src, target netip.Addr, probes int, timeout time.Duration) (arpResult, error) {
	a := pl.bt.active(pl.t)
	pl.seen = append(pl.seen, a)
	if pl.during != nil {
		pl.during(a, len(pl.seen))
	}
	if err := ctx.Err(); err != nil {
		return arpResult{Sent: 1}, err
	}
	if ifname != pl.bt.bond || src != netip.MustParseAddr("10.9.0.2") {
		return arpResult{}, fmt.Errorf("probe on %s from %s, want bond0 from 10.9.0.2", ifname, src)
	}
	if !pl.reach[a] {
		return arpResult{Sent: probes}, nil
	}
	return arpResult{Sent: 1, Reply: true, RTT: time.Millisecond, Answered: time.Now()}, nil
}

func newTestDrill(bt bondTree, pl *probeLog, targets ...netip.Addr) *bondFailover {
	m := NewBondFailover(bt.sys, bt.bond, targets, 3*time.Second).(*bondFailover)
	m.procRoot = bt.proc
	m.probe = pl.probe
	m.restoreTimeout = time.Second
	m.addrs = func(string) ([]netip.Prefix, error) {
		return []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")}, nil
	}
	return m
}

var threeUp = []slaveSpec{{"ab0", "up"}, {"ab1", "up"}, {"ab2", "up"}}

func TestBondFailoverPasses(t *testing.T) {
	bt := newBondTree(t, "active-backup", "ab0", "", threeUp, routeViaBond)
	pl := &probeLog{t: t, bt: bt, reach: map[string]bool{"ab0": true, "ab1": true, "ab2": true}}
	out := newTestDrill(bt, pl).Run(context.Background(), true, nil)
	if out.Result != ResultPassed || len(out.FailedMembers) != 0 {
		t.Fatalf("outcome %+v, want passed", out)
	}
	if got := strings.Join(pl.seen, " "); got != "ab0 ab1 ab2" {
		t.Errorf("probed on %q, want the baseline on ab0, then ab1, then ab2", got)
	}
	if a := bt.active(t); a != "ab0" {
		t.Errorf("active slave %q after the drill, want ab0", a)
	}
	for _, s := range []string{"ab1: active in", "ab2: active in"} {
		if !anyHasPrefix(out.Details, s) {
			t.Errorf("details %q lack %q", out.Details, s)
		}
	}
	if !strings.Contains(strings.Join(out.Details, "\n"), "restored ab0 in") {
		t.Errorf("details %q do not time the restore", out.Details)
	}
}

func TestBondFailoverBackupCannotReach(t *testing.T) {
	bt := newBondTree(t, "active-backup", "ab0", "", threeUp, routeViaBond)
	pl := &probeLog{t: t, bt: bt, reach: map[string]bool{"ab0": true, "ab2": true}}
	out := newTestDrill(bt, pl).Run(context.Background(), true, nil)
	if out.Result != ResultFailed {
		t.Fatalf("outcome %+v, want failed", out)
	}
	want := "cannot reach gateway 10.9.0.1 (ARP, 2 probes in 3s)"
	if got := out.FailedMembers["ab1"]; got != want || len(out.FailedMembers) != 1 {
		t.Errorf("failed members %v, want ab1: %q", out.FailedMembers, want)
	}
	if !strings.Contains(out.Reason, "ab1 "+want) {
		t.Errorf("reason %q does not name ab1", out.Reason)
	}
	if a := bt.active(t); a != "ab0" {
		t.Errorf("active slave %q after the drill, want ab0", a)
	}
	// The drill stops at the first failure: ab2 is never made active.
	if got := strings.Join(pl.seen, " "); got != "ab0 ab1" {
		t.Errorf("probed on %q, want ab0 ab1", got)
	}
	if !anyHasPrefix(out.Details, "ab2: not tried") {
		t.Errorf("details %q do not say ab2 was not tried", out.Details)
	}
}

func TestBondFailoverCancelledRestores(t *testing.T) {
	bt := newBondTree(t, "active-backup", "ab0", "", threeUp, routeViaBond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pl := &probeLog{t: t, bt: bt, reach: map[string]bool{"ab0": true, "ab1": true, "ab2": true},
		during: func(active string, n int) {
			if active == "ab1" {
				cancel() // the signal arrives while the backup carries the traffic
			}
		}}
	out := newTestDrill(bt, pl).Run(ctx, true, nil)
	if out.Result != ResultFailed || !strings.Contains(out.Reason, "aborted") || len(out.FailedMembers) != 0 {
		t.Fatalf("outcome %+v, want failed as aborted, blaming no member", out)
	}
	if a := bt.active(t); a != "ab0" {
		t.Errorf("active slave %q after the cancelled drill, want ab0", a)
	}
}

func TestBondFailoverKernelSwitchedBack(t *testing.T) {
	bt := newBondTree(t, "active-backup", "ab0", "ab0", threeUp[:2], routeViaBond)
	m := (*bondFailover)(nil)
	pl := &probeLog{t: t, bt: bt, reach: map[string]bool{"ab0": true, "ab1": true},
		during: func(active string, n int) {
			if active == "ab1" { // a link event: the kernel reselects the primary
				if err := m.writeActive("ab0"); err != nil {
					t.Error(err)
				}
			}
		}}
	m = newTestDrill(bt, pl)
	out := m.Run(context.Background(), true, nil)
	if out.Result != ResultFailed || len(out.FailedMembers) != 0 || !strings.Contains(out.Reason, "left ab1") {
		t.Fatalf("outcome %+v, want failed without blaming ab1", out)
	}
	if !strings.Contains(strings.Join(out.Details, "\n"), "primary ab0 (primary_reselect always)") {
		t.Errorf("details %q do not explain the primary", out.Details)
	}
}

func TestBondFailoverWriteRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file modes, so this fixture cannot refuse the write")
	}
	bt := newBondTree(t, "active-backup", "ab0", "", threeUp[:2], routeViaBond)
	pl := &probeLog{t: t, bt: bt, reach: map[string]bool{"ab0": true, "ab1": true},
		during: func(active string, n int) {
			// After the baseline, the kernel refuses writes: stand in with a
			// read-only attribute.
			if err := os.Chmod(filepath.Join(bt.sys, "class", "net", "bond0", "bonding", "active_slave"), 0o444); err != nil {
				t.Fatal(err)
			}
		}}
	out := newTestDrill(bt, pl).Run(context.Background(), true, nil)
	if out.Result != ResultFailed || !strings.HasPrefix(out.FailedMembers["ab1"], "cannot be made the active slave") {
		t.Fatalf("outcome %+v, want ab1 failed as refused", out)
	}
	if a := bt.active(t); a != "ab0" {
		t.Errorf("active slave %q, want ab0", a)
	}
}

func TestBondFailoverRefuses(t *testing.T) {
	noRoute := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	tests := []struct {
		name    string
		mode    string
		active  string
		slaves  []slaveSpec
		routes  string
		targets []netip.Addr
		noAddr  bool
		reach   map[string]bool
		want    string
	}{
		{name: "802.3ad", mode: "802.3ad", active: "ab0", slaves: threeUp, routes: routeViaBond, want: "use lacp-state"},
		{name: "balance-alb", mode: "balance-alb", active: "ab0", slaves: threeUp, routes: routeViaBond, want: "receive load balancer"},
		{name: "balance-rr", mode: "balance-rr", active: "", slaves: threeUp, routes: routeViaBond, want: "only in active-backup"},
		{name: "backup down", mode: "active-backup", active: "ab0", slaves: []slaveSpec{{"ab0", "up"}, {"ab1", "down"}}, routes: routeViaBond, want: "ab1 link is down"},
		{name: "one slave", mode: "active-backup", active: "ab0", slaves: threeUp[:1], routes: routeViaBond, want: "no backup"},
		{name: "no active slave", mode: "active-backup", active: "", slaves: threeUp, routes: routeViaBond, want: "no active slave"},
		{name: "no gateway", mode: "active-backup", active: "ab0", slaves: threeUp, routes: noRoute, want: "no gateway via bond0; set drill.bonds[].targets"},
		{name: "no address", mode: "active-backup", active: "ab0", slaves: threeUp, routes: routeViaBond, noAddr: true, want: "no IPv4 address"},
		{name: "IPv6 target", mode: "active-backup", active: "ab0", slaves: threeUp, routes: noRoute, targets: []netip.Addr{netip.MustParseAddr("2001:db8::1")}, want: "not IPv4"},
		{name: "target silent on the active slave", mode: "active-backup", active: "ab0", slaves: threeUp, routes: routeViaBond, reach: map[string]bool{"ab1": true}, want: "does not answer ARP on the active slave ab0 either"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bt := newBondTree(t, tt.mode, tt.active, "", tt.slaves, tt.routes)
			reach := tt.reach
			if reach == nil {
				reach = map[string]bool{"ab0": true, "ab1": true, "ab2": true}
			}
			pl := &probeLog{t: t, bt: bt, reach: reach}
			m := newTestDrill(bt, pl, tt.targets...)
			if tt.noAddr {
				m.addrs = func(string) ([]netip.Prefix, error) { return nil, nil }
			}
			out := m.Run(context.Background(), true, nil)
			if out.Result != ResultRefused || !strings.Contains(out.Reason, tt.want) {
				t.Errorf("outcome %+v, want refused with %q", out, tt.want)
			}
			if a := bt.active(t); a != tt.active {
				t.Errorf("active slave %q, want %q unchanged", a, tt.active)
			}
			for _, s := range pl.seen {
				if s != tt.active {
					t.Errorf("a probe ran with %s active: the refused drill changed the bond", s)
				}
			}
		})
	}
}

func TestBondFailoverPlan(t *testing.T) {
	bt := newBondTree(t, "balance-tlb", "ab1", "ab1", threeUp, routeViaBond)
	pl := &probeLog{t: t, bt: bt}
	m := newTestDrill(bt, pl, netip.MustParseAddr("10.9.0.7"))
	steps, err := m.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(steps, "\n")
	for _, want := range []string{"bond0 (balance-tlb): active slave ab1, backup(s) ab0, ab2; target 10.9.0.7", "write ab0 to", "write ab2 to", "write ab1 back", "primary ab1"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if len(pl.seen) != 0 || bt.active(t) != "ab1" {
		t.Errorf("Plan probed (%v) or changed the bond (active %s)", pl.seen, bt.active(t))
	}
	bt2 := newBondTree(t, "active-backup", "ab0", "", threeUp, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n")
	if _, err := newTestDrill(bt2, &probeLog{t: t, bt: bt2}).Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "no gateway via bond0") {
		t.Errorf("Plan without gateway: %v, want a refusal naming the missing gateway", err)
	}
}

func anyHasPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}
