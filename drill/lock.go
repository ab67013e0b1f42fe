package drill

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile is the per-host drill lock's name in the state directory.
const LockFile = "drill.lock"

// LockPath is the drill lock in a state directory.
func LockPath(stateDir string) string { return filepath.Join(stateDir, LockFile) }

// Lock is the one-drill-per-host lock: an flock on the lock file, held
// for the drill's life. The kernel drops it when the process dies, even
// by SIGKILL, so a crashed drill never blocks the next one.
type Lock struct {
	f *os.File
}

// LockedError says another drill holds the lock.
type LockedError struct {
	Path string
	// PID is the holder's pid as it wrote it, 0 when not (yet) readable.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another drill is running (pid %d holds %s)", e.PID, e.Path)
	}
	return fmt.Sprintf("another drill is running (it holds %s)", e.Path)
}

// AcquireLock takes the lock at path without waiting and writes our pid
// into it. It returns a *LockedError when another drill holds it. flock
// belongs to the open file description: two opens in one process exclude
// each other as two processes do.
func AcquireLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open the drill lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is for the refusal message of the next drill only; the
	// flock is the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// readPID reads the holder's pid, bounded: the file is ours, but a stray
// large file must not cost memory.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, 32), 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Release drops the lock. The file stays: removing it would let a drill
// that opened the old file and one that creates a new one both hold "the"
// lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}
