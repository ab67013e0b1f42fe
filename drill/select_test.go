package drill

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/spof"
)

func testEnv(t *testing.T, yaml string) Env {
	t.Helper()
	cfg, err := config.Parse("spofwatch.yml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return Env{SysPath: "/sysroot", StateDir: t.TempDir(), Drill: cfg.Drill, ZpoolPath: cfg.RAID.ZpoolPath}
}

func bondGroup(name, mode string) spof.Group {
	return spof.Group{ID: "network/bond/" + name, Provable: spof.Provable, Attributes: []spof.Attribute{{Key: "mode", Value: mode}}}
}

func TestSelect(t *testing.T) {
	env := testEnv(t, "drill:\n  md:\n    allow_mismatch: [md9]\n")
	for _, tc := range []struct {
		g          spof.Group
		wantMethod string
		wantWhy    string
	}{
		{spof.Group{ID: "storage/md/md0", Provable: spof.Provable}, "md-check", ""},
		{spof.Group{ID: "storage/md/md4", Provable: spof.NotProvable}, "", "no redundancy"},
		{spof.Group{ID: "storage/zfs/tank/mirror-0", Provable: spof.Provable}, "zpool-scrub", ""},
		{spof.Group{ID: "storage/zfs/tank/sdc", Provable: spof.NotProvable}, "", "no redundancy"},
		{bondGroup("bond0", "active-backup"), "bond-failover", ""},
		{bondGroup("bond1", "balance-tlb"), "bond-failover", ""},
		{bondGroup("bond2", "802.3ad"), "lacp-state", ""},
		{bondGroup("bond3", "balance-alb"), "", "balance-alb"},
		{bondGroup("bond4", "balance-rr"), "", "no drill for bonding mode balance-rr"},
		{spof.Group{ID: "network/bond/bond9", Attributes: []spof.Attribute{{Key: "mode", Value: "active-backup"}}}, "", "no spare slave"},
		{spof.Group{ID: "ups/nut/ups-a", Provable: spof.Provable, Attributes: []spof.Attribute{{Key: "target", Value: "ups-a@127.0.0.1:3493"}}}, "ups-battery-test", ""},
		{spof.Group{ID: "ups/nut/ups-b", Provable: spof.Provable}, "", "does not say its upsd target"},
		{spof.Group{ID: "storage/mount/root"}, "", "proven through the arrays"},
		{spof.Group{ID: "network/uplink/default"}, "", "through its bond"},
		{spof.Group{ID: "power/ipmi/psu"}, "", "not provable here"},
		{spof.Group{ID: "storage/megaraid/c0/v0", Provable: spof.Provable}, "", "no drill for this kind"},
	} {
		m, err := Select(tc.g, env)
		if tc.wantMethod != "" {
			if err != nil || m.Name() != tc.wantMethod || m.Disruptive() != (tc.wantMethod == "bond-failover") {
				t.Errorf("%s: %v %v, want %s", tc.g.ID, m, err, tc.wantMethod)
			}
			continue
		}
		var nd *NotDrillableError
		if !errors.As(err, &nd) || !strings.Contains(nd.Reason, tc.wantWhy) || nd.Group != tc.g.ID {
			t.Errorf("%s: %v, want not drillable: %q", tc.g.ID, err, tc.wantWhy)
		}
	}
	md, _ := Select(spof.Group{ID: "storage/md/md9", Provable: spof.Provable}, env)
	if c := md.(*MdCheck); !c.AllowMismatch || c.SysPath != "/sysroot" || c.Array != "md9" {
		t.Errorf("md9 method %+v", c)
	}
	z1, _ := Select(spof.Group{ID: "storage/zfs/tank/mirror-0", Provable: spof.Provable}, env)
	z2, _ := Select(spof.Group{ID: "storage/zfs/tank/mirror-1", Provable: spof.Provable}, env)
	if Key(spof.Group{ID: "storage/zfs/tank/mirror-0"}, z1) != Key(spof.Group{ID: "storage/zfs/tank/mirror-1"}, z2) {
		t.Error("two vdevs of one pool are two scrubs")
	}
}

// The timer runs non-disruptive drills, and a disruptive one only for a
// bond the config marks scheduled.
func TestScheduled(t *testing.T) {
	env := testEnv(t, "drill:\n  bonds:\n    - bond: bond0\n      scheduled: true\n    - bond: bond*\n")
	for _, tc := range []struct {
		id         string
		disruptive bool
		want       bool
	}{
		{"storage/md/md0", false, true},
		{"network/bond/bond0", true, true},
		{"network/bond/bond1", true, false},
		{"network/bond/eth0", true, false},
		{"ups/nut/a", true, false},
	} {
		ok, why := Scheduled(spof.Group{ID: tc.id}, &fakeMethod{name: "x", disruptive: tc.disruptive}, env)
		if ok != tc.want || (!ok && why == "") {
			t.Errorf("%s: %v %q, want %v", tc.id, ok, why, tc.want)
		}
	}
}

func TestProgressPrinterLines(t *testing.T) {
	var b bytes.Buffer
	p := NewProgressPrinter(&b, false)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	for i := range 101 {
		p.Progress(float64(i), 100, "check")
		now = now.Add(time.Second)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// One line per 5% (0, 5, ..., 100) and one a minute at most besides.
	if len(lines) < 21 || len(lines) > 23 || !strings.Contains(lines[len(lines)-1], "100.0% check") || strings.Contains(b.String(), "\r") {
		t.Errorf("%d lines:\n%s", len(lines), b.String())
	}
	var tb bytes.Buffer
	tp := NewProgressPrinter(&tb, true)
	tp.Progress(50, 100, "check")
	tp.Done()
	if got := tb.String(); !strings.HasPrefix(got, "\r[###############---------------]  50.0% check") || !strings.HasSuffix(got, "\n") {
		t.Errorf("terminal bar %q", got)
	}
}
