package collectors

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spofwatch/spofwatch/internal/stubcmd"
	"github.com/spofwatch/spofwatch/multipath/multipathtest"
	"github.com/spofwatch/spofwatch/spof"
)

// A filesystem on a multipath LUN has the paths' redundancy: its members
// are the paths (not the path devices as disks that are each needed), and
// one HBA behind every path is a shared failure domain of the mount too.
func TestMountsThroughMultipath(t *testing.T) {
	tests := []struct {
		name    string
		hbaB    string // HBA of the second LUN path
		failed  bool   // the second path failed in the map
		state   spof.GroupState
		shared  bool
		members []string
	}{
		{name: "two HBAs", hbaB: "0000:00:0f.0", state: spof.StateRedundant, members: []string{"sda", "sdd"}},
		{name: "one HBA behind both paths", hbaB: "0000:00:0e.0", state: spof.StateRedundant, shared: true, members: []string{"sda", "sdd"}},
		{name: "a failed path", hbaB: "0000:00:0f.0", failed: true, state: spof.StateRedundancyLost, members: []string{"sda", "sdd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := multipathtest.New(t)
			tr.SCSIDisk("sda", "8:0", "0000:00:0e.0", "0", "0", "running")
			tr.SCSIDisk("sdd", "8:48", tc.hbaB, "1", "0", "running")
			tr.DMMap("0", "mpatha", "mpath-3600a0b80001", "sda", "sdd")
			tr.Subsystem("1", "nqn.2019-08.org.qemu:subsys0",
				multipathtest.Controller{Name: "nvme1", PCI: "0000:00:1e.0", State: "live", Transport: "pcie"},
				multipathtest.Controller{Name: "nvme2", PCI: "0000:00:1f.0", State: "live", Transport: "pcie"})
			state := "A"
			if tc.failed {
				state = "F"
			}
			stub := stubcmd.Write(t, "dmsetup", `echo "mpatha: 0 32768 multipath 2 1 0 0 1 1 E 0 2 0 8:0 A 0 8:48 `+state+` 0"`)
			t.Setenv("PATH", filepath.Dir(stub)+string(os.PathListSeparator)+os.Getenv("PATH"))
			proc := t.TempDir()
			if err := os.MkdirAll(filepath.Join(proc, "1"), 0o755); err != nil {
				t.Fatal(err)
			}
			mountinfo := "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/mapper/mpatha rw\n" +
				"23 22 259:1 / /var rw,relatime shared:2 - xfs /dev/nvme1n1 rw\n"
			if err := os.WriteFile(filepath.Join(proc, "1", "mountinfo"), []byte(mountinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := NewMounts(MountsOptions{ProcPath: proc, SysPath: tr.Root}).Collect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			gr, fs := evalGroup(t, res.Groups, "storage/mount/root")
			if gr.State != tc.state || gr.Group.Required != 1 || len(gr.Group.Members) != len(tc.members) {
				t.Fatalf("root: %s required %d members %+v findings %+v", gr.State, gr.Group.Required, gr.Group.Members, fs)
			}
			for i, m := range gr.Group.Members {
				if m.Name != tc.members[i] || m.Domains[DomainHBA] == "" {
					t.Errorf("root member %d: %+v, want %s with its HBA", i, m, tc.members[i])
				}
			}
			if hasCode(fs, spof.CodeSharedFailureDomain) != tc.shared {
				t.Errorf("root shared_failure_domain %v, want %v: %+v", !tc.shared, tc.shared, fs)
			}
			gr, fs = evalGroup(t, res.Groups, "storage/mount/var")
			if gr.State != spof.StateRedundant || len(gr.Group.Members) != 2 || gr.Group.Members[0].Name != "nvme1" {
				t.Errorf("/var on the NVMe head: %s %+v %+v", gr.State, gr.Group.Members, fs)
			}
		})
	}
}
