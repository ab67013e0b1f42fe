package collectors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

func storcliFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "raid", "testdata", "storcli", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMegaRAIDGroupsFixtures(t *testing.T) {
	for _, tc := range []struct {
		file   string
		states map[string]spof.GroupState
		codes  []spof.Code
		in     string
	}{
		{file: "hpe-mr216i-raid1-optimal.json", states: map[string]spof.GroupState{"storage/megaraid/c0/v239": spof.StateRedundant}},
		{file: "hpe-mr216i-raid1-offline.json", states: map[string]spof.GroupState{"storage/megaraid/c0/v239": spof.StateRedundancyLost},
			codes: []spof.Code{spof.CodeRedundancyLost}, in: "251:2 failed"},
		{file: "hpe-mr216i-raid1-rebuild.json", states: map[string]spof.GroupState{"storage/megaraid/c0/v239": spof.StateRedundancyLost},
			codes: []spof.Code{spof.CodeRedundancyLost, spof.CodeRebuildInProgress}, in: "251:2 is rebuilding"},
		{file: "lsi-9260-raid1-dhs-bbu-optimal.json", states: map[string]spof.GroupState{"storage/megaraid/c0/v0": spof.StateRedundant}},
		{file: "lsi-9260-raid1-dhs-bbu-failed.json", states: map[string]spof.GroupState{"storage/megaraid/c0/v0": spof.StateRedundant},
			codes: []spof.Code{spof.CodeMemberDegraded}, in: "BBU of c0 is Failed"},
		{file: "nytro-two-controllers.json", states: map[string]spof.GroupState{
			"storage/megaraid/c0/v1": spof.StateRedundant, "storage/megaraid/c0/v0": spof.StateRedundant, "storage/megaraid/c1/v0": spof.StateNoRedundancy},
			codes: []spof.Code{spof.CodeNoRedundancy}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ctrls, err := raid.ParseStorcli(storcliFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var groups []spof.Group
			for _, c := range ctrls {
				groups = append(groups, MegaRAIDGroups(c)...)
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

func TestMegaRAIDUnreadableController(t *testing.T) {
	ctrls, err := raid.ParseStorcli([]byte(`{"Controllers":[{"Command Status":{"Controller":1,"Status":"Failure","Description":"Controller 1 not found"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	gs := MegaRAIDGroups(ctrls[0])
	states, findings := evalGroups(gs)
	if states["storage/megaraid/c1"] != spof.StateUnknown || len(findings) != 1 || findings[0].Code != spof.CodeCollectorUnavailable {
		t.Errorf("%v %+v", states, findings)
	}
}

func TestMegaRAIDCollectorCommand(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "out.json")
	if err := os.WriteFile(fixture, storcliFixture(t, "hpe-mr216i-raid1-offline.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := filepath.Join(dir, "args")
	stub := filepath.Join(dir, "storcli64")
	script := "#!/bin/sh\necho \"$@\" > " + args + "\ncat " + fixture + "\n"
	if err := os.WriteFile(stub, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := NewMegaRAIDCollector(MegaRAIDOptions{StorcliPath: stub})
	res, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 1 || res.Groups[0].ID != "storage/megaraid/c0/v239" || len(res.Metrics) == 0 {
		t.Errorf("groups %+v, %d metrics", res.Groups, len(res.Metrics))
	}
	b, _ := os.ReadFile(args)
	if got := strings.TrimSpace(string(b)); got != "/call show all J nolog" {
		t.Errorf("args %q", got)
	}
	c = NewMegaRAIDCollector(MegaRAIDOptions{StorcliPath: filepath.Join(dir, "missing")})
	if _, err := c.Collect(context.Background()); !errors.Is(err, agent.ErrNoData) {
		t.Errorf("missing binary: %v, want agent.ErrNoData", err)
	}
}
