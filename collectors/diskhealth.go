package collectors

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/diskhealth"
	"github.com/spofwatch/spofwatch/spof"
)

// DiskHealthOptions configures the disk health overlay and collector.
type DiskHealthOptions struct {
	// SysPath and DevPath are the sysfs and /dev roots ("" = /sys, /dev).
	SysPath, DevPath string
	// Smart reads SATA/SAS disks (smartctl); nil leaves them unknown.
	Smart diskhealth.SmartReader
	// MaxAge is how long a reading serves every collector that asks
	// (default 20 s: below the storage collectors' 30 s interval, so each
	// periodic cycle reads afresh while md events and the mounts
	// collector in the same cycle share one read).
	MaxAge time.Duration
	// ReadTimeout bounds one disk read (default diskhealth.DefaultReadTimeout).
	ReadTimeout time.Duration
	// MarkBudget bounds how long Mark waits for reads (default 2 s, and at
	// most half of what is left of the calling collector's deadline): a
	// dead controller must not make the md collection time out, which
	// would turn the arrays unknown. A read cut short is reported unknown
	// and goes on in the background (one per device).
	MarkBudget time.Duration
	// Forget drops a disk no storage group has named for this long, with
	// its metrics (default 10 m).
	Forget time.Duration
	Logger *slog.Logger
	Now    func() time.Time
	// Read replaces the disk reader (tests); nil means diskhealth.Reader.
	Read func(ctx context.Context, disk string) diskhealth.Health
}

// DiskHealth marks storage members whose disk says it is about to fail,
// and exports each member disk's health. The storage collectors (md,
// mounts, zfs) call Mark on the groups they built; the collector side
// ("diskhealth") exports the metrics of the disks they named. A disk is
// read at most once per MaxAge whoever asks. Safe for concurrent use; a
// nil *DiskHealth marks nothing.
type DiskHealth struct {
	opts   DiskHealthOptions
	logger *slog.Logger
	read   func(ctx context.Context, disk string) diskhealth.Health
	descs  diskHealthDescs

	mu    sync.Mutex
	disks map[string]*diskEntry
}

type diskEntry struct {
	health   diskhealth.Health
	at       time.Time     // when health was read; zero before the first read
	reading  chan struct{} // closed when the read in progress ends; nil when none
	lastSeen time.Time     // last time a storage group named the disk
	logged   string        // the last state logged, so each change logs once
}

type diskHealthDescs struct {
	ok, state, info, used, spare, spareThresh, warning, media, temp, realloc, pending, offlineUnc, powerOn *prometheus.Desc
}

// diskHealthStates is the fixed value set of spofwatch_disk_health_state.
var diskHealthStates = []diskhealth.Verdict{diskhealth.VerdictOK, diskhealth.VerdictDegraded, diskhealth.VerdictFailing, diskhealth.VerdictUnknown}

// diskReadConcurrency bounds parallel reads in one Mark (smartctl forks).
const diskReadConcurrency = 4

