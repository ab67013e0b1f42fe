package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/diskhealth"

	"github.com/spofwatch/spofwatch/bonding"
	"github.com/spofwatch/spofwatch/collectors"
	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/multipath"
	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

type paths struct {
	proc, sys, root string
	// state is the state directory (--path.state): the history journal.
	state string
	// health is the disk health overlay shared by the storage collectors
	// and the diskhealth collector of one generation; nil when
	// --no-collector.diskhealth. (Not a path: it rides along because every
	// build function already receives paths.)
	health *collectors.DiskHealth
}

// collectorSpec is one row of the collector table: how to build a collector
// from the config, and its default schedule.
type collectorSpec struct {
	name     string
	interval time.Duration
	timeout  time.Duration
	build    func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error)
	// watch, when set, blocks until ctx ends and calls notify on every
	// source event (md events, netlink link changes) for an immediate
	// collection.
	watch func(ctx context.Context, p paths, log *slog.Logger, notify func()) error
}

// watcher is an event source to start beside the scheduler.
type watcher struct {
	name string
	run  func(ctx context.Context) error
}

// collectorTable is every collector spofwatch has, in one visible place.
// Nothing registers itself from an init function.
var collectorTable = []collectorSpec{
	{name: "mounts", interval: 30 * time.Second, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		return collectors.NewMounts(collectors.MountsOptions{ProcPath: p.proc, SysPath: p.sys, Extra: cfg.Mounts.Extra, Logger: log, Health: p.health}), nil
	}},
	{name: "uplink", interval: 30 * time.Second, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		return collectors.NewUplink(collectors.UplinkOptions{ProcPath: p.proc, SysPath: p.sys, Logger: log}), nil
	}, watch: watchLinks},
	{name: "md", interval: 30 * time.Second, timeout: 5 * time.Second,
		build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
			return collectors.NewMdCollector(collectors.MdOptions{ProcPath: p.proc, SysPath: p.sys, Logger: log, Health: p.health}), nil
		},
		watch: watchMdstat},
	{name: "zfs", interval: 30 * time.Second, timeout: 20 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		return collectors.NewZFSCollector(collectors.ZFSOptions{ZpoolPath: cfg.RAID.ZpoolPath, ProcPath: p.proc, Logger: log, Health: p.health}), nil
	}},
	{name: "megaraid", interval: time.Minute, timeout: 30 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		return collectors.NewMegaRAIDCollector(collectors.MegaRAIDOptions{StorcliPath: cfg.RAID.StorcliPath, Logger: log}), nil
	}},
	{name: "bonding", interval: 30 * time.Second, timeout: 5 * time.Second,
		build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
			return collectors.NewBonding(collectors.BondingOptions{SysPath: p.sys, ProcPath: p.proc, Logger: log}), nil
		},
		watch: watchLinks},
	// Disk health of the storage members: the storage collectors read it
	// through p.health (built in buildEntries); this row exports it.
	{name: "diskhealth", interval: 30 * time.Second, timeout: 10 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		return p.health, nil
	}},
	// Paths: NVMe native multipath and dm-multipath, re-read on every
	// kernel uevent of a controller, SCSI device or block device.
	{name: "multipath", interval: 30 * time.Second, timeout: 10 * time.Second,
		build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
			return collectors.NewMultipath(collectors.MultipathOptions{SysPath: p.sys, Logger: log}), nil
		},
		watch: watchPathUevents},
	// One reused BMC session; no trigger (the BMC has no push we can rely on).
	{name: "ipmi", interval: 30 * time.Second, timeout: 10 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		opts := collectors.IPMIOptions{Logger: log}
		if ic := cfg.IPMI; ic != nil {
			opts.Interface, opts.Host, opts.Port = ic.Interface, ic.Host, ic.Port
			opts.Username, opts.Password, opts.CipherSuite = ic.Username, ic.Password, ic.CipherSuite
			opts.PSURequired = ic.PSURequired
		}
		return collectors.NewIPMI(opts)
	}},
	// NUT has no push for read-only clients: poll often, it costs < 1 ms.
	{name: "ups", interval: 5 * time.Second, timeout: 10 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
		opts := collectors.UPSOptions{Logger: log, RootPath: p.root}
		for _, u := range cfg.UPS {
			opts.UPS = append(opts.UPS, collectors.UPSConfig{
				Name: u.Name, Target: u.Target, Username: u.Username, Password: u.Password,
				StartTLS: u.StartTLS, CAFile: u.CAFile, MinRuntime: time.Duration(u.MinRuntime), MaxLoad: u.MaxLoad,
			})
		}
		return collectors.NewUPS(opts)
	}},
}

// watchMdstat re-collects md on every md event: the kernel wakes poll()ers
// of /proc/mdstat, as mdadm --monitor relies on. Without md there is
// nothing to watch.
func watchMdstat(ctx context.Context, p paths, log *slog.Logger, notify func()) error {
	// A new array's last md event can come while it is still inactive
	// (bitmap arrays), and none follows when it starts: look again shortly.
	event, stop := agent.FollowUp(notify, 500*time.Millisecond, 2*time.Second)
	defer stop()
	err := raid.WatchMdstat(ctx, filepath.Join(p.proc, "mdstat"), event)
	if errors.Is(err, fs.ErrNotExist) {
		log.Debug("no mdstat; md events not watched", "err", err)
		return nil
	}
	return err
}

