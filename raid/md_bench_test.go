package raid

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/spofwatch/spofwatch/raid/raidtest"
	"github.com/spofwatch/spofwatch/sysdev"
)

// benchTree writes 16 four-disk raid6 arrays with every file both readers
// need (procfs's reader fails without degraded, uuid, ...).
func benchTree(b *testing.B) string {
	root := b.TempDir()
	var arrays []raidtest.Array
	var mdstat strings.Builder
	mdstat.WriteString("Personalities : [raid1] [raid6] [raid5] [raid4] [raid10]\n")
	for i := range 16 {
		var devs []raidtest.Dev
		var comps []string
		for j := range 4 {
			disk := fmt.Sprintf("sd%c", 'a'+j)
			name := fmt.Sprintf("%s%d", disk, i+1)
			devs = append(devs, raidtest.Dev{Name: name, Disk: disk, State: "in_sync", Slot: fmt.Sprint(j), PCI: fmt.Sprintf("0000:%02x:00.0", j+1)})
			comps = append(comps, fmt.Sprintf("%s[%d]", name, j))
		}
		arrays = append(arrays, raidtest.Array{Name: fmt.Sprintf("md%d", i), Level: "raid6", ArrayState: "clean", RaidDisks: "4",
			SyncAction: "idle", SyncCompleted: "none", MismatchCnt: "0", Devs: devs,
			Extra: map[string]string{"degraded": "0", "uuid": fmt.Sprintf("0c15f7e7-b159-4b1f-a5cd-a79b5c04b6%02x", i), "metadata_version": "1.2", "chunk_size": "524288"}})
		fmt.Fprintf(&mdstat, "md%d : active raid6 %s\n      1953381440 blocks super 1.2 level 6, 512k chunk, algorithm 2 [4/4] [UUUU]\n\n", i, strings.Join(comps, " "))
	}
	mdstat.WriteString("unused devices: <none>\n")
	if err := raidtest.WriteTree(root, mdstat.String(), arrays...); err != nil {
		b.Fatal(err)
	}
	return root
}

// BenchmarkMdFSArrays16: our reader, mdstat + sysfs + failure domains
// (cached as in the collector).
func BenchmarkMdFSArrays16(b *testing.B) {
	root := benchTree(b)
	fs := MdFS{ProcPath: filepath.Join(root, "proc"), SysPath: filepath.Join(root, "sys"), Domains: &sysdev.DomainCache{}}
	for b.Loop() {
		arrays, err := fs.Arrays()
		if err != nil || len(arrays) != 16 {
			b.Fatalf("%v %d", err, len(arrays))
		}
	}
}

// BenchmarkProcfsMd16: what node_exporter's mdadm collector reads, through
// prometheus/procfs (MDStat + sysfs Mdraids), on the same tree. It does
// not resolve disks or controllers.
func BenchmarkProcfsMd16(b *testing.B) {
	root := benchTree(b)
	pfs, err := procfs.NewFS(filepath.Join(root, "proc"))
	if err != nil {
		b.Fatal(err)
	}
	sfs, err := sysfs.NewFS(filepath.Join(root, "sys"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		st, err := pfs.MDStat()
		if err != nil || len(st) != 16 {
			b.Fatalf("%v %d", err, len(st))
		}
		md, err := sfs.Mdraids()
		if err != nil || len(md) != 16 {
			b.Fatalf("%v %d", err, len(md))
		}
	}
}