// NewDiskHealth builds the overlay and its collector.
func NewDiskHealth(opts DiskHealthOptions) *DiskHealth {
	if opts.MaxAge <= 0 {
		opts.MaxAge = 20 * time.Second
	}
	if opts.MarkBudget <= 0 {
		opts.MarkBudget = 2 * time.Second
	}
	if opts.Forget <= 0 {
		opts.Forget = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	read := opts.Read
	if read == nil {
		read = diskhealth.NewReader(diskhealth.ReaderOptions{SysPath: opts.SysPath, DevPath: opts.DevPath,
			Smart: opts.Smart, Timeout: opts.ReadTimeout, Now: opts.Now}).Read
	}
	disk := []string{"disk"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("spofwatch_disk_"+name, help, labels, nil)
	}
	return &DiskHealth{
		opts: opts, logger: logger, read: read, disks: map[string]*diskEntry{},
		descs: diskHealthDescs{
			ok:          d("health_ok", "1 if the disk reports nothing that predicts failure, 0 if it reports a warning (degraded or failing); absent while its health is unknown.", disk...),
			state:       d("health_state", "Health of a storage member's disk as it reports it: 1 for the current state (ok, degraded, failing, unknown).", "disk", "state"),
			info:        d("info", "Disk identity, value 1.", "disk", "protocol", "model", "serial"),
			used:        d("percentage_used_ratio", "NVMe percentage used: fraction of the rated endurance used, may exceed 1.", disk...),
			spare:       d("available_spare_ratio", "NVMe available spare capacity, as a fraction.", disk...),
			spareThresh: d("available_spare_threshold_ratio", "NVMe available spare threshold below which the drive warns, as a fraction.", disk...),
			warning:     d("critical_warning", "NVMe critical warning byte (bit 0 spare, 1 temperature, 2 reliability, 3 read-only, 4 volatile backup, 5 PMR read-only).", disk...),
			media:       d("media_errors_total", "NVMe media and data integrity errors (unrecovered) over the drive's life.", disk...),
			temp:        d("temperature_celsius", "Disk temperature (NVMe composite temperature).", disk...),
			realloc:     d("reallocated_sectors", "ATA reallocated sectors (attribute 5 raw) or SCSI grown defects.", disk...),
			pending:     d("pending_sectors", "ATA current pending sectors (attribute 197 raw).", disk...),
			offlineUnc:  d("offline_uncorrectable_sectors", "ATA offline uncorrectable sectors (attribute 198 raw).", disk...),
			powerOn:     d("power_on_hours", "Power-on hours the disk reports.", disk...),
		},
	}
}

// Name implements agent.Collector.
func (*DiskHealth) Name() string { return "diskhealth" }

// Collect implements agent.Collector: the metrics of every disk a storage
// group named in the last Forget, read afresh when older than MaxAge. It
// makes no groups: a disk's health shows on the members that sit on it.
func (h *DiskHealth) Collect(ctx context.Context) (agent.Result, error) {
	now := h.opts.Now()
	h.mu.Lock()
	var disks []string
	for name, e := range h.disks {
		if now.Sub(e.lastSeen) > h.opts.Forget && e.reading == nil {
			delete(h.disks, name)
			continue
		}
		disks = append(disks, name)
	}
	h.mu.Unlock()
	slices.Sort(disks)
	healths := h.healthOf(ctx, disks, false)
	res := agent.Result{Descs: []*prometheus.Desc{h.descs.ok, h.descs.state, h.descs.info, h.descs.used, h.descs.spare,
		h.descs.spareThresh, h.descs.warning, h.descs.media, h.descs.temp, h.descs.realloc, h.descs.pending,
		h.descs.offlineUnc, h.descs.powerOn}}
	for _, name := range disks {
		res.Metrics = append(res.Metrics, h.metrics(name, healths[name])...)
	}
	return res, nil
}

// Mark reads the health of every disk the groups' members sit on (the
// member's disk domain) and applies it: a degraded or failing disk makes
// an ok member degraded, with the disk's problems as detail, so Evaluate
// raises member_degraded. A disk whose health is unknown leaves the member
// as its array says: the group's verdict never depends on a health read
// that failed, and unknown is never shown as healthy (it is in the
// disk_health attribute and the metrics). Groups are changed in place.
func (h *DiskHealth) Mark(ctx context.Context, groups []spof.Group) {
	if h == nil {
		return
	}
	kernel := map[string]string{} // disk domain -> kernel name
	for _, g := range groups {
		for _, m := range g.Members {
			if d := m.Domains[spof.DomainDisk]; d != "" && kernel[d] == "" {
				kernel[d] = kernelDiskName(h.opts.DevPath, h.opts.SysPath, d)
			}
		}
	}
	if len(kernel) == 0 {
		return
	}
	budget := h.opts.MarkBudget
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/2)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	healths := h.healthOf(ctx, slices.Compact(slices.Sorted(maps.Values(kernel))), true)
	for gi := range groups {
		g := &groups[gi]
		var words []string
		for mi := range g.Members {
			m := &g.Members[mi]
			d := m.Domains[spof.DomainDisk]
			if d == "" {
				continue
			}
			dh := healths[kernel[d]]
			words = append(words, dh.Disk+" "+healthWord(dh))
			if dh.Verdict != diskhealth.VerdictDegraded && dh.Verdict != diskhealth.VerdictFailing {
				continue
			}
			what := fmt.Sprintf("disk %s reports %s health: %s", dh.Disk, dh.Verdict, strings.Join(dh.Problems, "; "))
			switch m.State {
			case spof.MemberOK:
				m.State, m.Detail = spof.MemberDegraded, what
			case spof.MemberDegraded:
				m.Detail = strings.TrimPrefix(m.Detail+"; "+what, "; ")
			}
		}
		if len(words) > 0 {
			g.Attributes = append(g.Attributes, spof.Attribute{Key: "disk_health", Value: strings.Join(slices.Compact(words), ", ")})
		}
	}
}

