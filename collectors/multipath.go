package collectors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/multipath"
	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/sysdev"
)

// DomainHBA is the failure domain of a SAN path: the PCI function of the
// host adapter it goes through. Two paths through one HBA share it, and
// the model's domain rule raises shared_failure_domain (at warning: unlike
// the onboard disk controller, a second HBA is exactly what multipath
// cabling is bought for).
const DomainHBA = "hba"

// MultipathOptions configures the multipath collector.
type MultipathOptions struct {
	SysPath string
	// DMSetupPath is the dmsetup binary (default "dmsetup" in PATH).
	DMSetupPath string
	Logger      *slog.Logger
}

// Multipath reports storage path redundancy: each NVMe multipath
// namespace head and each device-mapper multipath map is a group
// storage/path/<name> whose members are its paths; one working path is
// enough.
type Multipath struct {
	opts MultipathOptions
	sys  sysdev.Sys
	mem  pathMemory
}

// NewMultipath returns the multipath collector.
func NewMultipath(opts MultipathOptions) *Multipath {
	return &Multipath{opts: opts, sys: sysdev.New(opts.SysPath)}
}

// Name implements Collector.
func (*Multipath) Name() string { return "multipath" }

// Collect implements Collector.
func (c *Multipath) Collect(ctx context.Context) (agent.Result, error) {
	heads, nvmeErr := multipath.ReadNVMe(c.sys)
	maps, dmErr := readDMMaps(ctx, c.sys, c.opts.DMSetupPath)
	if nvmeErr != nil && dmErr != nil {
		return agent.Result{}, fmt.Errorf("read NVMe subsystems: %w; read device-mapper: %w", nvmeErr, dmErr)
	}
	var res agent.Result
	live := map[string]bool{}
	for _, h := range heads {
		if g, ok := NVMePathGroup(h, &c.mem); ok {
			res.Groups = append(res.Groups, g)
			live[g.ID] = true
		}
	}
	for _, m := range maps {
		g := DMPathGroup(m, &c.mem)
		res.Groups = append(res.Groups, g)
		live[g.ID] = true
	}
	c.mem.keepOnly(live)
	// One source failing must not hide the other's groups: its failure is
	// an error only when it leaves nothing to report.
	for _, err := range []error{nvmeErr, dmErr} {
		if err != nil {
			if len(res.Groups) == 0 {
				return agent.Result{}, err
			}
			c.logger().Warn("multipath source failed", "err", err)
		}
	}
	if len(res.Groups) == 0 {
		return agent.Result{}, agent.ErrNoData
	}
	return res, nil
}

func (c *Multipath) logger() *slog.Logger {
	if c.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.opts.Logger
}

// readDMMaps lists the device-mapper multipath maps. dmsetup runs only
// when there is a device-mapper device at all; its failure (not installed,
// no CAP_SYS_ADMIN) leaves the maps known by uuid with unknown path states.
func readDMMaps(ctx context.Context, sys sysdev.Sys, dmsetup string) ([]multipath.DMMap, error) {
	devs, err := multipath.ListDM(sys)
	if err != nil || len(devs) == 0 {
		return nil, err
	}
	sole := ""
	if len(devs) == 1 {
		sole = devs[0].Name
	}
	status, statusErr := multipath.DMSetup{Path: dmsetup}.Status(ctx, sole)
	if statusErr != nil && ctx.Err() != nil {
		return nil, statusErr
	}
	return multipath.BuildDM(sys, devs, status, statusErr), nil
}

// pathMemory remembers how many paths each group has shown at most since
// the collector started, and their names, so a path that vanished (a
// hot-unplugged controller leaves the subsystem; multipathd drops a
// removed device from the map) is reported missing instead of shrinking
// the group to "no redundancy". A path that comes back, under its old name
// or a new one (a re-created controller gets a new instance number), fills
// the gap again. A reload forgets, like every removal the scheduler keeps.
type pathMemory struct {
	mu   sync.Mutex
	seen map[string]*pathRecord
}

