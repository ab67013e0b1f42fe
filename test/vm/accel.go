package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Accel is the QEMU accelerator a boot uses and why it was chosen.
type Accel struct {
	Name   string // "kvm" or "tcg"
	Reason string
}

// KVMProbe decides whether KVM can really run a guest. An openable
// /dev/kvm is not enough: on a nested VM without vmx/svm QEMU accepts
// -accel kvm and then spins without running the guest, until the
// machine's timeout.
type KVMProbe struct {
	// Device is the KVM device. Default /dev/kvm.
	Device string
	// CPUInfo is read for the vmx/svm flag. Default /proc/cpuinfo.
	CPUInfo string
	// Qemu and Kernel, when both set, make the last check a boot: the
	// kernel must write to the serial console within BootWait.
	Qemu, Kernel string
	// BootWait: default 5 s (a KVM guest prints within a second).
	BootWait time.Duration
}

// KVM API constants (linux/kvm.h).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// Choose returns kvm when every check passes, else tcg with the reason.
func (p KVMProbe) Choose(ctx context.Context) Accel {
	if reason, ok := p.check(ctx); !ok {
		return Accel{Name: "tcg", Reason: reason}
	}
	return Accel{Name: "kvm", Reason: "passed the KVM probe: " + p.passed()}
}

func (p KVMProbe) passed() string {
	if p.Qemu != "" && p.Kernel != "" {
		return "vmx/svm flag, KVM API, VM creation, serial output of a test boot"
	}
	return "vmx/svm flag, KVM API, VM creation"
}

func (p KVMProbe) check(ctx context.Context) (string, bool) {
	dev := orDefault(p.Device, "/dev/kvm")
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Sprintf("cannot open %s: %v", dev, err), false
	}
	defer f.Close()
	if reason, ok := cpuVirtFlag(orDefault(p.CPUInfo, "/proc/cpuinfo")); !ok {
		return reason, false
	}
	v, err := ioctl(f, kvmGetAPIVersion)
	if err != nil {
		return fmt.Sprintf("%s: KVM_GET_API_VERSION: %v", dev, err), false
	}
	if v != kvmAPIVersion {
		return fmt.Sprintf("%s: KVM API version %d, want %d", dev, v, kvmAPIVersion), false
	}
	vm, err := ioctl(f, kvmCreateVM)
	if err != nil {
		return fmt.Sprintf("%s: KVM_CREATE_VM: %v", dev, err), false
	}
	unix.Close(vm)
	if p.Qemu == "" || p.Kernel == "" {
		return "", true
	}
	return p.bootShowsLife(ctx)
}

func ioctl(f *os.File, req uint) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// cpuVirtFlag looks for vmx (Intel) or svm (AMD) among the CPU flags.
func cpuVirtFlag(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot read CPU flags: %v", err), false
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, flag := range strings.Fields(val) {
			if flag == "vmx" || flag == "svm" {
				return "", true
			}
		}
		return fmt.Sprintf("%s: the CPU has no vmx/svm flag (nested VM without virtualisation passed through?)", path), false
	}
	if err := sc.Err(); err != nil {
		return fmt.Sprintf("read %s: %v", path, err), false
	}
	return fmt.Sprintf("%s: no CPU flags line", path), false
}

// bootShowsLife boots the kernel alone under KVM and waits for its first
// serial console output.
func (p KVMProbe) bootShowsLife(ctx context.Context) (string, bool) {
	wait := p.BootWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Qemu, "-machine", "pc", "-accel", "kvm", "-m", "128",
		"-nodefaults", "-display", "none", "-no-reboot", "-kernel", p.Kernel,
		"-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1", "-serial", "stdio")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Sprintf("test boot: %v", err), false
	}
	if err := cmd.Start(); err != nil {
		return fmt.Sprintf("test boot: %v", err), false
	}
	buf := make([]byte, 256)
	n, rerr := io.ReadAtLeast(stdout, buf, 1)
	cancel() // seen life, or the boot ended: stop QEMU either way
	werr := cmd.Wait()
	if n > 0 {
		return "", true
	}
	said := ""
	if stderr.Len() > 0 {
		said = "; qemu: " + firstLineOf(stderr.String())
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("test boot under KVM printed nothing on the serial console within %s%s", wait, said), false
	}
	return fmt.Sprintf("test boot under KVM ended without serial output (read: %v, exit: %v)%s", rerr, werr, said), false
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
