package sysdev

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/internal/ttar"
)

// The trees are the collectors' fixtures (see the PROVENANCE.md beside
// each): sysdev resolves what those collectors report.
func fixture(t *testing.T, kind, name string) Sys {
	t.Helper()
	dir := ttar.Extract(t, filepath.Join("..", "collectors", "testdata", kind, name+".ttar"))
	return New(filepath.Join(dir, "sys"))
}

func TestBlock(t *testing.T) {
	tests := []struct {
		tree, dev string
		want      Block
	}{
		{"lvm-on-md-raid1", "sda", Block{Name: "sda", Kind: KindDisk, Controller: "0000:00:17.0"}},
		{"lvm-on-md-raid1", "sdb1", Block{Name: "sdb1", Kind: KindPartition, Parent: "sdb"}},
		{"lvm-on-md-raid1", "md0", Block{Name: "md0", Kind: KindMD, Slaves: []string{"sda1", "sdb1"}}},
		{"lvm-on-md-raid1", "dm-0", Block{Name: "dm-0", Kind: KindDM, Slaves: []string{"md0"}}},
		{"lvm-md-plus-plain-disk", "dm-0", Block{Name: "dm-0", Kind: KindDM, Slaves: []string{"md0", "sdc1"}}},
		{"nvme-single", "nvme0n1", Block{Name: "nvme0n1", Kind: KindDisk, Controller: "0000:3d:00.0"}},
		{"nvme-single", "nvme0n1p2", Block{Name: "nvme0n1p2", Kind: KindPartition, Parent: "nvme0n1"}},
	}
	for _, tt := range tests {
		t.Run(tt.tree+"/"+tt.dev, func(t *testing.T) {
			got, err := fixture(t, "mounts", tt.tree).Block(tt.dev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Block(%s) = %+v, want %+v", tt.dev, got, tt.want)
			}
		})
	}
}

func TestBlockErrors(t *testing.T) {
	s := fixture(t, "mounts", "nvme-single")
	for _, name := range []string{"sdz", "", "..", "../../etc"} {
		if b, err := s.Block(name); err == nil {
			t.Errorf("Block(%q) = %+v, want an error", name, b)
		}
	}
	if _, err := s.Block("sdz"); err == nil || !strings.Contains(err.Error(), s.Path("class", "block", "sdz")) {
		t.Errorf("error %v does not name the link", err)
	}
}

func TestBlockByDevNumber(t *testing.T) {
	s := fixture(t, "mounts", "lvm-on-md-raid1")
	for devno, want := range map[string]string{"253:0": "dm-0", "9:0": "md0", "8:17": "sdb1", "8:0": "sda"} {
		if got, err := s.BlockByDevNumber(devno); err != nil || got != want {
			t.Errorf("BlockByDevNumber(%s) = %q, %v, want %s", devno, got, err, want)
		}
	}
	if got, err := s.BlockByDevNumber("8:99"); err == nil {
		t.Errorf("unknown device number resolved to %q", got)
	}
}

func TestDiskOfAndControllerOf(t *testing.T) {
	tests := []struct {
		tree, md, dev    string
		disk, controller string
	}{
		{"lvm-on-md-raid1", "md0", "sda1", "sda", "0000:00:17.0"},
		{"lvm-on-md-raid1", "md0", "sdb1", "sdb", "0000:00:17.0"},
		{"md-raid1-one-disk", "md0", "sda2", "sda", "0000:00:17.0"},
		// dm-0 is built on md0 alone: followed through slaves/ to md0,
		// which has two slaves and is where the walk stops.
		{"lvm-on-md-raid1", "md9", "dm-0", "md0", ""},
		// Not in sysfs: the disk comes from the name.
		{"lvm-on-md-raid1", "md0", "nvme3n1p4", "nvme3n1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.tree+"/"+tt.dev, func(t *testing.T) {
			s := fixture(t, "mounts", tt.tree)
			disk, ctrl := s.DiskOf(tt.md, tt.dev)
			if disk != tt.disk || ctrl != tt.controller {
				t.Errorf("DiskOf(%s, %s) = %q, %q, want %q, %q", tt.md, tt.dev, disk, ctrl, tt.disk, tt.controller)
			}
		})
	}
	s := fixture(t, "mounts", "nvme-single")
	if c, err := s.ControllerOf("nvme0n1p1"); err != nil || c != "0000:3d:00.0" {
		t.Errorf("ControllerOf(nvme0n1p1) = %q, %v", c, err)
	}
}

