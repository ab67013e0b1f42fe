package collectors

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/spof"
)

func upsTestPSUs(states ...spof.MemberState) spof.Group {
	g := spof.Group{ID: "power/ipmi/psu", Kind: spof.KindPower, Function: "power supplies", Required: 1}
	for i, s := range states {
		g.Members = append(g.Members, spof.Member{Name: "PSU" + string(rune('1'+i)), State: s})
	}
	return g
}

func upsGroupWith(name, status, load string) spof.Group {
	g := spof.Group{ID: UPSGroupPrefix + name, Kind: spof.KindUPS, Function: "UPS " + name, Required: 1,
		Members: []spof.Member{{Name: UPSMemberMains, State: spof.MemberOK}, {Name: UPSMemberBattery, State: spof.MemberOK}}}
	if status != "" {
		g.Attributes = append(g.Attributes, spof.Attribute{Key: AttrUPSStatus, Value: status})
	}
	if load != "" {
		g.Attributes = append(g.Attributes, spof.Attribute{Key: AttrUPSLoad, Value: load})
	}
	if strings.Contains(status, "OB") {
		g.Members[0].State = spof.MemberFailed
	}
	return g
}

func upsFindings(r spof.Result, group string, code spof.Code) []spof.Finding {
	var out []spof.Finding
	for _, f := range r.Findings {
		if f.Group == group && f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

func TestPowerFeeds(t *testing.T) {
	tests := []struct {
		name   string
		groups []spof.Group
		feeds  map[string]string
		want   []string // codes (code/member) in the power group
		check  func(t *testing.T, r spof.Result)
	}{
		{
			name:   "both PSUs on ups-a",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK), upsGroupWith("ups-a", "OL", "30")},
			feeds:  map[string]string{"PSU1": "ups-a", "PSU2": "ups-a"},
			want:   []string{"shared_failure_domain"},
			check: func(t *testing.T, r spof.Result) {
				f := upsFindings(r, "power/ipmi/psu", spof.CodeSharedFailureDomain)[0]
				if !strings.Contains(f.Summary, "feed ups-a") || !strings.Contains(f.Summary, "PSU1, PSU2") {
					t.Errorf("summary %q does not name ups-a and both PSUs", f.Summary)
				}
			},
		},
		{
			name:   "both PSUs on one feed label without a UPS",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK)},
			feeds:  map[string]string{"PSU1": "pdu-left", "PSU2": "pdu-left"},
			want:   []string{"shared_failure_domain"},
		},
		{
			name:   "split across two UPSes, loads fit",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK), upsGroupWith("ups-a", "OL", "40"), upsGroupWith("ups-b", "OL", "55")},
			feeds:  map[string]string{"PSU1": "ups-a", "PSU2": "ups-b"},
			want:   nil,
		},
		{
			name:   "2N load check fails",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK), upsGroupWith("ups-a", "OL", "61"), upsGroupWith("ups-b", "OL", "55")},
			feeds:  map[string]string{"PSU1": "ups-a", "PSU2": "ups-b"},
			want:   []string{"ups_overload"},
			check: func(t *testing.T, r spof.Result) {
				f := upsFindings(r, "power/ipmi/psu", spof.CodeUPSOverload)[0]
				if !strings.Contains(f.Summary, "ups-a 61% + ups-b 55% = 116%") {
					t.Errorf("summary %q", f.Summary)
				}
			},
		},
		{
			name:   "2N check with an unknown load",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK), upsGroupWith("ups-a", "OL", "61"), upsGroupWith("ups-b", "OL", "")},
			feeds:  map[string]string{"PSU1": "ups-a", "PSU2": "ups-b"},
			want:   []string{"notice"},
		},
		{
			name:   "UPS on battery puts its PSU at risk",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK), upsGroupWith("ups-a", "OB DISCHRG", "20"), upsGroupWith("ups-b", "OL", "20")},
			feeds:  map[string]string{"PSU1": "ups-a", "PSU2": "ups-b"},
			want:   []string{"member_degraded/PSU1"},
			check: func(t *testing.T, r spof.Result) {
				f := upsFindings(r, "power/ipmi/psu", spof.CodeMemberDegraded)[0]
				if !strings.Contains(f.Summary, "fed by UPS ups-a, which is on battery") {
					t.Errorf("summary %q", f.Summary)
				}
				if got := upsFindings(r, "ups/nut/ups-a", spof.CodeRedundancyLost); len(got) != 1 {
					t.Errorf("UPS group findings changed: %v", got)
				}
			},
		},
		{
			name:   "failed PSU is not counted in the load check",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberFailed), upsGroupWith("ups-a", "OL", "61"), upsGroupWith("ups-b", "OL", "55")},
			feeds:  map[string]string{"PSU1": "ups-a", "PSU2": "ups-b"},
			want:   []string{"redundancy_lost"},
		},
		{
			name: "unknown UPS: domain only",
			groups: []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK),
				{ID: UPSGroupPrefix + "ups-a", Kind: spof.KindUPS, UnknownReason: "DATA-STALE", Attributes: []spof.Attribute{{Key: AttrUPSStatus, Value: "OB"}}}},
			feeds: map[string]string{"PSU1": "ups-a", "PSU2": "mains-b"},
			want:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := upsTestPSUs(spof.MemberOK, spof.MemberOK)
			out := ApplyPowerFeeds(tc.groups, tc.feeds)
			// pure: the input groups are untouched
			if tc.groups[0].Members[0].Domains != nil || tc.groups[0].Members[0].State != before.Members[0].State {
				t.Errorf("input modified: %+v", tc.groups[0].Members[0])
			}
			for _, m := range out[0].Members {
				if m.Domains[spof.DomainFeed] != tc.feeds[m.Name] {
					t.Errorf("%s feed = %q, want %q", m.Name, m.Domains[spof.DomainFeed], tc.feeds[m.Name])
				}
			}
			r := upsEval(out...)
			got := upsCodes(r, "power/ipmi/psu")
			want := append([]string(nil), tc.want...)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("power findings = %v, want %v", got, want)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestPowerFeedsNoMap(t *testing.T) {
	in := []spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK)}
	out := ApplyPowerFeeds(in, nil)
	if len(out) != 1 || out[0].Members[0].Domains != nil {
		t.Errorf("no feeds changed groups: %+v", out)
	}
}
