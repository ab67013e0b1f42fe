package collectors

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/procfs"

	"github.com/spofwatch/spofwatch/multipath"
	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/sysdev"
)

// MountsOptions configures the mounts collector.
type MountsOptions struct {
	ProcPath string
	SysPath  string
	// Extra mountpoints to watch beside /, /boot, /boot/efi and /var.
	Extra  []string
	Logger *slog.Logger
	// Health, when set, marks members whose disk reports a health problem.
	Health *DiskHealth
}

// Mounts reports each important filesystem as a storage group whose members
// are the disks it lives on.
type Mounts struct {
	opts MountsOptions
}

// NewMounts returns the mounts collector.
func NewMounts(opts MountsOptions) *Mounts { return &Mounts{opts: opts} }

// Name implements Collector.
func (*Mounts) Name() string { return "mounts" }

// defaultMountpoints are watched when they are separate mounts.
var defaultMountpoints = []string{"/", "/boot", "/boot/efi", "/var"}

// Collect implements Collector.
func (m *Mounts) Collect(ctx context.Context) (agent.Result, error) {
	fs, err := procfs.NewFS(m.opts.ProcPath)
	if err != nil {
		return agent.Result{}, fmt.Errorf("open procfs %s: %w", m.opts.ProcPath, err)
	}
	mounts, err := fs.GetProcMounts(1)
	if err != nil {
		// Without access to PID 1 (containers, hidepid) our own view is the
		// next best thing.
		if mounts, err = fs.GetMounts(); err != nil {
			return agent.Result{}, fmt.Errorf("read mountinfo under %s: %w", m.opts.ProcPath, err)
		}
	}
	// The last mount on a mountpoint is the visible one.
	byPoint := map[string]*procfs.MountInfo{}
	for _, mi := range mounts {
		byPoint[mi.MountPoint] = mi
	}
	sb := sysBlock{sys: m.opts.SysPath}
	var res agent.Result
	watch := append(append([]string{}, defaultMountpoints...), m.opts.Extra...)
	seen := map[string]bool{}
	for _, point := range watch {
		if err := ctx.Err(); err != nil {
			return agent.Result{}, err
		}
		point = filepath.Clean(point)
		if seen[point] {
			continue
		}
		seen[point] = true
		mi, ok := byPoint[point]
		isExtra := !slices.Contains(defaultMountpoints, point)
		if !ok {
			if point == "/" || isExtra {
				res.Groups = append(res.Groups, spof.Group{
					ID: "storage/mount/" + mountName(point), Kind: spof.KindStorage, Function: "filesystem " + point,
					UnknownReason: fmt.Sprintf("%s is not a mountpoint in %s/1/mountinfo", point, m.opts.ProcPath),
				})
			}
			continue
		}
		if mi.FSType == "zfs" {
			// A ZFS dataset's redundancy is its pool's, which the zfs
			// collector reports per vdev (storage/zfs/<pool>/...).
			pool, _, _ := strings.Cut(mi.Source, "/")
			res.HostConditions = append(res.HostConditions, spof.Condition{Code: spof.CodeNotice, Severity: spof.SeverityInfo,
				Summary: fmt.Sprintf("%s is on ZFS pool %s: its redundancy is that of the storage/zfs/%s/* groups", point, pool, pool)})
			continue
		}
		res.Groups = append(res.Groups, mountGroup(ctx, sb, mi))
	}
	m.opts.Health.Mark(ctx, res.Groups)
	return res, nil
}

// mountName turns a mountpoint into a group name: / -> root,
// /boot/efi -> boot-efi.
func mountName(point string) string {
	if point == "/" {
		return "root"
	}
	return strings.ReplaceAll(strings.Trim(point, "/"), "/", "-")
}

func mountGroup(ctx context.Context, sb sysBlock, mi *procfs.MountInfo) spof.Group {
	name := mountName(mi.MountPoint)
	g := spof.Group{
		ID:       "storage/mount/" + name,
		Kind:     spof.KindStorage,
		Function: fmt.Sprintf("%s filesystem %s", name, mi.MountPoint),
		Attributes: []spof.Attribute{
			{Key: "source", Value: mi.Source},
			{Key: "fstype", Value: mi.FSType},
		},
	}
	if name == "root" {
		g.Function = "root filesystem /"
	}
	dev, err := resolveMountDevice(sb, mi)
	if err != nil {
		g.UnknownReason = err.Error()
		return g
	}
	mds := dev.findMD()
	if mps := dev.findMultipath(); len(mps) > 0 {
		multipathMembers(ctx, sb, &g, mps, mds, dev.plainDisks())
		return g
	}
	if len(mds) == 0 {
		disks := dev.plainDisks()
		if len(disks) == 0 {
			g.UnknownReason = fmt.Sprintf("%s (%s) is not backed by a physical disk", mi.Source, dev.Name)
			return g
		}
		for _, d := range disks {
			g.Members = append(g.Members, spof.Member{Name: d.Name, State: spof.MemberOK, Domains: diskDomains(d)})
		}
		// A filesystem spanning plain disks needs every one of them.
		g.Required = len(disks)
		return g
	}
	beside := dev.plainDisks()
	if len(mds) == 1 && len(beside) == 0 {
		mdMembers(&g, mds[0])
		// Name the array, so "root filesystem / on md0 (raid1): redundancy
		// lost" leads the operator to the array to repair.
		g.Function += fmt.Sprintf(" on %s (%s)", mds[0].Name, mds[0].MD.Level)
		return g
	}
	// Several branches (LVM over md0 and md1, or over md0 and a plain
	// sdc1): the filesystem needs every branch, so each branch is a member,
	// an array carrying its own verdict as its state. Flattening the legs
	// would call "mirror + plain disk" redundant.
	for _, md := range mds {
		mg := MdGroup(*md.MD, true)
		verdict := spof.Evaluate(spof.Input{Groups: []spof.Group{mg}}).Groups[0].State
		g.Members = append(g.Members, spof.Member{Name: md.Name, State: branchState(verdict), Detail: fmt.Sprintf("array %s", verdict)})
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "array", Value: mg.ID})
	}
	for _, d := range beside {
		g.Members = append(g.Members, spof.Member{Name: d.Name, State: spof.MemberOK, Domains: diskDomains(d)})
	}
	g.Required = len(g.Members)
	return g
}

