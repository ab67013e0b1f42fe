package diskhealth

import (
	"os"
	"testing"
)

// BenchmarkParseSmartctlJSON: the parser's share of one SATA health read
// (the smartctl process itself costs far more; docs/PERFORMANCE.md).
func BenchmarkParseSmartctlJSON(b *testing.B) {
	for _, f := range []string{"ata-failing-hds721050.json", "ata-qemu-harddisk.json", "scsi-grown-defects-st373453lc.json"} {
		data, err := os.ReadFile("testdata/smartctl/" + f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := ParseSmartctlJSON(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
