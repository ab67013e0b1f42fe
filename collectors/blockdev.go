package collectors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spofwatch/spofwatch/raid"
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

func (s sysBlock) path(parts ...string) string {
	return filepath.Join(append([]string{s.sys}, parts...)...)
}

// byDevNumber resolves "major:minor" through /sys/dev/block.
func (s sysBlock) byDevNumber(devno string) (*blockDevice, error) {
	link := s.path("dev", "block", devno)
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", link, err)
	}
	return s.resolve(filepath.Base(target), 0)
}

// byName resolves a kernel device name (sda1, dm-0).
func (s sysBlock) byName(name string) (*blockDevice, error) { return s.resolve(name, 0) }

// deviceDir returns the real sysfs directory of a block device.
func (s sysBlock) deviceDir(name string) (string, error) {
	link := s.path("class", "block", name)
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", link, err)
	}
	return dir, nil
}

const maxStackDepth = 16

func (s sysBlock) resolve(name string, depth int) (*blockDevice, error) {
	if depth > maxStackDepth {
		return nil, fmt.Errorf("block device stack deeper than %d at %s (loop in slaves?)", maxStackDepth, name)
	}
	dir, err := s.deviceDir(name)
	if err != nil {
		return nil, err
	}
	d := &blockDevice{Name: name}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		d.Kind = "partition"
		parent := filepath.Base(filepath.Dir(dir))
		pd, err := s.resolve(parent, depth+1)
		if err != nil {
			return nil, fmt.Errorf("parent of partition %s: %w", name, err)
		}
		d.Disk, d.Controller = pd.Disk, pd.Controller
		// A partition of an md array or dm device inherits its stack.
		if pd.Kind != "disk" {
			d.Slaves = []*blockDevice{pd}
		}
		return d, nil
	}
	isMD := false
	if _, err := os.Stat(filepath.Join(dir, "md")); err == nil {
		isMD = true
		arr := raid.ReadMdArray(s.sys, name)
		d.MD = &arr
	}
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "slaves"), err)
	}
	if isMD || len(slaves) > 0 {
		d.Kind = "dm"
		if isMD {
			d.Kind = "md"
		}
		for _, sl := range slaves {
			sd, err := s.resolve(sl.Name(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("slave %s of %s: %w", sl.Name(), name, err)
			}
			d.Slaves = append(d.Slaves, sd)
		}
		return d, nil
	}
	if strings.Contains(dir, "/devices/virtual/") {
		d.Kind = "virtual"
		return d, nil
	}
	d.Kind, d.Disk, d.Controller = "disk", name, raid.ControllerOf(dir)
	return d, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
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
