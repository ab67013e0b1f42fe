package collectors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
	// MD is set for md arrays.
	MD *mdArray
}

// mdArray is the minimal md state the mounts collector reads from
// /sys/block/mdX/md: enough to inherit an array's redundancy.
type mdArray struct {
	Level      string
	Layout     string
	RaidDisks  int
	ArrayState string
	SyncAction string
	SyncDone   string
	Legs       []mdLeg
}

type mdLeg struct {
	Dev   *blockDevice
	Name  string // kernel name of the component (sda1)
	Slot  int    // -1 when not in a slot (spare, or failed and out)
	State string // raw state file: in_sync, faulty, spare, write_mostly,in_sync, ...
}

var pciAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

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
	if _, err := os.Stat(filepath.Join(dir, "md")); err == nil {
		d.Kind = "md"
		md, err := s.readMD(dir, depth)
		if err != nil {
			return nil, err
		}
		d.MD = md
		for _, l := range md.Legs {
			if l.Dev != nil {
				d.Slaves = append(d.Slaves, l.Dev)
			}
		}
		return d, nil
	}
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "slaves"), err)
	}
	if len(slaves) > 0 {
		d.Kind = "dm"
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
	d.Kind, d.Disk, d.Controller = "disk", name, controllerOf(dir)
	return d, nil
}

// controllerOf returns the last PCI function in a device path: the HBA,
// NVMe controller or virtio function the disk depends on.
func controllerOf(dir string) string {
	parts := strings.Split(dir, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if pciAddress.MatchString(parts[i]) {
			return parts[i]
		}
	}
	return ""
}

func (s sysBlock) readMD(dir string, depth int) (*mdArray, error) {
	mdDir := filepath.Join(dir, "md")
	md := &mdArray{}
	md.Level = readTrim(filepath.Join(mdDir, "level"))
	md.Layout = readTrim(filepath.Join(mdDir, "layout"))
	md.ArrayState = readTrim(filepath.Join(mdDir, "array_state"))
	md.SyncAction = readTrim(filepath.Join(mdDir, "sync_action"))
	md.SyncDone = readTrim(filepath.Join(mdDir, "sync_completed"))
	// raid_disks reads "11 (10)" during a reshape: the first number is the
	// new geometry.
	if f := strings.Fields(readTrim(filepath.Join(mdDir, "raid_disks"))); len(f) > 0 {
		md.RaidDisks, _ = strconv.Atoi(f[0])
	}
	entries, err := os.ReadDir(mdDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", mdDir, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "dev-") {
			continue
		}
		leg := mdLeg{Name: strings.TrimPrefix(e.Name(), "dev-"), Slot: -1}
		legDir := filepath.Join(mdDir, e.Name())
		leg.State = readTrim(filepath.Join(legDir, "state"))
		if n, err := strconv.Atoi(readTrim(filepath.Join(legDir, "slot"))); err == nil {
			leg.Slot = n
		}
		if target, err := filepath.EvalSymlinks(filepath.Join(legDir, "block")); err == nil {
			leg.Name = filepath.Base(target)
		}
		if dev, err := s.resolve(leg.Name, depth+1); err == nil {
			leg.Dev = dev
		}
		md.Legs = append(md.Legs, leg)
	}
	sort.Slice(md.Legs, func(i, j int) bool { return md.Legs[i].Name < md.Legs[j].Name })
	return md, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// physicalDisks lists the distinct physical disks below a device.
func (d *blockDevice) physicalDisks() []*blockDevice {
	seen := map[string]bool{}
	var out []*blockDevice
	var walk func(*blockDevice)
	walk = func(n *blockDevice) {
		if n.Kind == "disk" || (n.Kind == "partition" && len(n.Slaves) == 0) {
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

// mdRequired is how many working members an md level needs. raid10 counts
// the worst case: losing every copy of one stripe is an outage, so only
// copies-1 failures are tolerated whatever the disk count.
func mdRequired(level string, raidDisks int, layout string) int {
	switch level {
	case "raid1":
		return 1
	case "raid4", "raid5":
		return raidDisks - 1
	case "raid6":
		return raidDisks - 2
	case "raid10":
		return raidDisks - (raid10Copies(layout) - 1)
	}
	return raidDisks // raid0, linear, multipath-less levels: every member needed
}

// raid10Copies decodes the copies from md's raid10 layout number (near
// copies in bits 0-7, far copies in bits 8-15), see drivers/md/raid10.c.
func raid10Copies(layout string) int {
	n, err := strconv.Atoi(layout)
	if err != nil || n <= 0 {
		return 2
	}
	near, far := n&0xff, (n>>8)&0xff
	if c := max(near, 1) * max(far, 1); c > 1 {
		return c
	}
	return 2
}
