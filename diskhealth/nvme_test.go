package diskhealth

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadHex reads a fixture written as hex text (whitespace ignored).
func loadHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// patch returns a copy of the real healthy QEMU page with bytes set.
func patch(t testing.TB, set map[int]byte) []byte {
	b := slices.Clone(loadHex(t, "qemu-7.2-nvme-smart-log-healthy.hex"))
	for off, v := range set {
		b[off] = v
	}
	return b
}

func TestParseNVMeSMARTLogRealSamples(t *testing.T) {
	healthy, err := ParseNVMeSMARTLog(loadHex(t, "qemu-7.2-nvme-smart-log-healthy.hex"))
	if err != nil {
		t.Fatal(err)
	}
	warned, err := ParseNVMeSMARTLog(loadHex(t, "qemu-7.2-nvme-smart-log-critical-warning-1.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if healthy.CriticalWarning != 0 || warned.CriticalWarning != 0x01 {
		t.Errorf("critical warning: healthy 0x%02x, after qom-set 1 0x%02x; want 0x00 and 0x01", healthy.CriticalWarning, warned.CriticalWarning)
	}
	// What QEMU 7.2 reports: no spare accounting (0 and 0), 323 K, and the
	// commands the guest kernel sent while probing.
	if healthy.AvailableSpare != 0 || healthy.SpareThreshold != 0 || healthy.PercentageUsed != 0 || healthy.CompositeTemperatureK != 323 || healthy.HostReadCommands == 0 {
		t.Errorf("healthy sample misread: %+v", healthy)
	}
	if v, p := healthy.Judge(); v != VerdictOK || len(p) != 0 {
		t.Errorf("healthy sample judged %s %v", v, p)
	}
	if v, p := warned.Judge(); v != VerdictDegraded || len(p) != 1 || p[0] != "critical warning 0x01: available spare below threshold" {
		t.Errorf("warned sample judged %s %q", v, p)
	}
}

func TestNVMeJudge(t *testing.T) {
	mediaErrors := func(lo, hi uint64) []byte {
		b := patch(t, nil)
		binary.LittleEndian.PutUint64(b[160:], lo)
		binary.LittleEndian.PutUint64(b[168:], hi)
		return b
	}
	tests := []struct {
		name     string
		page     []byte
		verdict  Verdict
		problems []string
		check    func(t *testing.T, l NVMeSMARTLog)
	}{
		{name: "healthy", page: patch(t, nil), verdict: VerdictOK},
		{name: "spare bit", page: patch(t, map[int]byte{0: 0x01}), verdict: VerdictDegraded,
			problems: []string{"critical warning 0x01: available spare below threshold"}},
		{name: "temperature bit", page: patch(t, map[int]byte{0: 0x02}), verdict: VerdictDegraded,
			problems: []string{"critical warning 0x02: temperature beyond its threshold"}},
		{name: "reliability bit", page: patch(t, map[int]byte{0: 0x04}), verdict: VerdictDegraded,
			problems: []string{"critical warning 0x04: reliability degraded by media or internal errors"}},
		{name: "read-only is failing", page: patch(t, map[int]byte{0: 0x08}), verdict: VerdictFailing,
			problems: []string{"critical warning 0x08: media is read-only"}},
		{name: "volatile backup", page: patch(t, map[int]byte{0: 0x10}), verdict: VerdictDegraded,
			problems: []string{"critical warning 0x10: volatile memory backup failed"}},
		{name: "several bits and a reserved one", page: patch(t, map[int]byte{0: 0x8d}), verdict: VerdictFailing,
			problems: []string{"critical warning 0x8d: available spare below threshold, reliability degraded by media or internal errors, media is read-only, reserved bit 7"}},
		{name: "spare below threshold without the bit", page: patch(t, map[int]byte{3: 3, 4: 10}), verdict: VerdictDegraded,
			problems: []string{"available spare 3% below threshold 10%"}},
		{name: "spare at threshold is ok", page: patch(t, map[int]byte{3: 10, 4: 10}), verdict: VerdictOK},
		{name: "endurance used up", page: patch(t, map[int]byte{5: 100}), verdict: VerdictDegraded,
			problems: []string{"100% of rated endurance used"}},
		{name: "99% used is ok", page: patch(t, map[int]byte{5: 99}), verdict: VerdictOK},
		{name: "media errors alone are exported, not judged", page: mediaErrors(7, 0), verdict: VerdictOK,
			check: func(t *testing.T, l NVMeSMARTLog) {
				if l.MediaErrors != 7 {
					t.Errorf("media errors %d, want 7", l.MediaErrors)
				}
			}},
		{name: "128-bit counter saturates", page: mediaErrors(1, 1), verdict: VerdictOK,
			check: func(t *testing.T, l NVMeSMARTLog) {
				if l.MediaErrors != math.MaxUint64 {
					t.Errorf("media errors %d, want saturation", l.MediaErrors)
				}
			}},
		{name: "temperature little-endian", page: patch(t, map[int]byte{1: 0x3b, 2: 0x01}), verdict: VerdictOK,
			check: func(t *testing.T, l NVMeSMARTLog) {
				if l.CompositeTemperatureK != 315 {
					t.Errorf("temperature %d K, want 315", l.CompositeTemperatureK)
				}
				h := l.Health("nvme0n1", "nvme0")
				if h.TemperatureCelsius == nil || *h.TemperatureCelsius < 41.8 || *h.TemperatureCelsius > 41.9 {
					t.Errorf("celsius %v", h.TemperatureCelsius)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseNVMeSMARTLog(tc.page)
			if err != nil {
				t.Fatal(err)
			}
			v, p := l.Judge()
			if v != tc.verdict || !slices.Equal(p, tc.problems) {
				t.Errorf("judged %s %q, want %s %q", v, p, tc.verdict, tc.problems)
			}
			h := l.Health("nvme0n1", "nvme0")
			if h.Verdict != v || h.Protocol != ProtocolNVMe || h.CriticalWarning == nil || *h.CriticalWarning != l.CriticalWarning {
				t.Errorf("health %+v does not carry the page", h)
			}
			if tc.check != nil {
				tc.check(t, l)
			}
		})
	}
}

func TestParseNVMeSMARTLogShort(t *testing.T) {
	for _, n := range []int{0, 1, 176, 511} {
		if _, err := ParseNVMeSMARTLog(make([]byte, n)); err == nil {
			t.Errorf("%d bytes parsed; a short page must be an error", n)
		}
	}
}

func FuzzParseNVMeSMARTLog(f *testing.F) {
	f.Add(loadHex(f, "qemu-7.2-nvme-smart-log-healthy.hex"))
	f.Add(loadHex(f, "qemu-7.2-nvme-smart-log-critical-warning-1.hex"))
	f.Add(make([]byte, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseNVMeSMARTLog(b)
		if err != nil {
			if len(b) >= NVMeSMARTLogSize {
				t.Fatalf("full page refused: %v", err)
			}
			return
		}
		v, problems := l.Judge()
		switch {
		case v == VerdictOK && len(problems) != 0, v != VerdictOK && len(problems) == 0:
			t.Fatalf("verdict %s with problems %q", v, problems)
		case b[0]&0x08 != 0 && v != VerdictFailing:
			t.Fatalf("read-only bit set, verdict %s", v)
		case b[0] != 0 && v == VerdictOK:
			t.Fatalf("critical warning 0x%02x judged ok", b[0])
		}
	})
}

// BenchmarkParseNVMeSMARTLog is the CPU part of one NVMe health read
// (decode and verdict); the ioctl is BenchmarkNVMeDeviceRead.
func BenchmarkParseNVMeSMARTLog(b *testing.B) {
	page := loadHex(b, "qemu-7.2-nvme-smart-log-critical-warning-1.hex")
	for b.Loop() {
		l, err := ParseNVMeSMARTLog(page)
		if err != nil {
			b.Fatal(err)
		}
		l.Health("nvme0n1", "nvme0")
	}
}
