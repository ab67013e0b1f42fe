package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/drill"
	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/raid/raidtest"
	"github.com/spofwatch/spofwatch/report"
)

// drillHost is a host with one raid1 md0 (vda, vdb; the second leg in
// state leg2) as sysfs and procfs trees, and an empty state directory.
type drillHost struct {
	sys, proc, state string
}

func newDrillHost(t *testing.T, leg2 string) drillHost {
	t.Helper()
	root := t.TempDir()
	slot := "1"
	if leg2 == "faulty" {
		slot = "none"
	}
	err := raidtest.WriteTree(root, "Personalities : [raid1]\nunused devices: <none>\n", raidtest.Array{
		Name: "md0", Level: "raid1", ArrayState: "clean", RaidDisks: "2", SyncAction: "idle", MismatchCnt: "0",
		Extra: map[string]string{"last_sync_action": "none"},
		Devs:  []raidtest.Dev{{Name: "vda", State: "in_sync", Slot: "0"}, {Name: "vdb", State: leg2, Slot: slot}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return drillHost{sys: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc"), state: filepath.Join(root, "state")}
}

func (h drillHost) syncAction(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.sys, "block", "md0", "md", "sync_action"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (h drillHost) records(t *testing.T) []drill.Record {
	t.Helper()
	f, err := os.Open(auditlog.LogPath(h.state))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []drill.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r drill.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// execDrill runs `spofwatch drill ARGS` against the host with only the md
// collector.
func (h drillHost) execDrill(t *testing.T, config string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cfgFile := os.DevNull
	if config != "" {
		cfgFile = writeConfig(t, t.TempDir(), config)
	}
	full := []string{"drill"}
	full = append(full, args...)
	full = append(full, "--path.sysfs="+h.sys, "--path.procfs="+h.proc, "--path.state="+h.state, "--config.file="+cfgFile)
	for _, c := range collectorsBut("md") {
		full = append(full, "--no-collector."+c)
	}
	cmd := exec.Command(binary, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestDrillRunMd(t *testing.T) {
	h := newDrillHost(t, "in_sync")

	// Dry run: the plan, nothing changed, nothing recorded.
	out, errOut, code := h.execDrill(t, "", "run", "storage/md/md0", "--dry-run")
	if code != 0 || !strings.Contains(out, "Plan:") || !strings.Contains(out, "write check to "+filepath.Join(h.sys, "block/md0/md/sync_action")) {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if got := h.syncAction(t); got != "idle" || len(h.records(t)) != 0 {
		t.Errorf("dry run changed sync_action to %q or recorded %d records", got, len(h.records(t)))
	}

	// The drill: check written, started (no --wait), two audit records.
	out, errOut, code = h.execDrill(t, "", "run", "storage/md/md0", "--format=json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON %q: %v\n%s", out, err, errOut)
	}
	if code != 0 || rep["result"] != "started" || rep["group"] != "storage/md/md0" || rep["method"] != "md-check" {
		t.Errorf("drill: exit %d %v\n%s", code, rep, errOut)
	}
	for _, k := range []string{"group", "method", "result", "reason", "started", "finished", "details"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("JSON result lacks %q: %s", k, out)
		}
	}
	if got := h.syncAction(t); got != "check" {
		t.Errorf("sync_action %q, want check", got)
	}
	recs := h.records(t)
	if len(recs) != 2 || recs[0].Result != drill.ResultStarted || recs[1].Result != drill.ResultStarted || recs[0].ID != recs[1].ID || recs[1].Finished.IsZero() {
		t.Errorf("audit log %+v", recs)
	}

	// A second drill while the check runs: refused by the method, exit 2.
	out, _, code = h.execDrill(t, "", "run", "storage/md/md0")
	if code != drill.ExitRefused || !strings.Contains(out, "refused: md0 is busy: sync_action is check") {
		t.Errorf("drill of a busy array: exit %d\n%s", code, out)
	}

	// list: md0 is drillable by md-check, and the timer may run it.
	out, errOut, code = h.execDrill(t, "", "list", "--format=json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 {
		t.Fatalf("list: exit %d %v\n%s%s", code, err, out, errOut)
	}
	found := false
	for _, e := range list {
		if e["group"] == "storage/md/md0" {
			found = e["drillable"] == true && e["method"] == "md-check" && e["scheduled"] == true
			if _, ok := e["last_proven"]; !ok {
				t.Errorf("list entry lacks last_proven: %v", e)
			}
		}
	}
	if !found {
		t.Errorf("list: %s", out)
	}
}

// Never on a degraded array: refused, exit 2, sync_action untouched, the
// refusal audited.
func TestDrillRefusedOnDegradedArray(t *testing.T) {
	h := newDrillHost(t, "faulty")
	out, errOut, code := h.execDrill(t, "", "run", "storage/md/md0", "--wait")
	if code != drill.ExitRefused || !strings.Contains(out, "refused: storage/md/md0 is redundancy_lost, not redundant") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if got := h.syncAction(t); got != "idle" {
		t.Errorf("sync_action %q", got)
	}
	if recs := h.records(t); len(recs) != 1 || recs[0].Result != drill.ResultRefused {
		t.Errorf("audit log %+v", recs)
	}
}

// Another drill holds the lock: refused, exit 2, naming its pid.
func TestDrillRefusedWhileLocked(t *testing.T) {
	h := newDrillHost(t, "in_sync")
	if err := os.MkdirAll(h.state, 0o750); err != nil {
		t.Fatal(err)
	}
	l, err := drill.AcquireLock(drill.LockPath(h.state))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	out, _, code := h.execDrill(t, "", "run", "storage/md/md0", "--format=json")
	if code != drill.ExitRefused || !strings.Contains(out, `"result":"refused"`) || !strings.Contains(out, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("exit %d\n%s", code, out)
	}
	if got := h.syncAction(t); got != "idle" {
		t.Errorf("sync_action %q", got)
	}
}

func TestDrillScheduled(t *testing.T) {
	h := newDrillHost(t, "in_sync")
	out, errOut, code := h.execDrill(t, "", "run", "--scheduled", "--format=json")
	var reps []map[string]any
	if err := json.Unmarshal([]byte(out), &reps); err != nil || code != 0 {
		t.Fatalf("exit %d %v\n%s%s", code, err, out, errOut)
	}
	if len(reps) != 1 || reps[0]["group"] != "storage/md/md0" || reps[0]["result"] != "started" {
		t.Errorf("scheduled run: %s", out)
	}
	recs := h.records(t)
	if len(recs) != 2 || !recs[0].Scheduled || !recs[1].Scheduled {
		t.Errorf("audit log %+v", recs)
	}
}

func TestDrillUsageErrors(t *testing.T) {
	h := newDrillHost(t, "in_sync")
	for _, tc := range []struct {
		name, config string
		args         []string
		want         string
	}{
		{"no group", "", []string{"run"}, "name a GROUP"},
		{"group and --scheduled", "", []string{"run", "storage/md/md0", "--scheduled"}, "give no GROUP"},
		{"--scheduled --wait", "", []string{"run", "--scheduled", "--wait"}, "--wait does not apply"},
		{"unknown group", "", []string{"run", "storage/md/md9"}, `no group "storage/md/md9"`},
		{"bad format", "", []string{"run", "storage/md/md0", "--format=yaml"}, "enum value must be one of"},
		{"bad config", "drill:\n  bonds:\n    - bond: bond0\n      targets: [gateway]\n", []string{"run", "storage/md/md0"}, `spofwatch.yml:4: drill.bonds.0.targets.0: "gateway" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := h.execDrill(t, tc.config, tc.args...)
			if code != drill.ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want 3 with %q\n%s%s", code, tc.want, out, errOut)
			}
			if got := h.syncAction(t); got != "idle" {
				t.Errorf("sync_action %q", got)
			}
		})
	}
}

// SIGTERM in the middle of a followed check: the command stops the check
// it started (idle to sync_action), exits 1, and the audit log ends with
// the interrupted drill's final record.
func TestDrillSIGTERMStopsCheck(t *testing.T) {
	h := newDrillHost(t, "in_sync")
	args := []string{"drill", "run", "storage/md/md0", "--wait", "--format=json",
		"--path.sysfs=" + h.sys, "--path.procfs=" + h.proc, "--path.state=" + h.state, "--config.file=" + os.DevNull}
	for _, c := range collectorsBut("md") {
		args = append(args, "--no-collector."+c)
	}
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The fixture's check never progresses: the drill follows it until
	// the signal.
	for i := 0; h.syncAction(t) != "check"; i++ {
		if i == 1000 {
			t.Fatalf("the drill never wrote check\n%s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != drill.ExitFailed {
		t.Errorf("exit %d (%v), want 1\n%s%s", code, err, out.String(), errb.String())
	}
	if got := h.syncAction(t); got != "idle" {
		t.Errorf("sync_action %q after SIGTERM, want idle (the check stopped)", got)
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep["result"] != "failed" || !strings.HasPrefix(rep["reason"].(string), "interrupted: ") {
		t.Errorf("report %s (%v)", out.String(), err)
	}
	recs := h.records(t)
	if len(recs) != 2 || recs[1].Result != drill.ResultFailed || !strings.Contains(recs[1].Reason, "the check of md0 was stopped") {
		t.Errorf("audit log %+v", recs)
	}
}

// A member failed only by an earlier drill does not block the re-drill
// that can clear it: readiness is judged on what the sources say now,
// while check still shows the drill's verdict.
func TestDrillReadinessIgnoresEarlierDrillVerdict(t *testing.T) {
	h := newDrillHost(t, "in_sync")
	if err := os.MkdirAll(h.state, 0o750); err != nil {
		t.Fatal(err)
	}
	ended := time.Now().Add(-time.Hour).UTC()
	for _, r := range []drill.Record{
		{ID: "x", Group: "storage/md/md0", Method: "md-check", Result: drill.ResultStarted, Started: ended.Add(-time.Minute)},
		{ID: "x", Group: "storage/md/md0", Method: "md-check", Result: drill.ResultFailed, Started: ended.Add(-time.Minute), Finished: ended,
			Reason: "read errors on vdb", FailedMembers: map[string]string{"vdb": "read errors during check"}},
	} {
		if err := auditlog.AppendLog(auditlog.LogPath(h.state), r); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--path.sysfs=" + h.sys, "--path.procfs=" + h.proc, "--path.state=" + h.state, "--config.file=" + os.DevNull, "--format=json"}
	for _, c := range collectorsBut("md") {
		args = append(args, "--no-collector."+c)
	}
	r, code := checkJSON(t, args...)
	if g := reportGroup(t, r, "storage/md/md0"); code != report.ExitCritical || g.State != "redundancy_lost" {
		t.Fatalf("check after the failed drill: exit %d, %s; want 2, redundancy_lost", code, g.State)
	}
	out, errOut, code := h.execDrill(t, "", "run", "storage/md/md0", "--dry-run")
	if code != drill.ExitPassed || strings.Contains(out, "refused") {
		t.Errorf("dry run after a failed drill: exit %d, want 0 (not refused)\n%s%s", code, out, errOut)
	}
}
