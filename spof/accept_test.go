package spof

import (
	"strings"
	"testing"
	"time"
)

var acceptNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func oneDiskRoot() Group {
	return Group{ID: "storage/mount/root", Kind: KindStorage, Function: "root filesystem /", Required: 1,
		Members: []Member{{Name: "vda1", State: MemberOK, Domains: map[string]string{DomainDisk: "vda"}}}}
}

func lonePSUFailed() Group {
	return Group{ID: "power/ipmi/psu", Kind: KindPower, Function: "power supplies", Required: 1,
		Members: []Member{{Name: "PSU1", State: MemberOK}, {Name: "PSU2", State: MemberFailed}}}
}

func findingOf(t *testing.T, r Result, code Code, group string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Code == code && f.Group == group {
			return f
		}
	}
	t.Fatalf("no %s on %s in %+v", code, group, r.Findings)
	return Finding{}
}

func TestAcceptanceMarksAndCountsAsInfo(t *testing.T) {
	acc := Acceptance{ID: "accept[0]", Code: CodeNoRedundancy, Group: "storage/mount/*", Reason: "stateless worker", By: "ops", Until: acceptNow.Add(30 * 24 * time.Hour)}
	cases := []struct {
		name         string
		acc          []Acceptance
		now          time.Time
		wantAccepted bool
		wantWorst    Severity
		wantNotice   string
	}{
		{"no acceptance", nil, acceptNow, false, SeverityWarning, ""},
		{"accepted", []Acceptance{acc}, acceptNow, true, SeverityInfo, ""},
		{"expired", []Acceptance{acc}, acc.Until.Add(time.Second), false, SeverityWarning, "expired"},
		{"other code", []Acceptance{{ID: "a", Code: CodeSharedFailureDomain, Group: "storage/mount/root", Reason: "r", Until: acc.Until}}, acceptNow, false, SeverityWarning, ""},
		{"member glob misses", []Acceptance{{ID: "a", Code: CodeNoRedundancy, Group: "storage/mount/root", Member: "sd*", Reason: "r", Until: acc.Until}}, acceptNow, false, SeverityWarning, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Evaluate(Input{Groups: []Group{oneDiskRoot()}, Acceptances: c.acc, Now: c.now})
			f := findingOf(t, r, CodeNoRedundancy, "storage/mount/root")
			if (f.Accepted != nil) != c.wantAccepted {
				t.Errorf("accepted = %+v", f.Accepted)
			}
			if f.Severity != SeverityWarning {
				t.Errorf("the finding's own severity changed to %s: it must stay visible as it is", f.Severity)
			}
			if w, _ := r.Worst(); w != c.wantWorst {
				t.Errorf("worst = %s, want %s", w, c.wantWorst)
			}
			var notice string
			for _, n := range r.Findings {
				if n.Code == CodeNotice {
					notice = n.Summary
				}
			}
			if (c.wantNotice == "") != (notice == "") || !strings.Contains(notice, c.wantNotice) {
				t.Errorf("notice = %q, want one containing %q", notice, c.wantNotice)
			}
			if c.wantAccepted && (f.Accepted.Reason != "stateless worker" || f.Accepted.By != "ops" || !f.Accepted.Until.Equal(acc.Until)) {
				t.Errorf("accepted mark = %+v", f.Accepted)
			}
		})
	}
}

func TestStaleAcceptance(t *testing.T) {
	acc := Acceptance{ID: "accept[1]", Code: CodeNoRedundancy, Group: "network/uplink/default", Reason: "lab box", Until: acceptNow.Add(90 * 24 * time.Hour)}
	for _, c := range []struct {
		name        string
		lastMatched time.Time
		groups      []Group
		wantStale   bool
		wantMatched bool
	}{
		{"matches now", acceptNow.Add(-48 * time.Hour), []Group{{ID: "network/uplink/default", Kind: KindNetwork, Required: 1, Members: []Member{{Name: "eth0", State: MemberOK}}}}, false, true},
		{"matched nothing for two days", acceptNow.Add(-48 * time.Hour), nil, true, false},
		{"matched nothing for an hour", acceptNow.Add(-time.Hour), nil, false, false},
		{"never tracked", time.Time{}, nil, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := acc
			a.LastMatched = c.lastMatched
			r := Evaluate(Input{Groups: c.groups, Acceptances: []Acceptance{a}, Now: acceptNow})
			stale := false
			for _, f := range r.Findings {
				if f.Code == CodeNotice && strings.Contains(f.Summary, "stale acceptance accept[1]") {
					stale = true
				}
			}
			if stale != c.wantStale {
				t.Errorf("stale notice = %v, want %v (%+v)", stale, c.wantStale, r.Findings)
			}
			if got := len(r.AcceptancesMatched) == 1; got != c.wantMatched {
				t.Errorf("matched = %v", r.AcceptancesMatched)
			}
		})
	}
}