type pathRecord struct {
	most  int      // the most paths seen at once
	names []string // every path name seen, latest first
}

// merge records the paths seen now and returns the names of the missing
// ones: as many as the group has fewer paths than it had at most, named
// after the most recently seen paths that are gone.
func (m *pathMemory) merge(group string, now []string) (gone []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]*pathRecord{}
	}
	r := m.seen[group]
	if r == nil {
		r = &pathRecord{}
		m.seen[group] = r
	}
	r.most = max(r.most, len(now))
	names := slices.Clone(now)
	for _, n := range r.names {
		if !slices.Contains(now, n) {
			names = append(names, n)
		}
	}
	r.names = names
	for _, n := range r.names[len(now):] {
		if len(gone) == r.most-len(now) {
			break
		}
		gone = append(gone, n)
	}
	return gone
}

// most is the most paths the group has shown at once.
func (m *pathMemory) most(group string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.seen[group]; r != nil {
		return r.most
	}
	return 0
}

// known reports whether the group has shown the path before.
func (m *pathMemory) known(group, name string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.seen[group]
	return r != nil && slices.Contains(r.names, name)
}

// keepOnly forgets groups that are no longer reported at all (their
// vanishing is the scheduler's to report).
func (m *pathMemory) keepOnly(live map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for g := range m.seen {
		if !live[g] {
			delete(m.seen, g)
		}
	}
}

// NVMePathGroup turns a namespace head into a path group; ok is false for a
// head that is not multipath (the group is still built, for the mounts
// collector, whose filesystem on it needs it): a single local PCIe controller (every NVMe
// disk has a head when the kernel's native multipath is on) is a plain
// disk, not a path group, unless it had more paths before. A single
// fabrics path is a group (with no redundancy): the fabric is there to be
// doubled. The group is named by the head's block device (nvme0n1), the
// name the operator finds in /dev, mounts and lsblk; it carries the
// subsystem's number, so it is as unique as nvme-subsys0n1 would be.
func NVMePathGroup(h multipath.NVMeHead, mem *pathMemory) (spof.Group, bool) {
	id := "storage/path/" + h.Name
	g := spof.Group{ID: id, Kind: spof.KindStorage, Function: fmt.Sprintf("paths to %s (%s)", h.Name, h.Subsystem), Required: 1,
		Attributes: []spof.Attribute{{Key: "subsystem", Value: h.Subsystem}, {Key: "nqn", Value: h.NQN}}}
	fabrics := false
	var names []string
	for _, p := range h.Paths {
		fabrics = fabrics || p.Fabrics()
		if p.Node == "" && !mem.known(id, p.Controller) {
			// A live controller that does not expose this namespace is no
			// path to it (a private namespace of another controller).
			if p.State == multipath.CtrlLive || p.State == "" {
				continue
			}
		}
		g.Members = append(g.Members, nvmePathMember(p))
		names = append(names, p.Controller)
	}
	var gone []string
	if mem != nil {
		gone = mem.merge(id, names)
	}
	for _, n := range gone {
		g.Members = append(g.Members, spof.Member{Name: n, State: spof.MemberMissing,
			Detail: fmt.Sprintf("controller %s is gone from %s", n, h.Subsystem)})
	}
	ever := len(g.Members)
	if mem != nil {
		ever = mem.most(id)
	}
	return g, fabrics || ever >= 2
}

