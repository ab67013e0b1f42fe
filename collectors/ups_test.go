package collectors

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups"
)

func upsEval(gs ...spof.Group) spof.Result {
	return spof.Evaluate(spof.Input{Groups: gs, Now: time.Unix(0, 0)})
}

// codes lists "code/member" of the findings of one group, sorted.
func upsCodes(r spof.Result, group string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Group == group {
			s := string(f.Code)
			// How Evaluate keys a shared domain (member or not) is its
			// business; the tests check the domain in the summary.
			if f.Member != "" && f.Code != spof.CodeSharedFailureDomain {
				s += "/" + f.Member
			}
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func upsGroupState(r spof.Result, id string) spof.GroupState {
	for _, g := range r.Groups {
		if g.Group.ID == id {
			return g.State
		}
	}
	return ""
}

func TestUPSGroupMapping(t *testing.T) {
	base := map[string]string{"ups.status": "OL", "battery.charge": "100", "battery.runtime": "3600", "ups.load": "23"}
	target := upsTarget{name: "ups-a", upsName: "ups-a", addr: "127.0.0.1:3493", cfg: UPSConfig{MinRuntime: 10 * time.Minute, MaxLoad: 80}}
	tests := []struct {
		name   string
		vars   map[string]string
		err    error
		state  spof.GroupState
		codes  []string
		severe spof.Severity // worst severity expected
	}{
		{"OL", nil, nil, spof.StateRedundant, nil, 0},
		{"OL CHRG TRIM", map[string]string{"ups.status": "OL CHRG TRIM"}, nil, spof.StateRedundant, nil, 0},
		{"OB", map[string]string{"ups.status": "OB DISCHRG"}, nil, spof.StateRedundancyLost, []string{"redundancy_lost", "ups_on_battery"}, spof.SeverityCritical},
		{"OB LB", map[string]string{"ups.status": "OB LB"}, nil, spof.StateRedundancyLost, []string{"redundancy_lost", "ups_low_battery", "ups_on_battery"}, spof.SeverityCritical},
		{"runtime below min", map[string]string{"battery.runtime": "120"}, nil, spof.StateRedundant, []string{"ups_low_battery"}, spof.SeverityCritical},
		{"RB", map[string]string{"ups.status": "OL RB"}, nil, spof.StateRedundant, []string{"member_degraded/battery"}, spof.SeverityWarning},
		{"ALARM", map[string]string{"ups.status": "OL ALARM", "ups.alarm": "Fan failure"}, nil, spof.StateRedundant, []string{"member_degraded"}, spof.SeverityWarning},
		{"alarm text only", map[string]string{"ups.alarm": "Replace battery!"}, nil, spof.StateRedundant, []string{"member_degraded"}, spof.SeverityWarning},
		{"BYPASS", map[string]string{"ups.status": "OL BYPASS"}, nil, spof.StateRedundant, []string{"ups_bypass"}, spof.SeverityWarning},
		{"OVER", map[string]string{"ups.status": "OL OVER"}, nil, spof.StateRedundant, []string{"ups_overload"}, spof.SeverityWarning},
		{"load above max", map[string]string{"ups.load": "95"}, nil, spof.StateRedundant, []string{"ups_overload"}, spof.SeverityWarning},
		// The UPS's own down verdict decides the state, and the state has
		// one verdict finding: group_down, not also the count's
		// redundancy_lost.
		{"FSD", map[string]string{"ups.status": "OB LB FSD"}, nil, spof.StateDown, []string{"group_down", "ups_low_battery", "ups_on_battery"}, spof.SeverityCritical},
		// Output off is down whatever the unreadable mains is.
		{"OFF", map[string]string{"ups.status": "OFF"}, nil, spof.StateDown, []string{"collector_unavailable/mains", "group_down"}, spof.SeverityCritical},
		{"WAIT", map[string]string{"ups.status": "WAIT"}, nil, spof.StateUnknown, []string{"collector_unavailable"}, spof.SeverityWarning},
		{"no status", map[string]string{"ups.status": ""}, nil, spof.StateUnknown, []string{"collector_unavailable"}, spof.SeverityWarning},
		{"driver gone", nil, fmt.Errorf("LIST VAR: %w", ups.ErrDriverNotConnected), spof.StateUnknown, []string{"collector_unavailable"}, spof.SeverityWarning},
		{"unreadable numbers", map[string]string{"battery.runtime": "soon", "ups.load": "lots", "ups.status": "OL NEWFLAG"}, nil, spof.StateRedundant,
			[]string{"collector_unavailable", "notice"}, spof.SeverityWarning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tc.vars {
				if v == "" {
					delete(vars, k)
				} else {
					vars[k] = v
				}
			}
			st := ups.ParseState(ups.VarList{Vars: vars})
			g := upsGroup(target, st, tc.err)
			r := upsEval(g)
			if s := upsGroupState(r, "ups/nut/ups-a"); s != tc.state {
				t.Errorf("state = %s, want %s", s, tc.state)
			}
			got := upsCodes(r, "ups/nut/ups-a")
			want := append([]string(nil), tc.codes...)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("findings = %v, want %v", got, want)
			}
			worst, _ := r.Worst()
			if worst != tc.severe {
				t.Errorf("worst severity = %v, want %v", worst, tc.severe)
			}
			for _, f := range r.Findings {
				if f.Summary == "" || !strings.Contains(f.Summary, "ups-a") && f.Code != spof.CodeCollectorUnavailable {
					t.Errorf("finding %s has summary %q", f.Code, f.Summary)
				}
			}
		})
	}
}

