package raid

import (
	"os"
	"path/filepath"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseZpoolStatusText(t *testing.T) {
	for _, tc := range []struct {
		file        string
		pool, state string
		vdevs       []string // top-level "name:type:state:children"
		logs        int
		note        string
		scanFn      string
		inProgress  bool
		percent     float64
	}{
		{file: "2q-degraded-mirror.txt", pool: "test", state: "DEGRADED", vdevs: []string{"mirror:mirror:DEGRADED:2"}, percent: -1},
		{file: "9p-checksum-errors.txt", pool: "test", state: "ONLINE", vdevs: []string{"mirror:mirror:ONLINE:2"}, percent: -1},
		{file: "9p-replacing.txt", pool: "test", state: "DEGRADED", vdevs: []string{"mirror:mirror:ONLINE:2"}, scanFn: "resilver", inProgress: true, percent: 0.14},
		{file: "k4-log-faulted.txt", pool: "test", state: "FAULTED", vdevs: []string{"c3t2d0:disk:ONLINE:0"}, logs: 1, note: "bad intent log", percent: -1},
		{file: "k4-log-online.txt", pool: "test", state: "ONLINE", vdevs: []string{"c3t2d0:disk:ONLINE:0"}, logs: 1, percent: -1},
		{file: "k4-log-unavail.txt", pool: "test", state: "DEGRADED", vdevs: []string{"c3t2d0:disk:ONLINE:0"}, logs: 1, percent: -1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			pools := ParseZpoolStatus(readFixture(t, "zfs/"+tc.file))
			if len(pools) != 1 {
				t.Fatalf("%d pools", len(pools))
			}
			p := pools[0]
			if p.Name != tc.pool || p.State != tc.state || p.Note != tc.note || len(p.Problems) != 0 {
				t.Errorf("pool %q %q note %q problems %q", p.Name, p.State, p.Note, p.Problems)
			}
			var got []string
			for _, v := range p.Vdevs {
				got = append(got, v.Name+":"+v.Type+":"+v.State+":"+itoa(len(v.Children)))
			}
			if len(got) != len(tc.vdevs) || (len(got) > 0 && got[0] != tc.vdevs[0]) {
				t.Errorf("vdevs %v, want %v", got, tc.vdevs)
			}
			if len(p.Logs) != tc.logs {
				t.Errorf("%d logs, want %d", len(p.Logs), tc.logs)
			}
			if p.Scan.Function != tc.scanFn || p.Scan.InProgress != tc.inProgress || p.Scan.Percent != tc.percent {
				t.Errorf("scan %+v", p.Scan)
			}
		})
	}
	// Details the tables above do not cover.
	p := ParseZpoolStatus(readFixture(t, "zfs/9p-checksum-errors.txt"))[0]
	if p.Vdevs[0].Children[0].Cksum != 2 {
		t.Errorf("cksum %d", p.Vdevs[0].Children[0].Cksum)
	}
	p = ParseZpoolStatus(readFixture(t, "zfs/9p-replacing.txt"))[0]
	r := p.Vdevs[0].Children[0]
	if r.Type != "replacing" || len(r.Children) != 2 || r.Children[1].Note != "58.5K resilvered" || p.Scan.ToGo != "0h0m" {
		t.Errorf("replacing %+v scan %+v", r, p.Scan)
	}
	p = ParseZpoolStatus(readFixture(t, "zfs/2q-degraded-mirror.txt"))[0]
	if sdb := p.Vdevs[0].Children[1]; sdb.State != "FAULTED" || sdb.Note != "cannot open" {
		t.Errorf("sdb %+v", sdb)
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestParseZpoolStatusJSON(t *testing.T) {
	pools, err := ParseZpoolStatusJSON(readFixture(t, "zfs/status-j-man.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 {
		t.Fatalf("%d pools", len(pools))
	}
	p := pools[0]
	if p.Name != "tank" || p.State != "ONLINE" {
		t.Errorf("pool %s %s", p.Name, p.State)
	}
	if len(p.Vdevs) != 1 || p.Vdevs[0].Type != "raidz" || p.Vdevs[0].Parity != 1 || len(p.Vdevs[0].Children) != 3 || p.Vdevs[0].State != "ONLINE" {
		t.Errorf("vdevs %+v", p.Vdevs)
	}
	if req, red := p.Vdevs[0].Tolerance(); req != 2 || !red {
		t.Errorf("raidz1 of 3: required %d redundant %v", req, red)
	}
	if len(p.Dedup) != 1 || p.Dedup[0].Type != "mirror" || len(p.Dedup[0].Children) != 2 {
		t.Errorf("dedup %+v", p.Dedup)
	}
	if len(p.Special) != 1 || p.Special[0].Type != "disk" {
		t.Errorf("special %+v", p.Special)
	}
	if _, err := ParseZpoolStatusJSON([]byte("zpool: invalid option 'j'")); err == nil {
		t.Error("text accepted as JSON")
	}
}

func TestVdevTolerance(t *testing.T) {
	kids := func(n int) []Zvdev { return make([]Zvdev, n) }
	for _, tc := range []struct {
		name      string
		children  int
		required  int
		redundant bool
	}{
		{"mirror-0", 2, 1, true},
		{"mirror-1", 3, 1, true},
		{"raidz1-0", 3, 2, true},
		{"raidz2-0", 6, 4, true},
		{"raidz3-0", 8, 5, true},
		{"raidz-0", 4, 3, true},
		{"draid2:4d:12c:1s-0", 12, 10, true},
		{"sda", 0, 1, false},
	} {
		typ, parity := vdevType(tc.name)
		v := Zvdev{Name: tc.name, Type: typ, Parity: parity, Children: kids(tc.children)}
		if req, red := v.Tolerance(); req != tc.required || red != tc.redundant {
			t.Errorf("%s: %d %v, want %d %v", tc.name, req, red, tc.required, tc.redundant)
		}
	}
}

func TestParseScanModern(t *testing.T) {
	// The scan lines of a current OpenZFS resilver (format of
	// cmd/zpool/zpool_main.c print_scan_scrub_resilver_status).
	s := parseScan("resilver in progress since Mon Jan  6 01:33:12 2025\n1.36T / 1.53T scanned at 1.37G/s, 76.2G / 1.53T issued at 76.9M/s\n76.3G resilvered, 4.87% done, 05:30:06 to go")
	if s.Function != "resilver" || !s.InProgress || s.Percent != 4.87 || s.ToGo != "05:30:06" {
		t.Errorf("%+v", s)
	}
	if got := s.String(); got != "resilver 4.87% done, 05:30:06 to go" {
		t.Errorf("%q", got)
	}
}

func TestReadKstatStates(t *testing.T) {
	root := t.TempDir()
	for pool, st := range map[string]string{"tank": "ONLINE", "backup": "DEGRADED"} {
		dir := filepath.Join(root, "spl/kstat/zfs", pool)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "state"), []byte(st+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// arcstats and friends are files, not pools.
	if err := os.WriteFile(filepath.Join(root, "spl/kstat/zfs/arcstats"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKstatStates(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["tank"] != "ONLINE" || got["backup"] != "DEGRADED" {
		t.Errorf("%v", got)
	}
	if _, err := ReadKstatStates(t.TempDir()); err == nil {
		t.Error("no error without the zfs module")
	}
}

func FuzzParseZpoolStatus(f *testing.F) {
	files, _ := filepath.Glob("testdata/zfs/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range ParseZpoolStatus(data) {
			_ = p.Scan.String()
			for _, v := range p.Vdevs {
				if req, _ := v.Tolerance(); req < 1 {
					t.Fatalf("required %d", req)
				}
			}
		}
		if pools, err := ParseZpoolStatusJSON(data); err == nil {
			for _, p := range pools {
				for _, v := range p.Vdevs {
					_, _ = v.Tolerance()
				}
			}
		}
	})
}
