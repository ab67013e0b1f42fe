// Package sysdev reads hardware topology from sysfs for every source: which
// disk a partition, md component or device-mapper volume lives on, which PCI
// controller a block device hangs off, which card a network interface sits
// on, and single attributes, all confined to the configured sysfs root. A
// "controller" or "nic_card" failure domain is the same string whichever
// collector computes it, because this package is the only one that does.
package sysdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Sys is a sysfs tree: the live /sys or a fixture.
type Sys struct {
	root string
}

// New returns the sysfs tree mounted at root; "" means /sys.
func New(root string) Sys {
	if root == "" {
		root = "/sys"
	}
	return Sys{root: filepath.Clean(root)}
}

// Root is the tree's mount point.
func (s Sys) Root() string { return s.root }

// Path joins slash-separated parts below the root, for messages and for
// callers that stat or list.
func (s Sys) Path(rel ...string) string {
	return filepath.Join(append([]string{s.root}, rel...)...)
}

// Open opens the root for confined reads; the caller closes it.
func (s Sys) Open() (*Dir, error) { return Open(s.root) }

// OpenDir opens a directory below the root, confined to the root, for
// reading several attributes; the caller closes it.
func (s Sys) OpenDir(rel string) (*Dir, error) {
	root, err := s.Open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.OpenDir(rel)
}

// ReadAttr reads one attribute below the root (bounded, trimmed, never
// outside the root). Several reads in one directory are cheaper through
// Open and Dir.OpenDir.
func (s Sys) ReadAttr(rel string) (string, error) {
	d, err := s.Open()
	if err != nil {
		return "", err
	}
	defer d.Close()
	return d.Read(rel)
}

// resolve follows every symlink of rel and returns the real path relative to
// the (real) root, slash-separated. A link that leads outside the root is an
// error: nothing outside --path.sysfs names a device.
func (s Sys) resolve(rel string) (string, error) {
	root, err := filepath.EvalSymlinks(s.root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "", err
	}
	r, err := filepath.Rel(root, real)
	if err != nil || !filepath.IsLocal(r) {
		return "", fmt.Errorf("%s leads outside %s", real, s.root)
	}
	return filepath.ToSlash(r), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// BlockKind is what a block device is, as its sysfs directory shows.
type BlockKind string

// Block device kinds.
const (
	KindDisk      BlockKind = "disk"
	KindPartition BlockKind = "partition"
	KindMD        BlockKind = "md"
	KindDM        BlockKind = "dm" // any device built from slaves that is not md
	KindVirtual   BlockKind = "virtual"
)

// Block is one block device and its links to the devices it is made of.
type Block struct {
	Name string
	Kind BlockKind
	// Parent is the device a partition is part of (a disk, an md array).
	Parent string
	// Slaves are the devices an md or dm device is built from.
	Slaves []string
	// Controller is the PCI function a disk hangs off ("" when none).
	Controller string
}

// Block reads what sysfs says about one block device (sda1, dm-0, md0).
func (s Sys) Block(name string) (Block, error) {
	link := s.Path("class", "block", name)
	if !isName(name) {
		return Block{}, fmt.Errorf("invalid block device name %q", name)
	}
	real, err := s.resolve("class/block/" + name)
	if err != nil {
		return Block{}, fmt.Errorf("resolve %s: %w", link, err)
	}
	b := Block{Name: name}
	dir := s.Path(real)
	if exists(filepath.Join(dir, "partition")) {
		b.Kind, b.Parent = KindPartition, path.Base(path.Dir(real))
		return b, nil
	}
	isMD := exists(filepath.Join(dir, "md"))
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Block{}, fmt.Errorf("read %s: %w", filepath.Join(dir, "slaves"), err)
	}
	for _, sl := range slaves {
		b.Slaves = append(b.Slaves, sl.Name())
	}
	switch {
	case isMD:
		b.Kind = KindMD
	case len(slaves) > 0:
		b.Kind = KindDM
	case strings.Contains("/"+real+"/", "/devices/virtual/"):
		b.Kind = KindVirtual
	default:
		b.Kind, b.Controller = KindDisk, controllerIn(real)
	}
	return b, nil
}

// BlockByDevNumber names the block device with number "major:minor"
// (/sys/dev/block).
func (s Sys) BlockByDevNumber(devno string) (string, error) {
	link := s.Path("dev", "block", devno)
	if !isName(devno) {
		return "", fmt.Errorf("invalid device number %q", devno)
	}
	real, err := s.resolve("dev/block/" + devno)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", link, err)
	}
	return path.Base(real), nil
}

// ControllerOf returns the PCI function (HBA, NVMe or RAID controller) the
// named block device hangs off: the deepest one on its device path, "" for
// a device without one (virtual, or an md/dm device).
func (s Sys) ControllerOf(block string) (string, error) {
	if !isName(block) {
		return "", fmt.Errorf("invalid block device name %q", block)
	}
	real, err := s.resolve("class/block/" + block)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", s.Path("class", "block", block), err)
	}
	return controllerIn(real), nil
}

// controllerIn is the last PCI function on a device path below the root.
func controllerIn(real string) string {
	controller := ""
	for _, part := range strings.Split(real, "/") {
		if a, ok := pciAddr(part); ok {
			controller = a.String()
		}
	}
	return controller
}

// DiskOf finds the physical disk under an md component and the PCI address
// of its controller. It follows block/<md>/md/dev-<dev>/block (or
// class/block/<dev>) to the device's path: a partition's parent directory is
// its disk, and the deepest PCI function on the path is the controller. A
// device stacked on exactly one other (dm-crypt over a partition) is
// followed through slaves/. Without sysfs the disk is derived from the name
// (sda1 -> sda, nvme0n1p2 -> nvme0n1).
func (s Sys) DiskOf(md, dev string) (disk, controller string) {
	if !isName(md) || !isName(dev) {
		return DiskFromName(dev), ""
	}
	var real string
	for _, rel := range []string{"block/" + md + "/md/dev-" + dev + "/block", "class/block/" + dev} {
		if r, err := s.resolve(rel); err == nil {
			real = r
			break
		}
	}
	if real == "" {
		return DiskFromName(dev), ""
	}
	for range 4 {
		if exists(filepath.Join(s.Path(real), "partition")) {
			real = path.Dir(real)
		}
		slaves, err := os.ReadDir(filepath.Join(s.Path(real), "slaves"))
		if err != nil || len(slaves) != 1 {
			break
		}
		next, err := s.resolve(real + "/slaves/" + slaves[0].Name())
		if err != nil {
			break
		}
		real = next
	}
	return path.Base(real), controllerIn(real)
}
