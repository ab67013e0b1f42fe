package collectors

import (
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

// TestZpoolProof: the last completed scrub is the proof of every redundant
// vdev group of its pool; a scrub with unrepaired errors is a failed proof;
// a single-disk vdev has nothing to prove.
func TestZpoolProof(t *testing.T) {
	real := raid.ParseZpoolStatus(zfsFixture(t, "scrub-done-zedhook.txt"))[0]
	if p := zpoolProof(real, time.UTC); p == nil || !p.At.Equal(time.Date(2022, 4, 5, 16, 5, 49, 0, time.UTC)) || p.Result != spof.ProofPassed || p.Method != "zfs scrub" || p.Detail != "repaired 0B, 0 errors" {
		t.Errorf("real fixture: proof = %+v", p)
	}
	// The zpool status -j path: scan_stats' finished scrub proves the raidz.
	js, err := raid.ParseZpoolStatusJSON(zfsFixture(t, "status-j-scrub-finished.json"))
	if err != nil {
		t.Fatal(err)
	}
	proven := 0
	for _, g := range ZpoolGroups(js[0]) {
		if g.Provable != spof.Provable {
			continue // single-disk vdevs have nothing to prove
		}
		proven++
		if p := g.Proof; p == nil || !p.At.Equal(time.Date(2025, 11, 9, 3, 11, 45, 0, time.UTC)) || p.Result != spof.ProofPassed || p.Detail != "0 errors" {
			t.Errorf("%s from zpool status -j: proof=%+v", g.ID, p)
		}
	}
	if proven == 0 {
		t.Error("no provable group from zpool status -j")
	}
	for _, g := range ZpoolGroups(real) {
		if g.Provable != spof.NotProvable || g.Proof != nil {
			t.Errorf("%s: a single file vdev is provable=%v proof=%+v; it has no redundancy to prove", g.ID, g.Provable, g.Proof)
		}
	}

	mirror := raid.ParseZpoolStatus(zfsFixture(t, "9p-checksum-errors.txt"))[0]
	for _, tc := range []struct {
		name   string
		scan   string
		result spof.ProofResult // "" = no proof
	}{
		{"clean scrub", "scrub repaired 0B in 00:00:01 with 0 errors on Sun Nov 23 10:00:00 2026", spof.ProofPassed},
		{"scrub with unrepaired errors", "scrub repaired 0B in 00:00:09 with 3 errors on Sun Nov 23 10:00:00 2026", spof.ProofFailed},
		{"never scrubbed", "none requested", ""},
		{"scrub running", "scrub in progress since Sun Nov 23 10:00:00 2026", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mirror
			p.Scan = raid.ZfsScan{Text: tc.scan, Percent: -1}
			groups := ZpoolGroups(p)
			if len(groups) == 0 {
				t.Fatal("no groups")
			}
			for _, g := range groups {
				if g.Provable != spof.Provable {
					t.Errorf("%s: not provable, want provable (a mirror)", g.ID)
				}
				if tc.result == "" {
					if g.Proof != nil {
						t.Errorf("%s: proof %+v, want none", g.ID, g.Proof)
					}
					continue
				}
				want := time.Date(2026, 11, 23, 10, 0, 0, 0, time.Local)
				if g.Proof == nil || g.Proof.Result != tc.result || !g.Proof.At.Equal(want) {
					t.Errorf("%s: proof %+v, want %s at %v", g.ID, g.Proof, tc.result, want)
				}
			}
		})
	}
}
