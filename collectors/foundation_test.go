package collectors

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/internal/ttar"
	"github.com/spofwatch/spofwatch/spof"
)

// evaluateOne runs a collector over a fixture tree and evaluates its only
// group with the given ID.
func evaluateOne(t *testing.T, c agent.Collector, id string) (spof.GroupResult, []spof.Finding) {
	t.Helper()
	res, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := spof.Evaluate(spof.Input{Groups: res.Groups})
	for _, g := range out.Groups {
		if g.Group.ID == id {
			var fs []spof.Finding
			for _, f := range out.Findings {
				if f.Group == id {
					fs = append(fs, f)
				}
			}
			return g, fs
		}
	}
	t.Fatalf("no group %s in %+v", id, res.Groups)
	return spof.GroupResult{}, nil
}

type memberWant struct {
	name  string
	state spof.MemberState
	disk  string
}

func codes(fs []spof.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Code))
	}
	slices.Sort(out)
	return out
}

func TestMountsFixtures(t *testing.T) {
	tests := []struct {
		fixture  string
		group    string
		state    spof.GroupState
		required int
		members  []memberWant
		codes    []string
		// domain the shared_failure_domain finding must name
		sharedDetail string
	}{
		{
			fixture: "lvm-on-md-raid1", group: "storage/mount/root", state: spof.StateRedundant, required: 1,
			members: []memberWant{{"sda1", spof.MemberOK, "sda"}, {"sdb1", spof.MemberOK, "sdb"}},
			// Both disks hang off one AHCI controller: that is a shared
			// domain too, and the rule must say so.
			codes: []string{"shared_failure_domain"}, sharedDetail: "failure domain controller=0000:00:17.0",
		},
		{
			fixture: "md-raid1-one-disk", group: "storage/mount/root", state: spof.StateRedundant, required: 1,
			members: []memberWant{{"sda1", spof.MemberOK, "sda"}, {"sda2", spof.MemberOK, "sda"}},
			// Only the disk: the md rules leave the controller out when one
			// disk holds every leg (it would only repeat the same point).
			codes: []string{"shared_failure_domain"}, sharedDetail: "failure domain disk=sda",
		},
		{
			fixture: "nvme-single", group: "storage/mount/root", state: spof.StateNoRedundancy, required: 1,
			members: []memberWant{{"nvme0n1", spof.MemberOK, "nvme0n1"}},
			codes:   []string{"no_redundancy"},
		},
		{
			fixture: "nvme-single", group: "storage/mount/boot-efi", state: spof.StateNoRedundancy, required: 1,
			members: []memberWant{{"nvme0n1", spof.MemberOK, "nvme0n1"}},
			codes:   []string{"no_redundancy"},
		},
		{
			fixture: "md-raid1-failed-leg", group: "storage/mount/root", state: spof.StateRedundancyLost, required: 1,
			members: []memberWant{{"sda1", spof.MemberOK, "sda"}, {"sdb1", spof.MemberFailed, "sdb"}},
			codes:   []string{"redundancy_lost"},
		},
		{
			fixture: "md-inactive", group: "storage/mount/root", state: spof.StateDown, required: 1,
			codes: []string{"group_down"},
		},
		{
			// The mirror does not make a volume group over md0 and sdc1
			// redundant: sdc is needed on its own.
			fixture: "lvm-md-plus-plain-disk", group: "storage/mount/root", state: spof.StateNoRedundancy, required: 2,
			members: []memberWant{{"md0", spof.MemberOK, ""}, {"sdc", spof.MemberOK, "sdc"}},
			codes:   []string{"no_redundancy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.group, func(t *testing.T) {
			dir := ttar.Extract(t, filepath.Join("testdata", "mounts", tt.fixture+".ttar"))
			c := NewMounts(MountsOptions{ProcPath: filepath.Join(dir, "proc"), SysPath: filepath.Join(dir, "sys")})
			g, fs := evaluateOne(t, c, tt.group)
			if g.State != tt.state {
				t.Errorf("state = %s, want %s (findings %+v)", g.State, tt.state, fs)
			}
			if g.Group.Required != tt.required {
				t.Errorf("required = %d, want %d", g.Group.Required, tt.required)
			}
			if tt.members != nil {
				if len(g.Group.Members) != len(tt.members) {
					t.Fatalf("members = %+v, want %+v", g.Group.Members, tt.members)
				}
				for i, want := range tt.members {
					m := g.Group.Members[i]
					if m.Name != want.name || m.State != want.state || m.Domains[spof.DomainDisk] != want.disk {
						t.Errorf("member %d = %s/%s disk=%s, want %s/%s disk=%s", i, m.Name, m.State, m.Domains[spof.DomainDisk], want.name, want.state, want.disk)
					}
				}
			}
			if got := codes(fs); !slices.Equal(got, tt.codes) {
				t.Errorf("codes = %v, want %v", got, tt.codes)
			}
			if tt.sharedDetail != "" {
				found := false
				for _, f := range fs {
					if f.Code == spof.CodeSharedFailureDomain && f.Details == tt.sharedDetail {
						found = true
					}
				}
				if !found {
					t.Errorf("no shared_failure_domain with %q in %+v", tt.sharedDetail, fs)
				}
			}
		})
	}
}

