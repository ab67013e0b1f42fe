package diskhealth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseSmartctlJSON: the parser never panics, and whatever it returns
// keeps the Health contract: a verdict always, a reason exactly when
// unknown, problems only when not ok, bounded strings.
func FuzzParseSmartctlJSON(f *testing.F) {
	files, err := filepath.Glob("testdata/smartctl/*.json")
	if err != nil || len(files) < 10 {
		f.Fatalf("fixtures: %d, %v", len(files), err) // a moved fixture must not shrink the seeds silently
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"smartctl":{"exit_status":2,"messages":[{"string":"Device is in STANDBY mode, exit(2)"}]}}`))
	f.Add([]byte(`{"smartctl":{"exit_status":0},"device":{"protocol":"ATA"},"smart_status":{"passed":true},"ata_smart_attributes":{"table":[{"id":197,"raw":{"value":281474976710655,"string":"0x"}}]}}`))
	f.Add([]byte(`{"smartctl":{},"device":{"protocol":"NVMe"},"nvme_smart_health_information_log":{"critical_warning":300}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseSmartctlJSON(data)
		if err != nil {
			return
		}
		switch h.Verdict {
		case VerdictOK, VerdictDegraded, VerdictFailing, VerdictUnknown:
		default:
			t.Fatalf("verdict %q", h.Verdict)
		}
		if (h.Reason != "") != (h.Verdict == VerdictUnknown) {
			t.Fatalf("verdict %s with reason %q", h.Verdict, h.Reason)
		}
		if h.Verdict == VerdictOK && len(h.Problems) > 0 {
			t.Fatalf("ok with problems %q", h.Problems)
		}
		if (h.Verdict == VerdictDegraded || h.Verdict == VerdictFailing) && len(h.Problems) == 0 {
			t.Fatalf("%s without a problem", h.Verdict)
		}
		if len(h.Problems) > 300 || len(h.Reason) > 1000 || len(h.Model) > 110 || strings.Contains(h.Disk, "/") {
			t.Fatalf("unbounded: %d problems, reason %d bytes, model %d bytes, disk %q", len(h.Problems), len(h.Reason), len(h.Model), h.Disk)
		}
	})
}
