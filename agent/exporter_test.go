package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spofwatch/spofwatch/spof"
)

type staticSource struct{ snap *Snapshot }

func (s staticSource) Snapshot() *Snapshot { return s.snap }

func snapshotOf(groups []spof.Group, outcomes []Outcome, now time.Time) *Snapshot {
	return &Snapshot{Taken: now, Outcomes: outcomes, Evaluation: spof.Evaluate(spof.Input{Groups: groups, Now: now})}
}

func TestExporterMetrics(t *testing.T) {
	now := time.Unix(1795400000, 0)
	snap := snapshotOf([]spof.Group{pairGroup("power/ipmi/psu", spof.MemberFailed)},
		[]Outcome{{Name: "ipmi", OK: true, Duration: 25 * time.Millisecond, LastSuccess: now}}, now)
	e := NewExporter(staticSource{snap}, map[string]string{"rack": "r12", "feed": "a"})
	want := `
# HELP spofwatch_finding 1 for every active finding (from the latest background collection)
# TYPE spofwatch_finding gauge
spofwatch_finding{code="redundancy_lost",group="power/ipmi/psu",member="",severity="critical"} 1
# HELP spofwatch_group_members_working Members of a group that work (ok or degraded) (from the latest background collection)
# TYPE spofwatch_group_members_working gauge
spofwatch_group_members_working{group="power/ipmi/psu",kind="power"} 1
# HELP spofwatch_group_state Redundancy state of a group, as a state set: 1 for the current state (from the latest background collection)
# TYPE spofwatch_group_state gauge
spofwatch_group_state{group="power/ipmi/psu",kind="power",state="degraded"} 0
spofwatch_group_state{group="power/ipmi/psu",kind="power",state="down"} 0
spofwatch_group_state{group="power/ipmi/psu",kind="power",state="no_redundancy"} 0
spofwatch_group_state{group="power/ipmi/psu",kind="power",state="redundancy_lost"} 1
spofwatch_group_state{group="power/ipmi/psu",kind="power",state="redundant"} 0
spofwatch_group_state{group="power/ipmi/psu",kind="power",state="unknown"} 0
# HELP spofwatch_host_info Host labels from the configuration, value 1
# TYPE spofwatch_host_info gauge
spofwatch_host_info{feed="a",rack="r12"} 1
# HELP spofwatch_member_up 1 if the member works (ok or degraded), else 0 (from the latest background collection)
# TYPE spofwatch_member_up gauge
spofwatch_member_up{group="power/ipmi/psu",member="PSU1"} 1
spofwatch_member_up{group="power/ipmi/psu",member="PSU2"} 0
# HELP spofwatch_collector_up 1 if the collector's last collection succeeded and is fresh (from the latest background collection)
# TYPE spofwatch_collector_up gauge
spofwatch_collector_up{collector="ipmi"} 1
# HELP spofwatch_collector_last_success_timestamp_seconds Unix time of the collector's last successful collection (from the latest background collection)
# TYPE spofwatch_collector_last_success_timestamp_seconds gauge
spofwatch_collector_last_success_timestamp_seconds{collector="ipmi"} 1.7954e+09
`
	names := []string{"spofwatch_finding", "spofwatch_group_members_working", "spofwatch_group_state", "spofwatch_host_info",
		"spofwatch_member_up", "spofwatch_collector_up", "spofwatch_collector_last_success_timestamp_seconds"}
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestExporterFailedCollectorMembersAreDown(t *testing.T) {
	now := time.Unix(1795400000, 0)
	g := pairGroup("power/ipmi/psu", spof.MemberOK)
	g.UnknownReason = "BMC unreachable"
	snap := snapshotOf([]spof.Group{g}, []Outcome{{Name: "ipmi", OK: false, Error: "timeout"}}, now)
	e := NewExporter(staticSource{snap}, nil)
	want := `
# HELP spofwatch_member_up 1 if the member works (ok or degraded), else 0 (from the latest background collection)
# TYPE spofwatch_member_up gauge
spofwatch_member_up{group="power/ipmi/psu",member="PSU1"} 0
spofwatch_member_up{group="power/ipmi/psu",member="PSU2"} 0
# HELP spofwatch_collector_up 1 if the collector's last collection succeeded and is fresh (from the latest background collection)
# TYPE spofwatch_collector_up gauge
spofwatch_collector_up{collector="ipmi"} 0
`
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), "spofwatch_member_up", "spofwatch_collector_up"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(e, "spofwatch_collector_last_success_timestamp_seconds"); n != 0 {
		t.Errorf("a collector that never succeeded has no last-success sample, got %d", n)
	}
}

// snapshot200 builds a snapshot with 200 groups of 4 members, some failed.
func snapshot200() *Snapshot {
	var groups []spof.Group
	states := []spof.MemberState{spof.MemberOK, spof.MemberOK, spof.MemberFailed, spof.MemberDegraded}
	for i := 0; i < 200; i++ {
		g := spof.Group{ID: fmt.Sprintf("storage/md/md%d", i), Kind: spof.KindStorage, Required: 2}
		for j := 0; j < 4; j++ {
			g.Members = append(g.Members, spof.Member{Name: fmt.Sprintf("sd%c%d", 'a'+j, i), State: states[(i+j)%4],
				Domains: map[string]string{spof.DomainDisk: fmt.Sprintf("sd%c%d", 'a'+j, i)}})
		}
		groups = append(groups, g)
	}
	var outcomes []Outcome
	for _, n := range []string{"mounts", "uplink", "md", "zfs", "megaraid", "bonding", "ipmi", "ups"} {
		outcomes = append(outcomes, Outcome{Name: n, OK: true, Duration: time.Millisecond, LastSuccess: time.Now()})
	}
	return snapshotOf(groups, outcomes, time.Now())
}

// BenchmarkScrape200Groups is one /metrics scrape through promhttp over a
// 200-group snapshot; it reports the p99 of the iterations too.
func BenchmarkScrape200Groups(b *testing.B) {
	// As the daemon serves it: the snapshot's cached families merged with
	// a live registry.
	live := prometheus.NewRegistry()
	live.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "spofwatch_live_example", Help: "x"}))
	g := MergeGatherers(NewExporter(staticSource{snapshot200()}, map[string]string{"rack": "r1"}), live)
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	req := httptest.NewRequest("GET", "/metrics", nil)
	var took []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		took = append(took, time.Since(start))
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(rec200Bytes(h, req)), "bytes/scrape")
}

func rec200Bytes(h interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request)
}, req *http.Request) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Body.Len()
}

func TestGatherMatchesCollectAndMerges(t *testing.T) {
	snap := snapshot200()
	e := NewExporter(staticSource{snap}, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	viaCollect, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	live := prometheus.NewRegistry()
	live.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "spofwatch_alerting_example_total", Help: "x"}))
	merged, err := MergeGatherers(e, live).Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(merged) != len(viaCollect)+1 {
		t.Fatalf("merged %d families, want %d", len(merged), len(viaCollect)+1)
	}
	for i := 1; i < len(merged); i++ {
		if merged[i-1].GetName() >= merged[i].GetName() {
			t.Errorf("families not sorted: %s before %s", merged[i-1].GetName(), merged[i].GetName())
		}
	}
	again, _ := e.Gather()
	first, _ := e.Gather()
	if &again[0] != &first[0] {
		t.Error("families of one snapshot are gathered again instead of reused")
	}
	// A clash of names falls back to full validation, which reports it.
	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "spofwatch_group_state", Help: "x"}))
	if _, err := MergeGatherers(e, clash).Gather(); err == nil {
		t.Error("a duplicate family must not pass silently")
	}
}
