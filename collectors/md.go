package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/sysdev"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

// MdOptions configures the md collector.
type MdOptions struct {
	// ProcPath and SysPath are the procfs and sysfs roots (--path.procfs,
	// --path.sysfs); empty means /proc and /sys.
	ProcPath string
	SysPath  string
	// NoControllerDomain leaves out the controller failure domain. With it
	// (the default) a mirror whose disks hang off one HBA is reported as a
	// shared_failure_domain, which is true but may be accepted by design.
	NoControllerDomain bool
	Logger             *slog.Logger
	// Health, when set, marks members whose disk reports a health problem
	// (the diskhealth collector's overlay).
	Health *DiskHealth
	// Now is the clock that dates a finished check (default time.Now).
	Now func() time.Time
}

// MdCollector reports every md array as a redundancy group
// storage/md/<name>.
type MdCollector struct {
	fs     raid.MdFS
	opts   MdOptions
	logger *slog.Logger
	descs  mdDescs

	// checks remembers, per array, the sync_action of the last collection
	// and the last finished check or repair: md records that a check ran
	// (last_sync_action, mismatch_cnt) but not when, so the time is when
	// this collector saw sync_action go from check/repair to idle. In
	// memory only: a restart forgets it (durable storage in the state
	// directory is the follow-up).
	mu     sync.Mutex
	checks map[string]mdCheckState
}

type mdCheckState struct {
	action string
	proof  *spof.Proof
}

type mdDescs struct {
	syncRatio, syncSpeed, syncRemaining, mismatch, disks, raidDisks, syncAction *prometheus.Desc
}

// mdSyncActions is the fixed value set of spofwatch_md_sync_action.
var mdSyncActions = []string{"idle", "resync", "recover", "check", "repair", "reshape", "frozen"}

// mdDiskStates is the fixed value set of spofwatch_md_disks{state}.
var mdDiskStates = []string{"in_sync", "at_risk", "rebuilding", "faulty", "empty", "unknown", "spare"}

// NewMdCollector builds the md collector.
func NewMdCollector(opts MdOptions) *MdCollector {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dev := []string{"device"}
	return &MdCollector{
		checks: map[string]mdCheckState{},
		fs:     raid.MdFS{ProcPath: opts.ProcPath, SysPath: opts.SysPath, Domains: &sysdev.DomainCache{}},
		opts:   opts,
		logger: logger, // the wiring adds collector=md
		descs: mdDescs{
			syncRatio: prometheus.NewDesc("spofwatch_md_sync_completed_ratio",
				"Fraction of the running md sync (resync, recovery, reshape, check) done; 1 when no sync runs.", dev, nil),
			syncSpeed: prometheus.NewDesc("spofwatch_md_sync_speed_bytes_per_second",
				"Current speed of the running md sync.", dev, nil),
			syncRemaining: prometheus.NewDesc("spofwatch_md_sync_remaining_seconds",
				"Estimated time until the running md sync completes.", dev, nil),
			mismatch: prometheus.NewDesc("spofwatch_md_mismatch_sectors",
				"Sectors found inconsistent by the last md check or repair (mismatch_cnt).", dev, nil),
			disks: prometheus.NewDesc("spofwatch_md_disks",
				"md array slots and spares by state.", []string{"device", "state"}, nil),
			raidDisks: prometheus.NewDesc("spofwatch_md_raid_disks",
				"Number of slots (raid_disks) of the md array.", dev, nil),
			syncAction: prometheus.NewDesc("spofwatch_md_sync_action",
				"Current sync_action of the md array (1 for the current action).", []string{"device", "action"}, nil),
		},
	}
}

// Name implements Collector.
func (c *MdCollector) Name() string { return "md" }

// MdstatPath is the file to watch with raid.WatchMdstat for instant
// re-collection.
func (c *MdCollector) MdstatPath() string { return c.fs.MdstatPath() }

