package drill

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/spof"
)

// fakeMethod is a Method whose Run is the test's: the runner's rules are
// what is tested here; the real methods have their own tests.
type fakeMethod struct {
	name       string
	disruptive bool
	plan       func() ([]string, error)
	run        func(ctx context.Context, wait bool, p Progress) Outcome
	runs       int
}

func (f *fakeMethod) Name() string     { return f.name }
func (f *fakeMethod) Disruptive() bool { return f.disruptive }
func (f *fakeMethod) Plan(context.Context) ([]string, error) {
	if f.plan == nil {
		return []string{"do the thing", "undo the thing"}, nil
	}
	return f.plan()
}
func (f *fakeMethod) Run(ctx context.Context, wait bool, p Progress) Outcome {
	f.runs++
	return f.run(ctx, wait, p)
}

func outcome(o Outcome) func(context.Context, bool, Progress) Outcome {
	return func(context.Context, bool, Progress) Outcome { return o }
}

func TestRunOutcomes(t *testing.T) {
	blockUntilDone := func(ctx context.Context, _ bool, _ Progress) Outcome {
		<-ctx.Done()
		return Outcome{Result: ResultFailed, Reason: "stopped; restored"}
	}
	for _, tc := range []struct {
		name       string
		run        func(context.Context, bool, Progress) Outcome
		timeout    time.Duration
		cancel     bool
		wantResult Result
		wantExit   int
		wantReason string
	}{
		{"passed", outcome(Outcome{Result: ResultPassed, Reason: "check done, mismatch_cnt 0"}), 0, false, ResultPassed, ExitPassed, "^check done"},
		{"failed", outcome(Outcome{Result: ResultFailed, Reason: "mismatch_cnt 8 after check", FailedMembers: map[string]string{"b": "no reply"}}), 0, false, ResultFailed, ExitFailed, "^mismatch_cnt 8"},
		{"started", outcome(Outcome{Result: ResultStarted, Reason: "scrub started"}), 0, false, ResultStarted, ExitPassed, "^scrub started"},
		{"refused by the method", outcome(Outcome{Result: ResultRefused, Reason: "md0 is busy"}), 0, false, ResultRefused, ExitRefused, "^md0 is busy"},
		{"no result", outcome(Outcome{}), 0, false, ResultFailed, ExitFailed, "^the method returned no result"},
		{"timeout", blockUntilDone, time.Millisecond, false, ResultFailed, ExitFailed, "^timed out after 1ms: stopped; restored"},
		{"signal", blockUntilDone, 0, true, ResultFailed, ExitFailed, "^interrupted: stopped; restored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state") // created by Run
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			run := tc.run
			if tc.cancel {
				run = func(c context.Context, w bool, p Progress) Outcome { cancel(); return tc.run(c, w, p) }
			}
			m := &fakeMethod{name: "test", run: run}
			rep := Run(ctx, redundantGroup("storage/md/md0"), m, Options{StateDir: dir, Timeout: tc.timeout, Who: Who{User: "ops", UID: 0, PID: 7}})
			if rep.Result != tc.wantResult || rep.ExitCode() != tc.wantExit || !matches(rep.Reason, tc.wantReason) {
				t.Errorf("report %+v, want %s (exit %d) reason ~ %q", rep, tc.wantResult, tc.wantExit, tc.wantReason)
			}
			if rep.Started.IsZero() || rep.Finished.Before(rep.Started) {
				t.Errorf("started %v finished %v", rep.Started, rep.Finished)
			}
			recs := readLog(t, auditlog.LogPath(dir))
			if len(recs) != 2 || recs[0].Result != ResultStarted || recs[1].Result != tc.wantResult || recs[0].ID != recs[1].ID ||
				recs[1].Reason != rep.Reason || recs[1].User != "ops" || recs[1].PID != 7 || recs[1].Method != "test" {
				t.Errorf("audit log %+v", recs)
			}
			if len(rep.FailedMembers) != len(recs[1].FailedMembers) {
				t.Errorf("failed members %v not recorded: %v", rep.FailedMembers, recs[1].FailedMembers)
			}
		})
	}
}

func matches(s, prefix string) bool { return strings.HasPrefix(s, strings.TrimPrefix(prefix, "^")) }