func TestAcceptanceGuardRails(t *testing.T) {
	ok := Acceptance{Code: CodeNoRedundancy, Group: "storage/mount/root", Reason: "r", Until: acceptNow.Add(24 * time.Hour)}
	for _, c := range []struct {
		name string
		edit func(*Acceptance)
		want string
	}{
		{"valid", func(*Acceptance) {}, ""},
		{"valid glob for a warning", func(a *Acceptance) { a.Group = "storage/mount/*" }, ""},
		{"no code", func(a *Acceptance) { a.Code = "" }, "code is required"},
		{"unknown code", func(a *Acceptance) { a.Code = "bogus" }, `unknown code "bogus"`},
		{"collector_unavailable", func(a *Acceptance) { a.Code = CodeCollectorUnavailable }, "cannot be accepted"},
		{"no reason", func(a *Acceptance) { a.Reason = " " }, "reason is required"},
		{"no until", func(a *Acceptance) { a.Until = time.Time{} }, "until is required"},
		{"past until is no error (it expires in force)", func(a *Acceptance) { a.Until = acceptNow.Add(-time.Hour) }, ""},
		{"exactly a year ahead, as a date", func(a *Acceptance) { a.Until = time.Date(2027, 12, 5, 0, 0, 0, 0, time.UTC) }, ""},
		{"too far", func(a *Acceptance) { a.Until = acceptNow.Add(400 * 24 * time.Hour) }, "more than 365 days ahead"},
		{"bad glob", func(a *Acceptance) { a.Group = "storage/[" }, "bad group glob"},
		{"every group", func(a *Acceptance) { a.Group = "*" }, "literal kind"},
		{"every kind", func(a *Acceptance) { a.Group = "*/mount/root" }, "literal kind"},
		{"critical with a glob", func(a *Acceptance) { a.Code, a.Group = CodeRedundancyLost, "power/ipmi/*" }, "name the group exactly"},
		{"critical exact", func(a *Acceptance) { a.Code, a.Group = CodeRedundancyLost, "power/ipmi/psu" }, ""},
		{"bad member glob", func(a *Acceptance) { a.Member = "[" }, "bad member glob"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := ok
			c.edit(&a)
			err := a.Validate(acceptNow, DefaultMaxAcceptance)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// An accepted critical on one group never hides another group's.
func TestAcceptanceIsPerGroup(t *testing.T) {
	other := lonePSUFailed()
	other.ID = "power/ipmi/psu2"
	r := Evaluate(Input{Groups: []Group{lonePSUFailed(), other}, Now: acceptNow,
		Acceptances: []Acceptance{{ID: "a", Code: CodeRedundancyLost, Group: "power/ipmi/psu", Reason: "PSU on order", Until: acceptNow.Add(time.Hour)}}})
	if findingOf(t, r, CodeRedundancyLost, "power/ipmi/psu").Accepted == nil {
		t.Error("the named group is not accepted")
	}
	if findingOf(t, r, CodeRedundancyLost, "power/ipmi/psu2").Accepted != nil {
		t.Error("another group was accepted too")
	}
	if w, _ := r.Worst(); w != SeverityCritical {
		t.Errorf("worst = %s, want critical from the other group", w)
	}
}

func TestStateSince(t *testing.T) {
	t0 := acceptNow
	g := lonePSUFailed()
	first := Evaluate(Input{Groups: []Group{g}, Now: t0})
	if got := first.Groups[0].Since; !got.Equal(t0) {
		t.Fatalf("first since = %v", got)
	}
	same := Evaluate(Input{Groups: []Group{g}, Now: t0.Add(time.Hour), PreviousStates: first.States()})
	if got := same.Groups[0].Since; !got.Equal(t0) {
		t.Errorf("unchanged state lost its since: %v", got)
	}
	g.Members[1].State = MemberOK
	fixed := Evaluate(Input{Groups: []Group{g}, Now: t0.Add(2 * time.Hour), PreviousStates: same.States()})
	if fixed.Groups[0].State != StateRedundant || !fixed.Groups[0].Since.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("changed state: %s since %v", fixed.Groups[0].State, fixed.Groups[0].Since)
	}
}

// An expired acceptance with a member glob gives one notice per group, not
// one per member; and none while a renewed acceptance covers the finding.
func TestExpiryNoticeOncePerGroup(t *testing.T) {
	g := Group{ID: "storage/md/md0", Kind: KindStorage, Required: 1, Members: []Member{
		{Name: "sda1", State: MemberOK, Domains: map[string]string{"disk": "sda", "controller": "c1"}},
		{Name: "sda2", State: MemberOK, Domains: map[string]string{"disk": "sda", "controller": "c1"}}}}
	old := Acceptance{ID: "old", Code: CodeSharedFailureDomain, Group: "storage/md/*", Member: "*", Reason: "r", Until: acceptNow.Add(-time.Hour)}
	notices := func(r Result) int {
		n := 0
		for _, f := range r.Findings {
			if f.Code == CodeNotice && strings.Contains(f.Summary, "expired") {
				n++
			}
		}
		return n
	}
	r := Evaluate(Input{Groups: []Group{g}, Now: acceptNow, Acceptances: []Acceptance{old}})
	if n := notices(r); n != 1 {
		t.Errorf("%d expiry notices for two expired matches on one group, want 1: %+v", n, r.Findings)
	}
	renewed := Acceptance{ID: "new", Code: CodeSharedFailureDomain, Group: "storage/md/md0", Reason: "r", Until: acceptNow.Add(time.Hour)}
	r = Evaluate(Input{Groups: []Group{g}, Now: acceptNow, Acceptances: []Acceptance{old, renewed}})
	if n := notices(r); n != 0 {
		t.Errorf("%d expiry notices while a renewed acceptance covers the finding", n)
	}
}