// Collect implements Collector.
func (c *MdCollector) Collect(ctx context.Context) (agent.Result, error) {
	if err := ctx.Err(); err != nil {
		return agent.Result{}, err
	}
	arrays, err := c.fs.Arrays()
	if errors.Is(err, fs.ErrNotExist) {
		return agent.Result{}, agent.ErrNoData
	}
	if err != nil {
		return agent.Result{}, err
	}
	res := agent.Result{Descs: []*prometheus.Desc{c.descs.syncRatio, c.descs.syncSpeed, c.descs.syncRemaining,
		c.descs.mismatch, c.descs.disks, c.descs.raidDisks, c.descs.syncAction}}
	now := c.opts.Now()
	seen := map[string]bool{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range arrays {
		if a.Container || a.Stopped {
			continue
		}
		for _, p := range a.Problems {
			c.logger.Debug("md array partly unreadable", "group", "storage/md/"+a.Name, "problem", p)
		}
		g := MdGroup(a, !c.opts.NoControllerDomain)
		g.Proof = c.checkProof(a, now)
		seen[a.Name] = true
		res.Groups = append(res.Groups, g)
		res.Metrics = append(res.Metrics, c.metrics(a)...)
	}
	for name := range c.checks {
		if !seen[name] {
			delete(c.checks, name) // a stopped or renamed array starts afresh
		}
	}
	if len(res.Groups) == 0 {
		return agent.Result{}, agent.ErrNoData
	}
	c.opts.Health.Mark(ctx, res.Groups)
	return res, nil
}

// checkProof records a check or repair that this collector saw finish
// (sync_action check/repair, then idle with last_sync_action still
// check/repair; kernels without last_sync_action rely on the transition
// alone) and returns the last one. A check that leaves mismatch_cnt > 0
// failed: the copies differ (Documentation/admin-guide/md.rst,
// "mismatch_cnt"; on raid1/raid10 md warns that a count can come from
// writes that changed in flight, swap above all, so the detail says so). A
// repair rewrote what differed and passes with the count. Limitation: an
// interrupted check (echo idle > sync_action) looks the same to sysfs.
func (c *MdCollector) checkProof(a raid.MdArray, now time.Time) *spof.Proof {
	st := c.checks[a.Name]
	prev := st.action
	st.action = a.Sync.Action
	if (prev == "check" || prev == "repair") && a.Sync.Action == "idle" &&
		(a.Sync.LastAction == "" || a.Sync.LastAction == "check" || a.Sync.LastAction == "repair") {
		method := prev
		if a.Sync.LastAction != "" {
			method = a.Sync.LastAction
		}
		p := &spof.Proof{At: now, Method: "md " + method, Result: spof.ProofPassed}
		switch {
		case a.MismatchCount < 0:
			p.Detail = "mismatch_cnt unreadable"
		case a.MismatchCount > 0 && method == "check":
			p.Result = spof.ProofFailed
			p.Detail = fmt.Sprintf("mismatch_cnt %d: the copies differ", a.MismatchCount)
			if a.Level == "raid1" || a.Level == "raid10" {
				p.Detail += " (on raid1/raid10 this can also come from data changed in flight, e.g. swap)"
			}
		default:
			p.Detail = fmt.Sprintf("mismatch_cnt %d", a.MismatchCount)
		}
		st.proof = p
	}
	c.checks[a.Name] = st
	return st.proof
}

// MdGroup adapts one array into a redundancy group. It is exported for the
// mounts collector and for tests.
func MdGroup(a raid.MdArray, controllerDomain bool) spof.Group {
	required, _ := a.RequiredMembers()
	g := spof.Group{
		ID:       "storage/md/" + a.Name,
		Kind:     spof.KindStorage,
		Function: fmt.Sprintf("%s (%s)", a.Name, mdLevelWord(a)),
		Required: required,
	}
	if a.RaidDisks > required && a.RaidDisks > 0 {
		// A check reads every copy or parity block and compares them.
		g.Provable = spof.Provable
	}
	attr := func(k, v string) { g.Attributes = append(g.Attributes, spof.Attribute{Key: k, Value: v}) }
	attr("level", orWord(a.Level, "unknown"))
	attr("array_state", orWord(a.ArrayState, "unknown"))
	rd := strconv.Itoa(a.RaidDisks)
	if a.RaidDisksBefore > 0 {
		rd += fmt.Sprintf(" (reshaping from %d)", a.RaidDisksBefore)
	}
	attr("raid_disks", rd)
	if a.Level == "raid10" {
		copies := 2
		if a.LayoutKnown {
			copies = raid.Raid10Copies(a.Layout)
		}
		attr("copies", strconv.Itoa(copies))
	}
	if a.Sync.Action != "" || a.Sync.Delayed || a.Sync.Pending {
		if a.Sync.Running() || a.Sync.Delayed || a.Sync.Pending {
			attr("sync_action", a.Sync.String())
		} else {
			attr("sync_action", a.Sync.Action)
		}
	}
	if a.MismatchCount >= 0 {
		attr("mismatch_cnt", strconv.FormatInt(a.MismatchCount, 10))
	}
	if len(a.Spares) > 0 {
		attr("spares", deviceNames(a.Spares))
	}
	if len(a.Journal) > 0 {
		attr("journal", deviceNames(a.Journal))
	}
	if len(a.Problems) > 0 {
		attr("problems", strings.Join(a.Problems, "; "))
	}

	if a.Inactive() {
		// Not running: no member provides the function, whatever its own
		// state. Required stays at least 1 so an array with no devices left
		// is down too, never "unknown".
		g.Required = max(required, 1)
		g.DownReason = fmt.Sprintf("array %s is %s", a.Name, orWord(a.ArrayState, "not running"))
		failed := func(name string, domains map[string]string) {
			g.Members = append(g.Members, spof.Member{Name: name, State: spof.MemberFailed, Domains: domains,
				Detail: "array " + a.ArrayState + ": not running"})
		}
		for _, s := range a.Slots {
			if s.Device != "" {
				failed(s.Device, mdDomains(s, controllerDomain))
			}
		}
		for _, d := range append(append([]raid.MdDevice{}, a.Spares...), a.Faulty...) {
			failed(d.Name, nil)
		}
		return g
	}
	if len(a.Slots) == 0 {
		g.UnknownReason = "no slots readable"
		if len(a.Problems) > 0 {
			g.UnknownReason += ": " + strings.Join(a.Problems, "; ")
		}
		return g
	}

	// When every member sits on one disk, that disk is the single point of
	// failure to name; its controller is implied and would only repeat it.
	if controllerDomain {
		disks := map[string]bool{}
		for _, s := range a.Slots {
			if s.Disk != "" {
				disks[s.Disk] = true
			}
		}
		if len(disks) == 1 {
			controllerDomain = false
		}
	}
	rebuildingSlot := false
	for _, s := range a.Slots {
		m := spof.Member{Name: s.Device, Detail: s.Detail, Domains: mdDomains(s, controllerDomain)}
		if m.Name == "" {
			m.Name = fmt.Sprintf("slot%d", s.Index)
		}
		switch s.State {
		case raid.SlotInSync:
			m.State = spof.MemberOK
		case raid.SlotAtRisk:
			m.State = spof.MemberDegraded
		case raid.SlotRebuilding:
			m.State = spof.MemberRebuilding
			rebuildingSlot = true
		case raid.SlotFaulty:
			m.State = spof.MemberFailed
		case raid.SlotEmpty:
			m.State = spof.MemberMissing
		default:
			m.State = spof.MemberUnknown
		}
		g.Members = append(g.Members, m)
	}

	fn := g.Function
	switch {
	case rebuildingSlot:
		// Evaluate reports rebuild_in_progress per rebuilding member.
	case a.Sync.Action == "check" || a.Sync.Action == "repair":
		if a.Sync.Running() {
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeNotice, Severity: spof.SeverityInfo,
				Summary: fmt.Sprintf("%s: %s", fn, a.Sync.String()),
				Details: "A scrub reads every copy and compares them; redundancy is unchanged."})
		}
	case a.Sync.Running() || a.Sync.Delayed || a.Sync.Pending:
		g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeRebuildInProgress,
			Summary: fmt.Sprintf("%s: %s", fn, a.Sync.String()),
			Details: "Until the sync completes, parts of the array may not be redundant."})
	}
	for _, r := range a.Replacements {
		g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeRebuildInProgress, Member: r.Name,
			Summary: fmt.Sprintf("%s: %s is replacing a member: %s", fn, r.Name, a.Sync.String()),
			Details: "The member being replaced still counts as working until the replacement is in sync."})
	}
	for _, f := range a.Faulty {
		g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeNotice, Member: f.Name, Severity: spof.SeverityInfo,
			Summary: fmt.Sprintf("%s: %s failed and no longer holds a slot; remove it with mdadm --remove", fn, f.Name)})
	}
	return g
}

