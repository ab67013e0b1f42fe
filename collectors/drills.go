package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/spof"
)

// DrillsOptions configures the drill audit log reader.
type DrillsOptions struct {
	// Path is the audit log (drills.jsonl in the state directory).
	Path string
	// MaxBytes bounds one read; auditlog.DefaultLogReadBytes when 0.
	MaxBytes int64
	Logger   *slog.Logger
}

// Drills reads the audit log that `spofwatch drill` appends to and hands
// each group's latest passed or failed drill to the evaluation. It only
// reads: the daemon stays unprivileged. The log is followed as it grows
// (one stat when unchanged, only new bytes read otherwise), so the run
// counter stays monotonic however long the log gets; when the log is
// rotated, truncated or rewritten, everything is rebuilt from what it then
// holds (at most its newest MaxBytes), which is a counter reset.
type Drills struct {
	opts DrillsOptions
	runs *prometheus.Desc

	mu       sync.Mutex
	follower auditlog.LogFollower
	latest   map[string]auditlog.Record
	counts   map[runKey]float64
	// corrupt are the log's unreadable lines since it was last read
	// afresh: they stay a finding, as the drills on them are unknown.
	corrupt  []auditlog.CorruptLine
	badLines int
}

type runKey struct{ group, method, result string }

// NewDrills returns the audit log reader.
func NewDrills(opts DrillsOptions) *Drills {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Drills{
		opts: opts,
		runs: prometheus.NewDesc("spofwatch_drill_runs_total",
			"Drills that ended, by result (passed, failed, refused, or started: left running on its own), from the drill audit log; restarts from the log's contents when the log is rotated or compacted",
			[]string{"group", "method", "result"}, nil),
		follower: auditlog.LogFollower{Path: opts.Path, MaxBytes: opts.MaxBytes},
	}
}

// Name implements agent.Collector.
func (*Drills) Name() string { return "drills" }

// Collect implements agent.Collector. A log that cannot be read is an
// error (collector_unavailable; the scheduler keeps the last known drill
// outcomes, so a failed drill never clears by being unreadable). Lines
// that are not records leave the good ones in use and are a
// collector_unavailable finding of their own until the log is rewritten.
func (d *Drills) Collect(ctx context.Context) (agent.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	recs, fresh, err := d.follower.Poll()
	var corrupt *auditlog.CorruptLogError
	if err != nil && !errors.As(err, &corrupt) {
		return agent.Result{}, err
	}
	if fresh || d.latest == nil {
		d.latest, d.counts = map[string]auditlog.Record{}, map[runKey]float64{}
		d.corrupt, d.badLines = nil, 0
	}
	if corrupt != nil {
		d.opts.Logger.Warn("unreadable lines in the drill audit log; the drills on them are unknown", "err", corrupt)
		d.badLines += corrupt.Total
		d.corrupt = append(d.corrupt, corrupt.Lines...)
		d.corrupt = d.corrupt[:min(len(d.corrupt), 10)]
	}
	d.fold(recs)
	return d.result(), nil
}

// fold adds records, oldest first, to what the log said so far.
func (d *Drills) fold(recs []auditlog.Record) {
	for _, r := range recs {
		if r.IsFinal() {
			d.counts[runKey{r.Group, r.Method, string(r.Result)}]++
		}
	}
	for g, r := range auditlog.Latest(recs) {
		if cur, ok := d.latest[g]; ok && r.EndedAt().Before(cur.EndedAt()) {
			continue
		}
		d.latest[g] = r
	}
}

func (d *Drills) result() agent.Result {
	res := agent.Result{Descs: []*prometheus.Desc{d.runs}}
	groups := make([]string, 0, len(d.latest))
	for g := range d.latest {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		r := d.latest[g]
		res.Drills = append(res.Drills, spof.DrillOutcome{Group: r.Group, Method: r.Method, Result: spof.ProofResult(r.Result),
			Reason: r.Reason, At: r.EndedAt(), FailedMembers: r.FailedMembers})
	}
	for k, n := range d.counts {
		res.Metrics = append(res.Metrics, prometheus.MustNewConstMetric(d.runs, prometheus.CounterValue, n, k.group, k.method, k.result))
	}
	if d.badLines > 0 {
		parts := make([]string, len(d.corrupt))
		for i, c := range d.corrupt {
			parts[i] = c.String()
		}
		res.HostConditions = append(res.HostConditions, spof.Condition{
			Code:   spof.CodeCollectorUnavailable,
			Member: filepath.Base(d.opts.Path),
			Summary: fmt.Sprintf("drill audit log %s: %d unreadable line(s), the drills on them are unknown: %s",
				d.opts.Path, d.badLines, strings.Join(parts, "; ")),
			Details: "Fix or remove the lines; spofwatch reads the log afresh when it is rewritten, truncated or rotated.",
		})
	}
	return res
}
