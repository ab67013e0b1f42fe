package drill

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spofwatch/spofwatch/drill/auditlog"
)

// flock belongs to the open file description: two opens in one process
// exclude each other, and the refusal names the holder's pid.
func TestLockTwoDescriptions(t *testing.T) {
	path := LockPath(t.TempDir())
	l, err := AcquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(path)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want a LockedError", err)
	}
	if le.PID != os.Getpid() || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("refusal %q names pid %d, want %d", err, le.PID, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := AcquireLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

// A second concurrent drill, in another process, is refused: exit 2, a
// reason naming the running drill's pid, nothing run, the refusal
// audited. When the first ends (SIGTERM here: its method sees ctx end),
// its final record follows and the lock is free.
func TestSecondDrillRefused(t *testing.T) {
	dir := t.TempDir()
	first := startHelper(t, dir)

	ran := false
	m := &fakeMethod{name: "test-second", run: func(context.Context, bool, Progress) Outcome {
		ran = true
		return Outcome{Result: ResultPassed}
	}}
	rep := Run(context.Background(), redundantGroup("storage/md/md1"), m, Options{StateDir: dir})
	if rep.Result != ResultRefused || rep.ExitCode() != ExitRefused {
		t.Fatalf("second drill: %+v, want refused", rep)
	}
	if want := "pid " + strconv.Itoa(first.Process.Pid); !strings.Contains(rep.Reason, want) {
		t.Errorf("reason %q does not name the holder (%s)", rep.Reason, want)
	}
	if ran {
		t.Error("the refused drill ran its method")
	}

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if code := first.ProcessState.ExitCode(); code != ExitFailed {
		t.Errorf("interrupted drill exited %d, want %d", code, ExitFailed)
	}
	recs := readLog(t, auditlog.LogPath(dir))
	var refused, interrupted bool
	for _, r := range recs {
		switch r.Group {
		case "storage/md/md1":
			refused = r.Result == ResultRefused && strings.Contains(r.Reason, "another drill is running")
		case "storage/md/md0":
			interrupted = r.Result == ResultFailed && strings.HasPrefix(r.Reason, "interrupted: ") && r.ID == recs[0].ID
		}
	}
	if !refused || !interrupted {
		t.Errorf("audit log lacks the refusal (%v) or the interrupted drill's final record (%v): %+v", refused, interrupted, recs)
	}
	l, err := AcquireLock(LockPath(dir))
	if err != nil {
		t.Fatalf("lock after the first drill ended: %v", err)
	}
	l.Release()
}