// mdLevelWord names the level for summaries; an inactive array has lost its
// personality and sysfs reads an empty level.
func mdLevelWord(a raid.MdArray) string {
	switch {
	case a.Level != "":
		return a.Level
	case a.Inactive():
		return a.ArrayState
	}
	return "unknown level"
}

func mdDomains(s raid.MdSlot, controller bool) map[string]string {
	d := map[string]string{}
	if s.Disk != "" {
		d[spof.DomainDisk] = s.Disk
	}
	if controller && s.Controller != "" {
		d[spof.DomainController] = s.Controller
	}
	if len(d) == 0 {
		return nil
	}
	return d
}

func deviceNames(ds []raid.MdDevice) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (c *MdCollector) metrics(a raid.MdArray) []prometheus.Metric {
	var ms []prometheus.Metric
	add := func(desc *prometheus.Desc, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...); err == nil {
			ms = append(ms, m)
		}
	}
	ratio := 1.0
	if a.Sync.Running() || a.Sync.Delayed || a.Sync.Pending {
		ratio = 0
		if r, ok := a.Sync.Ratio(); ok {
			ratio = r
		}
		if a.Sync.SpeedKBps > 0 {
			add(c.descs.syncSpeed, a.Sync.SpeedKBps*1024, a.Name)
		}
		if a.Sync.ETA > 0 {
			add(c.descs.syncRemaining, a.Sync.ETA.Seconds(), a.Name)
		}
	}
	if !a.Inactive() {
		add(c.descs.syncRatio, ratio, a.Name)
	}
	if a.MismatchCount >= 0 {
		add(c.descs.mismatch, float64(a.MismatchCount), a.Name)
	}
	add(c.descs.raidDisks, float64(a.RaidDisks), a.Name)
	counts := map[string]int{"spare": len(a.Spares)}
	for _, s := range a.Slots {
		counts[string(s.State)]++
	}
	counts["faulty"] += len(a.Faulty)
	for _, st := range mdDiskStates {
		add(c.descs.disks, float64(counts[st]), a.Name, st)
	}
	action := a.Sync.Action
	if action == "" {
		action = "idle"
	}
	for _, act := range mdSyncActions {
		v := 0.0
		if act == action {
			v = 1
		}
		add(c.descs.syncAction, v, a.Name, act)
	}
	return ms
}
