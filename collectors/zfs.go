package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/sysdev"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

// ZFSOptions configures the zfs collector.
type ZFSOptions struct {
	// ZpoolPath is the zpool command (config raid.zpool_path); default
	// "zpool" from PATH.
	ZpoolPath string
	// Format is "auto" (JSON where zpool supports -j, else text), "json"
	// or "text".
	Format string
	// ProcPath is the procfs root for /proc/spl/kstat/zfs/<pool>/state.
	ProcPath string
	// FullInterval is the longest time between two zpool runs while the
	// kernel's pool states do not change; each collection in between only
	// reads the kstat state files. Default 5m; 0 below means always.
	FullInterval time.Duration
	Logger       *slog.Logger
	// Health, when set, marks members whose disk reports a health problem.
	Health *DiskHealth
}

// ZFSCollector reports each top-level vdev of every pool as a group
// storage/zfs/<pool>/<vdev>.
type ZFSCollector struct {
	opts       ZFSOptions
	logger     *slog.Logger
	cmd        raid.ZpoolCommand
	scan       *prometheus.Desc
	vdevErrors *prometheus.Desc

	mu         sync.Mutex
	last       *agent.Result
	lastStates map[string]string
	lastFull   time.Time
	noZpool    sync.Once
}

// NewZFSCollector builds the zfs collector.
func NewZFSCollector(opts ZFSOptions) *ZFSCollector {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.FullInterval == 0 {
		opts.FullInterval = 5 * time.Minute
	}
	return &ZFSCollector{
		opts:   opts,
		logger: logger, // the wiring adds collector=zfs
		cmd:    raid.ZpoolCommand{Path: opts.ZpoolPath, Format: opts.Format},
		scan: prometheus.NewDesc("spofwatch_zfs_scan_completed_ratio",
			"Fraction done of the running resilver or scrub of the pool; 1 when none runs.", []string{"pool", "function"}, nil),
		vdevErrors: prometheus.NewDesc("spofwatch_zfs_vdev_errors",
			"Read, write and checksum errors of the top-level vdev's leaves since the last zpool clear.", []string{"pool", "vdev", "type"}, nil),
	}
}

// Name implements Collector.
func (c *ZFSCollector) Name() string { return "zfs" }

// Collect implements Collector. Between full runs it only compares the
// kernel's pool states (/proc/spl/kstat/zfs/<pool>/state) with the last
// full run; any change runs zpool at once.
func (c *ZFSCollector) Collect(ctx context.Context) (agent.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	states, kerr := raid.ReadKstatStates(c.opts.ProcPath)
	if c.last != nil && kerr == nil && maps.Equal(states, c.lastStates) && time.Since(c.lastFull) < c.opts.FullInterval {
		return c.withHealth(ctx, *c.last), nil
	}
	pools, err := c.cmd.Status(ctx)
	switch {
	case errors.Is(err, raid.ErrNoZpool):
		c.noZpool.Do(func() {
			c.logger.Info("zpool command not found; ZFS collector disabled", "path", orWord(c.opts.ZpoolPath, "zpool"))
		})
		return agent.Result{}, agent.ErrNoData
	case errors.Is(err, raid.ErrNoPools):
		c.last = nil
		return agent.Result{}, agent.ErrNoData
	case err != nil:
		c.last = nil
		return agent.Result{}, err
	}
	res := agent.Result{Descs: []*prometheus.Desc{c.scan, c.vdevErrors}}
	for _, p := range pools {
		res.Groups = append(res.Groups, ZpoolGroups(p)...)
		res.Metrics = append(res.Metrics, c.metrics(p)...)
	}
	c.last, c.lastStates, c.lastFull = &res, states, time.Now()
	return c.withHealth(ctx, res), nil
}

// withHealth applies the disk health overlay to a copy of the result, so
// the zpool reading kept between full runs stays as zpool said it.
func (c *ZFSCollector) withHealth(ctx context.Context, res agent.Result) agent.Result {
	if c.opts.Health == nil {
		return res
	}
	res.Groups = cloneGroups(res.Groups)
	c.opts.Health.Mark(ctx, res.Groups)
	return res
}

func (c *ZFSCollector) metrics(p raid.Zpool) []prometheus.Metric {
	var ms []prometheus.Metric
	add := func(desc *prometheus.Desc, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...); err == nil {
			ms = append(ms, m)
		}
	}
	if p.Scan.Function != "" {
		ratio := 1.0
		if p.Scan.InProgress {
			ratio = 0
			if p.Scan.Percent >= 0 {
				ratio = p.Scan.Percent / 100
			}
		}
		add(c.scan, ratio, p.Name, p.Scan.Function)
	}
	for _, class := range [][]raid.Zvdev{p.Vdevs, p.Logs, p.Special, p.Dedup} {
		for _, v := range class {
			r, w, ck := sumErrors(v)
			add(c.vdevErrors, float64(r), p.Name, v.Name, "read")
			add(c.vdevErrors, float64(w), p.Name, v.Name, "write")
			add(c.vdevErrors, float64(ck), p.Name, v.Name, "checksum")
		}
	}
	return ms
}

