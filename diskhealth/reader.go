package diskhealth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spofwatch/spofwatch/sysdev"
)

// SmartReader reads one SATA or SAS disk (devPath is /dev/sdX), e.g.
// through smartctl --json. It must honour ctx. The wiring injects it, so
// this package does not depend on how ATA/SCSI are read.
type SmartReader func(ctx context.Context, devPath string) Health

// ReaderOptions configures a Reader.
type ReaderOptions struct {
	// SysPath and DevPath are the sysfs and /dev roots; "" means /sys and
	// /dev.
	SysPath, DevPath string
	// Smart reads SATA/SAS disks; nil leaves them unknown.
	Smart SmartReader
	// Timeout bounds one read (default 5 s; the NVMe command also carries
	// it as its kernel timeout).
	Timeout time.Duration
	// Now is the clock for "stuck for ..." messages (default time.Now).
	Now func() time.Time
}

// DefaultReadTimeout bounds one health read when ReaderOptions.Timeout is 0.
const DefaultReadTimeout = 5 * time.Second

// PrivilegeHint is appended to a permission error: where the operator
// finds the grant.
const PrivilegeHint = "enable the disk-health drop-in: see /usr/share/doc/spofwatch/README.md, Disk health"

// Reader reads the health of whole disks by kernel name. It keeps at most
// one read in flight per device: a read that outlives its deadline (a dead
// controller can hold an ioctl for the driver's whole timeout) is
// abandoned, and until it returns every new read of that device is
// reported unknown at once instead of piling up another blocked goroutine.
// Safe for concurrent use.
type Reader struct {
	opts     ReaderOptions
	sys      sysdev.Sys
	mu       sync.Mutex
	inflight map[string]time.Time
}

