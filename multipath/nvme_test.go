package multipath_test

import (
	"testing"

	"github.com/spofwatch/spofwatch/multipath"
	"github.com/spofwatch/spofwatch/multipath/multipathtest"
	"github.com/spofwatch/spofwatch/sysdev"
)

func TestReadNVMe(t *testing.T) {
	qemuNQN := "nqn.2019-08.org.qemu:subsys0"
	tests := []struct {
		name  string
		build func(*multipathtest.Tree)
		want  []multipath.NVMeHead
	}{
		{
			name:  "no NVMe",
			build: func(tr *multipathtest.Tree) { tr.Dir("block") },
		},
		{
			// What the test/vm guest shows for QEMU's nvme-subsys with two
			// controllers: no ana_state (QEMU reports no ANA).
			name: "QEMU two PCIe controllers, no ANA",
			build: func(tr *multipathtest.Tree) {
				tr.Subsystem("1", qemuNQN,
					multipathtest.Controller{Name: "nvme1", PCI: "0000:00:1e.0", State: "live", Transport: "pcie"},
					multipathtest.Controller{Name: "nvme2", PCI: "0000:00:1f.0", State: "live", Transport: "pcie"})
			},
			want: []multipath.NVMeHead{{Name: "nvme1n1", Subsystem: "nvme-subsys1", NQN: qemuNQN, Paths: []multipath.NVMePath{
				{Controller: "nvme1", Node: "nvme1c1n1", State: "live", Transport: "pcie", Address: "0000:00:1e.0", PCI: "0000:00:1e.0"},
				{Controller: "nvme2", Node: "nvme1c2n1", State: "live", Transport: "pcie", Address: "0000:00:1f.0", PCI: "0000:00:1f.0"},
			}}},
		},
		{
			name: "fabrics with ANA, one path inaccessible, one controller reconnecting",
			build: func(tr *multipathtest.Tree) {
				tr.Subsystem("0", "nqn.2014-08.org.example:array",
					multipathtest.Controller{Name: "nvme0", State: "live", Transport: "tcp", Address: "traddr=10.0.0.1,trsvcid=4420", ANA: "optimized"},
					multipathtest.Controller{Name: "nvme3", State: "live", Transport: "tcp", Address: "traddr=10.0.1.1,trsvcid=4420", ANA: "inaccessible"},
					multipathtest.Controller{Name: "nvme4", State: "connecting", Transport: "tcp", Address: "traddr=10.0.2.1,trsvcid=4420", NoPath: true})
			},
			want: []multipath.NVMeHead{{Name: "nvme0n1", Subsystem: "nvme-subsys0", NQN: "nqn.2014-08.org.example:array", Paths: []multipath.NVMePath{
				{Controller: "nvme0", Node: "nvme0c0n1", State: "live", Transport: "tcp", Address: "traddr=10.0.0.1,trsvcid=4420", ANAState: "optimized"},
				{Controller: "nvme3", Node: "nvme0c3n1", State: "live", Transport: "tcp", Address: "traddr=10.0.1.1,trsvcid=4420", ANAState: "inaccessible"},
				{Controller: "nvme4", State: "connecting", Transport: "tcp", Address: "traddr=10.0.2.1,trsvcid=4420"},
			}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := multipathtest.New(t)
			tc.build(tr)
			got, err := multipath.ReadNVMe(sysdev.New(tr.Root))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d heads %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Name != w.Name || g.Subsystem != w.Subsystem || g.NQN != w.NQN || len(g.Paths) != len(w.Paths) {
					t.Fatalf("head %d: got %+v, want %+v", i, g, w)
				}
				for j := range g.Paths {
					if g.Paths[j] != w.Paths[j] {
						t.Errorf("head %s path %d:\n got %+v\nwant %+v", g.Name, j, g.Paths[j], w.Paths[j])
					}
				}
			}
		})
	}
}

// A link that leads out of --path.sysfs is refused, not followed.
func TestReadNVMeConfined(t *testing.T) {
	tr := multipathtest.New(t)
	tr.Subsystem("0", "nqn", multipathtest.Controller{Name: "nvme0", PCI: "0000:00:04.0", State: "live", Transport: "pcie"},
		multipathtest.Controller{Name: "nvme1", PCI: "0000:00:05.0", State: "live", Transport: "pcie"})
	outside := t.TempDir()
	tr.Remove("devices/virtual/nvme-subsystem/nvme-subsys0/nvme1")
	if err := osSymlink(outside, tr.Root+"/devices/virtual/nvme-subsystem/nvme-subsys0/nvme1"); err != nil {
		t.Fatal(err)
	}
	heads, err := multipath.ReadNVMe(sysdev.New(tr.Root))
	if err != nil {
		t.Fatal(err)
	}
	p := heads[0].Paths[1]
	if p.State != "" || p.Err == "" {
		t.Errorf("controller behind a link out of the root: %+v, want unread with an error", p)
	}
}
