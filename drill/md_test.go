package drill

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/raid/raidtest"
)

// mdTree writes a raid1 md0 over vda and vdb with the given md files and
// returns the sysfs root. The VM scenarios (test/vm, drill/*) run the
// same method against a real kernel.
func mdTree(t *testing.T, files map[string]string, devStates ...string) string {
	t.Helper()
	root := t.TempDir()
	if len(devStates) == 0 {
		devStates = []string{"in_sync", "in_sync"}
	}
	a := raidtest.Array{Name: "md0", Level: "raid1", ArrayState: "clean", RaidDisks: "2", SyncAction: "idle", MismatchCnt: "0",
		Extra: map[string]string{"last_sync_action": "none"}}
	for i, st := range devStates {
		slot := "none"
		if st != "faulty" {
			slot = string(rune('0' + i))
		}
		a.Devs = append(a.Devs, raidtest.Dev{Name: []string{"vda", "vdb"}[i], State: st, Slot: slot})
	}
	if err := raidtest.WriteTree(root, "", a); err != nil {
		t.Fatal(err)
	}
	sys := filepath.Join(root, "sys")
	for k, v := range files {
		setMd(t, sys, k, v)
	}
	return sys
}

func setMd(t *testing.T, sys, file, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(sys, "block", "md0", "md", file), []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func getMd(t *testing.T, sys, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sys, "block", "md0", "md", file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// kernelSteps acts out md for a followed check: each progress report of
// the method applies the next set of sysfs values, so the test is
// deterministic whatever the poll interval. The first step sees what the
// method wrote to sync_action.
type kernelSteps struct {
	t       *testing.T
	sys     string
	steps   []map[string]string
	n       int
	written []string // sync_action as found at each progress report
	msgs    []string
	onStep  func(n int)
}

func (k *kernelSteps) progress(done, total float64, msg string) {
	k.written = append(k.written, getMd(k.t, k.sys, "sync_action"))
	k.msgs = append(k.msgs, msg)
	if k.n < len(k.steps) {
		for f, v := range k.steps[k.n] {
			setMd(k.t, k.sys, f, v)
		}
	}
	if k.onStep != nil {
		k.onStep(k.n)
	}
	k.n++
}

var checkRuns = map[string]string{"sync_completed": "0 / 2000", "last_sync_action": "check"}

func checkDone(mismatch string) map[string]string {
	return map[string]string{"sync_action": "idle", "sync_completed": "none", "mismatch_cnt": mismatch}
}

func TestMdCheck(t *testing.T) {
	for _, tc := range []struct {
		name       string
		allow      bool
		steps      []map[string]string
		wantResult Result
		wantReason string
	}{
		{"clean", false, []map[string]string{checkRuns, {"sync_completed": "1000 / 2000"}, checkDone("0")}, ResultPassed, "check of md0 done, mismatch_cnt 0"},
		{"mismatch", false, []map[string]string{checkRuns, checkDone("128")}, ResultFailed, "mismatch_cnt 128 after check"},
		{"mismatch allowed (swap)", true, []map[string]string{checkRuns, checkDone("128")}, ResultPassed, "mismatch_cnt 128 (allowed by drill.md.allow_mismatch)"},
		{"a member fails: recovery takes over", false, []map[string]string{checkRuns, {"sync_action": "recover", "sync_completed": "0 / 2000"}}, ResultFailed, "the check of md0 gave way to recover"},
		{"stopped by someone else (last_sync_action)", false, []map[string]string{checkRuns, {"sync_action": "idle", "last_sync_action": "resync"}}, ResultFailed, "did not run to its end: last_sync_action is resync"},
		{"mismatch_cnt unreadable", false, []map[string]string{checkRuns, checkDone("x")}, ResultFailed, "mismatch_cnt of md0 unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := mdTree(t, nil)
			k := &kernelSteps{t: t, sys: sys, steps: tc.steps}
			m := &MdCheck{Array: "md0", SysPath: sys, AllowMismatch: tc.allow, Poll: time.Millisecond}
			out := m.Run(context.Background(), true, k.progress)
			if out.Result != tc.wantResult || !strings.Contains(out.Reason, tc.wantReason) {
				t.Errorf("outcome %+v, want %s ~ %q", out, tc.wantResult, tc.wantReason)
			}
			if len(k.written) == 0 || k.written[0] != "check" {
				t.Errorf("sync_action at the first report: %v, want check written", k.written)
			}
		})
	}
}

// A check that finished between two polls (a small array) is judged on
// what it left.
func TestMdCheckFinishedBeforeFirstPoll(t *testing.T) {
	sys := mdTree(t, nil)
	k := &kernelSteps{t: t, sys: sys, steps: []map[string]string{{"sync_action": "idle", "last_sync_action": "check", "mismatch_cnt": "0"}}}
	out := (&MdCheck{Array: "md0", SysPath: sys, Poll: time.Millisecond}).Run(context.Background(), true, k.progress)
	if out.Result != ResultPassed {
		t.Errorf("outcome %+v", out)
	}
}

func TestMdCheckWithoutWaitStarts(t *testing.T) {
	sys := mdTree(t, nil)
	out := (&MdCheck{Array: "md0", SysPath: sys}).Run(context.Background(), false, func(float64, float64, string) {})
	if out.Result != ResultStarted || getMd(t, sys, "sync_action") != "check" {
		t.Errorf("outcome %+v, sync_action %q", out, getMd(t, sys, "sync_action"))
	}
}

// auditlog.Interrupted while following: the method stops the check it started
// (writes idle) and says so.
func TestMdCheckCancelStopsCheck(t *testing.T) {
	sys := mdTree(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := &kernelSteps{t: t, sys: sys, steps: []map[string]string{checkRuns, {"sync_completed": "500 / 2000"}}}
	k.onStep = func(n int) {
		if n == 2 { // after the first progress with a percentage
			cancel()
		}
	}
	out := (&MdCheck{Array: "md0", SysPath: sys, Poll: time.Millisecond}).Run(ctx, true, k.progress)
	if out.Result != ResultFailed || !strings.Contains(out.Reason, "stopped at 25.0%") {
		t.Errorf("outcome %+v", out)
	}
	if got := getMd(t, sys, "sync_action"); got != "idle" {
		t.Errorf("sync_action %q after the interrupt, want idle written", got)
	}
}

// A busy or degraded array is refused by Plan and by Run, and nothing is
// written.
func TestMdCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		states []string
		want   string
	}{
		{"resync running", map[string]string{"sync_action": "resync", "sync_completed": "10 / 2000"}, nil, "md0 is busy: sync_action is resync"},
		{"check running", map[string]string{"sync_action": "check", "sync_completed": "10 / 2000"}, nil, "md0 is busy: sync_action is check"},
		{"frozen", map[string]string{"sync_action": "frozen"}, nil, "sync_action is frozen"},
		{"degraded", nil, []string{"in_sync", "faulty"}, "md0 is degraded"},
		{"inactive", map[string]string{"array_state": "inactive"}, nil, "md0 is inactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := mdTree(t, tc.files, tc.states...)
			before := getMd(t, sys, "sync_action")
			m := &MdCheck{Array: "md0", SysPath: sys, Poll: time.Millisecond}
			if _, err := m.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("plan error %v, want %q", err, tc.want)
			}
			out := m.Run(context.Background(), true, func(float64, float64, string) { t.Error("progress from a refused drill") })
			if out.Result != ResultRefused || !strings.Contains(out.Reason, tc.want) {
				t.Errorf("outcome %+v", out)
			}
			if got := getMd(t, sys, "sync_action"); got != before {
				t.Errorf("sync_action changed %q -> %q", before, got)
			}
		})
	}
}

func TestMdCheckPlanAndNames(t *testing.T) {
	sys := mdTree(t, nil)
	plan, err := (&MdCheck{Array: "md0", SysPath: sys}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "write check to "+filepath.Join(sys, "block/md0/md/sync_action")) || !strings.Contains(p, "write idle") {
		t.Errorf("plan:\n%s", p)
	}
	for _, bad := range []string{"", "..", "../md0", "md0/x"} {
		out := (&MdCheck{Array: bad, SysPath: sys}).Run(context.Background(), false, func(float64, float64, string) {})
		if out.Result != ResultRefused {
			t.Errorf("array %q: %+v", bad, out)
		}
	}
}
