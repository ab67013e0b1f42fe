// Package multipath reads storage path topology: NVMe native multipath
// (namespace heads and the controllers that reach them, from sysfs) and
// device-mapper multipath maps (their path devices, from sysfs and the
// multipath target's status line). It returns typed state only; the
// collectors adapter turns it into redundancy groups.
package multipath

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/spofwatch/spofwatch/sysdev"
)

// NVMe controller states as the kernel writes them to
// /sys/class/nvme/nvmeY/state (drivers/nvme/host/sysfs.c,
// nvme_sysfs_show_state; core.c before 6.8): new, live, resetting,
// connecting, deleting, "deleting (no IO)", dead, "unknown state".
const CtrlLive = "live"

// ANA states as the kernel writes them to the per-path namespace's
// ana_state (drivers/nvme/host/multipath.c, nvme_ana_state_names). The
// attribute is hidden when the controller does not use ANA
// (sysfs.c nvme_ns_attrs_are_visible: !nvme_ctrl_use_ana), as with QEMU's
// emulated controller.
const (
	ANAOptimized      = "optimized"
	ANANonOptimized   = "non-optimized"
	ANAInaccessible   = "inaccessible"
	ANAPersistentLoss = "persistent-loss"
	ANAChange         = "change"
)

// NVMeHead is one multipath namespace head: the block device the host
// uses (/dev/nvme0n1) and the paths (controllers) that reach it.
type NVMeHead struct {
	// Name is the head's block device name, nvme<subsys>n<ns>.
	Name string
	// Subsystem is nvme-subsysN; NQN is its subsysnqn.
	Subsystem string
	NQN       string
	Paths     []NVMePath
}

// NVMePath is one controller of the head's subsystem.
type NVMePath struct {
	// Controller is nvmeY.
	Controller string
	// Node is the hidden per-path namespace block device nvmeXcYnM; empty
	// when this controller does not (or no longer) expose the namespace.
	Node string
	// State is the controller state (live, connecting, ...).
	State string
	// Transport is pcie, tcp, rdma, fc or loop.
	Transport string
	// Address is the controller's address attribute: the PCI function for
	// pcie, traddr=...,trsvcid=... for fabrics.
	Address string
	// PCI is the PCI function the controller is, "" for fabrics.
	PCI string
	// ANAState is the per-path ANA state; "" when not reported.
	ANAState string
	// Err says what could not be read about this path.
	Err string
}

// Fabrics reports whether the path runs over a fabric, not local PCIe.
func (p NVMePath) Fabrics() bool { return p.Transport != "" && p.Transport != "pcie" }

var (
	ctrlName = regexp.MustCompile(`^nvme[0-9]+$`)
	headName = regexp.MustCompile(`^nvme([0-9]+)n([0-9]+)$`)
	subsName = regexp.MustCompile(`^nvme-subsys([0-9]+)$`)
)

// ReadNVMe reads every NVMe subsystem's namespace heads under the sysfs
// root. No nvme-subsystem class (no NVMe, or a kernel without
// CONFIG_NVME_MULTIPATH) is no heads and no error.
func ReadNVMe(sys sysdev.Sys) ([]NVMeHead, error) {
	cls, err := sys.OpenDir("class/nvme-subsystem")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := cls.Names()
	cls.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var heads []NVMeHead
	for _, sub := range names {
		m := subsName.FindStringSubmatch(sub)
		if m == nil {
			continue
		}
		hs, err := readSubsystem(sys, sub, m[1])
		if err != nil {
			return nil, err
		}
		heads = append(heads, hs...)
	}
	return heads, nil
}

func readSubsystem(sys sysdev.Sys, sub, instance string) ([]NVMeHead, error) {
	root, err := sys.Open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// Every path is opened from the root: the subsystem's controller links
	// lead out of the subsystem's own directory (to the PCI or fabrics
	// device), which a reader confined beneath that directory refuses.
	base := "class/nvme-subsystem/" + sub
	d, err := root.OpenDir(base)
	if err != nil {
		return nil, err
	}
	names, err := d.Names()
	nqn, _ := d.Read("subsysnqn")
	d.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var ctrls, heads []string
	for _, n := range names {
		switch {
		case ctrlName.MatchString(n):
			ctrls = append(ctrls, n)
		case headName.MatchString(n):
			heads = append(heads, n)
		}
	}
	var paths []NVMePath
	for _, c := range ctrls {
		p, gone := readController(root, base+"/"+c, c)
		if !gone {
			paths = append(paths, p)
		}
	}
	var out []NVMeHead
	for _, h := range heads {
		m := headName.FindStringSubmatch(h)
		if m[1] != instance {
			continue // not this subsystem's head (cannot happen in a real tree)
		}
		head := NVMeHead{Name: h, Subsystem: sub, NQN: nqn}
		for _, p := range paths {
			p.Node = pathNode(p.Controller, instance, m[2])
			pd, err := root.OpenDir("block/" + p.Node)
			if err != nil {
				p.Node = ""
				head.Paths = append(head.Paths, p)
				continue
			}
			ana, err := pd.Read("ana_state")
			pd.Close()
			switch {
			case err == nil:
				p.ANAState = ana
			case !errors.Is(err, fs.ErrNotExist):
				p.Err = joinErr(p.Err, fmt.Sprintf("ana_state: %v", err))
			}
			if p.PCI == "" && !p.Fabrics() {
				if c, err := sys.ControllerOf(p.Node); err == nil {
					p.PCI = c
				}
			}
			head.Paths = append(head.Paths, p)
		}
		out = append(out, head)
	}
	return out, nil
}

// pathNode is the hidden per-path namespace name, nvme<subsys>c<ctrl>n<ns>
// (drivers/nvme/host/multipath.c nvme_set_disk_name / core.c).
func pathNode(ctrl, subsys, ns string) string {
	return "nvme" + subsys + "c" + strings.TrimPrefix(ctrl, "nvme") + "n" + ns
}

// readController reads one controller of a subsystem. gone is set when
// it vanished while we looked: a hot-unplugged controller's link stays in
// the subsystem directory until its last reference drops, after the
// device itself and its uevents are gone (seen in the test/vm guest), so a
// listed link that leads nowhere is a removed path, not an unreadable one.
func readController(root *sysdev.Dir, rel, name string) (p NVMePath, gone bool) {
	p = NVMePath{Controller: name}
	cd, err := root.OpenDir(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return p, true
	}
	if err != nil {
		p.Err = err.Error()
		return p, false
	}
	defer cd.Close()
	if p.State, err = cd.Read("state"); errors.Is(err, fs.ErrNotExist) {
		return p, true
	} else if err != nil {
		p.Err = joinErr(p.Err, fmt.Sprintf("state: %v", err))
	}
	p.Transport, _ = cd.Read("transport")
	p.Address, _ = cd.Read("address")
	if a, ok := sysdev.ParsePCIAddr(p.Address); ok {
		p.PCI = a.String()
	}
	return p, false
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
