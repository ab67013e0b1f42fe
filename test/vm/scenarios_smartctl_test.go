package vm

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/diskhealth"
	. "github.com/spofwatch/spofwatch/test/vm/scenario"
)

// SATA SMART through smartctl (issue 14): QEMU's IDE/AHCI emulation answers
// SMART READ DATA, READ THRESHOLDS and RETURN STATUS (hw/ide/core.c,
// smart_attributes), so smartctl in the guest reads a real ATA SMART
// conversation with a healthy disk. The disk is found by its serial: other
// scenarios' SCSI disks are sdX too.

const smartctlSerial = "ATA1"

// smartctlImages and smartctlExtra are the scenario's disk: one 16 MiB raw
// image on an AHCI controller.
var (
	smartctlImages = map[string]Disk{"ata.img": {SizeMiB: 16}}
	smartctlExtra  = []string{
		"-device", "ahci,id=ahci0",
		"-drive", "file={dir}/ata.img,if=none,id=ata0,format=raw,cache=unsafe",
		"-device", "ide-hd,drive=ata0,bus=ahci0.0,serial=" + smartctlSerial,
	}
)

// smartctlJSONMark prefixes the gzipped, base64 smartctl JSON in the step
// log (the log keeps only its last 4000 bytes; the JSON is ~7 KB).
const smartctlJSONMark = "@@SMARTCTL-JSON "

const smartctlScenario = "smartctl/ahci-disk"

var smartctlScenarios = []Scenario{
	{
		Name: smartctlScenario,
		Steps: []Step{
			{Name: "find the AHCI disk by serial", Sh: []string{
				// Bounded wait for the ATA link scan, then the sdX whose
				// IDENTIFY serial is ours.
				`for i in $(seq 60); do for b in /sys/block/sd*; do [ -e "$b" ] || continue; d=/dev/${b##*/}; ` +
					`if smartctl --json -i "$d" | grep -q '"serial_number": "` + smartctlSerial + `"'; then echo "$d" > /tmp/ata-disk; exit 0; fi; done; sleep 1; done; ` +
					`echo "no sdX with serial ` + smartctlSerial + `"; ls /sys/block; exit 1`,
				`echo "AHCI disk: $(cat /tmp/ata-disk)"`,
			}},
			{Name: "SMART read", Sh: []string{
				// The command line diskhealth.ReadSmartctl runs (pretty
				// JSON here, to keep as a fixture).
				`smartctl --json --info --health --attributes --nocheck=standby "$(cat /tmp/ata-disk)" > /tmp/ata.json; echo "smartctl exit status $?"`,
				`grep -q '"passed": true' /tmp/ata.json`,
				`grep -q '"name": "Reallocated_Sector_Ct"' /tmp/ata.json`,
				// The cost of one health read, 10 runs (guest clock).
				`d=$(cat /tmp/ata-disk); s=$(cut -d' ' -f1 /proc/uptime); for i in 1 2 3 4 5 6 7 8 9 10; do smartctl --json=c -i -H -A -n standby "$d" > /dev/null; done; ` +
					`e=$(cut -d' ' -f1 /proc/uptime); echo "# 10 smartctl health reads: $s -> $e s (guest uptime)"`,
				`echo "` + smartctlJSONMark + `$(gzip -c /tmp/ata.json | base64 | tr -d '\n')"`,
			}},
		},
	},
}

// judgeSmartctl parses the guest's smartctl JSON with diskhealth on the
// host: the verdict of QEMU's healthy disk is ok, and its attributes are
// read. SPOFWATCH_VM_SMARTCTL_JSON=<file> keeps the JSON (the fixture
// diskhealth/testdata/smartctl/ata-qemu-harddisk.json was taken so).
func judgeSmartctl(t *testing.T, plan Plan, out *Outcome) {
	ran := false
	for _, sc := range plan.Scenarios {
		ran = ran || sc.Name == smartctlScenario
	}
	if !ran {
		return
	}
	t.Run(smartctlScenario+"/parsed on the host", func(t *testing.T) {
		var log string
		for _, r := range out.Steps {
			if r.Scenario == smartctlScenario && r.Step == "SMART read" {
				log = r.Log
			}
		}
		var b []byte
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "# 10 smartctl") {
				t.Log(l)
			}
			enc, ok := strings.CutPrefix(l, smartctlJSONMark)
			if !ok {
				continue
			}
			z, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
			if err != nil {
				t.Fatalf("base64: %v", err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(z))
			if err != nil {
				t.Fatalf("gzip: %v", err)
			}
			if b, err = io.ReadAll(io.LimitReader(zr, diskhealth.MaxSmartctlJSON)); err != nil {
				t.Fatalf("gunzip: %v", err)
			}
		}
		if b == nil {
			t.Fatalf("no %q line in the step log:\n%s", smartctlJSONMark, log)
		}
		if f := os.Getenv("SPOFWATCH_VM_SMARTCTL_JSON"); f != "" {
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Error(err)
			}
		}
		h, err := diskhealth.ParseSmartctlJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Verdict != diskhealth.VerdictOK || len(h.Problems) > 0 {
			t.Errorf("verdict %s, problems %q, reason %q; want ok", h.Verdict, h.Problems, h.Reason)
		}
		if h.Protocol != diskhealth.ProtocolATA || h.Serial != smartctlSerial || !strings.HasPrefix(h.Disk, "sd") {
			t.Errorf("protocol %q serial %q disk %q; want ata, %s, sdX", h.Protocol, h.Serial, h.Disk, smartctlSerial)
		}
		// QEMU's table has attribute 5 (raw 0) and 190 (31 °C).
		if h.ReallocatedSectors == nil || *h.ReallocatedSectors != 0 {
			t.Errorf("reallocated sectors %v, want 0 from QEMU's attribute 5", h.ReallocatedSectors)
		}
		if h.TemperatureCelsius == nil {
			t.Error("no temperature from QEMU's attribute 190")
		}
	})
}

// hostSmartctl is the host's smartctl, copied into the guest.
func hostSmartctl(t *testing.T) string {
	for _, p := range []string{"smartctl", "/usr/sbin/smartctl"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("smartctl not found: install smartmontools (scripts/apt-packages.txt)")
	return ""
}