func TestMountsMissingExtraIsUnknown(t *testing.T) {
	dir := ttar.Extract(t, filepath.Join("testdata", "mounts", "nvme-single.ttar"))
	c := NewMounts(MountsOptions{ProcPath: filepath.Join(dir, "proc"), SysPath: filepath.Join(dir, "sys"), Extra: []string{"/srv/data"}})
	g, fs := evaluateOne(t, c, "storage/mount/srv-data")
	if g.State != spof.StateUnknown || len(fs) != 1 || fs[0].Code != spof.CodeCollectorUnavailable {
		t.Fatalf("state %s findings %+v, want unknown with collector_unavailable", g.State, fs)
	}
}

func TestUplinkFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		state   spof.GroupState
		members []string
		cards   []string
		codes   []string
	}{
		{"bond", spof.StateRedundant, []string{"eno1", "ens2f0"}, []string{"0000:3b:00", "0000:5e:00"}, nil},
		{"vlan-on-bond", spof.StateRedundant, []string{"ens1f0", "ens1f1"}, []string{"0000:3b:00", "0000:3b:00"}, []string{"shared_failure_domain"}},
		{"bridge-single-nic", spof.StateNoRedundancy, []string{"eth0"}, []string{"0000:00:03"}, []string{"no_redundancy"}},
		// USB NICs are named by their USB device, as the bonding collector
		// names them (sysdev.NIC), not by the xHCI controller both sit on.
		{"bridge-two-usb-nics", spof.StateRedundant, []string{"enx00e04c680001", "enx00e04c680002"}, []string{"usb:2-1", "usb:2-2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			dir := ttar.Extract(t, filepath.Join("testdata", "uplink", tt.fixture+".ttar"))
			c := NewUplink(UplinkOptions{ProcPath: filepath.Join(dir, "proc"), SysPath: filepath.Join(dir, "sys")})
			g, fs := evaluateOne(t, c, "network/uplink/default")
			if g.State != tt.state {
				t.Errorf("state = %s, want %s (%+v)", g.State, tt.state, fs)
			}
			var names, cards []string
			for _, m := range g.Group.Members {
				names = append(names, m.Name)
				cards = append(cards, m.Domains[spof.DomainNICCard])
			}
			if !slices.Equal(names, tt.members) || !slices.Equal(cards, tt.cards) {
				t.Errorf("members %v cards %v, want %v %v", names, cards, tt.members, tt.cards)
			}
			if got := codes(fs); !slices.Equal(got, tt.codes) {
				t.Errorf("codes = %v, want %v", got, tt.codes)
			}
		})
	}
}

func TestDefaultRouteParsers(t *testing.T) {
	// Real /proc/net/route and /proc/net/ipv6_route of this project's
	// development VM (see testdata/uplink/PROVENANCE.md).
	v4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	v6 := "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n" +
		"00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n" +
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
	if got, err := parseDefaultRoutesV4([]byte(v4)); err != nil || !slices.Equal(got, []string{"eth0"}) {
		t.Errorf("v4 = %v, %v", got, err)
	}
	if got, err := parseDefaultRoutesV6([]byte(v6)); err != nil || !slices.Equal(got, []string{"eth0"}) {
		t.Errorf("v6 = %v, %v (the reject route on lo must not count)", got, err)
	}
	if _, err := parseDefaultRoutesV4([]byte("h\neth0 00000000\n")); err == nil {
		t.Error("short v4 line: want an error naming the line")
	}
	if _, err := parseDefaultRoutesV6([]byte("garbage\n")); err == nil {
		t.Error("garbage v6 line: want an error")
	}
}

func FuzzDefaultRoutes(f *testing.F) {
	f.Add([]byte("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"))
	f.Add([]byte("00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseDefaultRoutesV4(b)
		_, _ = parseDefaultRoutesV6(b)
	})
}

func TestMountOnDegradedArrayNamesTheArray(t *testing.T) {
	dir := ttar.Extract(t, filepath.Join("testdata", "mounts", "md-raid1-failed-leg.ttar"))
	c := NewMounts(MountsOptions{ProcPath: filepath.Join(dir, "proc"), SysPath: filepath.Join(dir, "sys")})
	_, fs := evaluateOne(t, c, "storage/mount/root")
	if len(fs) != 1 || fs[0].Summary != "root filesystem / on md0 (raid1): redundancy lost: sdb1 failed, runs on sda1 alone" {
		t.Errorf("findings = %+v", fs)
	}
}
