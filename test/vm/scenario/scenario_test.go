package scenario

import (
	"strings"
	"testing"
)

// report is shaped like `spofwatch check --format json` from a guest with
// a degraded mirror (taken from a harness run, trimmed).
const report = `{"host":"(none)",
 "groups":[{"id":"storage/md/md0","kind":"storage","state":"redundancy_lost","members_total":2,"members_working":1,"members_required":1,
   "members":[{"name":"vda","state":"ok","domains":{"disk":"vda"}},{"name":"vdb","state":"failed","domains":{"disk":"vdb"}}]}],
 "findings":[{"code":"redundancy_lost","severity":"critical","group":"storage/md/md0","member":"","summary":"md0 (raid1): redundancy lost: vdb failed","since":"2026-11-23T13:22:39Z"},
   {"code":"virtual_machine","severity":"info","group":"","member":"","summary":"virtualised","since":"2026-11-23T13:22:39Z"}],
 "collectors":[{"name":"md","ok":true,"error":""}]}`

func TestVerify(t *testing.T) {
	r, err := ParseReport([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	const g = "storage/md/md0"
	tests := []struct {
		name   string
		expect Expect
		errs   []string // substrings, one per expected error
	}{
		{"all hold", Expect{Group: g, State: "redundancy_lost", Working: N(1), Required: N(1), Total: N(2),
			Members: map[string]string{"vdb": "failed"}, MemberDomains: map[string]map[string]string{"vda": {"disk": "vda"}},
			Findings:   []FindingExpect{{Code: "redundancy_lost", Severity: "critical", Summary: `vdb\s+failed`}},
			NoFindings: []string{"group_down"}}, nil},
		{"wrong state and count", Expect{Group: g, State: "redundant", Working: N(2)}, []string{"state redundancy_lost, want redundant", "members_working 1, want 2"}},
		{"missing group", Expect{Group: "storage/md/md9", State: "redundant"}, []string{"storage/md/md9: not reported (groups: storage/md/md0)"}},
		{"absent group present", Expect{Group: g, Absent: true}, []string{"reported, want absent"}},
		{"member state", Expect{Group: g, Members: map[string]string{"vdb": "rebuilding", "vdc": "ok"}}, []string{"member vdb state failed, want rebuilding", "member vdc not reported"}},
		{"domain", Expect{Group: g, MemberDomains: map[string]map[string]string{"vdb": {"disk": "vdj"}}}, []string{`domain disk="vdb", want "vdj"`}},
		{"finding severity", Expect{Group: g, Findings: []FindingExpect{{Code: "redundancy_lost", Severity: "warning"}}}, []string{"no finding redundancy_lost severity=warning"}},
		{"finding summary", Expect{Group: g, Findings: []FindingExpect{{Code: "redundancy_lost", Summary: "vdc"}}}, []string{`no finding redundancy_lost summary~"vdc"`}},
		{"any code matches by summary", Expect{Group: g, Findings: []FindingExpect{{Summary: "md0"}}}, nil},
		{"other group's findings do not count", Expect{Group: g, Findings: []FindingExpect{{Code: "virtual_machine"}}}, []string{"no finding virtual_machine"}},
		{"no findings at all", Expect{Group: g, NoFindings: []string{"*"}}, []string{"unexpected finding redundancy_lost"}},
		{"no such code", Expect{Group: g, NoFindings: []string{"redundancy_lost"}}, []string{"unexpected finding redundancy_lost (critical)"}},
		{"never proven", Expect{Group: g, LastProven: "none"}, nil},
		{"proof wanted, never proven", Expect{Group: g, LastProven: "passed"}, []string{"last_proven null, want passed"}},
	}
	proven, err := ParseReport([]byte(strings.Replace(report, `"members":[`, `"last_proven":{"at":"2026-11-23T13:20:00Z","method":"md check","result":"failed"},"members":[`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want string
		errs int
	}{{"failed", 0}, {"passed", 1}, {"none", 1}, {"", 0}} {
		if got := Verify(proven, []Expect{{Group: g, LastProven: tc.want}}); len(got) != tc.errs {
			t.Errorf("last_proven %q: %q", tc.want, got)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Verify(r, []Expect{tc.expect})
			if len(got) != len(tc.errs) {
				t.Fatalf("got %d errors %q, want %d (%q)", len(got), got, len(tc.errs), tc.errs)
			}
			for _, want := range tc.errs {
				found := false
				for _, e := range got {
					if strings.Contains(e, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("no error containing %q in %q", want, got)
				}
			}
		})
	}
}

func TestMissingCollectors(t *testing.T) {
	r, err := ParseReport([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.MissingCollectors([]string{"md", "bonding"}); len(got) != 1 || got[0] != "bonding" {
		t.Errorf("MissingCollectors = %q, want [bonding]", got)
	}
}

func TestFileCond(t *testing.T) {
	c := FileCond{Path: "/proc/mdstat", Contains: "md5 : inactive"}
	if !c.Holds("md5 : inactive vdm[0](S)") || c.Holds("md5 : active raid1") {
		t.Error("Contains")
	}
	c.Not = true
	if c.Holds("md5 : inactive vdm[0](S)") || !c.Holds("") {
		t.Error("Not")
	}
}
