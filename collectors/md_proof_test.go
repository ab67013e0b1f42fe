package collectors

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/raid/raidtest"
	"github.com/spofwatch/spofwatch/spof"
)

// TestMdCheckProof walks md sysfs trees through the states a check goes
// through (Documentation/admin-guide/md.rst: sync_action, last_sync_action,
// mismatch_cnt) and asserts what the collector takes as proof, with a fixed
// clock for "seen finished".
func TestMdCheckProof(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	type step struct {
		action, last, mismatch string
		want                   spof.ProofResult // "" = no proof
		wantMethod, detailIn   string
	}
	for _, tc := range []struct {
		name  string
		level string
		disks []string
		steps []step
	}{
		{"clean check on raid1", "raid1", []string{"0", "1"}, []step{
			{"idle", "none", "0", "", "", ""},
			{"check", "check", "0", "", "", ""},
			{"idle", "check", "0", spof.ProofPassed, "md check", "mismatch_cnt 0"},
			{"idle", "check", "0", spof.ProofPassed, "md check", ""}, // kept, not re-dated
		}},
		{"check with mismatches on raid1 fails", "raid1", []string{"0", "1"}, []step{
			{"check", "check", "0", "", "", ""},
			{"idle", "check", "128", spof.ProofFailed, "md check", "mismatch_cnt 128"},
		}},
		{"check with mismatches on raid10 fails", "raid10", []string{"0", "1", "2", "3"}, []step{
			{"check", "check", "0", "", "", ""},
			{"idle", "check", "8", spof.ProofFailed, "md check", "raid1/raid10"},
		}},
		{"repair passes with its count", "raid1", []string{"0", "1"}, []step{
			{"repair", "repair", "0", "", "", ""},
			{"idle", "repair", "64", spof.ProofPassed, "md repair", "mismatch_cnt 64"},
		}},
		{"a finished check seen only afterwards is no proof (md does not say when)", "raid1", []string{"0", "1"}, []step{
			{"idle", "check", "0", "", "", ""},
		}},
		{"a resync ending is no proof", "raid1", []string{"0", "1"}, []step{
			{"resync", "resync", "0", "", "", ""},
			{"idle", "resync", "0", "", "", ""},
		}},
		{"a check that turns into a recovery is no proof", "raid1", []string{"0", "1"}, []step{
			{"check", "check", "0", "", "", ""},
			{"recover", "recover", "0", "", "", ""},
			{"idle", "recover", "0", "", "", ""},
		}},
		{"kernel without last_sync_action: the transition alone", "raid1", []string{"0", "1"}, []step{
			{"check", "", "0", "", "", ""},
			{"idle", "", "0", spof.ProofPassed, "md check", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			now := t0
			c := NewMdCollector(MdOptions{ProcPath: filepath.Join(root, "proc"), SysPath: filepath.Join(root, "sys"), Now: func() time.Time { return now }})
			var provedAt time.Time
			for i, s := range tc.steps {
				now = t0.Add(time.Duration(i) * time.Hour)
				a := raidtest.Array{Name: "md0", Level: tc.level, RaidDisks: strconv.Itoa(len(tc.disks)), ArrayState: "clean",
					SyncAction: s.action, SyncCompleted: "none", MismatchCnt: s.mismatch, Extra: map[string]string{}}
				if s.action != "idle" {
					a.SyncCompleted = "100 / 1000"
				}
				if s.last != "" {
					a.Extra["last_sync_action"] = s.last
				}
				for j, slot := range tc.disks {
					a.Devs = append(a.Devs, dev("vd"+string(rune('a'+j)), "in_sync", slot, ""))
				}
				if err := raidtest.WriteTree(root, "", a); err != nil {
					t.Fatal(err)
				}
				res, err := c.Collect(context.Background())
				if err != nil || len(res.Groups) != 1 {
					t.Fatalf("step %d: %v, %d groups", i, err, len(res.Groups))
				}
				g := res.Groups[0]
				if g.Provable != spof.Provable {
					t.Fatalf("step %d: %s not provable", i, tc.level)
				}
				if s.want == "" {
					if g.Proof != nil {
						t.Fatalf("step %d (%s, last %s): proof %+v, want none", i, s.action, s.last, g.Proof)
					}
					continue
				}
				if g.Proof == nil || g.Proof.Result != s.want || g.Proof.Method != s.wantMethod || !strings.Contains(g.Proof.Detail, s.detailIn) {
					t.Fatalf("step %d: proof %+v, want %s by %s with %q", i, g.Proof, s.want, s.wantMethod, s.detailIn)
				}
				if provedAt.IsZero() {
					provedAt = now
				}
				if !g.Proof.At.Equal(provedAt) {
					t.Errorf("step %d: proof at %v, want %v (when the check was seen to finish)", i, g.Proof.At, provedAt)
				}
			}
		})
	}
}

// TestMdProvable: only levels with redundancy can be proven.
func TestMdProvable(t *testing.T) {
	root := t.TempDir()
	err := raidtest.WriteTree(root, "",
		idle(raidtest.Array{Name: "md0", Level: "raid0", RaidDisks: "2", Devs: []raidtest.Dev{dev("vda", "in_sync", "0", ""), dev("vdb", "in_sync", "1", "")}}),
		idle(raidtest.Array{Name: "md1", Level: "raid5", RaidDisks: "3", Devs: []raidtest.Dev{dev("vdc", "in_sync", "0", ""), dev("vdd", "in_sync", "1", ""), dev("vde", "in_sync", "2", "")}}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewMdCollector(MdOptions{ProcPath: filepath.Join(root, "proc"), SysPath: filepath.Join(root, "sys")}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]spof.Provability{"storage/md/md0": spof.NotProvable, "storage/md/md1": spof.Provable}
	for _, g := range res.Groups {
		if g.Provable != want[g.ID] {
			t.Errorf("%s: provable %v, want %v", g.ID, g.Provable, want[g.ID])
		}
	}
}
