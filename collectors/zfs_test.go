package collectors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

func zfsFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "raid", "testdata", "zfs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func evalGroups(gs []spof.Group) (map[string]spof.GroupState, []spof.Finding) {
	out := spof.Evaluate(spof.Input{Groups: gs, Now: time.Unix(0, 0)})
	st := map[string]spof.GroupState{}
	for _, g := range out.Groups {
		st[g.Group.ID] = g.State
	}
	return st, out.Findings
}

func TestZpoolGroupsFixtures(t *testing.T) {
	for _, tc := range []struct {
		file   string
		json   bool
		states map[string]spof.GroupState
		codes  []spof.Code
		in     string
	}{
		{file: "2q-degraded-mirror.txt", states: map[string]spof.GroupState{"storage/zfs/test/mirror": spof.StateRedundancyLost},
			codes: []spof.Code{spof.CodeRedundancyLost}, in: "sdb failed"},
		{file: "9p-checksum-errors.txt", states: map[string]spof.GroupState{"storage/zfs/test/mirror": spof.StateRedundant},
			codes: []spof.Code{spof.CodeMemberDegraded}, in: "checksum 2"},
		// The new disk c0t0d2 resilvers while c0t0d0 still serves: the
		// slot works, the resilver is reported with its progress.
		{file: "9p-replacing.txt", states: map[string]spof.GroupState{"storage/zfs/test/mirror": spof.StateRedundant},
			codes: []spof.Code{spof.CodeRebuildInProgress}, in: "resilver 0.14% done, 0h0m to go"},
		// The FAULTED pool's group_down condition makes every vdev group
		// down, with group_down as each group's one verdict finding.
		{file: "k4-log-faulted.txt", states: map[string]spof.GroupState{"storage/zfs/test/c3t2d0": spof.StateDown, "storage/zfs/test/c5t3d0": spof.StateDown},
			codes: []spof.Code{spof.CodeGroupDown, spof.CodeGroupDown}, in: "pool test is FAULTED: bad intent log"},
		{file: "k4-log-online.txt", states: map[string]spof.GroupState{"storage/zfs/test/c3t2d0": spof.StateNoRedundancy, "storage/zfs/test/c5t3d0": spof.StateNoRedundancy},
			codes: []spof.Code{spof.CodeNoRedundancy, spof.CodeNoRedundancy}, in: "intent log"},
		{file: "k4-log-unavail.txt", states: map[string]spof.GroupState{"storage/zfs/test/c3t2d0": spof.StateNoRedundancy, "storage/zfs/test/c5t3d0": spof.StateDown},
			codes: []spof.Code{spof.CodeGroupDown, spof.CodeNoRedundancy}},
		{file: "status-j-man.json", json: true, states: map[string]spof.GroupState{
			"storage/zfs/tank/raidz1-0": spof.StateRedundant, "storage/zfs/tank/mirror-2": spof.StateRedundant,
			"storage/zfs/tank/25d418f8-92bd-4327-b59f-7ef5d5f50d81": spof.StateNoRedundancy},
			// the unmirrored special vdev gets its own finding
			codes: []spof.Code{spof.CodeNoRedundancy}, in: "special vdev 25d418f8-92bd-4327-b59f-7ef5d5f50d81 (single disk; holds the pool's metadata"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var pools []raid.Zpool
			if tc.json {
				var err error
				if pools, err = raid.ParseZpoolStatusJSON(zfsFixture(t, tc.file)); err != nil {
					t.Fatal(err)
				}
			} else {
				pools = raid.ParseZpoolStatus(zfsFixture(t, tc.file))
			}
			var groups []spof.Group
			for _, p := range pools {
				groups = append(groups, ZpoolGroups(p)...)
			}
			states, findings := evalGroups(groups)
			if len(states) != len(tc.states) {
				t.Errorf("groups %v, want %v", states, tc.states)
			}
			for id, want := range tc.states {
				if states[id] != want {
					t.Errorf("%s: %s, want %s", id, states[id], want)
				}
			}
			var codes []spof.Code
			var sums []string
			for _, f := range findings {
				codes = append(codes, f.Code)
				sums = append(sums, f.Summary)
			}
			slices.Sort(codes)
			want := slices.Clone(tc.codes)
			slices.Sort(want)
			if !slices.Equal(codes, want) {
				t.Errorf("codes %v, want %v: %q", codes, want, sums)
			}
			if tc.in != "" && !strings.Contains(strings.Join(sums, "\n"), tc.in) {
				t.Errorf("no finding mentions %q: %q", tc.in, sums)
			}
		})
	}
}

