package raid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WatchMdstat calls notify every time the kernel signals an md event (a
// member failed, was added or removed, a sync started or ended, an array
// started or stopped). It is how mdadm --monitor learns of faults at once:
// /proc/mdstat's poll() reports POLLPRI|POLLERR when md_event_count moved
// past what this open file last read, and reading the file from the start
// re-arms it (drivers/md/md.c, mdstat_poll and md_seq_show).
//
// It blocks until ctx is done (returning nil) or the file cannot be opened
// or read (returning the error, wrapping fs.ErrNotExist when md is not
// loaded). A regular file never signals, so a fixture path just waits for
// ctx. Run it in its own goroutine; notify must not block (use
// collectors.Notify on a buffered trigger channel).
func WatchMdstat(ctx context.Context, path string, notify func()) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer f.Close()

	// A pipe wakes poll() when ctx ends, so no periodic wake-ups are needed.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("watch %s: pipe: %w", path, err)
	}
	defer unix.Close(p[0])
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			_, _ = unix.Write(p[1], []byte{0})
		case <-stop:
		}
		unix.Close(p[1])
	}()

	buf := make([]byte, 64*1024)
	rearm := func() error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("watch %s: seek: %w", path, err)
		}
		for {
			_, err := f.Read(buf)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("watch %s: read: %w", path, err)
			}
		}
	}
	if err := rearm(); err != nil {
		return err
	}
	fd := int(f.Fd())
	for {
		fds := []unix.PollFd{
			{Fd: int32(fd), Events: unix.POLLPRI | unix.POLLERR},
			{Fd: int32(p[0]), Events: unix.POLLIN},
		}
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("watch %s: poll: %w", path, err)
		}
		if ctx.Err() != nil || fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return fmt.Errorf("watch %s: poll: file descriptor no longer valid", path)
		}
		if fds[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0 {
			// Re-arm before notifying, so an event during the collection
			// wakes the next poll instead of being lost.
			if err := rearm(); err != nil {
				return err
			}
			notify()
			// The kernel reports POLLPRI on every poll while md is being
			// unloaded; a short pause bounds the loop. Events within it are
			// not lost: the re-armed file reports them on the next poll.
			time.Sleep(5 * time.Millisecond)
		}
	}
}
