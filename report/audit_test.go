package report

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/journal"
	"github.com/spofwatch/spofwatch/spof"
)

// An injected history and a fixed clock give exact durations per state
// and per incident, in every format.
func TestAuditDurations(t *testing.T) {
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	md := "storage/md/md0"
	events := []journal.Event{
		{At: at(0), Kind: journal.KindGroupState, Group: md, To: spof.StateRedundant},
		{At: at(0), Kind: journal.KindGroupState, Group: "storage/mount/root", To: spof.StateNoRedundancy},
		{At: at(0), Kind: journal.KindFindingStart, Group: "storage/mount/root", Code: spof.CodeNoRedundancy, Severity: "warning", Summary: "root on one disk"},
		{At: at(100), Kind: journal.KindGroupState, Group: md, From: spof.StateRedundant, To: spof.StateRedundancyLost},
		{At: at(100), Kind: journal.KindFindingStart, Group: md, Code: spof.CodeRedundancyLost, Severity: "critical", Summary: "sdb1 failed | runs on sda1"},
		{At: at(127), Kind: journal.KindGroupState, Group: md, From: spof.StateRedundancyLost, To: spof.StateRedundant},
		{At: at(127), Kind: journal.KindFindingEnd, Group: md, Code: spof.CodeRedundancyLost},
	}
	now := at(24 * 30)
	groups := []spof.Group{
		{ID: md, Kind: spof.KindStorage, Required: 1, Members: []spof.Member{{Name: "sda1", State: spof.MemberOK}, {Name: "sdb1", State: spof.MemberOK}}},
		{ID: "storage/mount/root", Kind: spof.KindStorage, Required: 1, Members: []spof.Member{{Name: "vda1", State: spof.MemberOK}}},
	}
	accs := []spof.Acceptance{{ID: "no_redundancy:storage/mount/root", Code: spof.CodeNoRedundancy, Group: "storage/mount/root", Reason: "stateless", By: "ops", Until: now.Add(24 * time.Hour)}}
	res := spof.Evaluate(spof.Input{Groups: groups, Now: now, Acceptances: accs, PreviousStates: journal.Replay(events).States()})

	for _, c := range []struct {
		window   time.Duration
		lost     float64 // seconds md0 spent in redundancy_lost
		noRed    float64 // seconds root spent in no_redundancy
		incident time.Duration
	}{
		{30 * 24 * time.Hour, 27 * 3600, 30 * 24 * 3600, 27 * time.Hour},
		{24*30*time.Hour - 110*time.Hour, 17 * 3600, (30*24 - 110) * 3600, 17 * time.Hour},
	} {
		a := BuildAudit("db-07", res, accs, events, now.Add(-c.window), now)
		var mdG, rootG AuditGroup
		for _, g := range a.Groups {
			switch g.ID {
			case md:
				mdG = g
			case "storage/mount/root":
				rootG = g
			}
		}
		if mdG.SecondsIn["redundancy_lost"] != c.lost || rootG.SecondsIn["no_redundancy"] != c.noRed {
			t.Errorf("window %s: md0 lost %v s, root no_redundancy %v s; want %v and %v", c.window, mdG.SecondsIn["redundancy_lost"], rootG.SecondsIn["no_redundancy"], c.lost, c.noRed)
		}
		if !mdG.StateSince.Equal(at(127)) {
			t.Errorf("md0 state since %v, want %v", mdG.StateSince, at(127))
		}
		var lostIncident *journal.Incident
		for i := range a.Incidents {
			if a.Incidents[i].Code == spof.CodeRedundancyLost {
				lostIncident = &a.Incidents[i]
			}
		}
		if lostIncident == nil || lostIncident.Duration != c.incident || !lostIncident.End.Equal(at(127)) {
			t.Errorf("window %s: incident %+v, want %s ending %v", c.window, lostIncident, c.incident, at(127))
		}
		if len(a.Acceptances) != 1 || a.Acceptances[0].Matching != 1 || a.Acceptances[0].By != "ops" {
			t.Errorf("acceptances = %+v", a.Acceptances)
		}
	}

	a := BuildAudit("db-07", res, accs, events, now.Add(-30*24*time.Hour), now)
	var md1 strings.Builder
	if err := WriteAudit(&md1, a, "markdown"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Redundancy audit: db-07", "| storage/md/md0 | redundant |", "| 1d 3h |", `sdb1 failed \| runs on sda1`, `| no\_redundancy | storage/mount/root |  | stateless | ops |`, "never"} {
		if !strings.Contains(md1.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md1.String())
		}
	}
	// Peer text (a summary from a UPS or storcli) must not become a link,
	// an image or a raw tag in the auditor's viewer.
	hostile := BuildAudit("db-07", res, accs, append(slices.Clone(events),
		journal.Event{At: at(200), Kind: journal.KindFindingStart, Group: md, Code: spof.CodeMemberDegraded, Severity: "warning",
			Summary: "![x](http://evil.example/t.png) <img src=x> [click](http://evil.example) *bold* `code` \x1b[31m"}),
		now.Add(-30*24*time.Hour), now)
	var hm strings.Builder
	WriteAudit(&hm, hostile, "markdown")
	for _, bad := range []string{"![x](", "<img", "[click](", "\x1b"} {
		if strings.Contains(hm.String(), bad) {
			t.Errorf("hostile summary survives as %q in markdown:\n%s", bad, hm.String())
		}
	}
	var hh strings.Builder
	WriteAudit(&hh, hostile, "html")
	if strings.Contains(hh.String(), "<img") {
		t.Error("hostile summary is a raw tag in html")
	}

	var js strings.Builder
	if err := WriteAudit(&js, a, "json"); err != nil {
		t.Fatal(err)
	}
	var back Audit
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil || len(back.Groups) != 2 || back.Groups[0].LastProven != nil {
		t.Errorf("json round trip: %v %+v", err, back)
	}
	var h strings.Builder
	if err := WriteAudit(&h, a, "html"); err != nil || !strings.Contains(h.String(), `<table id="incidents">`) || strings.Contains(h.String(), "<script") {
		t.Errorf("html: %v\n%s", err, h.String())
	}
	if err := WriteAudit(&h, a, "pdf"); err == nil {
		t.Error("unknown format accepted")
	}
}

