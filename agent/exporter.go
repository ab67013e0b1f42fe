package agent

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/spofwatch/spofwatch/spof"
)

const namespace = "spofwatch"

// fromSnapshot ends every HELP: a scrape reads the latest background
// collection; it never collects.
const fromSnapshot = " (from the latest background collection)"

// SnapshotSource is what the exporter reads.
type SnapshotSource interface {
	Snapshot() *Snapshot
}

// Exporter exposes the latest snapshot as Prometheus metrics.
type Exporter struct {
	src        SnapshotSource
	hostLabels map[string]string

	mu         sync.Mutex
	cachedSnap *Snapshot
	cached     []prometheus.Metric
	// families are the gathered, validated metric families of cachedSnap.
	families    []*dto.MetricFamily
	familiesErr error
	// encoded are the families encoded, by negotiated format; they belong
	// to cachedSnap like families do.
	encoded map[expfmt.Format]*Encoded

	groupState, groupMembers, groupWorking, groupRequired *prometheus.Desc
	memberUp, finding                                     *prometheus.Desc
	findingAccepted, acceptanceExpiry                     *prometheus.Desc
	groupStateSince                                       *prometheus.Desc
	groupLastProven                                       *prometheus.Desc
	collectorUp, collectorDuration, collectorLastSuccess  *prometheus.Desc
	evaluationTime, hostInfo                              *prometheus.Desc
}

// NewExporter returns a Prometheus collector over the snapshot source.
func NewExporter(src SnapshotSource, hostLabels map[string]string) *Exporter {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help+fromSnapshot, labels, nil)
	}
	hostLabelNames := slices.Sorted(maps.Keys(hostLabels))
	return &Exporter{
		src:                  src,
		hostLabels:           hostLabels,
		groupState:           d("group_state", "Redundancy state of a group, as a state set: 1 for the current state", "group", "kind", "state"),
		groupMembers:         d("group_members", "Members of a group", "group", "kind"),
		groupWorking:         d("group_members_working", "Members of a group that work (ok or degraded)", "group", "kind"),
		groupRequired:        d("group_members_required", "Working members the group's function needs", "group", "kind"),
		groupStateSince:      d("group_state_since_timestamp_seconds", "Unix time at which the group entered its current state", "group"),
		groupLastProven:      d("group_last_proven_timestamp_seconds", "Unix time at which the group's redundancy was last proven (a passing md check, ZFS scrub, UPS self-test or drill); absent when never", "group", "method"),
		memberUp:             d("member_up", "1 if the member works (ok or degraded), else 0", "group", "member"),
		finding:              d("finding", "1 for every active finding", "code", "severity", "group", "member"),
		findingAccepted:      d("finding_accepted", "1 for every active finding covered by an acceptance (config accept:); it counts as info for check and alerts", "code", "group", "member"),
		acceptanceExpiry:     d("acceptance_expiry_timestamp_seconds", "Unix time at which an acceptance (config accept:) expires; group and member are its globs", "code", "group", "member"),
		collectorUp:          d("collector_up", "1 if the collector's last collection succeeded and is fresh", "collector"),
		collectorDuration:    d("collector_duration_seconds", "Duration of the collector's last collection", "collector"),
		collectorLastSuccess: d("collector_last_success_timestamp_seconds", "Unix time of the collector's last successful collection", "collector"),
		evaluationTime:       d("last_evaluation_timestamp_seconds", "Unix time of the latest evaluation"),
		hostInfo:             prometheus.NewDesc(namespace+"_host_info", "Host labels from the configuration, value 1", hostLabelNames, nil),
	}
}

// Describe implements prometheus.Collector. The exporter is unchecked:
// source collectors add metrics of their own.
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector (tests, and registries that want
// it). A snapshot is immutable, so its metrics are built once.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	snap := e.src.Snapshot()
	e.mu.Lock()
	if e.cachedSnap != snap {
		e.cached = e.build(snap)
		e.cachedSnap = snap
		e.families, e.encoded = nil, nil // of the previous snapshot
	}
	metrics := e.cached
	e.mu.Unlock()
	for _, m := range metrics {
		ch <- m
	}
}

// Gather implements prometheus.Gatherer: the snapshot's families are
// gathered and validated once per snapshot, so a scrape only encodes them.
// The returned families are shared and must not be modified.
func (e *Exporter) Gather() ([]*dto.MetricFamily, error) {
	snap := e.src.Snapshot()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gatherLocked(snap)
	return e.families, e.familiesErr
}

// Encoded returns the latest snapshot's families encoded in format,
// encoding them on the first request for that snapshot and format.
func (e *Exporter) Encoded(format expfmt.Format) *Encoded {
	snap := e.src.Snapshot()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gatherLocked(snap)
	enc, ok := e.encoded[format]
	if !ok {
		enc = encodeFamilies(e.families, format, e.familiesErr)
		e.encoded[format] = enc
	}
	return enc
}

