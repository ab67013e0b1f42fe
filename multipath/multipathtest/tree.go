// Package multipathtest builds sysfs fixture trees of multipath setups for
// the tests of package multipath and its collector. The layout is the
// kernel's, as observed in the test/vm guest (Debian 6.1, QEMU 7.2; see
// multipath/testdata/PROVENANCE.md): devices where the kernel keeps them,
// class/, block/ and dev/block/ entries as the same relative links.
package multipathtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tree is a sysfs root under construction.
type Tree struct {
	t    testing.TB
	Root string
}

// New starts an empty tree in a temporary directory.
func New(t testing.TB) *Tree { return &Tree{t: t, Root: t.TempDir()} }

// File writes an attribute (a trailing newline added, as sysfs does).
func (tr *Tree) File(rel, content string) {
	tr.t.Helper()
	p := filepath.Join(tr.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

// Dir creates a directory.
func (tr *Tree) Dir(rel string) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Join(tr.Root, rel), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

// Link makes rel a relative symlink to the tree path target.
func (tr *Tree) Link(rel, target string) {
	tr.t.Helper()
	p := filepath.Join(tr.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	r, err := filepath.Rel(filepath.Dir(p), filepath.Join(tr.Root, target))
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Symlink(r, p); err != nil {
		tr.t.Fatal(err)
	}
}

// Remove deletes a path (a controller that was hot-unplugged).
func (tr *Tree) Remove(rel string) {
	tr.t.Helper()
	if err := os.RemoveAll(filepath.Join(tr.Root, rel)); err != nil {
		tr.t.Fatal(err)
	}
}

// Block registers a block device whose directory is at dev: block/<name>,
// class/block/<name>, dev/block/<devno> and its dev attribute.
func (tr *Tree) Block(name, dev, devno string) {
	tr.t.Helper()
	tr.File(dev+"/dev", devno)
	tr.Link("block/"+name, dev)
	tr.Link("class/block/"+name, dev)
	tr.Link("dev/block/"+devno, dev)
}

// Controller is one NVMe controller of a subsystem.
type Controller struct {
	Name      string // nvme1
	PCI       string // 0000:00:05.0; empty for fabrics
	State     string // live
	Transport string // pcie, tcp
	Address   string // defaults to PCI for pcie
	// ANA is the per-path ana_state; empty leaves the attribute out, as a
	// controller without ANA has it.
	ANA string
	// NoPath leaves out the per-path namespace node.
	NoPath bool
}

// Subsystem adds nvme-subsys<n> with namespace 1 shared by ctrls, as the
// kernel lays it out with native multipath: the head nvme<n>n1 under the
// subsystem, each controller linked from it, each per-path node
// nvme<n>c<ctrl>n1 under its controller.
func (tr *Tree) Subsystem(n, nqn string, ctrls ...Controller) {
	tr.t.Helper()
	sub := "devices/virtual/nvme-subsystem/nvme-subsys" + n
	tr.File(sub+"/subsysnqn", nqn)
	tr.File(sub+"/iopolicy", "numa")
	tr.Link("class/nvme-subsystem/nvme-subsys"+n, sub)
	head := "nvme" + n + "n1"
	tr.Block(head, sub+"/"+head, "259:"+n)
	for i, c := range ctrls {
		dev := "devices/virtual/nvme-fabrics/ctl/" + c.Name
		if c.PCI != "" {
			dev = "devices/pci0000:00/" + c.PCI + "/nvme/" + c.Name
		}
		tr.File(dev+"/state", c.State)
		tr.File(dev+"/transport", c.Transport)
		addr := c.Address
		if addr == "" {
			addr = c.PCI
		}
		tr.File(dev+"/address", addr)
		tr.Link(sub+"/"+c.Name, dev)
		tr.Link("class/nvme/"+c.Name, dev)
		if c.NoPath {
			continue
		}
		node := head[:len("nvme"+n)] + "c" + strings.TrimPrefix(c.Name, "nvme") + "n1"
		tr.Block(node, dev+"/"+node, "259:"+n+"0"+string(rune('0'+i)))
		if c.ANA != "" {
			tr.File(dev+"/"+node+"/ana_state", c.ANA)
		}
	}
}

// SCSIDisk adds sd<x> as LUN lun of target tid behind the virtio-scsi HBA
// at PCI function hba (host number host), with SCSI device state state.
func (tr *Tree) SCSIDisk(name, devno, hba, host, tid, state string) {
	tr.t.Helper()
	hctl := host + ":0:" + tid + ":0"
	sdev := "devices/pci0000:00/" + hba + "/virtio" + host + "/host" + host + "/target" + host + ":0:" + tid + "/" + hctl
	tr.File(sdev+"/state", state)
	tr.Block(name, sdev+"/block/"+name, devno)
	tr.Link(sdev+"/block/"+name+"/device", sdev)
}

// DMMap adds dm-<n> named name with uuid (may be empty) over slaves.
func (tr *Tree) DMMap(n, name, uuid string, slaves ...string) {
	tr.t.Helper()
	dev := "devices/virtual/block/dm-" + n
	tr.File(dev+"/dm/name", name)
	tr.File(dev+"/dm/uuid", uuid)
	tr.Block("dm-"+n, dev, "254:"+n)
	tr.Dir(dev + "/slaves")
	for _, s := range slaves {
		real, err := filepath.EvalSymlinks(filepath.Join(tr.Root, "block", s))
		if err != nil {
			tr.t.Fatal(err)
		}
		rel, _ := filepath.Rel(tr.Root, real)
		tr.Link(dev+"/slaves/"+s, rel)
	}
}
