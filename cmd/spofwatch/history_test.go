package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type historyEvent struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	Group string    `json:"group"`
	To    string    `json:"to"`
	Code  string    `json:"code"`
}

type eventsDoc struct {
	Events []historyEvent `json:"events"`
}

func events(t *testing.T, d *daemon) eventsDoc {
	t.Helper()
	var doc eventsDoc
	if err := json.Unmarshal([]byte(d.get(t, "/api/v1/events?since=8760h")), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func stateSince(t *testing.T, d *daemon, group string) string {
	t.Helper()
	var doc struct {
		Groups []struct {
			ID         string `json:"id"`
			StateSince string `json:"state_since"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(d.get(t, "/api/v1/findings")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, g := range doc.Groups {
		if g.ID == group {
			return g.StateSince
		}
	}
	t.Fatalf("no group %s", group)
	return ""
}

func findingSinceOf(t *testing.T, d *daemon, code, group string) string {
	t.Helper()
	var doc struct {
		Findings []struct{ Code, Group, Since string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(d.get(t, "/api/v1/findings")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range doc.Findings {
		if f.Code == code && f.Group == group {
			return f.Since
		}
	}
	t.Fatalf("no %s on %s", code, group)
	return ""
}

// TestHistorySurvivesRestart: the journal in --path.state records the
// fixture's failed mirror; after a restart the events are still served,
// nothing is recorded twice, and the group keeps its state_since. The
// audit reads the same history, from the API and from `spofwatch report`.
func TestHistorySurvivesRestart(t *testing.T) {
	state := t.TempDir()
	args := append(fixture(t, "md-raid1-failed-leg")[:3], "--path.state="+state)
	d := startDaemon(t, args...)
	var first eventsDoc
	waitFor(t, 10*time.Second, func() bool {
		first = events(t, d)
		return slices.ContainsFunc(first.Events, func(e historyEvent) bool { return e.Kind == "finding_start" })
	}, "history events")
	starts := 0
	for _, e := range first.Events {
		if e.Kind == "finding_start" && e.Code == "redundancy_lost" && e.Group == "storage/mount/root" {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("redundancy_lost on the root mount started %d times: %+v", starts, first.Events)
	}
	since := stateSince(t, d, "storage/mount/root")
	findingSince := findingSinceOf(t, d, "redundancy_lost", "storage/mount/root")
	if page := d.get(t, "/"); !strings.Contains(page, "Recent changes") || !strings.Contains(page, "redundancy_lost</span> began") {
		t.Error("the page does not show the recent changes")
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()

	time.Sleep(1100 * time.Millisecond) // so a new since would differ in its RFC 3339 seconds
	d = startDaemon(t, args...)
	// The first evaluations after the restart must have gone through the
	// journal before the events are counted: a reload makes later ones,
	// and snapshots are recorded in order.
	gen := func() string { return d.get(t, "/metrics") }
	first0 := regexp.MustCompile(`(?m)^spofwatch_last_evaluation_timestamp_seconds (\S+)`).FindStringSubmatch(gen())
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool {
		m := regexp.MustCompile(`(?m)^spofwatch_last_evaluation_timestamp_seconds (\S+)`).FindStringSubmatch(gen())
		return m != nil && first0 != nil && m[1] != first0[1]
	}, "a later evaluation than "+fmt.Sprint(first0)+": "+d.log.String())
	after := events(t, d)
	if len(after.Events) != len(first.Events) {
		t.Errorf("%d events after the restart, %d before: the journal was lost or written twice", len(after.Events), len(first.Events))
	}
	if got := stateSince(t, d, "storage/mount/root"); got != since {
		t.Errorf("state_since after restart = %s, want %s", got, since)
	}
	if got := findingSinceOf(t, d, "redundancy_lost", "storage/mount/root"); got != findingSince {
		t.Errorf("the finding's since after restart = %s, want %s", got, findingSince)
	}
	// check reads the same history: the same since.
	checkOut, _, _ := execCheck(t, append(args, "--format=json")...)
	if !strings.Contains(checkOut, `"state_since": "`+since+`"`) {
		t.Errorf("check --format json does not take state_since %s from the history", since)
	}
	if m := d.get(t, "/metrics"); !strings.Contains(m, `spofwatch_group_state_since_timestamp_seconds{group="storage/mount/root"}`) {
		t.Error("no state-since metric")
	}
	md := d.get(t, "/api/v1/report?since=30d&format=markdown")
	if !strings.Contains(md, "# Redundancy audit") || !strings.Contains(md, `| storage/mount/root | redundancy\_lost |`) || !strings.Contains(md, "ongoing") {
		t.Errorf("audit from the API:\n%s", md)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()

	out, err := exec.Command(binary, append(args, "report", "--since=30d", "--format=json")...).Output()
	if err != nil {
		t.Fatalf("spofwatch report: %v", err)
	}
	var audit struct {
		Incidents []struct{ Code, Group string } `json:"incidents"`
	}
	if err := json.Unmarshal(out, &audit); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	found := false
	for _, in := range audit.Incidents {
		found = found || (in.Code == "redundancy_lost" && in.Group == "storage/mount/root")
	}
	if !found {
		t.Errorf("spofwatch report lacks the incident:\n%s", out)
	}
}