// The audit report carries each group's last proof; the page and the audit
// table say it in words.
func TestAuditLastProven(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	scrub := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	pair := []spof.Member{{Name: "a", State: spof.MemberOK}, {Name: "b", State: spof.MemberOK}}
	groups := []spof.Group{
		{ID: "power/ipmi/psu", Kind: spof.KindPower, Required: 1, Members: pair},
		{ID: "network/bond/bond0", Kind: spof.KindNetwork, Required: 1, Members: pair, Provable: spof.Provable},
		{ID: "storage/zfs/tank/mirror-0", Kind: spof.KindStorage, Required: 1, Members: pair, Provable: spof.Provable,
			Proof: &spof.Proof{At: scrub, Method: "zfs scrub", Result: spof.ProofPassed}},
	}
	res := spof.Evaluate(spof.Input{Groups: groups, Now: now})
	a := BuildAudit("db-07", res, nil, nil, now.Add(-24*time.Hour), now)
	want := map[string]*Proof{
		"power/ipmi/psu":            nil,
		"network/bond/bond0":        nil,
		"storage/zfs/tank/mirror-0": {At: scrub.UTC(), Method: "zfs scrub", Result: "passed"},
	}
	for _, g := range a.Groups {
		w := want[g.ID]
		if (w == nil) != (g.LastProven == nil) || (w != nil && *w != *g.LastProven) {
			t.Errorf("%s: last_proven %+v, want %+v", g.ID, g.LastProven, w)
		}
	}
	words := map[string]string{"power/ipmi/psu": "not provable here", "network/bond/bond0": "never", "storage/zfs/tank/mirror-0": "2026-11-23 zfs scrub passed"}
	for _, g := range groups {
		if got := ProofText(g); got != words[g.ID] {
			t.Errorf("ProofText(%s) = %q, want %q", g.ID, got, words[g.ID])
		}
	}
}
