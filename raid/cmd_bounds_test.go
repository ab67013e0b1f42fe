package raid

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/internal/stubcmd"
)

// runners are the two helper commands, each run against a stub.
var runners = []struct {
	name string
	run  func(ctx context.Context, path string) error
}{
	{"zpool", func(ctx context.Context, path string) error {
		_, err := (&ZpoolCommand{Path: path}).Status(ctx)
		return err
	}},
	{"storcli64", func(ctx context.Context, path string) error {
		_, err := Storcli{Path: path}.Controllers(ctx)
		return err
	}},
}

// TestHelperCommandSpew: a zpool or storcli that writes too much is
// stopped at 4 MiB with an error naming the limit, instead of growing the
// agent's memory until the timeout (1 GB in 2 s before).
func TestHelperCommandSpew(t *testing.T) {
	if _, err := exec.LookPath("head"); err != nil {
		t.Skip("head not installed")
	}
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			// 64 MiB, not endless: the unbounded reader of old must finish.
			path := stubcmd.Write(t, r.name, "exec head -c 67108864 /dev/zero")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound only
			defer cancel()
			err := r.run(ctx, path)
			if err == nil || !strings.Contains(err.Error(), "output of "+r.name+" exceeded 4 MiB") {
				t.Fatalf("err %v, want the output limit", err)
			}
			if ctx.Err() != nil {
				t.Errorf("stopped by the timeout, not the limit: %v", err)
			}
		})
	}
}

// TestHelperCommandHangKillsChildren: a zpool or storcli that forks a
// child and hangs is killed with the child when the context ends (before,
// only the direct child was killed and the other was orphaned).
func TestHelperCommandHangKillsChildren(t *testing.T) {
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "child.pid")
			path := stubcmd.Write(t, r.name, `sleep 300 & echo $! > `+pidFile+`; sleep 300`)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.run(ctx, path) }()
			pid := stubcmd.WaitPid(t, pidFile)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("err %v, want context.Canceled", err)
			}
			stubcmd.WaitGone(t, pid, "child of the hung "+r.name)
		})
	}
}
