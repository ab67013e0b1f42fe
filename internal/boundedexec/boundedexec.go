// Package boundedexec runs a helper command (zpool, storcli) so that it
// can cost neither unbounded memory nor leftover processes: stdout and
// stderr are each captured up to a limit, and the command runs in its own
// process group, which is killed as a whole when the context ends, when
// the output limit is hit, and after the command exits.
package boundedexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxOutput bounds each of stdout and stderr when Cmd.MaxOutput is 0.
// The largest real `zpool status -j` or `storcli /call show all J` seen is
// well under 1 MiB.
const DefaultMaxOutput = 4 << 20

// DefaultWaitDelay is how long Run waits for the pipes to close after the
// command exited or was killed, when Cmd.WaitDelay is 0.
const DefaultWaitDelay = 2 * time.Second

// ErrOutputLimit is wrapped by the error Run returns when the command
// wrote more than MaxOutput bytes to stdout or stderr.
var ErrOutputLimit = errors.New("output limit exceeded")

// Cmd is one command to run.
type Cmd struct {
	// Path is the program (absolute, or resolved by exec.LookPath).
	Path string
	Args []string
	// Env is added to the current environment (e.g. "LC_ALL=C").
	Env []string
	// MaxOutput bounds stdout and stderr, each. 0 means DefaultMaxOutput.
	MaxOutput int
	// WaitDelay: 0 means DefaultWaitDelay.
	WaitDelay time.Duration
}

// Output is what the command wrote, at most MaxOutput bytes of each.
type Output struct {
	Stdout, Stderr []byte
}

// Run runs the command to completion. The error is nil, an
// *exec.ExitError, one wrapping ErrOutputLimit (the command was killed;
// the output is truncated and must not be parsed), or one wrapping
// ctx.Err() when the context ended first.
func (c Cmd) Run(ctx context.Context) (Output, error) {
	limit := c.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	// Its own group, so that killing the group reaches the children it
	// forked, not only the direct child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = c.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = DefaultWaitDelay
	}
	var overflow overflowOnce
	stdout := &capped{limit: limit, full: &overflow}
	stderr := &capped{limit: limit, full: &overflow}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return Output{}, err
	}
	overflow.set(func() { _ = killGroup(cmd.Process.Pid) })
	err := cmd.Wait()
	// Children left behind by a command that exited are ours too. The
	// group id cannot have been reused while any member lives.
	_ = killGroup(cmd.Process.Pid)
	out := Output{Stdout: stdout.buf, Stderr: stderr.buf}
	switch {
	case overflow.hit():
		return out, fmt.Errorf("output of %s exceeded %s: %w", filepath.Base(c.Path), size(limit), ErrOutputLimit)
	case err != nil && ctx.Err() != nil:
		return out, fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return out, err
}

func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// capped keeps the first limit bytes written and reports the overflow
// instead of growing: the writer keeps accepting (and dropping) bytes so
// the command is stopped by the kill, not by a blocked pipe.
type capped struct {
	buf   []byte
	limit int
	full  *overflowOnce
}

func (w *capped) Write(p []byte) (int, error) {
	keep := p[:min(len(p), w.limit-len(w.buf))]
	if need := len(w.buf) + len(keep); need > cap(w.buf) {
		// Doubling up to the limit: a full buffer costs under twice the
		// limit in allocations (append's slower growth cost five times).
		grown := make([]byte, len(w.buf), min(w.limit, max(need, 2*cap(w.buf), 32<<10)))
		copy(grown, w.buf)
		w.buf = grown
	}
	w.buf = append(w.buf, keep...)
	if len(keep) < len(p) {
		w.full.trigger()
	}
	return len(p), nil
}

// overflowOnce kills the command on the first overflow of either stream.
type overflowOnce struct {
	mu   sync.Mutex
	kill func()
	over bool
}

func (o *overflowOnce) set(kill func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kill = kill
	if o.over {
		kill()
	}
}

func (o *overflowOnce) trigger() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.over && o.kill != nil {
		o.kill()
	}
	o.over = true
}

func (o *overflowOnce) hit() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.over
}

func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
