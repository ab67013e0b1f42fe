package boundedexec

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/internal/stubcmd"
)

func TestRunOutput(t *testing.T) {
	tests := []struct {
		name, body     string
		max            int
		stdout, stderr string
		wantLimit      bool
		wantExit       int // -1: no exit error
	}{
		{"plain", `echo out; echo err >&2`, 0, "out\n", "err\n", false, -1},
		{"exit status kept", `echo partial; exit 3`, 0, "partial\n", "", false, 3},
		{"exactly the limit", `printf 12345678`, 8, "12345678", "", false, -1},
		{"stdout over", `printf 123456789`, 8, "12345678", "", true, -1},
		{"stderr over", `printf 123456789 >&2`, 8, "", "12345678", true, -1},
		{"env added", `printf "$LC_ALL"`, 0, "C", "", false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Cmd{Path: stubcmd.Write(t, "cmd", tt.body), Env: []string{"LC_ALL=C"}, MaxOutput: tt.max}
			out, err := c.Run(context.Background())
			if got := string(out.Stdout); got != tt.stdout {
				t.Errorf("stdout %q, want %q", got, tt.stdout)
			}
			if got := string(out.Stderr); got != tt.stderr {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			if errors.Is(err, ErrOutputLimit) != tt.wantLimit {
				t.Errorf("err %v, want output limit %v", err, tt.wantLimit)
			}
			var ee *exec.ExitError
			switch {
			case tt.wantExit >= 0 && (!errors.As(err, &ee) || ee.ExitCode() != tt.wantExit):
				t.Errorf("err %v, want exit status %d", err, tt.wantExit)
			case tt.wantExit < 0 && !tt.wantLimit && err != nil:
				t.Errorf("err %v", err)
			}
		})
	}
}

// TestRunSpewBounded: a command that writes without end is stopped at the
// limit with an error naming it, and the memory it costs stays near the
// limit (the unbounded buffer reached 1 GB in 2 s).
func TestRunSpewBounded(t *testing.T) {
	if _, err := exec.LookPath("yes"); err != nil {
		t.Skip("yes not installed")
	}
	c := Cmd{Path: stubcmd.Write(t, "zpool", "exec yes")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not an expectation
	defer cancel()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := c.Run(ctx)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrOutputLimit) || !strings.Contains(err.Error(), "output of zpool exceeded 4 MiB") {
		t.Fatalf("err %v, want the output limit named", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("stopped by the context, not by the limit: %v", err)
	}
	if len(out.Stdout) != DefaultMaxOutput {
		t.Errorf("kept %d bytes, want %d", len(out.Stdout), DefaultMaxOutput)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MiB while reading a spewing command (limit %d MiB)", float64(alloc)/(1<<20), DefaultMaxOutput>>20)
	if alloc > 3*DefaultMaxOutput {
		t.Errorf("allocated %d bytes for a %d byte limit", alloc, DefaultMaxOutput)
	}
}

// TestRunKillsProcessGroup: a command that forks a sleeper and hangs is
// killed with its child when the context ends; killing only the direct
// child left the sleeper behind.
func TestRunKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	c := Cmd{Path: stubcmd.Write(t, "zpool", `sleep 300 & echo $! > `+pidFile+`; echo started; sleep 300`)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var out Output
	go func() {
		var err error
		out, err = c.Run(ctx)
		done <- err
	}()
	pid := stubcmd.WaitPid(t, pidFile)
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if !bytes.Equal(out.Stdout, []byte("started\n")) {
		t.Errorf("stdout %q", out.Stdout)
	}
	stubcmd.WaitGone(t, pid, "a child of the command")
}

// TestRunKillsLeftoverChildren: children a command leaves running when it
// exits do not outlive Run.
func TestRunKillsLeftoverChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := Cmd{Path: stubcmd.Write(t, "storcli64", `sleep 300 >/dev/null 2>&1 & echo $! > `+pidFile+`; exit 0`)}
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	stubcmd.WaitGone(t, stubcmd.WaitPid(t, pidFile), "a child of the command")
}