func TestDomainCacheForgetsReplacedDevices(t *testing.T) {
	s := fixture(t, "mounts", "lvm-on-md-raid1")
	var c DomainCache
	c.Begin()
	if d, ctrl := c.Lookup(s, "md0", "sda1"); d != "sda" || ctrl != "0000:00:17.0" {
		t.Fatalf("first lookup %q %q", d, ctrl)
	}
	c.Prune()
	// While cached, a changed tree is not walked again...
	if err := os.RemoveAll(s.Path("devices")); err != nil {
		t.Fatal(err)
	}
	c.Begin()
	if d, _ := c.Lookup(s, "md0", "sda1"); d != "sda" {
		t.Errorf("cached lookup = %q, want sda", d)
	}
	c.Prune()
	// ...and a collection that does not see the device drops it.
	c.Begin()
	c.Prune()
	c.Begin()
	if d, ctrl := c.Lookup(s, "md0", "sda1"); d != "sda" || ctrl != "" {
		t.Errorf("after prune = %q %q, want a fresh resolution from the name alone (sda, no controller)", d, ctrl)
	}
}

func TestNIC(t *testing.T) {
	tests := []struct {
		kind, tree, dir string
		want            NIC
	}{
		{"bonding", "active-backup", "class/net/eno1", NIC{Device: "0000:3b:00.0", Card: "0000:3b:00"}},
		{"bonding", "one-card", "class/net/eno2", NIC{Device: "0000:3b:00.1", Card: "0000:3b:00"}},
		// SR-IOV VFs on different PCI devices, charged to their one PF.
		{"bonding", "vfs-one-port", "class/net/enp59s2", NIC{Device: "0000:3b:00.0", VirtualFunction: true, Card: "0000:3b:00"}},
		{"bonding", "vfs-one-port", "class/net/enp59s10", NIC{Device: "0000:3b:00.0", VirtualFunction: true, Card: "0000:3b:00"}},
		// Reached through the bond's lower_ link, as bonding does.
		{"bonding", "active-backup", "class/net/bond0/lower_ens2f0", NIC{Device: "0000:5e:00.0", Card: "0000:5e:00"}},
		{"bonding", "active-backup", "class/net/bond0", NIC{}},
		{"uplink", "bridge-single-nic", "class/net/eth0", NIC{Device: "0000:00:03.0", Card: "0000:00:03"}},
		// USB NICs: the card is the USB device, not the xHCI controller.
		{"uplink", "bridge-two-usb-nics", "class/net/enx00e04c680001", NIC{Device: "2-1:1.0", Card: "usb:2-1"}},
		{"uplink", "bridge-two-usb-nics", "class/net/enx00e04c680002", NIC{Device: "2-2:1.0", Card: "usb:2-2"}},
		{"uplink", "bridge-two-usb-nics", "class/net/nonexistent", NIC{}},
	}
	for _, tt := range tests {
		t.Run(tt.tree+"/"+tt.dir, func(t *testing.T) {
			got, err := fixture(t, tt.kind, tt.tree).NIC(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("NIC(%s) = %+v, want %+v", tt.dir, got, tt.want)
			}
		})
	}
}

// A link out of the root names nothing: the PCI function outside
// --path.sysfs is not the NIC's card, and the disk outside is not its disk.
func TestResolutionStaysBelowRoot(t *testing.T) {
	top := t.TempDir()
	outside := filepath.Join(top, "elsewhere", "devices", "pci0000:00", "0000:00:1f.0")
	for _, d := range []string{filepath.Join(outside, "net", "eth9"), filepath.Join(outside, "block", "sdq"), filepath.Join(top, "sys", "class", "net"), filepath.Join(top, "sys", "class", "block")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"sys/class/net/eth9":  "../../../elsewhere/devices/pci0000:00/0000:00:1f.0/net/eth9",
		"sys/class/block/sdq": "../../../elsewhere/devices/pci0000:00/0000:00:1f.0/block/sdq",
		"elsewhere/devices/pci0000:00/0000:00:1f.0/net/eth9/device": "../../../0000:00:1f.0",
	} {
		if err := os.Symlink(target, filepath.Join(top, link)); err != nil {
			t.Fatal(err)
		}
	}
	s := New(filepath.Join(top, "sys"))
	if n, err := s.NIC("class/net/eth9"); err == nil || n.Card != "" {
		t.Errorf("NIC out of root = %+v, %v; want no card and an error", n, err)
	}
	if b, err := s.Block("sdq"); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("Block out of root = %+v, %v; want an error saying it leads outside", b, err)
	}
	if c, err := s.ControllerOf("sdq"); err == nil || c != "" {
		t.Errorf("ControllerOf out of root = %q, %v", c, err)
	}
	if d, c := s.DiskOf("md0", "sdq"); d != "sdq" || c != "" {
		t.Errorf("DiskOf out of root = %q %q, want the name only", d, c)
	}
}

func TestDiskFromName(t *testing.T) {
	for in, want := range map[string]string{
		"sda1": "sda", "sdab12": "sdab", "vdb": "vdb", "nvme0n1p2": "nvme0n1", "nvme0n1": "nvme0n1",
		"mmcblk0p1": "mmcblk0", "dm-0": "dm-0", "xvdb1": "xvdb", "loop0p1": "loop0",
	} {
		if got := DiskFromName(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