// writeStub writes a zpool stand-in that prints a fixture, failing -j like
// a zpool older than 2.3 when json is empty.
func writeStub(t *testing.T, dir, text, json string, calls string) string {
	t.Helper()
	textFile := filepath.Join(dir, "status.txt")
	if err := os.WriteFile(textFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\n"
	if json != "" {
		jsonFile := filepath.Join(dir, "status.json")
		if err := os.WriteFile(jsonFile, []byte(json), 0o644); err != nil {
			t.Fatal(err)
		}
		script += "if [ \"$2\" = -j ]; then cat " + jsonFile + "; exit 0; fi\n"
	} else {
		script += "if [ \"$2\" = -j ]; then echo \"invalid option 'j'\" >&2; exit 2; fi\n"
	}
	script += "cat " + textFile + "\n"
	path := filepath.Join(dir, "zpool")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestZFSCollectorCommand(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	zpool := writeStub(t, dir, string(zfsFixture(t, "2q-degraded-mirror.txt")), "", calls)
	proc := t.TempDir()
	kstat := filepath.Join(proc, "spl/kstat/zfs/test")
	if err := os.MkdirAll(kstat, 0o755); err != nil {
		t.Fatal(err)
	}
	setState := func(s string) {
		if err := os.WriteFile(filepath.Join(kstat, "state"), []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setState("DEGRADED")
	c := NewZFSCollector(ZFSOptions{ZpoolPath: zpool, ProcPath: proc, FullInterval: time.Hour})
	for range 2 {
		res, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Groups) != 1 || res.Groups[0].ID != "storage/zfs/test/mirror" {
			t.Fatalf("groups %+v", res.Groups)
		}
	}
	// First run: -j refused, text fallback; second run: kstat unchanged,
	// no zpool run at all.
	if got := readCalls(t, calls); !slices.Equal(got, []string{"status -j", "status -p"}) {
		t.Errorf("calls %q", got)
	}
	// A state change in the kernel runs zpool at once, text directly.
	setState("ONLINE")
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readCalls(t, calls); !slices.Equal(got, []string{"status -j", "status -p", "status -p"}) {
		t.Errorf("calls %q", got)
	}
}

func TestZFSCollectorJSON(t *testing.T) {
	dir := t.TempDir()
	zpool := writeStub(t, dir, "", string(zfsFixture(t, "status-j-man.json")), filepath.Join(dir, "calls"))
	c := NewZFSCollector(ZFSOptions{ZpoolPath: zpool, ProcPath: t.TempDir()})
	res, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 3 || len(res.Metrics) == 0 {
		t.Errorf("%d groups, %d metrics", len(res.Groups), len(res.Metrics))
	}
}

func TestZFSCollectorNoZpool(t *testing.T) {
	c := NewZFSCollector(ZFSOptions{ZpoolPath: filepath.Join(t.TempDir(), "zpool"), ProcPath: t.TempDir()})
	if _, err := c.Collect(context.Background()); !errors.Is(err, agent.ErrNoData) {
		t.Fatalf("err = %v, want agent.ErrNoData", err)
	}
	dir := t.TempDir()
	zpool := writeStub(t, dir, "no pools available\n", "", filepath.Join(dir, "calls"))
	c = NewZFSCollector(ZFSOptions{ZpoolPath: zpool, ProcPath: t.TempDir()})
	if _, err := c.Collect(context.Background()); !errors.Is(err, agent.ErrNoData) {
		t.Fatalf("no pools: err = %v, want agent.ErrNoData", err)
	}
}

func readCalls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
