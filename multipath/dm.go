package multipath

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"slices"
	"strings"

	"github.com/spofwatch/spofwatch/internal/boundedexec"
	"github.com/spofwatch/spofwatch/sysdev"
)

// MpathUUIDPrefix marks the maps multipathd (and kpartx's users) create:
// the DM uuid is "mpath-<wwid>".
const MpathUUIDPrefix = "mpath-"

// DMDevice is one device-mapper device as sysfs shows it.
type DMDevice struct {
	// Device is the kernel name, dm-N; DevNo its major:minor.
	Device string
	DevNo  string
	// Name and UUID are dm/name and dm/uuid (uuid empty unless the
	// creator set one).
	Name string
	UUID string
	// Slaves are the devices it is built on.
	Slaves []string
}

// ListDM lists every device-mapper device under the sysfs root.
func ListDM(sys sysdev.Sys) ([]DMDevice, error) {
	root, err := sys.Open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	bd, err := root.OpenDir("block")
	if err != nil {
		return nil, err
	}
	names, err := bd.Names()
	bd.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []DMDevice
	for _, n := range names {
		if !strings.HasPrefix(n, "dm-") {
			continue
		}
		d, err := root.OpenDir("block/" + n)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we listed
			}
			return nil, err
		}
		dev := DMDevice{Device: n}
		dev.DevNo, _ = d.Read("dev")
		dev.Name, _ = d.Read("dm/name")
		dev.UUID, _ = d.Read("dm/uuid")
		if sl, err := d.OpenDir("slaves"); err == nil {
			dev.Slaves, _ = sl.Names()
			sl.Close()
			slices.Sort(dev.Slaves)
		}
		d.Close()
		out = append(out, dev)
	}
	return out, nil
}

// DMSetup runs `dmsetup status --target multipath`, the one call that
// returns every multipath map's path states. The device-mapper ioctl
// behind it needs CAP_SYS_ADMIN (drivers/md/dm-ioctl.c ctl_ioctl).
type DMSetup struct {
	// Path is the dmsetup binary (default "dmsetup" in PATH).
	Path string
}

// ErrNoDMSetup means dmsetup is not installed.
var ErrNoDMSetup = errors.New("dmsetup not found")

// maxDMSetupOutput bounds dmsetup's output: about 60 bytes per path.
const maxDMSetupOutput = 1 << 20

// Status returns the multipath status of every map by name; sole is the
// name of the system's only device-mapper device, "" when there are more.
func (d DMSetup) Status(ctx context.Context, sole string) (map[string]DMStatus, error) {
	path := d.Path
	if path == "" {
		path = "dmsetup"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDMSetup, err)
	}
	out, err := boundedexec.Cmd{Path: bin, Args: []string{"status", "--target", "multipath"}, MaxOutput: maxDMSetupOutput,
		Env: []string{"LC_ALL=C", "DM_DISABLE_UDEV=1"}}.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("dmsetup status --target multipath: %w: %s", err, clip(strings.TrimSpace(string(out.Stderr))))
	}
	return ParseDMSetupStatus(out.Stdout, sole)
}

// DMMap is one multipath map with its paths.
type DMMap struct {
	DMDevice
	// Status is the target's status; nil when it could not be read, with
	// StatusErr saying why.
	Status    *DMStatus
	StatusErr string
	Paths     []DMPath
}

// DMPath is one path device of a map.
type DMPath struct {
	// Device is the block device (sdb); DevNo its major:minor.
	Device string
	DevNo  string
	// Group is the 1-based path group, GroupState its A/E/D state; 0 and
	// "" when the status is unknown.
	Group      int
	GroupState string
	// InStatus is set when the multipath status lists the path; then
	// Active and FailCount are the target's view.
	InStatus  bool
	Active    bool
	FailCount int
	// DeviceState is the transport's state of the path device
	// (/sys/block/sdX/device/state: running, offline, blocked,
	// transport-offline, ...; "live" etc. for an NVMe controller); empty
	// when the device has none.
	DeviceState string
	// HBA is the PCI function of the adapter the path goes through.
	HBA string
	Err string
}

// IsMultipath reports whether a device-mapper device is a multipath map:
// its uuid says so (multipathd), or the multipath status lists it (a map
// made by `dmsetup create` without --uuid).
func IsMultipath(d DMDevice, status map[string]DMStatus) bool {
	if strings.HasPrefix(d.UUID, MpathUUIDPrefix) {
		return true
	}
	_, ok := status[d.Name]
	return ok && d.Name != ""
}

// BuildDM joins the sysfs devices with the multipath status (nil when it
// could not be read, statusErr saying why) into maps with their paths.
func BuildDM(sys sysdev.Sys, devs []DMDevice, status map[string]DMStatus, statusErr error) []DMMap {
	var out []DMMap
	for _, d := range devs {
		if !IsMultipath(d, status) {
			continue
		}
		m := DMMap{DMDevice: d}
		st, ok := status[d.Name]
		switch {
		case ok:
			m.Status = &st
			for gi, g := range st.Groups {
				for _, p := range g.Paths {
					dp := DMPath{DevNo: p.Dev, Group: gi + 1, GroupState: g.State, InStatus: true, Active: p.Active, FailCount: p.FailCount}
					if name, err := sys.BlockByDevNumber(p.Dev); err == nil {
						dp.Device = name
					} else {
						dp.Err = fmt.Sprintf("device %s: %v", p.Dev, err)
					}
					m.Paths = append(m.Paths, dp)
				}
			}
		case statusErr != nil:
			m.StatusErr = statusErr.Error()
		default:
			m.StatusErr = "dmsetup lists no multipath target for " + d.Name
		}
		if m.Status == nil {
			// Without the status, the slaves are the paths; their state in
			// the target is unknown.
			for _, s := range d.Slaves {
				m.Paths = append(m.Paths, DMPath{Device: s})
			}
		}
		for i := range m.Paths {
			readPathDevice(sys, &m.Paths[i])
		}
		out = append(out, m)
	}
	return out
}

// readPathDevice adds the transport state and the HBA of a path device.
func readPathDevice(sys sysdev.Sys, p *DMPath) {
	if p.Device == "" {
		return
	}
	st, err := sys.ReadAttr("block/" + p.Device + "/device/state")
	switch {
	case err == nil:
		p.DeviceState = st
	case !errors.Is(err, fs.ErrNotExist):
		p.Err = joinErr(p.Err, fmt.Sprintf("device state: %v", err))
	}
	if c, err := sys.ControllerOf(p.Device); err == nil {
		p.HBA = c
	}
}
