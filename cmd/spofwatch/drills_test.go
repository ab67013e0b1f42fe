package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/drill"
	"github.com/spofwatch/spofwatch/internal/ttar"
	"github.com/spofwatch/spofwatch/report"
)

// bondFixture unpacks the active-backup bond tree (bond0: eno1 primary,
// ens2f0 backup, both up) and returns the flags that point check at it
// alone.
func bondFixture(t *testing.T) []string {
	return append(bondTree(t), "--format=json")
}

// bondTree is bondFixture's flags without check's --format.
func bondTree(t *testing.T) []string {
	t.Helper()
	root := ttar.Extract(t, filepath.Join("..", "..", "collectors", "testdata", "bonding", "active-backup.ttar"))
	args := []string{"--path.sysfs=" + filepath.Join(root, "sys"), "--path.procfs=" + filepath.Join(root, "proc")}
	for _, c := range collectorsBut("bonding") {
		args = append(args, "--no-collector."+c)
	}
	return args
}

// collectorsBut is every optional collector except keep: the ones a
// fixture test turns off, so a collector added later cannot read the
// host or a tree the fixture does not have.
func collectorsBut(keep ...string) []string {
	var off []string
	for _, c := range config.CollectorNames {
		if !slices.Contains(keep, c) {
			off = append(off, c)
		}
	}
	return off
}