// branchState is the member state of an array inside a larger stack: it
// works while the array does, at risk once the array has lost redundancy.
func branchState(s spof.GroupState) spof.MemberState {
	switch s {
	case spof.StateRedundant, spof.StateNoRedundancy:
		return spof.MemberOK
	case spof.StateDegraded, spof.StateRedundancyLost:
		return spof.MemberDegraded
	case spof.StateDown:
		return spof.MemberFailed
	}
	return spof.MemberUnknown
}

// resolveMountDevice finds the block device of a mount by its device number,
// falling back to the source path for filesystems with anonymous device
// numbers (btrfs).
func resolveMountDevice(sb sysBlock, mi *procfs.MountInfo) (*blockDevice, error) {
	if !strings.HasPrefix(mi.MajorMinorVer, "0:") {
		return sb.byDevNumber(mi.MajorMinorVer)
	}
	if strings.HasPrefix(mi.Source, "/dev/") {
		return sb.byName(filepath.Base(mi.Source))
	}
	return nil, fmt.Errorf("%s is %s on %q, not a block device: its redundancy is not known here", mi.MountPoint, mi.FSType, mi.Source)
}

func diskDomains(d *blockDevice) map[string]string {
	dom := map[string]string{spof.DomainDisk: d.Disk}
	if d.Controller != "" {
		dom[spof.DomainController] = d.Controller
	}
	return dom
}

// mdMembers fills a group from an md array with the md collector's own
// rules (MdGroup): members are the array's slots, each with the physical
// disk it lives on (and its controller) as failure domains.
func mdMembers(g *spof.Group, dev *blockDevice) {
	mg := MdGroup(*dev.MD, true)
	g.Members = append(g.Members, mg.Members...)
	g.Required += mg.Required
	g.Attributes = append(g.Attributes, spof.Attribute{Key: "array", Value: mg.ID})
	if mg.DownReason != "" {
		g.DownReason = mg.DownReason
	}
	if mg.UnknownReason != "" {
		g.UnknownReason = mg.UnknownReason
	}
}

// multipathMembers fills the group of a filesystem on multipath devices.
// On one multipath device alone, the filesystem has its paths'
// redundancy: the members are the paths, judged and given their domains
// (hba, controller) exactly as the multipath collector does, so one HBA
// behind every path is a shared_failure_domain of the mount too. Beside
// other branches (LVM over a multipath LUN and an md array), each branch
// is a member carrying its own verdict, as for md.
func multipathMembers(ctx context.Context, sb sysBlock, g *spof.Group, mps, mds, beside []*blockDevice) {
	paths := make([]spof.Group, len(mps))
	for i, mp := range mps {
		pg, err := multipathGroupOf(ctx, sb, mp.Name)
		if err != nil {
			g.UnknownReason = fmt.Sprintf("paths of %s: %v", mp.Name, err)
			return
		}
		paths[i] = pg
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "paths", Value: pg.ID})
	}
	if len(mps) == 1 && len(mds) == 0 && len(beside) == 0 {
		g.Members, g.Required = paths[0].Members, paths[0].Required
		g.Function += fmt.Sprintf(" on %s (multipath)", mps[0].Name)
		return
	}
	for i, mp := range mps {
		verdict := spof.Evaluate(spof.Input{Groups: []spof.Group{paths[i]}}).Groups[0].State
		g.Members = append(g.Members, spof.Member{Name: mp.Name, State: branchState(verdict), Detail: fmt.Sprintf("paths %s", verdict)})
	}
	for _, md := range mds {
		mg := MdGroup(*md.MD, true)
		verdict := spof.Evaluate(spof.Input{Groups: []spof.Group{mg}}).Groups[0].State
		g.Members = append(g.Members, spof.Member{Name: md.Name, State: branchState(verdict), Detail: fmt.Sprintf("array %s", verdict)})
	}
	for _, d := range beside {
		g.Members = append(g.Members, spof.Member{Name: d.Name, State: spof.MemberOK, Domains: diskDomains(d)})
	}
	g.Required = len(g.Members)
}

// multipathGroupOf reads the path group of one NVMe head or dm map.
func multipathGroupOf(ctx context.Context, sb sysBlock, name string) (spof.Group, error) {
	sys := sysdev.New(sb.sys)
	if strings.HasPrefix(name, "dm-") {
		maps, err := readDMMaps(ctx, sys, "")
		if err != nil {
			return spof.Group{}, err
		}
		for _, m := range maps {
			if m.Device == name {
				return DMPathGroup(m, nil), nil
			}
		}
		return spof.Group{}, fmt.Errorf("%s is not a multipath map", name)
	}
	heads, err := multipath.ReadNVMe(sys)
	if err != nil {
		return spof.Group{}, err
	}
	for _, h := range heads {
		if h.Name == name {
			g, _ := NVMePathGroup(h, nil)
			return g, nil
		}
	}
	return spof.Group{}, fmt.Errorf("no NVMe namespace head %s", name)
}