func TestUPSGroupUnknownKeepsReason(t *testing.T) {
	err := fmt.Errorf("nut 127.0.0.1:3493: LIST VAR ups-b: %w", ups.ErrDataStale)
	g := upsGroup(upsTarget{name: "ups-b", upsName: "ups-b", addr: "127.0.0.1:3493"}, ups.State{}, err)
	if !strings.Contains(g.UnknownReason, "DATA-STALE") || len(g.Members) != 0 {
		t.Errorf("group %+v", g)
	}
	if !errors.Is(err, ups.ErrDataStale) {
		t.Fatal("typed error lost")
	}
}

func TestNewUPSValidates(t *testing.T) {
	bad := []UPSConfig{
		{Target: "@host"},
		{Target: "a@h", CAFile: "/x.pem"},                    // ca_file without starttls
		{Target: "a@h", StartTLS: true, CAFile: "/nope.pem"}, // unreadable
		{Target: "a@h", MaxLoad: -1},
	}
	for _, b := range bad {
		if _, err := NewUPS(UPSOptions{UPS: []UPSConfig{b}}); err == nil {
			t.Errorf("NewUPS accepted %+v", b)
		}
	}
	if _, err := NewUPS(UPSOptions{UPS: []UPSConfig{{Target: "a@h"}, {Target: "a@other"}}}); err == nil {
		t.Error("two UPSes named a accepted")
	}
	if _, err := NewUPS(UPSOptions{UPS: []UPSConfig{{Target: "a@h"}, {Name: "a2", Target: "a@other"}}}); err != nil {
		t.Errorf("distinct names refused: %v", err)
	}
}

func TestUPSErrorKey(t *testing.T) {
	same := [][2]string{
		{"nut a:3493: USERNAME: read tcp 127.0.0.1:41234->127.0.0.1:3493: read: connection reset by peer",
			"nut a:3493: USERNAME: read tcp 127.0.0.1:50001->127.0.0.1:3493: read: connection reset by peer"},
		{"nut a:3493: LIST VAR u: no complete reply within 4.998s: i/o timeout",
			"nut a:3493: LIST VAR u: no complete reply within 1.2s: i/o timeout"},
		{"read tcp [::1]:41234->[::1]:3493: EOF", "read tcp [::1]:5->[::1]:3493: EOF"},
	}
	for _, p := range same {
		if a, b := upsErrorKey(errors.New(p[0])), upsErrorKey(errors.New(p[1])); a != b {
			t.Errorf("%q and %q differ", a, b)
		}
	}
	differ := [][2]string{
		{"nut a:3493: connect: connection refused", "nut a:3494: connect: connection refused"},
		{"upsd replied ERR ACCESS-DENIED", "upsd replied ERR DATA-STALE"},
	}
	for _, p := range differ {
		if upsErrorKey(errors.New(p[0])) == upsErrorKey(errors.New(p[1])) {
			t.Errorf("%q and %q compare equal", p[0], p[1])
		}
	}
	if got := stableError(errors.New("read tcp 127.0.0.1:41234->127.0.0.1:3493: EOF")).Error(); got != "read tcp 127.0.0.1:3493: EOF" {
		t.Errorf("stableError = %q", got)
	}
}