// appendDrill appends a drill's started and final records to the audit log,
// as `spofwatch drill run` does.
func appendDrill(t *testing.T, stateDir, id string, res drill.Result, ended time.Time, reason string, failed map[string]string) {
	t.Helper()
	start := drill.Record{ID: id, Group: "network/bond/bond0", Method: "bond-failover", Result: drill.ResultStarted, Started: ended.Add(-20 * time.Second), User: "root", PID: 4242}
	final := start
	final.Result, final.Finished, final.Reason, final.FailedMembers = res, ended, reason, failed
	f, err := os.OpenFile(filepath.Join(stateDir, "drills.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range []drill.Record{start, final} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

func checkJSON(t *testing.T, args ...string) (report.Report, int) {
	t.Helper()
	out, errOut, code := execCheck(t, args...)
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check output is not JSON (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	return r, code
}

func reportGroup(t *testing.T, r report.Report, id string) report.Group {
	t.Helper()
	for _, g := range r.Groups {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("no group %s in %+v", id, r.Groups)
	return report.Group{}
}

func reportFinding(r report.Report, code, group string) *report.Finding {
	for _, f := range r.Findings {
		if f.Code == code && f.Group == group {
			return &f
		}
	}
	return nil
}

// A failed bond drill in the audit log makes its backup slave failed and
// the bond redundancy_lost, and check exits CRITICAL; a later passing drill
// clears it. This is the VM scenario 2 seen from the daemon side,
// on a fixture tree and a real audit log file.
func TestCheckReadsDrillAuditLog(t *testing.T) {
	state := t.TempDir()
	args := append(bondFixture(t), "--path.state="+state, "--config.file="+os.DevNull)
	const bond = "network/bond/bond0"

	r, code := checkJSON(t, args...)
	if g := reportGroup(t, r, bond); g.State != "redundant" || code != report.ExitOK {
		t.Fatalf("before any drill: %s, exit %d", g.State, code)
	}

	failedAt := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	appendDrill(t, state, "d1", drill.ResultFailed, failedAt, "ens2f0 cannot reach gateway 192.0.2.1 (2 ARP probes, 3s)",
		map[string]string{"ens2f0": "no ARP reply from 192.0.2.1 on ens2f0"})
	r, code = checkJSON(t, args...)
	g := reportGroup(t, r, bond)
	if code != report.ExitCritical || g.State != "redundancy_lost" || g.MembersWorking != 1 {
		t.Errorf("after a failed drill: exit %d, %s with %d working; want exit 2, redundancy_lost, 1 working", code, g.State, g.MembersWorking)
	}
	for _, m := range g.Members {
		if want := map[string]string{"eno1": "ok", "ens2f0": "failed"}[m.Name]; m.State != want {
			t.Errorf("member %s is %s, want %s", m.Name, m.State, want)
		}
	}
	if f := reportFinding(r, "drill_failed", bond); f == nil || f.Severity != "warning" || !strings.Contains(f.Summary, "bond-failover") || !strings.Contains(f.Summary, "cannot reach gateway 192.0.2.1") {
		t.Errorf("drill_failed = %+v; want a warning naming the method and reason", f)
	}
	if f := reportFinding(r, "redundancy_lost", bond); f == nil || !strings.Contains(f.Summary, "no ARP reply from 192.0.2.1") {
		t.Errorf("redundancy_lost = %+v; want the member's drill reason in it", f)
	}
	if p := g.LastProven; p == nil || p.Result != "failed" || p.Method != "bond-failover" || !p.At.Equal(failedAt) {
		t.Errorf("last_proven = %+v; want the failed drill at %s", p, failedAt)
	}

	passedAt := time.Now().UTC().Truncate(time.Second)
	appendDrill(t, state, "d2", drill.ResultPassed, passedAt, "", nil)
	r, code = checkJSON(t, args...)
	g = reportGroup(t, r, bond)
	if code != report.ExitOK || g.State != "redundant" || reportFinding(r, "drill_failed", bond) != nil {
		t.Errorf("after a passing drill: exit %d, %s, findings %+v", code, g.State, r.Findings)
	}
	if p := g.LastProven; p == nil || p.Result != "passed" || !p.At.Equal(passedAt) {
		t.Errorf("last_proven = %+v; want the passing drill", p)
	}
}

// The acceptance line: redundancy_untested appears when the policy
// is shorter than the evidence's age, and clears after a passing drill.
func TestDrillClearsRedundancyUntested(t *testing.T) {
	state := t.TempDir()
	cfg := writeConfig(t, t.TempDir(), "proof:\n  max_age: 7d\n")
	args := append(bondFixture(t), "--path.state="+state, "--config.file="+cfg)
	const bond = "network/bond/bond0"

	appendDrill(t, state, "old", drill.ResultPassed, time.Now().Add(-10*24*time.Hour), "", nil)
	r, code := checkJSON(t, args...)
	if f := reportFinding(r, "redundancy_untested", bond); f == nil || code != report.ExitWarning {
		t.Fatalf("a 10-day-old drill under a 7-day policy: redundancy_untested %+v, exit %d", f, code)
	}
	appendDrill(t, state, "new", drill.ResultPassed, time.Now(), "", nil)
	r, code = checkJSON(t, args...)
	if f := reportFinding(r, "redundancy_untested", bond); f != nil || code != report.ExitOK {
		t.Errorf("after a passing drill: redundancy_untested %+v, exit %d", f, code)
	}
}

// A corrupt audit log line is reported and does not hide the failed drill
// next to it.
func TestCheckCorruptDrillLog(t *testing.T) {
	state := t.TempDir()
	args := append(bondFixture(t), "--path.state="+state, "--config.file="+os.DevNull)
	appendDrill(t, state, "d1", drill.ResultFailed, time.Now(), "ens2f0 cannot reach the gateway", map[string]string{"ens2f0": "no reply"})
	f, err := os.OpenFile(filepath.Join(state, "drills.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"id\":\"torn\n")
	f.Close()
	r, code := checkJSON(t, args...)
	if g := reportGroup(t, r, "network/bond/bond0"); g.State != "redundancy_lost" || code != report.ExitCritical {
		t.Errorf("bond0 %s, exit %d; the failed drill before the bad line must still count", g.State, code)
	}
	found := false
	for _, f := range r.Findings {
		if f.Code == "collector_unavailable" && strings.Contains(f.Summary, "line 3") {
			found = true
		}
	}
	if !found {
		t.Errorf("no collector_unavailable naming line 3 of the drill log: %+v", r.Findings)
	}
}

// The daemon serves the audit log at /api/v1/drills (newest first,
// bounded by ?limit=), counts drills in spofwatch_drill_runs_total and
// shows the last drill on the page.
func TestDaemonServesDrills(t *testing.T) {
	state := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	appendDrill(t, state, "d1", drill.ResultPassed, now.Add(-2*time.Hour), "", nil)
	appendDrill(t, state, "d2", drill.ResultFailed, now.Add(-time.Hour), "ens2f0 cannot reach gateway 192.0.2.1", map[string]string{"ens2f0": "no ARP reply"})
	d := startDaemon(t, append(bondTree(t), "--path.state="+state, "--config.file="+os.DevNull)...)

	var doc struct {
		Records     []drill.Record `json:"records"`
		Truncated   bool           `json:"truncated"`
		Interrupted []string       `json:"interrupted"`
	}
	if err := json.Unmarshal([]byte(d.get(t, "/api/v1/drills?limit=3")), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range doc.Records {
		got = append(got, r.ID+":"+string(r.Result))
	}
	if strings.Join(got, ",") != "d2:failed,d2:started,d1:passed" || !doc.Truncated || len(doc.Interrupted) != 0 {
		t.Errorf("/api/v1/drills?limit=3 = %v truncated %v interrupted %v", got, doc.Truncated, doc.Interrupted)
	}

	metrics := d.get(t, "/metrics")
	for _, want := range []string{
		`spofwatch_drill_runs_total{group="network/bond/bond0",method="bond-failover",result="failed"} 1`,
		`spofwatch_drill_runs_total{group="network/bond/bond0",method="bond-failover",result="passed"} 1`,
		`spofwatch_finding{code="drill_failed",group="network/bond/bond0",member="",severity="warning"} 1`,
		`spofwatch_member_up{group="network/bond/bond0",member="ens2f0"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if page := d.get(t, "/"); !strings.Contains(page, "last drill: bond-failover") {
		t.Error("the page does not show the last drill")
	}
}