// gatherLocked gathers snap's families unless they are cached already.
func (e *Exporter) gatherLocked(snap *Snapshot) {
	if e.cachedSnap == snap && e.families != nil {
		return
	}
	e.cached = e.build(snap)
	e.cachedSnap = snap
	reg := prometheus.NewRegistry()
	metrics := e.cached
	reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) {
		for _, m := range metrics {
			ch <- m
		}
	}))
	e.families, e.familiesErr = reg.Gather()
	if e.families == nil {
		e.families = []*dto.MetricFamily{} // gathered, if empty
	}
	// A bounded set: the formats promhttp's negotiation can return.
	e.encoded = map[expfmt.Format]*Encoded{}
}

type collectorFunc func(chan<- prometheus.Metric)

func (collectorFunc) Describe(chan<- *prometheus.Desc)      {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// MergeGatherers joins gatherers whose metric names are disjoint by
// construction (the snapshot's families, the live spofwatch registry, the
// Go runtime) without validating every sample again, which is what
// prometheus.Gatherers would do on every scrape. Should two gatherers ever
// share a family name, it falls back to prometheus.Gatherers.
func MergeGatherers(gs ...prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var all []*dto.MetricFamily
		var errs []error
		seen := map[string]bool{}
		for _, g := range gs {
			mfs, err := g.Gather()
			if err != nil {
				errs = append(errs, err)
			}
			for _, mf := range mfs {
				if seen[mf.GetName()] {
					return prometheus.Gatherers(gs).Gather()
				}
				seen[mf.GetName()] = true
			}
			all = append(all, mfs...)
		}
		slices.SortFunc(all, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
		return all, errors.Join(errs...)
	})
}

func (e *Exporter) build(snap *Snapshot) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...))
	}
	seenGroup := map[string]bool{}
	for _, gr := range snap.Evaluation.Groups {
		g := gr.Group
		if seenGroup[g.ID] {
			continue // two collectors claiming one ID must not break the scrape
		}
		seenGroup[g.ID] = true
		kind := string(g.Kind)
		for _, st := range spof.GroupStates {
			gauge(e.groupState, GaugeBool(gr.State == st), g.ID, kind, string(st))
		}
		gauge(e.groupMembers, float64(gr.Total), g.ID, kind)
		gauge(e.groupWorking, float64(gr.Working), g.ID, kind)
		gauge(e.groupRequired, float64(g.Required), g.ID, kind)
		if !gr.Since.IsZero() {
			gauge(e.groupStateSince, float64(gr.Since.Unix()), g.ID)
		}
		// Only a passing proof proves: a failed check is in the JSON and
		// the page, not in "last proven".
		if p := g.Proof; p != nil && p.Result == spof.ProofPassed && !p.At.IsZero() {
			gauge(e.groupLastProven, float64(p.At.Unix()), g.ID, p.Method)
		}
		seen := map[string]bool{}
		for _, m := range g.Members {
			if seen[m.Name] {
				continue // a duplicate name would break the scrape
			}
			seen[m.Name] = true
			up := m.State.Working() && g.UnknownReason == ""
			gauge(e.memberUp, GaugeBool(up), g.ID, m.Name)
		}
	}
	for _, f := range snap.Evaluation.Findings {
		gauge(e.finding, 1, string(f.Code), f.Severity.String(), f.Group, f.Member)
		if f.Accepted != nil {
			gauge(e.findingAccepted, 1, string(f.Code), f.Group, f.Member)
		}
	}
	for _, a := range snap.Acceptances {
		gauge(e.acceptanceExpiry, float64(a.Until.Unix()), string(a.Code), a.Group, a.Member)
	}
	for _, o := range snap.Outcomes {
		gauge(e.collectorUp, GaugeBool(o.OK), o.Name)
		gauge(e.collectorDuration, o.Duration.Seconds(), o.Name)
		if !o.LastSuccess.IsZero() {
			gauge(e.collectorLastSuccess, float64(o.LastSuccess.UnixNano())/1e9, o.Name)
		}
		out = append(out, o.Metrics...)
	}
	gauge(e.evaluationTime, float64(snap.Taken.UnixNano())/1e9)
	values := make([]string, 0, len(e.hostLabels))
	for _, k := range slices.Sorted(maps.Keys(e.hostLabels)) {
		values = append(values, e.hostLabels[k])
	}
	gauge(e.hostInfo, 1, values...)
	return out
}

// GaugeBool is 1 for true, 0 for false: the value of a state-set or up gauge.
func GaugeBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
