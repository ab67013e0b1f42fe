package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/spofwatch/spofwatch/spof"
)

func result(sevs ...spof.Severity) spof.Result {
	var r spof.Result
	for _, s := range sevs {
		r.Findings = append(r.Findings, spof.Finding{Code: spof.CodeNotice, Severity: s, Summary: s.String() + " thing"})
	}
	return r
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		res  spof.Result
		want int
	}{
		{result(), ExitOK},
		{result(spof.SeverityInfo), ExitOK},
		{result(spof.SeverityInfo, spof.SeverityWarning), ExitWarning},
		{result(spof.SeverityWarning, spof.SeverityCritical, spof.SeverityInfo), ExitCritical},
	} {
		if got := ExitCode(tt.res); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.res.Findings, got, tt.want)
		}
	}
}

func TestNagiosAndText(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	groups := []spof.Group{{ID: "power/ipmi/psu", Kind: spof.KindPower, Function: "power supplies", Required: 1,
		Members: []spof.Member{{Name: "PSU1", State: spof.MemberOK}, {Name: "PSU2", State: spof.MemberFailed}}}}
	snap := &agent.Snapshot{Taken: now, Evaluation: spof.Evaluate(spof.Input{Groups: groups, Now: now}),
		Outcomes: []agent.Outcome{{Name: "ups", Error: "connection refused"}}}
	var b bytes.Buffer
	if err := WriteNagios(&b, snap.Evaluation); err != nil {
		t.Fatal(err)
	}
	want := "SPOFWATCH CRITICAL - 1 groups: power supplies: redundancy lost: PSU2 failed, runs on PSU1 alone | 'power/ipmi/psu'=1;;;0;2\n"
	if first := strings.SplitAfter(b.String(), "\n")[0]; first != want {
		t.Errorf("nagios line\n%q\nwant\n%q", first, want)
	}
	b.Reset()
	if err := WriteText(&b, "db-07", snap); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"host db-07: CRITICAL", "power/ipmi/psu  redundancy_lost  1/1", "PSU2 (failed)", "PSU1", "collectors failing: ups: connection refused"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, b.String())
		}
	}
	rep := Build("db-07", snap)
	if len(rep.Groups) != 1 || rep.Groups[0].MembersWorking != 1 || rep.Findings[0].Since != "2026-11-23T12:00:00Z" || rep.Collectors[0].LastSuccess != nil {
		t.Errorf("report = %+v", rep)
	}
	if rep.Groups[0].Members[0].Domains == nil {
		t.Error("domains must be {} in JSON, never null")
	}
}
