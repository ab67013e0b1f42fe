package diskhealth

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeSys builds a sysfs tree with the links Read follows: class/block/X
// -> the device's block directory, its device link and the device's
// subsystem link, as a real kernel lays them out.
type fakeSys struct {
	t    *testing.T
	root string
}

func newFakeSys(t *testing.T) fakeSys { return fakeSys{t: t, root: t.TempDir()} }

func (f fakeSys) link(target, at string) {
	f.t.Helper()
	p := filepath.Join(f.root, at)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

func (f fakeSys) file(at, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, at)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// disk adds a disk whose device sits in devDir (relative to the root) on
// bus subsys.
func (f fakeSys) disk(name, devDir, subsys string) {
	blk := devDir + "/block/" + name
	f.file(blk+"/size", "1000\n")
	f.link("../../../"+filepath.Base(devDir), blk+"/device")
	f.link(strings.Repeat("../", strings.Count(devDir, "/")+1)+"bus/"+subsys, devDir+"/subsystem")
	f.file("bus/"+subsys+"/.keep", "")
	f.link("../../"+blk, "class/block/"+name)
}

func TestReaderClassifies(t *testing.T) {
	fs := newFakeSys(t)
	fs.disk("vda", "devices/pci0000:00/virtio1", "virtio")
	fs.disk("sda", "devices/pci0000:00/host0/0:0:0:0", "scsi")
	fs.disk("nvme0n1", "devices/pci0000:00/nvme/nvme0", "nvme")
	fs.link("../../devices/pci0000:00/nvme/nvme0", "class/nvme/nvme0")
	fs.file("devices/pci0000:00/nvme/nvme0/serial", "health1   \n")
	fs.file("devices/pci0000:00/nvme/nvme0/model", "QEMU NVMe Ctrl\n")
	fs.file("devices/virtual/block/loop0/size", "1\n")
	fs.link("../../devices/virtual/block/loop0", "class/block/loop0")
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "nvme0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	var smartAsked string
	smart := func(ctx context.Context, devPath string) Health {
		smartAsked = devPath
		return Health{Protocol: ProtocolATA, Verdict: VerdictFailing, Problems: []string{"SMART overall-health FAILED"}}
	}
	tests := []struct {
		disk    string
		smart   SmartReader
		verdict Verdict
		reason  string // substring
	}{
		{disk: "vda", verdict: VerdictUnknown, reason: "virtio disk"},
		{disk: "loop0", verdict: VerdictUnknown, reason: "not a physical disk"},
		{disk: "sdz", verdict: VerdictUnknown, reason: "no block device sdz"},
		{disk: "../etc", verdict: VerdictUnknown, reason: "invalid disk name"},
		{disk: "sda", verdict: VerdictUnknown, reason: "no SMART reader"},
		{disk: "sda", smart: smart, verdict: VerdictFailing},
		// A regular file stands in for /dev/nvme0: the ioctl fails (ENOTTY),
		// which must read as unknown with the device named.
		{disk: "nvme0n1", verdict: VerdictUnknown, reason: "reading " + filepath.Join(dev, "nvme0")},
	}
	for _, tc := range tests {
		t.Run(tc.disk, func(t *testing.T) {
			r := NewReader(ReaderOptions{SysPath: fs.root, DevPath: dev, Smart: tc.smart})
			h := r.Read(context.Background(), tc.disk)
			if h.Verdict != tc.verdict || !strings.Contains(h.Reason, tc.reason) {
				t.Fatalf("Read(%s) = %s %q, want %s with %q", tc.disk, h.Verdict, h.Reason, tc.verdict, tc.reason)
			}
			// Only devices without a medium of their own are "no
			// source"; a read that failed stays a warning.
			if wantNoSource := tc.disk == "vda" || tc.disk == "loop0"; h.NoSource != wantNoSource {
				t.Errorf("Read(%s).NoSource = %v, want %v", tc.disk, h.NoSource, wantNoSource)
			}
			if h.Disk != tc.disk {
				t.Errorf("disk %q, want %q", h.Disk, tc.disk)
			}
			if tc.smart != nil && smartAsked != filepath.Join(dev, tc.disk) {
				t.Errorf("smart reader asked for %q", smartAsked)
			}
			if tc.disk == "nvme0n1" && (h.Controller != "nvme0" || h.Serial != "health1" || h.Model != "QEMU NVMe Ctrl" || h.Protocol != ProtocolNVMe) {
				t.Errorf("nvme identity: %+v", h)
			}
		})
	}
}

func TestReaderMultipathHead(t *testing.T) {
	fs := newFakeSys(t)
	fs.disk("nvme1n1", "devices/virtual/nvme-subsystem/nvme-subsys1", "nvme-subsystem")
	for _, c := range []struct{ name, state string }{{"nvme1", "resetting"}, {"nvme2", "live"}} {
		dir := "devices/pci0000:00/" + c.name + "x/nvme/" + c.name
		fs.file(dir+"/state", c.state+"\n")
		fs.link("../../../pci0000:00/"+c.name+"x/nvme/"+c.name, "devices/virtual/nvme-subsystem/nvme-subsys1/"+c.name)
		fs.link("../../"+dir, "class/nvme/"+c.name)
	}
	r := NewReader(ReaderOptions{SysPath: fs.root, DevPath: t.TempDir()})
	h := r.Read(context.Background(), "nvme1n1")
	if h.Controller != "nvme2" || !strings.Contains(h.Reason, "no /") {
		t.Fatalf("head read through %q (%s); want the live controller nvme2 and its missing node", h.Controller, h.Reason)
	}
}

func TestReaderOneReadInFlight(t *testing.T) {
	fs := newFakeSys(t)
	fs.disk("sda", "devices/pci0000:00/host0/0:0:0:0", "scsi")
	release := make(chan struct{})
	var calls atomic.Int32
	smart := func(ctx context.Context, devPath string) Health {
		calls.Add(1)
		<-release // a device that does not answer, whatever ctx says
		return Health{Verdict: VerdictOK}
	}
	r := NewReader(ReaderOptions{SysPath: fs.root, DevPath: "/dev", Smart: smart, Timeout: time.Millisecond})
	first := r.Read(context.Background(), "sda")
	if first.Verdict != VerdictUnknown || !strings.Contains(first.Reason, "timed out") {
		t.Fatalf("stuck read: %s %q", first.Verdict, first.Reason)
	}
	second := r.Read(context.Background(), "sda")
	if second.Verdict != VerdictUnknown || !strings.Contains(second.Reason, "has not returned") {
		t.Fatalf("read while stuck: %s %q", second.Verdict, second.Reason)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d reads started; a stuck device must hold only one", n)
	}
	close(release)
	for {
		r.mu.Lock()
		n := len(r.inflight)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.opts.Timeout = time.Minute
	if h := r.Read(context.Background(), "sda"); h.Verdict != VerdictOK {
		t.Fatalf("after the device answered: %s %q", h.Verdict, h.Reason)
	}
}

func TestReadError(t *testing.T) {
	dev := "/dev/nvme0"
	tests := []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: dev, Err: unix.ENOENT}, "no /dev/nvme0"},
		{&fs.PathError{Op: "open", Path: dev, Err: unix.EACCES}, "permission denied opening /dev/nvme0 (a root-only node): enable the disk-health drop-in"},
		{&fs.PathError{Op: "ioctl NVME_IOCTL_ADMIN_CMD", Path: dev, Err: unix.EACCES}, "permission denied reading /dev/nvme0: needs CAP_SYS_ADMIN (enable the disk-health drop-in"},
		{&fs.PathError{Op: "ioctl NVME_IOCTL_ADMIN_CMD", Path: dev, Err: unix.EPERM}, "needs CAP_SYS_ADMIN"},
		{&fs.PathError{Op: "open", Path: dev, Err: unix.EWOULDBLOCK}, "controller not live"},
		{&fs.PathError{Op: "ioctl NVME_IOCTL_ADMIN_CMD", Path: dev, Err: unix.EINTR}, "did not answer in time"},
		{errors.New("/dev/nvme0: Get Log Page 02h: controller status 0x4002"), "reading /dev/nvme0: /dev/nvme0: Get Log Page 02h: controller status 0x4002"},
	}
	for _, tc := range tests {
		if got := readError(dev, tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("readError(%v) = %q, want %q in it", tc.err, got, tc.want)
		}
	}
}