// nvmePathMember judges one controller as a path. Only a live controller
// carries I/O (drivers/nvme/host/multipath.c nvme_path_is_disabled). ANA
// optimized and non-optimized are both working paths: the kernel uses a
// non-optimized path when no optimized one is left, so it is redundancy,
// if slower. Inaccessible and persistent-loss are failed; change (a
// transition under way, during which the kernel sends no I/O there) is
// unknown until it settles. No ANA state (a controller without ANA, as
// QEMU's) leaves the controller state to decide.
func nvmePathMember(p multipath.NVMePath) spof.Member {
	m := spof.Member{Name: p.Controller, Domains: map[string]string{}}
	switch {
	case p.PCI != "":
		m.Domains[spof.DomainController] = p.PCI
	case p.Address != "":
		m.Domains[spof.DomainController] = p.Transport + " " + p.Address
	}
	switch {
	case p.State == "":
		m.State, m.Detail = spof.MemberUnknown, fmt.Sprintf("controller state unreadable: %s", p.Err)
	case p.State != multipath.CtrlLive:
		m.State, m.Detail = spof.MemberFailed, fmt.Sprintf("controller %s is %s", p.Controller, p.State)
	case p.Node == "":
		m.State, m.Detail = spof.MemberFailed, fmt.Sprintf("controller %s no longer exposes the namespace", p.Controller)
	}
	if m.State != "" {
		return m
	}
	switch p.ANAState {
	case "", multipath.ANAOptimized:
		m.State = spof.MemberOK
	case multipath.ANANonOptimized:
		m.State, m.Detail = spof.MemberOK, "ANA non-optimized"
	case multipath.ANAInaccessible, multipath.ANAPersistentLoss:
		m.State, m.Detail = spof.MemberFailed, "ANA "+p.ANAState
	case multipath.ANAChange:
		m.State, m.Detail = spof.MemberUnknown, "ANA state change in progress"
	default:
		m.State, m.Detail = spof.MemberUnknown, fmt.Sprintf("ANA state %q", p.ANAState)
	}
	return m
}

// DMPathGroup turns a device-mapper multipath map into a path group,
// named by the map's name (its wwid when it has none).
func DMPathGroup(m multipath.DMMap, mem *pathMemory) spof.Group {
	name := m.Name
	if name == "" {
		name = m.UUID[len(multipath.MpathUUIDPrefix):]
	}
	id := "storage/path/" + name
	g := spof.Group{ID: id, Kind: spof.KindStorage, Function: fmt.Sprintf("paths to %s (%s)", name, m.Device), Required: 1,
		Attributes: []spof.Attribute{{Key: "device", Value: m.Device}}}
	if m.UUID != "" {
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "uuid", Value: m.UUID})
	}
	if m.Status != nil {
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "path_groups", Value: fmt.Sprint(len(m.Status.Groups))})
	}
	var names []string
	for _, p := range m.Paths {
		mb := dmPathMember(p, m.StatusErr)
		g.Members = append(g.Members, mb)
		names = append(names, mb.Name)
	}
	if mem != nil {
		for _, n := range mem.merge(id, names) {
			g.Members = append(g.Members, spof.Member{Name: n, State: spof.MemberMissing, Detail: fmt.Sprintf("path %s is gone from %s", n, name)})
		}
	}
	return g
}

// dmPathMember judges one path: failed in the map, or its device not
// running (offline, blocked, transport-offline: no I/O goes through), is
// failed; without the map's status a running device is unknown, never ok.
func dmPathMember(p multipath.DMPath, statusErr string) spof.Member {
	name := p.Device
	if name == "" {
		name = p.DevNo
	}
	m := spof.Member{Name: name, Domains: map[string]string{}}
	if p.HBA != "" {
		m.Domains[DomainHBA] = p.HBA
	}
	devOK := p.DeviceState == "" || p.DeviceState == "running" || p.DeviceState == multipath.CtrlLive
	switch {
	case p.InStatus && !p.Active:
		m.State, m.Detail = spof.MemberFailed, fmt.Sprintf("failed in the multipath map (fail count %d)", p.FailCount)
	case !devOK:
		m.State, m.Detail = spof.MemberFailed, "device state "+p.DeviceState
	case !p.InStatus:
		m.State, m.Detail = spof.MemberUnknown, "multipath path state unreadable: "+statusErr
	case p.Err != "":
		m.State, m.Detail = spof.MemberUnknown, p.Err
	default:
		m.State = spof.MemberOK
		if p.GroupState == "D" {
			m.Detail = fmt.Sprintf("in disabled path group %d", p.Group)
		}
	}
	return m
}