// Never drill a group that is not fully redundant with every member ok:
// refused with exit 2, the method never runs, the refusal is audited, no
// lock is taken.
func TestRunRefusesUnlessRedundant(t *testing.T) {
	degradedMember := redundantGroup("storage/md/md2")
	degradedMember.Group.Members[1] = spof.Member{Name: "b", State: spof.MemberDegraded, Detail: "write errors"}
	lost := redundantGroup("storage/md/md3")
	lost.State = spof.StateRedundancyLost
	lost.Group.Members[1].State = spof.MemberFailed
	unknown := redundantGroup("storage/md/md4")
	unknown.State = spof.StateUnknown
	empty := spof.GroupResult{State: spof.StateRedundant, Group: spof.Group{ID: "power/ipmi/psu"}}
	for _, tc := range []struct {
		gr   spof.GroupResult
		want string
	}{
		{degradedMember, "member b is degraded (write errors)"},
		{lost, "storage/md/md3 is redundancy_lost, not redundant"},
		{unknown, "is unknown, not redundant"},
		{empty, "no members"},
	} {
		t.Run(tc.gr.Group.ID, func(t *testing.T) {
			dir := t.TempDir()
			m := &fakeMethod{name: "test", run: outcome(Outcome{Result: ResultPassed})}
			rep := Run(context.Background(), tc.gr, m, Options{StateDir: dir})
			if rep.Result != ResultRefused || rep.ExitCode() != ExitRefused || !strings.Contains(rep.Reason, tc.want) {
				t.Errorf("report %+v, want refused with %q", rep, tc.want)
			}
			if m.runs != 0 {
				t.Error("method ran")
			}
			recs := readLog(t, auditlog.LogPath(dir))
			if len(recs) != 1 || recs[0].Result != ResultRefused || recs[0].Reason != rep.Reason || recs[0].Finished.IsZero() {
				t.Errorf("audit log %+v", recs)
			}
			if _, err := os.Stat(LockPath(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("lock file touched: %v", err)
			}
			// A dry run says the same, and records nothing.
			dry := Run(context.Background(), tc.gr, m, Options{StateDir: dir, DryRun: true})
			if dry.Result != ResultRefused || dry.Reason != rep.Reason || len(readLog(t, auditlog.LogPath(dir))) != 1 {
				t.Errorf("dry run %+v", dry)
			}
		})
	}
}

// A dry run prints the plan and changes nothing: no method run, no lock,
// no audit log.
func TestRunDryRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m := &fakeMethod{name: "test", run: outcome(Outcome{Result: ResultPassed})}
	rep := Run(context.Background(), redundantGroup("storage/md/md0"), m, Options{StateDir: dir, DryRun: true})
	if rep.Result != "" || rep.ExitCode() != ExitPassed || !rep.DryRun || m.runs != 0 {
		t.Errorf("dry run %+v (runs %d)", rep, m.runs)
	}
	plan := strings.Join(rep.Plan, "\n")
	for _, want := range []string{"do the thing", "undo the thing", LockPath(dir), auditlog.LogPath(dir), "stop and restore after 10m0s"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created the state directory: %v", err)
	}
	// A method that cannot plan (busy array) makes the dry run a refusal.
	busy := &fakeMethod{name: "test", plan: func() ([]string, error) { return nil, errors.New("md0 is busy: sync_action is resync") }}
	rep = Run(context.Background(), redundantGroup("storage/md/md0"), busy, Options{StateDir: dir, DryRun: true})
	if rep.Result != ResultRefused || rep.Reason != "md0 is busy: sync_action is resync" {
		t.Errorf("dry run of a busy group %+v", rep)
	}
}

// A drill that cannot be recorded is not run.
func TestRunRefusesWithoutAuditLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m := &fakeMethod{name: "test", run: outcome(Outcome{Result: ResultPassed})}
	rep := Run(context.Background(), redundantGroup("storage/md/md0"), m, Options{StateDir: file})
	if rep.Result != ResultRefused || m.runs != 0 {
		t.Errorf("report %+v, runs %d", rep, m.runs)
	}
	// A log path that cannot be written, in a usable directory.
	dir := t.TempDir()
	if err := os.Mkdir(auditlog.LogPath(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	rep = Run(context.Background(), redundantGroup("storage/md/md0"), m, Options{StateDir: dir})
	if rep.Result != ResultRefused || !strings.Contains(rep.Reason, "cannot write the audit log") || m.runs != 0 {
		t.Errorf("report %+v, runs %d", rep, m.runs)
	}
}

func TestDefaultTimeout(t *testing.T) {
	for name, want := range map[string]time.Duration{
		"bond-failover": 2 * time.Minute, "ups-battery-test": 10 * time.Minute,
		"md-check": 48 * time.Hour, "zpool-scrub": 48 * time.Hour, "other": 10 * time.Minute,
	} {
		if got := DefaultTimeout(&fakeMethod{name: name}); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(Report{Group: "storage/md/md0", Method: "md-check", Result: ResultRefused, Reason: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if d, ok := m["details"].([]any); !ok || len(d) != 0 {
		t.Errorf("details %v in %s, want []", m["details"], b)
	}
	for _, k := range []string{"group", "method", "result", "reason"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing from %s", k, b)
		}
	}
	if _, ok := m["failed_members"]; ok {
		t.Errorf("failed_members without any: %s", b)
	}
}
