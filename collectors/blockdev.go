package collectors

import (
	"fmt"
	"strings"

	"github.com/spofwatch/spofwatch/multipath"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/sysdev"
)

// blockDevice is one node of a storage stack resolved through sysfs: a
// filesystem's device and, below it, what it is built from.
type blockDevice struct {
	Name string // kernel name: sda1, dm-0, md0, nvme0n1p2
	// Kind is disk, partition, md, dm or virtual (loop, zram, ...).
	Kind string
	// Disk is the physical disk a partition or disk belongs to.
	Disk string
	// Controller is the PCI function the disk hangs off, when known.
	Controller string
	// Slaves are the devices this one is built from (dm, md).
	Slaves []*blockDevice
	// MD is set for md arrays: the raid package's full reading, so the
	// mounts collector judges an array exactly as the md collector does.
	MD *raid.MdArray
	// Multipath is set for an NVMe multipath namespace head or a
	// device-mapper multipath map: its slaves (if any) are paths to one
	// LUN, not disks that are each needed.
	Multipath bool
}

// sysBlock resolves block devices under one sysfs root.
type sysBlock struct {
	sys string
}

// byDevNumber resolves "major:minor" through /sys/dev/block.
func (s sysBlock) byDevNumber(devno string) (*blockDevice, error) {
	name, err := sysdev.New(s.sys).BlockByDevNumber(devno)
	if err != nil {
		return nil, err
	}
	return s.resolve(name, 0)
}

// byName resolves a kernel device name (sda1, dm-0).
func (s sysBlock) byName(name string) (*blockDevice, error) { return s.resolve(name, 0) }

const maxStackDepth = 16

func (s sysBlock) resolve(name string, depth int) (*blockDevice, error) {
	if depth > maxStackDepth {
		return nil, fmt.Errorf("block device stack deeper than %d at %s (loop in slaves?)", maxStackDepth, name)
	}
	b, err := sysdev.New(s.sys).Block(name)
	if err != nil {
		return nil, err
	}
	d := &blockDevice{Name: name, Kind: string(b.Kind)}
	if d.Multipath = s.isMultipath(b); d.Multipath {
		// The paths are read by the multipath source (mountGroup), with
		// the multipath collector's rules.
		return d, nil
	}
	switch b.Kind {
	case sysdev.KindPartition:
		pd, err := s.resolve(b.Parent, depth+1)
		if err != nil {
			return nil, fmt.Errorf("parent of partition %s: %w", name, err)
		}
		d.Disk, d.Controller = pd.Disk, pd.Controller
		// A partition of an md array or dm device inherits its stack.
		if pd.Kind != "disk" {
			d.Slaves = []*blockDevice{pd}
		}
		return d, nil
	case sysdev.KindDisk:
		d.Disk, d.Controller = name, b.Controller
		return d, nil
	case sysdev.KindMD:
		arr := raid.ReadMdArray(s.sys, name)
		d.MD = &arr
	}
	for _, sl := range b.Slaves {
		sd, err := s.resolve(sl, depth+1)
		if err != nil {
			return nil, fmt.Errorf("slave %s of %s: %w", sl, name, err)
		}
		d.Slaves = append(d.Slaves, sd)
	}
	return d, nil
}

// isMultipath reports whether a block device is a multipath head or map:
// an NVMe head sits under its subsystem (devices/virtual/nvme-subsystem),
// a dm-multipath map made by multipathd has a dm uuid "mpath-<wwid>".
func (s sysBlock) isMultipath(b sysdev.Block) bool {
	sys := sysdev.New(s.sys)
	switch b.Kind {
	case sysdev.KindVirtual:
		_, err := sys.ReadAttr("class/nvme-subsystem/" + subsystemOf(b.Name) + "/" + b.Name + "/dev")
		return err == nil
	case sysdev.KindDM:
		uuid, err := sys.ReadAttr("class/block/" + b.Name + "/dm/uuid")
		return err == nil && strings.HasPrefix(uuid, multipath.MpathUUIDPrefix)
	}
	return false
}

// subsystemOf names the NVMe subsystem of a head: nvme3n1 -> nvme-subsys3.
func subsystemOf(head string) string {
	n, _, _ := strings.Cut(strings.TrimPrefix(head, "nvme"), "n")
	return "nvme-subsys" + n
}

// findMultipath returns the multipath devices in a stack, top-most first.
func (d *blockDevice) findMultipath() []*blockDevice {
	var out []*blockDevice
	var walk func(*blockDevice)
	walk = func(n *blockDevice) {
		if n.Multipath {
			out = append(out, n)
			return
		}
		for _, s := range n.Slaves {
			walk(s)
		}
	}
	walk(d)
	return out
}

// plainDisks lists the distinct physical disks of a stack that are not
// below an md array: for a stack without md, all of its disks; for LVM over
// md0 and a plain sdc1, sdc, which is needed on its own.
func (d *blockDevice) plainDisks() []*blockDevice {
	seen := map[string]bool{}
	var out []*blockDevice
	var walk func(*blockDevice)
	walk = func(n *blockDevice) {
		switch {
		case n.MD != nil || n.Multipath:
			return
		case n.Kind == "disk" || (n.Kind == "partition" && len(n.Slaves) == 0):
			if !seen[n.Disk] {
				seen[n.Disk] = true
				out = append(out, &blockDevice{Name: n.Disk, Kind: "disk", Disk: n.Disk, Controller: n.Controller})
			}
			return
		}
		for _, s := range n.Slaves {
			walk(s)
		}
	}
	walk(d)
	return out
}

// findMD returns the md arrays in a stack, top-most first.
func (d *blockDevice) findMD() []*blockDevice {
	var out []*blockDevice
	var walk func(*blockDevice)
	walk = func(n *blockDevice) {
		if n.MD != nil {
			out = append(out, n)
			return
		}
		for _, s := range n.Slaves {
			walk(s)
		}
	}
	walk(d)
	return out
}