func healthWord(h diskhealth.Health) string {
	switch h.Verdict {
	case diskhealth.VerdictUnknown:
		return "unknown (" + h.Reason + ")"
	case diskhealth.VerdictOK:
		return "ok"
	}
	return string(h.Verdict) + " (" + strings.Join(h.Problems, "; ") + ")"
}

// healthOf returns the health of each disk, from a reading younger than
// MaxAge or a new one; reads of different disks run in parallel (at most
// diskReadConcurrency), a disk already being read is waited for. seen
// records that a storage group named the disks now.
func (h *DiskHealth) healthOf(ctx context.Context, disks []string, seen bool) map[string]diskhealth.Health {
	out := make(map[string]diskhealth.Health, len(disks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, diskReadConcurrency)
	for _, d := range disks {
		wg.Go(func() {
			dh := h.one(ctx, d, seen, sem)
			mu.Lock()
			out[d] = dh
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (h *DiskHealth) one(ctx context.Context, disk string, seen bool, sem chan struct{}) diskhealth.Health {
	for {
		now := h.opts.Now()
		h.mu.Lock()
		e := h.disks[disk]
		if e == nil {
			e = &diskEntry{lastSeen: now}
			h.disks[disk] = e
		}
		if seen {
			e.lastSeen = now
		}
		if !e.at.IsZero() && now.Sub(e.at) < h.opts.MaxAge {
			dh := e.health
			h.mu.Unlock()
			return dh
		}
		if wait := e.reading; wait != nil {
			h.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return diskhealth.Health{Disk: disk, Verdict: diskhealth.VerdictUnknown, Reason: "not read: " + ctx.Err().Error()}
			}
		}
		done := make(chan struct{})
		e.reading = done
		h.mu.Unlock()

		var dh diskhealth.Health
		select {
		case sem <- struct{}{}:
			dh = h.read(ctx, disk)
			<-sem
		case <-ctx.Done():
			dh = diskhealth.Health{Disk: disk, Verdict: diskhealth.VerdictUnknown, Reason: "not read: " + ctx.Err().Error()}
		}
		if dh.Disk == "" {
			dh.Disk = disk
		}
		h.mu.Lock()
		e.reading = nil
		close(done)
		if ctx.Err() == nil || dh.Verdict != diskhealth.VerdictUnknown {
			// A read cut short by our own caller's deadline is not the
			// disk's answer: the next caller reads again.
			e.health, e.at = dh, h.opts.Now()
		}
		h.logChange(e, dh)
		h.mu.Unlock()
		return dh
	}
}

// logChange logs a disk's health once per change of state or reason, not
// every cycle: an unreadable disk is one warning at the first failure.
func (h *DiskHealth) logChange(e *diskEntry, dh diskhealth.Health) {
	key := string(dh.Verdict) + "|" + dh.Reason + "|" + strings.Join(dh.Problems, ";")
	if key == e.logged {
		return
	}
	first := e.logged == ""
	e.logged = key
	switch dh.Verdict {
	case diskhealth.VerdictOK:
		if !first {
			h.logger.Info("disk health ok again", "disk", dh.Disk)
		}
	case diskhealth.VerdictUnknown:
		if dh.NoSource {
			h.logger.Debug("disk has no health source; its members keep their RAID state", "disk", dh.Disk, "reason", dh.Reason)
			return
		}
		h.logger.Warn("disk health unknown; its members keep their RAID state", "disk", dh.Disk, "reason", dh.Reason)
	default:
		h.logger.Warn("disk reports a health problem", "disk", dh.Disk, "verdict", string(dh.Verdict), "problems", strings.Join(dh.Problems, "; "))
	}
}

func (h *DiskHealth) metrics(disk string, dh diskhealth.Health) []prometheus.Metric {
	var ms []prometheus.Metric
	add := func(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(desc, t, v, append([]string{disk}, labels...)...); err == nil {
			ms = append(ms, m)
		}
	}
	for _, st := range diskHealthStates {
		add(h.descs.state, prometheus.GaugeValue, b2f(dh.Verdict == st), string(st))
	}
	if dh.Verdict != diskhealth.VerdictUnknown {
		add(h.descs.ok, prometheus.GaugeValue, b2f(dh.Verdict == diskhealth.VerdictOK))
	}
	if dh.Protocol != "" {
		add(h.descs.info, prometheus.GaugeValue, 1, string(dh.Protocol), dh.Model, dh.Serial)
	}
	u8 := func(desc *prometheus.Desc, p *uint8, scale float64) {
		if p != nil {
			add(desc, prometheus.GaugeValue, float64(*p)*scale)
		}
	}
	u64 := func(desc *prometheus.Desc, t prometheus.ValueType, p *uint64) {
		if p != nil && *p != math.MaxUint64 {
			add(desc, t, float64(*p))
		}
	}
	u8(h.descs.used, dh.PercentageUsed, 0.01)
	u8(h.descs.spare, dh.AvailableSpare, 0.01)
	u8(h.descs.spareThresh, dh.SpareThreshold, 0.01)
	u8(h.descs.warning, dh.CriticalWarning, 1)
	u64(h.descs.media, prometheus.CounterValue, dh.MediaErrors)
	u64(h.descs.realloc, prometheus.GaugeValue, dh.ReallocatedSectors)
	u64(h.descs.pending, prometheus.GaugeValue, dh.PendingSectors)
	u64(h.descs.offlineUnc, prometheus.GaugeValue, dh.OfflineUncorrectable)
	u64(h.descs.powerOn, prometheus.GaugeValue, dh.PowerOnHours)
	if dh.TemperatureCelsius != nil {
		add(h.descs.temp, prometheus.GaugeValue, *dh.TemperatureCelsius)
	}
	return ms
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// kernelDiskName turns a disk domain (a by-id or by-path name such
// as ata-XYZ) into the kernel name through /dev/disk; kernel names pass.
func kernelDiskName(devPath, sysPath, name string) string {
	if sysPath == "" {
		sysPath = "/sys"
	}
	if _, err := os.Stat(filepath.Join(sysPath, "class", "block", name)); err == nil {
		return name
	}
	if devPath == "" {
		devPath = "/dev"
	}
	for _, dir := range []string{"disk/by-id", "disk/by-path", "disk/by-vdev"} {
		if real, err := filepath.EvalSymlinks(filepath.Join(devPath, dir, name)); err == nil {
			return filepath.Base(real)
		}
	}
	return name
}

// cloneGroups copies groups deeply enough for Mark to change members and
// attributes without touching the originals.
func cloneGroups(gs []spof.Group) []spof.Group {
	out := slices.Clone(gs)
	for i := range out {
		out[i].Members = slices.Clone(out[i].Members)
		out[i].Attributes = slices.Clone(out[i].Attributes)
	}
	return out
}
