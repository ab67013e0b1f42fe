package collectors

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/spof"
)

var drillT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// drillLines are the two audit lines of one drill: started, then final.
func drillLines(t *testing.T, id, group string, res auditlog.Result, minute int, failed map[string]string) string {
	t.Helper()
	start := auditlog.Record{ID: id, Group: group, Method: "bond-failover", Result: auditlog.ResultStarted, Started: drillT0.Add(time.Duration(minute) * time.Minute), User: "root", PID: 7}
	final := start
	final.Result, final.Finished, final.FailedMembers = res, start.Started.Add(30*time.Second), failed
	if res == auditlog.ResultFailed {
		final.Reason = "eth1 cannot reach gateway 10.9.0.1"
	}
	var b strings.Builder
	for _, r := range []auditlog.Record{start, final} {
		if res == auditlog.ResultRefused && r.Result == auditlog.ResultStarted {
			continue // a refusal is one record
		}
		j, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(j, '\n'))
	}
	return b.String()
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// runCounts reads spofwatch_drill_runs_total back from the result.
func runCounts(t *testing.T, res agent.Result) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range res.Metrics {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var l []string
		for _, lp := range pb.GetLabel() {
			l = append(l, lp.GetValue())
		}
		out[strings.Join(l, " ")] = pb.GetCounter().GetValue()
	}
	return out
}

func outcome(res agent.Result, group string) *spof.DrillOutcome {
	for _, d := range res.Drills {
		if d.Group == group {
			return &d
		}
	}
	return nil
}

func TestDrillsCollector(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drills.jsonl")
	c := NewDrills(DrillsOptions{Path: path})
	collect := func() agent.Result {
		t.Helper()
		res, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// No log: no drills yet, not an error.
	if res := collect(); len(res.Drills) != 0 || len(res.Metrics) != 0 || len(res.HostConditions) != 0 {
		t.Fatalf("missing log gave %+v", res)
	}

	bond := "network/bond/bond0"
	appendFile(t, path, drillLines(t, "a", bond, auditlog.ResultFailed, 0, map[string]string{"eth1": "no ARP reply"}))
	res := collect()
	d := outcome(res, bond)
	if d == nil || d.Result != spof.ProofFailed || d.FailedMembers["eth1"] != "no ARP reply" || !d.At.Equal(drillT0.Add(30*time.Second)) || d.Method != "bond-failover" {
		t.Fatalf("after a failed drill: %+v", d)
	}
	if got := runCounts(t, res); got[bond+" bond-failover failed"] != 1 || len(got) != 1 {
		t.Errorf("runs = %v", got)
	}

	// A refusal is counted and changes nothing; a drill of another group
	// is its own outcome.
	appendFile(t, path, drillLines(t, "b", bond, auditlog.ResultRefused, 1, nil)+drillLines(t, "c", "storage/md/md0", auditlog.ResultPassed, 2, nil))
	res = collect()
	if d := outcome(res, bond); d == nil || d.Result != spof.ProofFailed {
		t.Errorf("a refusal changed the bond's standing: %+v", d)
	}
	if d := outcome(res, "storage/md/md0"); d == nil || d.Result != spof.ProofPassed {
		t.Errorf("md0 = %+v", d)
	}

	// A passing drill clears the failure.
	appendFile(t, path, drillLines(t, "d", bond, auditlog.ResultPassed, 3, nil))
	res = collect()
	if d := outcome(res, bond); d == nil || d.Result != spof.ProofPassed || len(d.FailedMembers) != 0 {
		t.Errorf("after a passing drill: %+v", d)
	}
	want := map[string]float64{bond + " bond-failover failed": 1, bond + " bond-failover refused": 1, bond + " bond-failover passed": 1, "storage/md/md0 bond-failover passed": 1}
	if got := runCounts(t, res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
}

// The counter counts every drill the log ever held while it only grows,
// even when the log is far larger than one read's bound; a compaction
// restarts it from what the log then holds.
func TestDrillRunsMonotonic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drills.jsonl")
	one := drillLines(t, "x", "network/bond/bond0", auditlog.ResultPassed, 0, nil)
	c := NewDrills(DrillsOptions{Path: path, MaxBytes: int64(3 * len(one))})
	key := "network/bond/bond0 bond-failover passed"
	last := 0.0
	for i := range 20 {
		appendFile(t, path, drillLines(t, fmt.Sprint("id", i), "network/bond/bond0", auditlog.ResultPassed, i, nil))
		res, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := runCounts(t, res)[key]
		if n != float64(i+1) || n < last {
			t.Fatalf("after %d drills the counter is %v (was %v)", i+1, n, last)
		}
		last = n
	}
	// Compacted to the last drill: the counter restarts (a reset).
	if err := os.WriteFile(path, []byte(drillLines(t, "id19", "network/bond/bond0", auditlog.ResultPassed, 19, nil)), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := runCounts(t, res)[key]; n != 1 {
		t.Errorf("after compaction the counter is %v, want 1", n)
	}
}

// A bad line leaves the good records in use and stays a finding until the
// log is rewritten; an unreadable log is an error.
func TestDrillsCorruptAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drills.jsonl")
	bond := "network/bond/bond0"
	appendFile(t, path, drillLines(t, "a", bond, auditlog.ResultFailed, 0, map[string]string{"eth1": "x"})+"{not json\n")
	c := NewDrills(DrillsOptions{Path: path})
	for i := range 2 { // the finding stays on the next, unchanged, read
		res, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d := outcome(res, bond); d == nil || d.Result != spof.ProofFailed {
			t.Fatalf("read %d: the good record was lost: %+v", i, res.Drills)
		}
		if len(res.HostConditions) != 1 || res.HostConditions[0].Code != spof.CodeCollectorUnavailable || !strings.Contains(res.HostConditions[0].Summary, "line 3") {
			t.Fatalf("read %d: conditions = %+v, want collector_unavailable naming line 3", i, res.HostConditions)
		}
	}
	// Rewritten without the bad line: clean.
	if err := os.WriteFile(path, []byte(drillLines(t, "a", bond, auditlog.ResultFailed, 0, nil)), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := c.Collect(context.Background())
	if err != nil || len(res.HostConditions) != 0 {
		t.Fatalf("after the rewrite: %v, %+v", err, res.HostConditions)
	}

	os.Remove(path)
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collect(context.Background()); err == nil {
		t.Fatal("a log that cannot be read gave no error")
	}
}
