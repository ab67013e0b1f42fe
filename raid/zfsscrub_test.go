package raid

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseScrubDone(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name     string
		scan     string
		ok       bool
		end      time.Time
		errors   uint64
		repaired string
	}{
		{"OpenZFS 2.x", "scrub repaired 0B in 00:00:01 with 0 errors on Sun Nov 23 10:00:00 2026", true, time.Date(2026, 11, 23, 10, 0, 0, 0, utc), 0, "0B"},
		{"repaired data, no errors", "scrub repaired 15.8M in 00:01:06 with 0 errors on Fri Dec 23 11:19:08 2022", true, time.Date(2022, 12, 23, 11, 19, 8, 0, utc), 0, "15.8M"},
		{"unrepaired errors", "scrub repaired 0B in 00:00:09 with 1 errors on Sun Sep 14 00:24:10 2025", true, time.Date(2025, 9, 14, 0, 24, 10, 0, utc), 1, "0B"},
		{"days in the duration", "scrub repaired 0B in 0 days 00:00:00 with 0 errors on Sun Apr 10 00:24:01 2022", true, time.Date(2022, 4, 10, 0, 24, 1, 0, utc), 0, "0B"},
		{"ZoL 0.6 form", "scrub repaired 0 in 17h57m with 0 errors on Thu May  9 10:59:20 2019", true, time.Date(2019, 5, 9, 10, 59, 20, 0, utc), 0, "0"},
		{"Solaris form", "scrub completed after 0h0m with 8 errors on Tue Jul 13 13:17:32 2010", true, time.Date(2010, 7, 13, 13, 17, 32, 0, utc), 8, ""},
		{"continuation lines are ignored", "scrub repaired 0B in 00:00:01 with 0 errors on Sun Nov 23 10:00:00 2026\nsomething else", true, time.Date(2026, 11, 23, 10, 0, 0, 0, utc), 0, "0B"},
		{"in progress", "scrub in progress since Thu Aug 17 10:25:48 2017", false, time.Time{}, 0, ""},
		{"canceled", "scrub canceled on Thu Aug 17 10:25:48 2017", false, time.Time{}, 0, ""},
		{"resilver", "resilvered 1.2G in 00:10:00 with 0 errors on Thu Aug 17 10:25:48 2017", false, time.Time{}, 0, ""},
		{"none requested", "none requested", false, time.Time{}, 0, ""},
		{"bad date", "scrub repaired 0B in 00:00:01 with 0 errors on yesterday", false, time.Time{}, 0, ""},
		{"error count overflows", "scrub repaired 0B in 00:00:01 with 99999999999999999999999 errors on Sun Nov 23 10:00:00 2026", false, time.Time{}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseScrubDone(tc.scan, utc)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, got)
			}
			if !ok {
				return
			}
			if !got.End.Equal(tc.end) || got.Errors != tc.errors || got.Repaired != tc.repaired {
				t.Errorf("got %+v, want end %v errors %d repaired %q", got, tc.end, tc.errors, tc.repaired)
			}
		})
	}
}

// TestScrubFromFixture reads the scan line out of a real zpool status and
// honours the zone zpool printed it in.
func TestScrubFromFixture(t *testing.T) {
	pools := ParseZpoolStatus(readFixture(t, "zfs/scrub-done-zedhook.txt"))
	if len(pools) != 1 {
		t.Fatalf("pools = %d, want 1", len(pools))
	}
	berlin := time.FixedZone("CEST", 2*3600)
	got, ok := ParseScrubDone(pools[0].Scan.Text, berlin)
	if !ok {
		t.Fatalf("no completed scrub in %q", pools[0].Scan.Text)
	}
	if want := time.Date(2022, 4, 5, 14, 5, 49, 0, time.UTC); !got.End.Equal(want) || got.Errors != 0 || got.Repaired != "0B" {
		t.Errorf("got %+v, want end %v (UTC), 0 errors, 0B repaired", got, want)
	}
	for _, name := range []string{"2q-degraded-mirror.txt", "9p-checksum-errors.txt", "9p-replacing.txt"} {
		p := ParseZpoolStatus(readFixture(t, "zfs/"+name))[0]
		if s, ok := ParseScrubDone(p.Scan.Text, time.UTC); ok {
			t.Errorf("%s: scan %q read as a completed scrub %+v", name, p.Scan.Text, s)
		}
	}
}

