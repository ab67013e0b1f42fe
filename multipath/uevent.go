package multipath

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Uevent is one kernel uevent: "<action>@<devpath>\0KEY=value\0...".
type Uevent struct {
	Action  string
	DevPath string
	Env     map[string]string
}

// maxUeventEnv bounds the variables kept from one message; the kernel's
// own limit is 64 (UEVENT_NUM_ENVP) in 2 KiB (UEVENT_BUFFER_SIZE).
const maxUeventEnv = 64

// ParseUevent parses one message of the kernel's uevent multicast group.
// udevd's re-broadcasts ("libudev" header) are not accepted: they go to
// another group, and this reader only wants the kernel's word.
func ParseUevent(msg []byte) (Uevent, error) {
	parts := bytes.Split(msg, []byte{0})
	head := string(parts[0])
	action, devpath, ok := strings.Cut(head, "@")
	if !ok || action == "" || !strings.HasPrefix(devpath, "/") {
		return Uevent{}, fmt.Errorf("uevent header %q: want <action>@<devpath>", clip(head))
	}
	u := Uevent{Action: action, DevPath: devpath, Env: map[string]string{}}
	for _, p := range parts[1:] {
		if len(p) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(p), "=")
		if !ok || k == "" {
			continue
		}
		if len(u.Env) >= maxUeventEnv {
			break
		}
		u.Env[k] = v
	}
	return u, nil
}

// PathRelevant reports whether a uevent may change path redundancy: a
// controller, subsystem or SCSI device coming or going, a block device
// change (device-mapper sends one with DM_ACTION=PATH_FAILED or
// PATH_REINSTATED when multipath fails or reinstates a path, dm-uevent.c;
// NVMe sends one on the head when a path goes live).
func PathRelevant(u Uevent) bool {
	switch u.Env["SUBSYSTEM"] {
	case "nvme", "nvme-subsystem", "scsi", "scsi_device":
		return true
	case "block":
		name := u.Env["DEVNAME"]
		return strings.HasPrefix(name, "dm-") || strings.HasPrefix(name, "nvme") || strings.HasPrefix(name, "sd")
	}
	return false
}

// ueventGroup is the kernel's multicast group on NETLINK_KOBJECT_UEVENT
// (lib/kobject_uevent.c: netlink_broadcast to group 1); any user may join
// it.
const ueventGroup = 1

// maxUeventMessage bounds one receive; kernel uevents fit in 2 KiB plus
// the header, and a longer message is truncated, not grown into.
const maxUeventMessage = 8 << 10

// WatchUevents calls notify for every kernel uevent that filter accepts,
// and once after a receive overflow (ENOBUFS: events were lost, so any of
// them may have mattered). It blocks until ctx ends (nil) or the socket
// cannot be opened or read. notify must not block.
func WatchUevents(ctx context.Context, filter func(Uevent) bool, notify func()) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return fmt.Errorf("uevent socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: ueventGroup}); err != nil {
		return fmt.Errorf("uevent socket: bind: %w", err)
	}
	// A burst (a SAN fabric losing a port takes hundreds of paths at once)
	// must not overflow before we read; the kernel caps this at rmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)

	// A pipe wakes poll() when ctx ends, so no periodic wake-ups are needed.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("uevent socket: pipe: %w", err)
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

	buf := make([]byte, maxUeventMessage)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("uevent socket: poll: %w", err)
		}
		if ctx.Err() != nil || fds[1].Revents != 0 {
			return nil
		}
		// Drain what is queued; one notify covers the burst.
		hit := false
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK) {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.ENOBUFS) {
				hit = true // events lost: any of them may have mattered
				continue
			}
			if err != nil {
				return fmt.Errorf("uevent socket: receive: %w", err)
			}
			// Only the kernel (port 0) is believed: another process could
			// send to the group only with CAP_NET_ADMIN, but check anyway.
			if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
				continue
			}
			u, err := ParseUevent(buf[:n])
			if err == nil && filter(u) {
				hit = true
			}
		}
		if hit {
			notify()
		}
	}
}
