package drill

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/internal/stubcmd"
	"github.com/spofwatch/spofwatch/spof"
)

// readLog is every record of an audit log; a line that is not a record
// fails the test.
func readLog(t *testing.T, path string) []Record {
	t.Helper()
	recs, err := auditlog.ReadLog(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// blockingMethod is the helper process' drill: it says it runs, then
// waits to be cancelled or killed.
type blockingMethod struct{ marker string }

func (blockingMethod) Name() string                           { return "test-block" }
func (blockingMethod) Disruptive() bool                       { return false }
func (blockingMethod) Plan(context.Context) ([]string, error) { return []string{"block"}, nil }
func (b blockingMethod) Run(ctx context.Context, _ bool, _ Progress) Outcome {
	if err := os.WriteFile(b.marker, []byte("running"), 0o644); err != nil {
		return Outcome{Result: ResultFailed, Reason: err.Error()}
	}
	<-ctx.Done()
	return Outcome{Result: ResultFailed, Reason: "cancelled; restored"}
}

func redundantGroup(id string) spof.GroupResult {
	return spof.GroupResult{State: spof.StateRedundant, Group: spof.Group{ID: id,
		Members: []spof.Member{{Name: "a", State: spof.MemberOK}, {Name: "b", State: spof.MemberOK}}}}
}

// TestHelperProcess is not a test: the tests below run the test binary
// again with SPOFWATCH_DRILL_HELPER set, as a second drilling process.
func TestHelperProcess(t *testing.T) {
	stateDir := os.Getenv("SPOFWATCH_DRILL_HELPER")
	if stateDir == "" {
		return
	}
	// As the command does: a signal cancels the drill, which restores.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	rep := Run(ctx, redundantGroup("storage/md/md0"), blockingMethod{marker: filepath.Join(stateDir, "running")},
		Options{StateDir: stateDir, Wait: true, Who: Who{User: "helper", PID: os.Getpid()}})
	os.Exit(rep.ExitCode())
}

// startHelper starts a drill in another process and waits until its
// method runs (the started record and the lock are then in place).
func startHelper(t *testing.T, stateDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "SPOFWATCH_DRILL_HELPER="+stateDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if stubcmd.Running(cmd.Process.Pid) {
			cmd.Process.Kill()
		}
		cmd.Wait()
	})
	marker := filepath.Join(stateDir, "running")
	for range 1000 {
		if _, err := os.Stat(marker); err == nil {
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the helper drill never started its method")
	return nil
}

// The audit log survives a SIGKILL: the drill's started record was
// fsynced before the method touched anything, and the log still parses.
// The kernel drops the dead drill's lock.
func TestAuditLogSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd := startHelper(t, dir)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed by SIGKILL", err)
	}
	recs := readLog(t, auditlog.LogPath(dir))
	if len(recs) != 1 {
		t.Fatalf("log has %d records, want the started one: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Result != ResultStarted || r.Group != "storage/md/md0" || r.Method != "test-block" || r.PID != cmd.Process.Pid || r.ID == "" || r.Started.IsZero() {
		t.Errorf("started record = %+v", r)
	}
	l, err := AcquireLock(LockPath(dir))
	if err != nil {
		t.Fatalf("the killed drill's lock is still held: %v", err)
	}
	l.Release()
}