func sumErrors(v raid.Zvdev) (r, w, c uint64) {
	if len(v.Children) == 0 {
		return v.Read, v.Write, v.Cksum
	}
	for _, ch := range v.Children {
		a, b, d := sumErrors(ch)
		r, w, c = r+a, w+b, c+d
	}
	return r, w, c
}

// ZpoolGroups adapts one pool: a group per top-level data, special, dedup
// and log vdev. Cache devices hold no unique data and are left out.
func ZpoolGroups(p raid.Zpool) []spof.Group {
	var groups []spof.Group
	rebuildingSeen := false
	for _, class := range []struct {
		name  string
		vdevs []raid.Zvdev
		why   string
	}{
		{"", p.Vdevs, ""},
		{"special", p.Special, "holds the pool's metadata: losing it loses the pool"},
		{"dedup", p.Dedup, "holds the dedup table: losing it loses the pool"},
		{"log", p.Logs, "intent log: losing it in a crash loses the last seconds of synchronous writes"},
	} {
		for _, v := range class.vdevs {
			g, rebuilding := vdevGroup(p, v, class.name, class.why)
			rebuildingSeen = rebuildingSeen || rebuilding
			groups = append(groups, g)
		}
	}
	proof := zpoolProof(p, time.Local)
	for i := range groups {
		g := &groups[i]
		if g.Required < len(g.Members) {
			// A scrub reads every copy and parity block, so it proves the
			// redundancy a vdev has; a single disk has none to prove.
			g.Provable, g.Proof = spof.Provable, proof
		}
		switch p.State {
		case "FAULTED", "UNAVAIL", "SUSPENDED":
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeGroupDown,
				Summary: fmt.Sprintf("pool %s is %s%s", p.Name, p.State, noteSuffix(p.Note)),
				Details: strings.TrimSpace(p.Status + " " + p.Action)})
		}
		if p.Scan.InProgress && p.Scan.Function == "resilver" && !rebuildingSeen && groupHasTrouble(*g) {
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeRebuildInProgress,
				Summary: fmt.Sprintf("%s: %s", g.Function, p.Scan.String())})
		}
	}
	return groups
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return ": " + n
}

func groupHasTrouble(g spof.Group) bool {
	for _, m := range g.Members {
		if m.State != spof.MemberOK {
			return true
		}
	}
	return false
}

// zpoolProof is the pool's last completed scrub as proof: errors it could
// not repair fail it. loc is the zone zpool printed the end time in (the
// host's: zpool runs here).
func zpoolProof(p raid.Zpool, loc *time.Location) *spof.Proof {
	s, ok := p.Scan.ScrubDone(loc)
	if !ok {
		return nil
	}
	pr := &spof.Proof{At: s.End, Method: "zfs scrub", Result: spof.ProofPassed, Detail: fmt.Sprintf("%d errors", s.Errors)}
	if s.Repaired != "" {
		pr.Detail = fmt.Sprintf("repaired %s, %d errors", s.Repaired, s.Errors)
	}
	if s.Errors > 0 {
		pr.Result = spof.ProofFailed
	}
	return pr
}