func FuzzParseScrubDone(f *testing.F) {
	f.Add("scrub repaired 0B in 00:00:01 with 0 errors on Sun Nov 23 10:00:00 2026")
	f.Add("scrub completed after 0h0m with 8 errors on Tue Jul 13 13:17:32 2010")
	f.Add("scrub in progress since Thu Aug 17 10:25:48 2017")
	f.Fuzz(func(t *testing.T, scan string) {
		s, ok := ParseScrubDone(scan, time.UTC)
		if !ok && (s != ZfsScrub{}) {
			t.Errorf("not ok but returned %+v", s)
		}
		if ok && s.End.IsZero() {
			t.Errorf("ok with a zero end time for %q", scan)
		}
	})
}

func TestParseScanStatsDone(t *testing.T) {
	utc := time.UTC
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata")
	}
	tests := []struct {
		name, state, end, errors string
		loc                      *time.Location
		ok                       bool
		want                     time.Time
		errs                     uint64
	}{
		{"literal seconds (-p)", "FINISHED", "1762657905", "0", utc, true, time.Unix(1762657905, 0), 0},
		{"C locale date text", "FINISHED", "Sun Nov  9 03:11:45 UTC 2025", "0", utc, true, time.Date(2025, 11, 9, 3, 11, 45, 0, utc), 0},
		{"date text in the host's zone", "FINISHED", "Sun Nov  9 03:11:45 CET 2025", "2", berlin, true, time.Date(2025, 11, 9, 2, 11, 45, 0, utc), 2},
		{"ctime form", "FINISHED", "Sun Nov  9 03:11:45 2025", "0", utc, true, time.Date(2025, 11, 9, 3, 11, 45, 0, utc), 0},
		{"errors with a suffix", "finished", "1762657905", "1.5K", utc, true, time.Unix(1762657905, 0), 1500},
		{"still scanning", "SCANNING", "-", "0", utc, false, time.Time{}, 0},
		{"canceled", "CANCELED", "1762657905", "0", utc, false, time.Time{}, 0},
		{"never ended", "FINISHED", "-", "0", utc, false, time.Time{}, 0},
		{"zero is not the epoch", "FINISHED", "0", "0", utc, false, time.Time{}, 0},
		{"unreadable errors", "FINISHED", "1762657905", "many", utc, false, time.Time{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseScanStatsDone(tc.state, tc.end, tc.errors, tc.loc)
			if ok != tc.ok || !got.End.Equal(tc.want) || got.Errors != tc.errs {
				t.Errorf("got %+v, %v; want %v with %d errors, %v", got, ok, tc.want, tc.errs, tc.ok)
			}
		})
	}
}

// The `zpool status -j` path gives the same proof as the text path: the
// finished scrub in scan_stats.
func TestScrubFromJSONFixture(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "zfs", "status-j-scrub-finished.json"))
	if err != nil {
		t.Fatal(err)
	}
	pools, err := ParseZpoolStatusJSON(b)
	if err != nil || len(pools) != 1 {
		t.Fatalf("%v, %d pools", err, len(pools))
	}
	s, ok := pools[0].Scan.ScrubDone(time.UTC)
	if !ok || !s.End.Equal(time.Date(2025, 11, 9, 3, 11, 45, 0, time.UTC)) || s.Errors != 0 {
		t.Fatalf("scrub = %+v, %v", s, ok)
	}
	// The man page's example has no scan_stats: no proof, and no guess.
	b, err = os.ReadFile(filepath.Join("testdata", "zfs", "status-j-man.json"))
	if err != nil {
		t.Fatal(err)
	}
	pools, err = ParseZpoolStatusJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := pools[0].Scan.ScrubDone(time.UTC); ok {
		t.Errorf("a pool without scan_stats read as scrubbed: %+v", s)
	}
}

func FuzzParseScanStatsDone(f *testing.F) {
	f.Add("FINISHED", "1762657905", "0")
	f.Add("FINISHED", "Sun Nov  9 03:11:45 UTC 2025", "3")
	f.Add("SCANNING", "-", "0")
	f.Fuzz(func(t *testing.T, state, end, errors string) {
		s, ok := ParseScanStatsDone(state, end, errors, time.UTC)
		if !ok && (s != ZfsScrub{}) {
			t.Errorf("not ok but %+v", s)
		}
		if ok && (s.End.IsZero() || s.End.Unix() <= 0) {
			t.Errorf("ok with end %v for %q", s.End, end)
		}
	})
}