// NewReader returns a Reader.
func NewReader(opts ReaderOptions) *Reader {
	if opts.DevPath == "" {
		opts.DevPath = "/dev"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultReadTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reader{opts: opts, sys: sysdev.New(opts.SysPath), inflight: map[string]time.Time{}}
}

var (
	diskName       = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	nvmeController = regexp.MustCompile(`^nvme[0-9]+$`)
)

// Read returns the health of one whole disk ("nvme0n1", "sda"). It never
// fails: what cannot be read is VerdictUnknown with the reason.
func (r *Reader) Read(ctx context.Context, disk string) Health {
	h := Health{Disk: disk, Verdict: VerdictUnknown}
	if !diskName.MatchString(disk) || disk == "." || disk == ".." {
		h.Reason = fmt.Sprintf("invalid disk name %q", disk)
		return h
	}
	// Every path is opened from the sysfs root: the device links climb
	// ("../../nvme0"), which a directory-confined open refuses.
	root, err := r.sys.Open()
	if err != nil {
		h.Reason = fmt.Sprintf("open %s: %v", r.sys.Root(), err)
		return h
	}
	defer root.Close()
	bd, err := root.OpenDir("class/block/" + disk)
	if err != nil {
		h.Reason = fmt.Sprintf("no block device %s in %s: %v", disk, r.sys.Path("class", "block"), err)
		return h
	}
	devLink, _ := bd.Readlink("device")
	bd.Close()
	subsys := ""
	if dd, err := root.OpenDir("class/block/" + disk + "/device"); err == nil {
		subsys, _ = dd.Readlink("subsystem")
		dd.Close()
	}
	if subsys != "" {
		subsys = filepath.Base(subsys)
	}
	switch subsys {
	case "nvme":
		return r.readNVMe(ctx, root, disk, filepath.Base(devLink))
	case "nvme-subsystem":
		// A native-multipath head: the SMART / Health log is the
		// subsystem's, so any live controller (path) answers for it.
		ctrl, err := liveController(root, disk)
		if err != nil {
			h.Protocol, h.Reason = ProtocolNVMe, err.Error()
			return h
		}
		return r.readNVMe(ctx, root, disk, ctrl)
	case "scsi":
		if r.opts.Smart == nil {
			h.Reason = fmt.Sprintf("%s is a SATA/SAS disk and no SMART reader is configured", disk)
			return h
		}
		dev := filepath.Join(r.opts.DevPath, disk)
		out := r.bounded(ctx, dev, func(ctx context.Context) Health { return r.opts.Smart(ctx, dev) })
		out.Disk = disk
		return out
	case "virtio":
		h.Reason = fmt.Sprintf("%s is a virtio disk: its medium's health is the hypervisor's to watch", disk)
		h.NoSource = true
	case "":
		h.Reason = fmt.Sprintf("%s is not a physical disk (no device in sysfs)", disk)
		h.NoSource = true
	default:
		h.Reason = fmt.Sprintf("%s sits on bus %s, which has no health source here", disk, subsys)
		h.NoSource = true
	}
	return h
}

// liveController picks the first live controller of a multipath head's
// subsystem (sorted, so reads stay on one path while it lives).
func liveController(root *sysdev.Dir, disk string) (string, error) {
	d, err := root.OpenDir("class/block/" + disk + "/device")
	if err != nil {
		return "", fmt.Errorf("subsystem of %s: %w", disk, err)
	}
	names, err := d.Names()
	d.Close()
	if err != nil {
		return "", fmt.Errorf("list subsystem of %s: %w", disk, err)
	}
	slices.Sort(names)
	var states []string
	for _, n := range names {
		if !nvmeController.MatchString(n) {
			continue
		}
		st, err := root.Read("class/nvme/" + n + "/state")
		if err == nil && st == "live" {
			return n, nil
		}
		states = append(states, n+" "+orWord(st, "unreadable"))
	}
	if len(states) == 0 {
		return "", fmt.Errorf("subsystem of %s has no controller", disk)
	}
	return "", fmt.Errorf("no live controller for %s (%s)", disk, strings.Join(states, ", "))
}

func (r *Reader) readNVMe(ctx context.Context, root *sysdev.Dir, disk, ctrl string) Health {
	h := Health{Disk: disk, Controller: ctrl, Protocol: ProtocolNVMe, Verdict: VerdictUnknown}
	if !nvmeController.MatchString(ctrl) {
		h.Reason = fmt.Sprintf("no NVMe controller for %s (device %q)", disk, ctrl)
		return h
	}
	h.Model, _ = root.Read("class/nvme/" + ctrl + "/model")
	h.Serial, _ = root.Read("class/nvme/" + ctrl + "/serial")
	dev := filepath.Join(r.opts.DevPath, ctrl)
	timeout := r.opts.Timeout
	out := r.bounded(ctx, dev, func(ctx context.Context) Health {
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		b, err := readNVMeSMARTLog(dev, timeout)
		if err != nil {
			return Health{Verdict: VerdictUnknown, Reason: readError(dev, err)}
		}
		l, err := ParseNVMeSMARTLog(b)
		if err != nil {
			return Health{Verdict: VerdictUnknown, Reason: fmt.Sprintf("%s: %v", dev, err)}
		}
		return l.Health(disk, ctrl)
	})
	out.Disk, out.Controller, out.Protocol, out.Model, out.Serial = disk, ctrl, ProtocolNVMe, h.Model, h.Serial
	return out
}

// bounded runs one read of dev under the read timeout, at most one at a
// time per device.
func (r *Reader) bounded(ctx context.Context, dev string, read func(context.Context) Health) Health {
	r.mu.Lock()
	if since, busy := r.inflight[dev]; busy {
		r.mu.Unlock()
		// The start time, not the time since, keeps the reason (and so the
		// one log line per change) stable while the device hangs.
		return Health{Verdict: VerdictUnknown, Reason: fmt.Sprintf("the read of %s started at %s has not returned: device not answering",
			dev, since.Format(time.TimeOnly))}
	}
	r.inflight[dev] = r.opts.Now()
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	done := make(chan Health, 1)
	go func() {
		defer cancel()
		h := read(ctx)
		r.mu.Lock()
		delete(r.inflight, dev)
		r.mu.Unlock()
		done <- h
	}()
	select {
	case h := <-done:
		return h
	case <-ctx.Done():
		reason := fmt.Sprintf("reading %s timed out after %s", dev, r.opts.Timeout)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = fmt.Sprintf("reading %s cancelled: %v", dev, context.Cause(ctx))
		}
		return Health{Verdict: VerdictUnknown, Reason: reason}
	}
}

// readError words a failed read for the operator: what, and what to do.
func readError(dev string, err error) string {
	var pe *os.PathError
	opening := errors.As(err, &pe) && pe.Op == "open"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("no %s: the controller is gone or /dev lacks its node", dev)
	case (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) && opening:
		return fmt.Sprintf("permission denied opening %s (a root-only node): %s", dev, PrivilegeHint)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return fmt.Sprintf("permission denied reading %s: needs CAP_SYS_ADMIN (%s)", dev, PrivilegeHint)
	case errors.Is(err, unix.EWOULDBLOCK):
		return fmt.Sprintf("%s: controller not live (resetting or being removed)", dev)
	case errors.Is(err, unix.EINTR), errors.Is(err, unix.ETIMEDOUT):
		return fmt.Sprintf("%s: the controller did not answer in time: %v", dev, err)
	}
	return fmt.Sprintf("reading %s: %v", dev, err)
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
