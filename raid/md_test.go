package raid

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/spofwatch/spofwatch/raid/raidtest"
)

// slotString renders slots compactly: I in sync, A at risk, R rebuilding,
// F faulty, E empty, ? unknown.
func slotString(a MdArray) string {
	var b strings.Builder
	for _, s := range a.Slots {
		switch s.State {
		case SlotInSync:
			b.WriteByte('I')
		case SlotAtRisk:
			b.WriteByte('A')
		case SlotRebuilding:
			b.WriteByte('R')
		case SlotFaulty:
			b.WriteByte('F')
		case SlotEmpty:
			b.WriteByte('E')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// Every array of prometheus/procfs's and node_exporter's mdstat fixtures.
func TestMdstatFixtures(t *testing.T) {
	type want struct {
		level, state      string
		container         bool
		slots             string
		spares, faulty    int
		action            string
		delayed, pending  bool
		percent           float64
		required          int
		redundant, inactv bool
	}
	wants := map[string]want{
		"md3":   {level: "raid6", state: "active", slots: "IIIIIIII", spares: 2, required: 6, redundant: true},
		"md127": {level: "raid1", state: "active", slots: "II", required: 1, redundant: true},
		"md0":   {level: "raid1", state: "active", slots: "II", required: 1, redundant: true},
		"md4":   {level: "raid1", state: "inactive", slots: "??", spares: 1, faulty: 1, required: 1, redundant: true, inactv: true},
		// [2/1] [U_]: the failed sdb2 fills the down slot; sdc is a spare.
		"md6":   {level: "raid1", state: "active", slots: "IF", spares: 1, action: "recover", percent: 8.5, required: 1, redundant: true},
		"md8":   {level: "raid1", state: "active", slots: "II", spares: 2, action: "resync", percent: 8.5, required: 1, redundant: true},
		"md201": {level: "raid1", state: "active", slots: "II", action: "check", percent: 5.7, required: 1, redundant: true},
		"md7":   {level: "raid6", state: "active", slots: "IFII", required: 2, redundant: true},
		// [4/4] with two failed devices left over: full redundancy.
		"md9":   {level: "raid1", state: "active", slots: "IIII", spares: 1, faulty: 2, action: "resync", delayed: true, required: 1, redundant: true},
		"md10":  {level: "raid0", state: "active", slots: "II", required: 2},
		"md11":  {level: "raid1", state: "auto-read-only", slots: "II", spares: 2, faulty: 1, action: "resync", pending: true, required: 1, redundant: true},
		"md12":  {level: "raid0", state: "active", slots: "II", required: 2},
		"md126": {level: "raid0", state: "active", slots: "II", required: 2},
		"md219": {state: "inactive", container: true},
		"md00":  {level: "raid0", state: "active", slots: "I", required: 1},
		"md120": {level: "linear", state: "active", slots: "II", required: 2},
		"md101": {level: "raid0", state: "read-only", slots: "III", required: 3},
		// reshape of a degraded raid5 [3/2] [UU_], sda1 spare.
		"md42": {level: "raid5", state: "active", slots: "IIE", spares: 1, action: "reshape", percent: 56.1, required: 2, redundant: true},
	}
	for _, src := range []string{"procfs", "node_exporter"} {
		t.Run(src, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/md", src, "proc/mdstat"))
			if err != nil {
				t.Fatal(err)
			}
			parsed := ParseMdstat(data)
			fsys, err := procfs.NewFS(filepath.Join("testdata/md", src, "proc"))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := fsys.MDStat()
			if err != nil {
				t.Fatalf("procfs oracle: %v", err)
			}
			if len(parsed) != len(ref) {
				t.Fatalf("parsed %d arrays, procfs %d", len(parsed), len(ref))
			}
			refByName := map[string]procfs.MDStat{}
			for _, r := range ref {
				refByName[r.Name] = r
			}
			for _, ms := range parsed {
				w, ok := wants[ms.Name]
				if !ok {
					t.Errorf("%s: no expectation", ms.Name)
					continue
				}
				if ms.Err != "" {
					t.Errorf("%s: parse error %s", ms.Name, ms.Err)
				}
				// Differential check against procfs where both model the same thing.
				r := refByName[ms.Name]
				var fails, spares int
				for _, d := range ms.Devices {
					if d.Faulty {
						fails++
					}
					if d.Spare {
						spares++
					}
				}
				if int64(fails) != r.DisksFailed || int64(spares) != r.DisksSpare || len(ms.Devices) != len(r.Devices) {
					t.Errorf("%s: failed/spare/devices %d/%d/%d, procfs %d/%d/%d", ms.Name, fails, spares, len(ms.Devices), r.DisksFailed, r.DisksSpare, len(r.Devices))
				}
				if ms.Slots != "" && ms.State != "inactive" && (int64(ms.RaidDisks) != r.DisksTotal || int64(ms.InSync) != r.DisksActive) {
					t.Errorf("%s: [%d/%d], procfs [%d/%d]", ms.Name, ms.RaidDisks, ms.InSync, r.DisksTotal, r.DisksActive)
				}
				if ms.Sync.Percent != r.BlocksSyncedPct {
					t.Errorf("%s: percent %v, procfs %v", ms.Name, ms.Sync.Percent, r.BlocksSyncedPct)
				}

				a := MdArrayFromMdstat(ms)
				if a.Container != w.container {
					t.Errorf("%s: container %v, want %v", ms.Name, a.Container, w.container)
				}
				if w.container {
					continue
				}
				if a.Level != w.level || a.ArrayState != w.state {
					t.Errorf("%s: level/state %s/%s, want %s/%s", ms.Name, a.Level, a.ArrayState, w.level, w.state)
				}
				if got := slotString(a); got != w.slots {
					t.Errorf("%s: slots %s, want %s", ms.Name, got, w.slots)
				}
				if len(a.Spares) != w.spares || len(a.Faulty) != w.faulty {
					t.Errorf("%s: spares/faulty %d/%d, want %d/%d", ms.Name, len(a.Spares), len(a.Faulty), w.spares, w.faulty)
				}
				if a.Sync.Action != w.action || a.Sync.Delayed != w.delayed || a.Sync.Pending != w.pending {
					t.Errorf("%s: sync %+v, want action %q delayed %v pending %v", ms.Name, a.Sync, w.action, w.delayed, w.pending)
				}
				if w.percent > 0 {
					r, ok := a.Sync.Ratio()
					if !ok || r*100 < w.percent-0.1 || r*100 > w.percent+0.1 {
						t.Errorf("%s: ratio %v %v, want %v%%", ms.Name, r, ok, w.percent)
					}
					if a.Sync.ETA <= 0 || a.Sync.SpeedKBps <= 0 {
						t.Errorf("%s: no ETA/speed: %+v", ms.Name, a.Sync)
					}
				}
				req, red := a.RequiredMembers()
				if req != w.required || red != w.redundant {
					t.Errorf("%s: required %d redundant %v, want %d %v", ms.Name, req, red, w.required, w.redundant)
				}
				if a.Inactive() != w.inactv {
					t.Errorf("%s: inactive %v, want %v", ms.Name, a.Inactive(), w.inactv)
				}
			}
		})
	}
}

// Every md array of prometheus/procfs's and node_exporter's sysfs fixtures.
func TestSysfsFixtures(t *testing.T) {
	type want struct {
		level, state string
		container    bool
		raidDisks    int
		before       int
		slots        string
		spares       int
		action       string
		ratio        float64
		required     int
		problems     int
	}
	procfsWants := map[string]want{
		"md0":  {level: "raid0", state: "clean", raidDisks: 2, slots: "II", required: 2},
		"md1":  {level: "raid1", state: "clean", raidDisks: 2, slots: "II", action: "idle", required: 1},
		"md10": {level: "raid10", state: "clean", raidDisks: 4, slots: "IIII", action: "idle", required: 3},
		"md4":  {level: "raid4", state: "clean", raidDisks: 3, slots: "III", action: "idle", required: 2},
		// sdp faulty in slot 2, sdaa a hot spare.
		"md5": {level: "raid5", state: "clean", raidDisks: 3, slots: "IIF", spares: 1, action: "idle", required: 2},
		// sdt holds slot 3 (rd3) but is not in sync: being recovered.
		"md6": {level: "raid6", state: "active", raidDisks: 4, slots: "IIIR", action: "recover", ratio: 1569888.0 / 2093056, required: 2},
		"md7": {state: "inactive", container: true},
		// raid_disks "11 (10)" during a reshape: the fixture lists only two
		// devices and no slot links, so they take the first free slots and
		// nine stay empty. The point is that the value parses.
		"md8": {level: "raid5", state: "active", raidDisks: 11, before: 10, slots: "IIEEEEEEEEE", action: "reshape", required: 10},
	}
	// node_exporter's copies have rdN as directories, not links, and no
	// md7/md8: in_sync devices take the free slots, a spare with no slot
	// information stays a spare.
	neWants := map[string]want{
		"md0":  {level: "raid0", state: "clean", raidDisks: 2, slots: "II", required: 2},
		"md1":  {level: "raid1", state: "clean", raidDisks: 2, slots: "II", action: "idle", required: 1},
		"md10": {level: "raid10", state: "clean", raidDisks: 4, slots: "IIII", action: "idle", required: 3},
		"md4":  {level: "raid4", state: "clean", raidDisks: 3, slots: "III", action: "idle", required: 2},
		"md5":  {level: "raid5", state: "clean", raidDisks: 3, slots: "IIF", spares: 1, action: "idle", required: 2},
		"md6":  {level: "raid6", state: "active", raidDisks: 4, slots: "IIIE", spares: 1, action: "recover", ratio: 1569888.0 / 2093056, required: 2},
	}
	for src, wants := range map[string]map[string]want{"procfs": procfsWants, "node_exporter": neWants} {
		t.Run(src, func(t *testing.T) {
			sys := filepath.Join("testdata/md", src, "sys")
			entries, err := os.ReadDir(filepath.Join(sys, "block"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(wants) {
				t.Errorf("%d arrays in fixture, %d expectations", len(entries), len(wants))
			}
			for _, e := range entries {
				w, ok := wants[e.Name()]
				if !ok {
					t.Errorf("%s: no expectation", e.Name())
					continue
				}
				a := ReadMdArray(sys, e.Name())
				if a.Container != w.container {
					t.Errorf("%s: container %v", e.Name(), a.Container)
				}
				if w.container {
					continue
				}
				if a.Level != w.level || a.ArrayState != w.state || a.RaidDisks != w.raidDisks || a.RaidDisksBefore != w.before {
					t.Errorf("%s: %s %s %d (%d), want %s %s %d (%d)", e.Name(), a.Level, a.ArrayState, a.RaidDisks, a.RaidDisksBefore, w.level, w.state, w.raidDisks, w.before)
				}
				if got := slotString(a); got != w.slots {
					t.Errorf("%s: slots %s, want %s", e.Name(), got, w.slots)
				}
				if len(a.Spares) != w.spares {
					t.Errorf("%s: %d spares, want %d", e.Name(), len(a.Spares), w.spares)
				}
				if a.Sync.Action != w.action {
					t.Errorf("%s: action %q, want %q", e.Name(), a.Sync.Action, w.action)
				}
				if r, _ := a.Sync.Ratio(); r != w.ratio {
					t.Errorf("%s: ratio %v, want %v", e.Name(), r, w.ratio)
				}
				if req, _ := a.RequiredMembers(); req != w.required {
					t.Errorf("%s: required %d, want %d", e.Name(), req, w.required)
				}
				if len(a.Problems) != w.problems {
					t.Errorf("%s: problems %q", e.Name(), a.Problems)
				}
			}
		})
	}
}

func TestMdFSArraysMergesMdstat(t *testing.T) {
	// Both fixture sets together: sysfs wins for arrays it has, mdstat
	// covers the rest, and nothing fails as a whole.
	for _, src := range []string{"procfs", "node_exporter"} {
		root := filepath.Join("testdata/md", src)
		arrays, err := MdFS{ProcPath: filepath.Join(root, "proc"), SysPath: filepath.Join(root, "sys")}.Arrays()
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{}
		for _, a := range arrays {
			names[a.Name] = a.Source
		}
		if names["md6"] != "sysfs" || names["md3"] != "mdstat" || names["md42"] == "" && src == "procfs" {
			t.Errorf("%s: sources %v", src, names)
		}
		for i := 1; i < len(arrays); i++ {
			if !naturalLess(arrays[i-1].Name, arrays[i].Name) {
				t.Errorf("%s: not sorted: %s before %s", src, arrays[i-1].Name, arrays[i].Name)
			}
		}
	}
}

func TestMdFSMissing(t *testing.T) {
	_, err := MdFS{ProcPath: t.TempDir(), SysPath: t.TempDir()}.Arrays()
	if !errors.Is(err, ErrNoMd) {
		t.Fatalf("err = %v, want ErrNoMd", err)
	}
}

func TestParseRaidDisks(t *testing.T) {
	for _, tc := range []struct {
		in          string
		cur, before int
		ok          bool
	}{
		{"4", 4, 0, true},
		{"11 (10)", 11, 10, true},
		{"3 (4)", 3, 4, true},
		{"", 0, 0, false},
		{"x", 0, 0, false},
		{"4 (y)", 4, 0, false},
		{"-1", 0, 0, false},
	} {
		cur, before, err := parseRaidDisks(tc.in)
		if (err == nil) != tc.ok || cur != tc.cur || before != tc.before {
			t.Errorf("%q: %d %d %v", tc.in, cur, before, err)
		}
	}
}

func TestParseSyncCompleted(t *testing.T) {
	for _, tc := range []struct {
		in          string
		done, total uint64
		delayed, ok bool
	}{
		{"none", 0, 0, false, true},
		{"delayed", 0, 0, true, true},
		{"1569888 / 2093056", 1569888, 2093056, false, true},
		{"12/100", 12, 100, false, true},
		{"12 / x", 0, 0, false, false},
		{"garbage", 0, 0, false, false},
	} {
		var s MdSync
		err := parseSyncCompleted(tc.in, &s)
		if (err == nil) != tc.ok || s.Done != tc.done || s.Total != tc.total || s.Delayed != tc.delayed {
			t.Errorf("%q: %+v %v", tc.in, s, err)
		}
	}
}

func TestRequiredMembers(t *testing.T) {
	for _, tc := range []struct {
		level     string
		n, layout int
		known     bool
		required  int
		redundant bool
	}{
		{"raid1", 2, 0, false, 1, true},
		{"raid1", 3, 0, false, 1, true},
		{"raid1", 1, 0, false, 1, false},
		{"raid4", 3, 0, false, 2, true},
		{"raid5", 3, 0, false, 2, true},
		{"raid5", 8, 0, false, 7, true},
		{"raid6", 4, 0, false, 2, true},
		{"raid6", 8, 0, false, 6, true},
		{"raid10", 4, 0x102, true, 3, true},   // near=2
		{"raid10", 4, 0x201, true, 3, true},   // far=2
		{"raid10", 4, 0x10201, true, 3, true}, // offset=2
		{"raid10", 6, 0x103, true, 4, true},   // near=3: two may fail
		{"raid10", 3, 0x102, true, 2, true},   // n2 over 3 disks
		{"raid10", 4, 0, false, 3, true},      // unknown layout: assume 2 copies
		{"raid0", 2, 0, false, 2, false},
		{"linear", 3, 0, false, 3, false},
		{"", 2, 0, false, 2, false},
	} {
		a := MdArray{Level: tc.level, RaidDisks: tc.n, Layout: tc.layout, LayoutKnown: tc.known}
		req, red := a.RequiredMembers()
		if req != tc.required || red != tc.redundant {
			t.Errorf("%s n=%d layout=%#x: required %d redundant %v, want %d %v", tc.level, tc.n, tc.layout, req, red, tc.required, tc.redundant)
		}
	}
}

func TestSyncString(t *testing.T) {
	s := MdSync{Action: "recover", Done: 420, Total: 1000, SpeedKBps: 12000}
	s.computeETA()
	// 580 sectors = 290 KiB at 12000 KiB/s.
	if want := 290.0 / 12000 * float64(time.Second); s.ETA != time.Duration(want) {
		t.Errorf("ETA %v", s.ETA)
	}
	s.ETA = 190 * time.Second
	if got, want := s.String(), "recovery 42.0%, 12.3 MB/s, ETA 3m10s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := (MdSync{Action: "resync", Delayed: true}).String(); !strings.Contains(got, "delayed") {
		t.Errorf("delayed: %q", got)
	}
}

func TestGeneratedTreeDomainsAndStates(t *testing.T) {
	root := t.TempDir()
	err := raidtest.WriteTree(root, "Personalities : [raid1]\nunused devices: <none>\n",
		raidtest.Array{Name: "md0", Level: "raid1", ArrayState: "clean", RaidDisks: "2", SyncAction: "idle", SyncCompleted: "none", MismatchCnt: "0",
			Devs: []raidtest.Dev{
				{Name: "sda1", Disk: "sda", State: "in_sync", Slot: "0", PCI: "0000:00:17.0"},
				{Name: "sda2", Disk: "sda", State: "in_sync", Slot: "1", PCI: "0000:00:17.0"},
			}},
		raidtest.Array{Name: "md1", Level: "raid1", ArrayState: "active", RaidDisks: "2", SyncAction: "recover", SyncCompleted: "420 / 1000", SyncSpeed: "12000", MismatchCnt: "0",
			Devs: []raidtest.Dev{
				{Name: "vda", State: "in_sync", Slot: "0", PCI: "0000:00:04.0"},
				{Name: "vdb", State: "faulty", Slot: "none", PCI: "0000:00:05.0"},
				{Name: "vdc", State: "spare", Slot: "1", PCI: "0000:00:06.0"},
			}},
		raidtest.Array{Name: "md2", Level: "raid1", ArrayState: "clean", RaidDisks: "2", SyncAction: "idle", SyncCompleted: "none",
			Devs: []raidtest.Dev{
				{Name: "vdd", State: "in_sync,write_error", Slot: "0"},
				{Name: "vde", State: "faulty", Slot: "none"},
			}},
		raidtest.Array{Name: "md3", Level: "raid1", ArrayState: "active", RaidDisks: "2", SyncAction: "resync", SyncCompleted: "delayed",
			Devs: []raidtest.Dev{{Name: "vdf", State: "in_sync", Slot: "0"}, {Name: "vdg", State: "in_sync", Slot: "1"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	arrays, err := MdFS{ProcPath: filepath.Join(root, "proc"), SysPath: filepath.Join(root, "sys")}.Arrays()
	if err != nil {
		t.Fatal(err)
	}
	if len(arrays) != 4 {
		t.Fatalf("%d arrays", len(arrays))
	}
	md0 := arrays[0]
	for _, s := range md0.Slots {
		if s.Disk != "sda" || s.Controller != "0000:00:17.0" {
			t.Errorf("md0 %s: disk %q controller %q", s.Device, s.Disk, s.Controller)
		}
	}
	md1 := arrays[1]
	if got := slotString(md1); got != "IR" {
		t.Errorf("md1 slots %s", got)
	}
	if md1.Slots[1].Device != "vdc" || md1.Slots[1].Detail != md1.Sync.String() || !strings.HasPrefix(md1.Slots[1].Detail, "recovery 42.0%, 12.3 MB/s, ETA ") {
		t.Errorf("md1 slot1 %+v", md1.Slots[1])
	}
	if len(md1.Faulty) != 1 || md1.Faulty[0].Name != "vdb" {
		t.Errorf("md1 leftover faulty %+v", md1.Faulty)
	}
	if md1.Slots[0].Disk != "vda" || md1.Slots[0].Controller != "0000:00:04.0" {
		t.Errorf("md1 slot0 %+v", md1.Slots[0])
	}
	md2 := arrays[2]
	if got := slotString(md2); got != "AF" || md2.Slots[1].Device != "vde" || len(md2.Faulty) != 0 {
		t.Errorf("md2 slots %s %+v faulty %v", got, md2.Slots, md2.Faulty)
	}
	md3 := arrays[3]
	if !md3.Sync.Delayed || md3.Sync.Action != "resync" || len(md3.Problems) != 0 {
		t.Errorf("md3 %+v problems %v", md3.Sync, md3.Problems)
	}
	if md2.Summary() != "md2 raid1: 1 of 2 in sync" || !md2.Degraded() || md0.Degraded() {
		t.Errorf("summary %q degraded %v/%v", md2.Summary(), md2.Degraded(), md0.Degraded())
	}
}
