package diskhealth

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestNVMeDevice reads the SMART / Health log of a real controller: the VM
// scenario diskhealth/nvme-critical-warning runs this test binary in the
// guest with SPOFWATCH_NVME_DEVICE=/dev/nvmeN. It prints the raw page as
// hex (the source of testdata/qemu-*.hex) and checks that the page parses
// and agrees with what the controller must report.
func TestNVMeDevice(t *testing.T) {
	dev := os.Getenv("SPOFWATCH_NVME_DEVICE")
	if dev == "" {
		t.Skip("set SPOFWATCH_NVME_DEVICE=/dev/nvmeN (needs CAP_SYS_ADMIN): runs in the VM scenario")
	}
	b, err := readNVMeSMARTLog(dev, 5*time.Second)
	if err != nil {
		t.Fatal(readError(dev, err))
	}
	fmt.Printf("FIGURE raw SMART / Health log of %s (hex, 32 bytes a line):\n", dev)
	for off := 0; off < len(b); off += 32 {
		fmt.Println(hex.EncodeToString(b[off : off+32]))
	}
	l, err := ParseNVMeSMARTLog(b)
	if err != nil {
		t.Fatal(err)
	}
	v, problems := l.Judge()
	fmt.Printf("FIGURE %s: critical_warning 0x%02x, spare %d%%/%d%%, used %d%%, media errors %d, %d K -> %s %s\n",
		dev, l.CriticalWarning, l.AvailableSpare, l.SpareThreshold, l.PercentageUsed, l.MediaErrors,
		l.CompositeTemperatureK, v, strings.Join(problems, "; "))
	if l.SpareThreshold > 100 || l.AvailableSpare > 100 {
		t.Errorf("spare %d%% / threshold %d%%: a percentage above 100 means the layout is misread", l.AvailableSpare, l.SpareThreshold)
	}
}

// BenchmarkNVMeDeviceRead is one Get Log Page 02h ioctl on a real
// controller, open and close included (what each health read costs).
func BenchmarkNVMeDeviceRead(b *testing.B) {
	dev := os.Getenv("SPOFWATCH_NVME_DEVICE")
	if dev == "" {
		b.Skip("set SPOFWATCH_NVME_DEVICE=/dev/nvmeN")
	}
	for b.Loop() {
		if _, err := readNVMeSMARTLog(dev, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNVMeReaderRead is one Reader.Read of a real namespace: the
// sysfs lookups, the bounded goroutine, the ioctl and the verdict.
func BenchmarkNVMeReaderRead(b *testing.B) {
	disk := os.Getenv("SPOFWATCH_NVME_DISK")
	if disk == "" {
		b.Skip("set SPOFWATCH_NVME_DISK=nvme0n1")
	}
	r := NewReader(ReaderOptions{})
	for b.Loop() {
		if h := r.Read(context.Background(), disk); h.Verdict == VerdictUnknown {
			b.Fatal(h.Reason)
		}
	}
}
