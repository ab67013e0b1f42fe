package collectors

import (
	"fmt"

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

// plainDisks lists the distinct physical disks of a stack that are not
// below an md array: for a stack without md, all of its disks; for LVM over
// md0 and a plain sdc1, sdc, which is needed on its own.
func (d *blockDevice) plainDisks() []*blockDevice {
	seen := map[string]bool{}
	var out []*blockDevice
	var walk func(*blockDevice)
	walk = func(n *blockDevice) {
		switch {
		case n.MD != nil:
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
