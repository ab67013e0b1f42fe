package collectors

import (
	"context"
	"errors"
	"testing"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/internal/stubcmd"
	"github.com/spofwatch/spofwatch/multipath/multipathtest"
	"github.com/spofwatch/spofwatch/spof"
)

func evalGroup(t *testing.T, groups []spof.Group, id string) (spof.GroupResult, []spof.Finding) {
	t.Helper()
	for _, g := range groups {
		if g.ID == id {
			r := spof.Evaluate(spof.Input{Groups: []spof.Group{g}})
			return r.Groups[0], r.Findings
		}
	}
	t.Fatalf("no group %s in %+v", id, groups)
	return spof.GroupResult{}, nil
}

func hasCode(fs []spof.Finding, code spof.Code) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

func TestMultipathNVMe(t *testing.T) {
	ctrl := func(name, pci, state, ana string) multipathtest.Controller {
		return multipathtest.Controller{Name: name, PCI: pci, State: state, Transport: "pcie", ANA: ana}
	}
	tests := []struct {
		name      string
		ctrls     []multipathtest.Controller
		state     spof.GroupState
		working   int
		absent    bool
		memberDet map[string]spof.MemberState
	}{
		{name: "QEMU: two live controllers, no ANA", ctrls: []multipathtest.Controller{ctrl("nvme1", "0000:00:1e.0", "live", ""), ctrl("nvme2", "0000:00:1f.0", "live", "")},
			state: spof.StateRedundant, working: 2},
		{name: "non-optimized is a working path", ctrls: []multipathtest.Controller{ctrl("nvme1", "0000:00:1e.0", "live", "optimized"), ctrl("nvme2", "0000:00:1f.0", "live", "non-optimized")},
			state: spof.StateRedundant, working: 2},
		{name: "inaccessible path", ctrls: []multipathtest.Controller{ctrl("nvme1", "0000:00:1e.0", "live", "optimized"), ctrl("nvme2", "0000:00:1f.0", "live", "inaccessible")},
			state: spof.StateRedundancyLost, working: 1, memberDet: map[string]spof.MemberState{"nvme2": spof.MemberFailed}},
		{name: "controller resetting", ctrls: []multipathtest.Controller{ctrl("nvme1", "0000:00:1e.0", "resetting", ""), ctrl("nvme2", "0000:00:1f.0", "live", "")},
			state: spof.StateRedundancyLost, working: 1, memberDet: map[string]spof.MemberState{"nvme1": spof.MemberFailed}},
		{name: "ANA change is unknown, never ok", ctrls: []multipathtest.Controller{ctrl("nvme1", "0000:00:1e.0", "live", "change"), ctrl("nvme2", "0000:00:1f.0", "live", "optimized")},
			state: spof.StateUnknown, working: 1, memberDet: map[string]spof.MemberState{"nvme1": spof.MemberUnknown}},
		{name: "a single local controller is a disk, not a path group", ctrls: []multipathtest.Controller{ctrl("nvme0", "0000:00:04.0", "live", "")}, absent: true},
		{name: "a single fabrics path has no redundancy", ctrls: []multipathtest.Controller{{Name: "nvme0", State: "live", Transport: "tcp", Address: "traddr=10.0.0.1,trsvcid=4420"}},
			state: spof.StateNoRedundancy, working: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := multipathtest.New(t)
			tr.Subsystem("1", "nqn.2019-08.org.qemu:subsys0", tc.ctrls...)
			c := NewMultipath(MultipathOptions{SysPath: tr.Root, DMSetupPath: "/nonexistent/dmsetup"})
			res, err := c.Collect(context.Background())
			if tc.absent {
				if !errors.Is(err, agent.ErrNoData) {
					t.Fatalf("got %+v, %v; want no data", res.Groups, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gr, fs := evalGroup(t, res.Groups, "storage/path/nvme1n1")
			if gr.State != tc.state || gr.Working != tc.working {
				t.Errorf("state %s working %d, want %s %d; findings %+v", gr.State, gr.Working, tc.state, tc.working, fs)
			}
			for _, m := range gr.Group.Members {
				if want, ok := tc.memberDet[m.Name]; ok && m.State != want {
					t.Errorf("member %s %s, want %s", m.Name, m.State, want)
				}
				if m.Domains[spof.DomainController] == "" {
					t.Errorf("member %s has no controller domain", m.Name)
				}
			}
			if hasCode(fs, spof.CodeSharedFailureDomain) {
				t.Errorf("two controllers share no domain: %+v", fs)
			}
		})
	}
}

// A hot-unplugged controller leaves the subsystem: the daemon that saw it
// reports it missing (redundancy lost), and a controller that comes back,
// even under a new instance number, restores the group.
func TestMultipathNVMeRemembersLostPath(t *testing.T) {
	tr := multipathtest.New(t)
	tr.Subsystem("1", "nqn", multipathtest.Controller{Name: "nvme1", PCI: "0000:00:1e.0", State: "live", Transport: "pcie"},
		multipathtest.Controller{Name: "nvme2", PCI: "0000:00:1f.0", State: "live", Transport: "pcie"})
	c := NewMultipath(MultipathOptions{SysPath: tr.Root, DMSetupPath: "/nonexistent/dmsetup"})
	collect := func() (spof.GroupResult, []spof.Finding) {
		res, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return evalGroup(t, res.Groups, "storage/path/nvme1n1")
	}
	if gr, _ := collect(); gr.State != spof.StateRedundant {
		t.Fatalf("before: %s", gr.State)
	}
	// What the VM showed: the link stays a moment after the device is gone.
	tr.Remove("devices/pci0000:00/0000:00:1f.0")
	gr, fs := collect()
	if gr.State != spof.StateRedundancyLost || gr.Working != 1 || gr.Total != 2 || !hasCode(fs, spof.CodeRedundancyLost) {
		t.Fatalf("after unplug: %s %d/%d %+v", gr.State, gr.Working, gr.Total, fs)
	}
	tr.Remove("devices/virtual/nvme-subsystem/nvme-subsys1/nvme2")
	if gr, _ := collect(); gr.State != spof.StateRedundancyLost || gr.Group.Members[1].State != spof.MemberMissing {
		t.Fatalf("after the link went: %s %+v", gr.State, gr.Group.Members)
	}
	tr.Subsystem("9", "other", multipathtest.Controller{Name: "nvme3", PCI: "0000:00:1d.0", State: "live", Transport: "pcie"})
	tr.Link("devices/virtual/nvme-subsystem/nvme-subsys1/nvme3", "devices/pci0000:00/0000:00:1d.0/nvme/nvme3")
	tr.Block("nvme1c3n1", "devices/pci0000:00/0000:00:1d.0/nvme/nvme3/nvme1c3n1", "259:99")
	if gr, fs := collect(); gr.State != spof.StateRedundant || gr.Total != 2 {
		t.Fatalf("after a new controller joined: %s %d/%d %+v", gr.State, gr.Working, gr.Total, fs)
	}
}

func TestMultipathDM(t *testing.T) {
	tr := multipathtest.New(t)
	tr.SCSIDisk("sda", "8:0", "0000:00:0e.0", "0", "0", "running")
	tr.SCSIDisk("sdb", "8:16", "0000:00:0e.0", "0", "1", "running")
	tr.SCSIDisk("sdc", "8:32", "0000:00:0e.0", "0", "2", "running")
	tr.SCSIDisk("sdd", "8:48", "0000:00:0f.0", "1", "0", "running")
	tr.SCSIDisk("sde", "8:64", "0000:00:0f.0", "1", "1", "offline")
	tr.DMMap("0", "mpatha", "mpath-LUN1", "sda", "sdd")
	tr.DMMap("1", "mpathb", "", "sdb", "sdc")
	tr.DMMap("2", "mpathc", "mpath-LUN3", "sde")
	// Real lines from the test/vm guest (multipath/testdata), plus a map
	// whose one path device went offline.
	dmsetup := stubcmd.Write(t, "dmsetup", `[ "$*" = "status --target multipath" ] || exit 3
cat <<'EOF'
mpatha: 0 32768 multipath 2 1 0 0 1 1 E 0 2 0 8:0 A 0 8:48 F 1 
mpathb: 0 49152 multipath 2 1 0 0 1 1 E 0 2 0 8:16 A 0 8:32 A 0 
mpathc: 0 49152 multipath 2 1 0 0 1 1 E 0 1 0 8:64 A 0 
EOF`)
	res, err := NewMultipath(MultipathOptions{SysPath: tr.Root, DMSetupPath: dmsetup}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	gr, fs := evalGroup(t, res.Groups, "storage/path/mpatha")
	if gr.State != spof.StateRedundancyLost || gr.Working != 1 || gr.Group.Members[1].Name != "sdd" || gr.Group.Members[1].State != spof.MemberFailed {
		t.Errorf("mpatha: %s %+v %+v", gr.State, gr.Group.Members, fs)
	}
	gr, fs = evalGroup(t, res.Groups, "storage/path/mpathb")
	if gr.State != spof.StateRedundant || !hasCode(fs, spof.CodeSharedFailureDomain) {
		t.Errorf("mpathb (both paths on HBA 0000:00:0e.0): %s %+v", gr.State, fs)
	}
	for _, f := range fs {
		if f.Code == spof.CodeSharedFailureDomain && (f.Member != "hba=0000:00:0e.0" || f.Severity != spof.SeverityWarning) {
			t.Errorf("shared HBA finding %+v: want member hba=0000:00:0e.0 at warning", f)
		}
	}
	gr, _ = evalGroup(t, res.Groups, "storage/path/mpathc")
	if gr.State != spof.StateDown || gr.Group.Members[0].Detail != "device state offline" {
		t.Errorf("mpathc (its only path offline): %s %+v", gr.State, gr.Group.Members)
	}

	// dmsetup refused (no CAP_SYS_ADMIN): the mpath maps stay, their
	// running paths unknown, never ok.
	denied := stubcmd.Write(t, "dmsetup", `echo "/dev/mapper/control: open failed: Permission denied" >&2; exit 1`)
	res, err = NewMultipath(MultipathOptions{SysPath: tr.Root, DMSetupPath: denied}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gr, fs = evalGroup(t, res.Groups, "storage/path/mpatha")
	if gr.State != spof.StateUnknown || !hasCode(fs, spof.CodeCollectorUnavailable) {
		t.Errorf("mpatha without status: %s %+v", gr.State, fs)
	}
	if len(res.Groups) != 2 {
		t.Errorf("without status only the maps with an mpath uuid are known: %d groups", len(res.Groups))
	}
}