func vdevGroup(p raid.Zpool, v raid.Zvdev, class, why string) (spof.Group, bool) {
	kind := v.Type
	if kind == "raidz" || kind == "draid" {
		kind = fmt.Sprintf("%s%d", kind, v.Parity)
	}
	if kind == "disk" || kind == "file" {
		kind = "single " + kind
	}
	fn := fmt.Sprintf("%s %s (%s)", p.Name, v.Name, kind)
	if class != "" {
		fn = fmt.Sprintf("%s %s vdev %s (%s; %s)", p.Name, class, v.Name, kind, why)
	}
	g := spof.Group{
		ID:       "storage/zfs/" + p.Name + "/" + v.Name,
		Kind:     spof.KindStorage,
		Function: fn,
		Attributes: []spof.Attribute{
			{Key: "pool", Value: p.Name}, {Key: "pool_state", Value: p.State},
			{Key: "vdev_type", Value: kind}, {Key: "vdev_state", Value: v.State},
		},
	}
	if class != "" {
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "class", Value: class})
	}
	if p.Scan.Text != "" {
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "scan", Value: strings.ReplaceAll(p.Scan.Text, "\n", "; ")})
	}
	leaves := v.Children
	if len(leaves) == 0 {
		leaves = []raid.Zvdev{v}
	}
	g.Required, _ = v.Tolerance()
	rebuilding := false
	for _, l := range leaves {
		m := zfsMember(p, l)
		if m.State == spof.MemberRebuilding {
			rebuilding = true
		}
		g.Members = append(g.Members, m)
		if l.Type == "spare" {
			for _, ch := range l.Children {
				if strings.Contains(strings.ToLower(ch.Note), "in use") || isSpareName(p, ch.Name) {
					g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeNotice, Member: m.Name, Severity: spof.SeverityInfo,
						Summary: fmt.Sprintf("%s: hot spare %s is in use for %s", fn, ch.Name, m.Name)})
				}
			}
		}
	}
	for _, l := range leaves {
		if l.Type == "replacing" && p.Scan.InProgress {
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeRebuildInProgress, Member: l.Name,
				Summary: fmt.Sprintf("%s: %s (%s): %s", fn, l.Name, childList(l), p.Scan.String())})
		}
	}
	return g, rebuilding
}

func isSpareName(p raid.Zpool, name string) bool {
	for _, s := range p.Spares {
		if s.Name == name {
			return true
		}
	}
	return false
}

func childList(v raid.Zvdev) string {
	var parts []string
	for _, c := range v.Children {
		parts = append(parts, c.Name+" "+c.State)
	}
	return strings.Join(parts, ", ")
}

// zfsMember maps one child of a top-level vdev to a member. replacing-N
// and spare-N pseudo-vdevs are one member: working while any of their
// children serves the data.
func zfsMember(p raid.Zpool, v raid.Zvdev) spof.Member {
	m := spof.Member{Name: v.Name}
	if d := zfsDisk(v.Name); d != "" && len(v.Children) == 0 {
		m.Domains = map[string]string{spof.DomainDisk: d}
	}
	if len(v.Children) > 0 {
		var ok, rebuilding []raid.Zvdev
		for _, c := range v.Children {
			cm := zfsMember(p, c)
			switch cm.State {
			case spof.MemberOK, spof.MemberDegraded:
				ok = append(ok, c)
			case spof.MemberRebuilding:
				rebuilding = append(rebuilding, c)
			}
		}
		m.Detail = childList(v)
		switch {
		case len(ok) > 0 && v.Type == "spare" && len(ok) < len(v.Children):
			m.State = spof.MemberDegraded
			m.Detail = "served by hot spare: " + childList(v)
		case len(ok) > 0:
			m.State = spof.MemberOK
		case len(rebuilding) > 0:
			m.State = spof.MemberRebuilding
			m.Detail = p.Scan.String() + " (" + childList(v) + ")"
		default:
			m.State = spof.MemberFailed
		}
		return m
	}
	errs := ""
	if v.Read+v.Write+v.Cksum > 0 {
		errs = fmt.Sprintf("errors: read %d, write %d, checksum %d", v.Read, v.Write, v.Cksum)
	}
	switch v.State {
	case "ONLINE":
		switch {
		case v.Resilvering():
			m.State, m.Detail = spof.MemberRebuilding, p.Scan.String()
		case strings.Contains(v.Note, "resilvered") && p.Scan.InProgress && p.Scan.Function == "resilver":
			// Old zpool versions mark the target with "N resilvered".
			m.State, m.Detail = spof.MemberRebuilding, p.Scan.String()
		case errs != "":
			m.State, m.Detail = spof.MemberDegraded, errs
		default:
			m.State = spof.MemberOK
		}
	case "DEGRADED":
		m.State, m.Detail = spof.MemberDegraded, strings.TrimSpace("DEGRADED "+v.Note+" "+errs)
	case "OFFLINE", "FAULTED", "UNAVAIL", "REMOVED":
		m.State, m.Detail = spof.MemberFailed, strings.TrimSpace(v.State+" "+v.Note)
	default:
		m.State, m.Detail = spof.MemberUnknown, "zpool state "+orWord(v.State, "missing")
	}
	return m
}

// zfsDisk derives the disk a leaf lives on from its name, so a mirror of
// two partitions of one disk shows as a shared failure domain: sda1 ->
// sda, ata-XYZ-part3 -> ata-XYZ, nvme0n1p2 -> nvme0n1. GUIDs of missing
// devices get no domain.
func zfsDisk(name string) string {
	base := name
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if base == "" || strings.Trim(base, "0123456789") == "" {
		return ""
	}
	if i := strings.LastIndex(base, "-part"); i > 0 {
		return base[:i]
	}
	return sysdev.DiskFromName(base)
}