// watchLinks re-collects on every rtnetlink link change: a dead bond slave
// is seen within the kernel's MII detection time, not at the next poll.
func watchLinks(ctx context.Context, p paths, log *slog.Logger, notify func()) error {
	return bonding.WatchLinks(ctx, notify, bonding.WatchOptions{Logger: log})
}

// watchPathUevents re-collects paths on every kernel uevent that may
// change one: a controller or SCSI device removed, a path failed in a
// multipath map (device-mapper's PATH_FAILED change event).
func watchPathUevents(ctx context.Context, p paths, log *slog.Logger, notify func()) error {
	// A removed controller leaves the subsystem's sysfs directory only
	// when its last reference drops, after its uevents: look again shortly.
	event, stop := agent.FollowUp(notify, 500*time.Millisecond, 2*time.Second)
	defer stop()
	return multipath.WatchUevents(ctx, multipath.PathRelevant, event)
}

// hostSpec is the host facts collector: always on, not a user choice.
var hostSpec = collectorSpec{name: "host", interval: 10 * time.Minute, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
	return collectors.NewHost(collectors.HostOptions{ProcPath: p.proc, SysPath: p.sys, RootPath: p.root, Logger: log}), nil
}}

// drillsSpec reads the drill audit log in the state directory: always on
// (a failed drill must never be dropped by a flag), cheap (one stat when
// the log is unchanged), and read-only, so the daemon stays unprivileged.
var drillsSpec = collectorSpec{name: "drills", interval: 15 * time.Second, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) (agent.Collector, error) {
	return collectors.NewDrills(collectors.DrillsOptions{Path: drillLogPath(p.state), Logger: log}), nil
}}

// drillLogPath is the drill audit log in the state directory, where
// `spofwatch drill` appends (auditlog.LogPath).
func drillLogPath(stateDir string) string { return auditlog.LogPath(stateDir) }

// buildEntries builds the enabled collectors with their schedules, and the
// event watchers that trigger them.
func buildEntries(cfg *config.Config, o options, logger *slog.Logger) ([]agent.Entry, []watcher, error) {
	var entries []agent.Entry
	var watchers []watcher
	p := o.paths
	if on, ok := o.enabled["diskhealth"]; !ok || *on {
		p.health = newDiskHealth(p, logger.With("collector", "diskhealth"))
	}
	for _, spec := range append([]collectorSpec{hostSpec, drillsSpec}, collectorTable...) {
		if on, ok := o.enabled[spec.name]; ok && !*on {
			continue
		}
		log := logger.With("collector", spec.name)
		iv, to := cfg.Schedule(spec.name, spec.interval, spec.timeout)
		sched := agent.Schedule{Interval: iv, Timeout: to}
		if spec.watch != nil {
			trigger := make(chan struct{}, 1)
			sched.Trigger = trigger
			watch := spec.watch
			watchers = append(watchers, watcher{name: spec.name, run: func(ctx context.Context) error {
				return watch(ctx, p, log, func() { agent.Notify(trigger) })
			}})
		}
		c, err := spec.build(cfg, p, log)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: collector %s: %w", cfg.File, spec.name, err)
		}
		entries = append(entries, agent.Entry{Collector: c, Schedule: sched})
	}
	return entries, watchers, nil
}

// newDiskHealth builds the disk health overlay. NVMe is read natively;
// SATA/SAS need the smartctl reader (diskhealth.ReadSmartctl), wired here
// once it lands: until then those disks are unknown, never healthy.
func newDiskHealth(p paths, log *slog.Logger) *collectors.DiskHealth {
	smartctl := smartctlPath()
	smart := func(ctx context.Context, dev string) diskhealth.Health {
		return diskhealth.ReadSmartctl(ctx, smartctl, dev)
	}
	return collectors.NewDiskHealth(collectors.DiskHealthOptions{SysPath: p.sys, DevPath: filepath.Join(p.root, "dev"), Smart: smart, Logger: log})
}

// smartctlPath is smartctl on PATH, else where Debian and RHEL install it
// (a unit's PATH may lack sbin); a missing one makes SATA/SAS health
// unknown with the reason, per disk.
func smartctlPath() string {
	if p, err := exec.LookPath("smartctl"); err == nil {
		return p
	}
	return "/usr/sbin/smartctl"
}

// composeFor returns the step that joins groups of several collectors
// before evaluation: power feeds put PSUs in the failure domain of their UPS.
func composeFor(cfg *config.Config) agent.Compose {
	if len(cfg.PowerFeeds) == 0 {
		return nil
	}
	return func(groups []spof.Group) []spof.Group { return collectors.ApplyPowerFeeds(groups, cfg.PowerFeeds) }
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// closeCollectors releases what collectors hold (the BMC session) when a
// generation ends.
func closeCollectors(entries []agent.Entry, log *slog.Logger) {
	for _, e := range entries {
		if c, ok := e.Collector.(io.Closer); ok {
			if err := c.Close(); err != nil {
				log.Debug("close collector", "collector", e.Collector.Name(), "err", err)
			}
		}
	}
}
