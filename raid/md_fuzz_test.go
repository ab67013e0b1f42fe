package raid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseMdstat(f *testing.F) {
	for _, p := range []string{"testdata/md/procfs/proc/mdstat", "testdata/md/node_exporter/proc/mdstat"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err) // a renamed fixture must not shrink the seeds silently
		}
		f.Add(b)
	}
	// Malformed inputs from prometheus/procfs's mdstat_test.go.
	f.Add([]byte("\nmd3 : invalid\n     314159265 blocks 64k chunks\n\nunused devices: <none>\n"))
	f.Add([]byte("\nmd12 : active raid0 sdc2[0] sdd2[1]\n\nPersonalities : [raid0]\n"))
	f.Add([]byte("\nmd127 : active raid1 sdi2[0] sdj2[1](Z)\n     312319552 blocks [2/2] [UU]\n"))
	f.Add([]byte("\nmd127 : active raid1 sdi2[0] sdj2[X]\n     312319552 blocks [2/2] [UU]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ms := range ParseMdstat(data) {
			a := MdArrayFromMdstat(ms)
			_, _ = a.RequiredMembers()
			_ = a.Summary()
			_ = a.Sync.String()
			if a.RaidDisks >= 0 && len(a.Slots) > a.RaidDisks && ms.Slots != "" {
				t.Fatalf("%d slots for raid_disks %d", len(a.Slots), a.RaidDisks)
			}
		}
	})
}

// FuzzBuildMdArray feeds the md sysfs parser: the input's lines are the
// values of the array files, then "name state slot errors" device lines.
func FuzzBuildMdArray(f *testing.F) {
	for _, src := range []string{"procfs", "node_exporter"} {
		dirs, _ := filepath.Glob(filepath.Join("testdata/md", src, "sys/block/md*"))
		for _, d := range dirs {
			raw := readMdSysfsRaw(filepath.Join("testdata/md", src, "sys"), filepath.Base(d))
			var lines []string
			for _, k := range mdFiles {
				lines = append(lines, raw.Files[k])
			}
			for _, dev := range raw.Devices {
				lines = append(lines, dev.Name+" "+dev.State+" "+dev.Slot+" "+dev.Errors)
			}
			f.Add(strings.Join(lines, "\n"))
		}
	}
	f.Add("raid10\nactive\n11 (10)\n258 (513)\nrecover\ndelayed\nnone\n0\nrecover\nsda in_sync 0 0\nsdb spare 1 0")
	f.Fuzz(func(t *testing.T, data string) {
		lines := strings.Split(data, "\n")
		raw := MdSysfsRaw{Name: "md0", Files: map[string]string{}, Missing: map[string]string{}, SlotLinks: map[int]string{}}
		for i, k := range mdFiles {
			if i < len(lines) {
				raw.Files[k] = lines[i]
			}
		}
		if len(lines) > len(mdFiles) {
			for _, l := range lines[len(mdFiles):] {
				f := strings.Fields(l)
				d := MdDeviceRaw{}
				for j, v := range f {
					switch j {
					case 0:
						d.Name = v
					case 1:
						d.State = v
					case 2:
						d.Slot = v
					case 3:
						d.Errors = v
					}
				}
				raw.Devices = append(raw.Devices, d)
			}
		}
		a := BuildMdArray(raw)
		req, _ := a.RequiredMembers()
		if req < 1 {
			t.Fatalf("required %d", req)
		}
		if len(a.Slots) > 1<<17 {
			t.Fatalf("%d slots", len(a.Slots))
		}
		_ = a.Summary()
	})
}
