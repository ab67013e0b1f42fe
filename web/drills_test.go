package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/spof"
)

// listedDrills is a DrillSource over records already in order, newest
// first, that keeps the limit it was asked for.
type listedDrills struct {
	records []string
	asked   *int
	err     error
}

func (l listedDrills) DrillLog(limit int) (DrillLog, error) {
	*l.asked = limit
	if l.err != nil {
		return DrillLog{}, l.err
	}
	out := DrillLog{Interrupted: []string{"k"}}
	for _, r := range l.records[:min(limit, len(l.records))] {
		out.Records = append(out.Records, json.RawMessage(r))
	}
	out.Truncated = len(l.records) > limit
	return out, nil
}

func TestDrillsAPI(t *testing.T) {
	snap := &agent.Snapshot{Taken: time.Now()}
	var asked int
	recs := []string{`{"id":"b","result":"passed"}`, `{"id":"a","result":"failed"}`}
	srv := httptest.NewServer(Handler(Options{Source: staticSource{snap}, Drills: listedDrills{records: recs, asked: &asked}}))
	t.Cleanup(srv.Close)
	cases := []struct {
		query     string
		code      int
		asked     int
		ids       string
		truncated bool
	}{
		{"", 200, defaultDrillLimit, "b,a", false},
		{"?limit=1", 200, 1, "b", true},
		{"?limit=1000", 200, 1000, "b,a", false},
		{"?limit=0", 400, 0, "", false},
		{"?limit=1001", 400, 0, "", false},
		{"?limit=ten", 400, 0, "", false},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			asked = 0
			code, body := get(t, srv.URL+"/api/v1/drills"+c.query)
			if code != c.code || asked != c.asked {
				t.Fatalf("status %d, source asked for %d; want %d, %d (%s)", code, asked, c.code, c.asked, body)
			}
			if code != 200 {
				return
			}
			var doc struct {
				Records []struct {
					ID string `json:"id"`
				} `json:"records"`
				Truncated   bool     `json:"truncated"`
				Interrupted []string `json:"interrupted"`
			}
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range doc.Records {
				ids = append(ids, r.ID)
			}
			if strings.Join(ids, ",") != c.ids || doc.Truncated != c.truncated || fmt.Sprint(doc.Interrupted) != "[k]" {
				t.Errorf("got %+v, want ids %s truncated %v", doc, c.ids, c.truncated)
			}
		})
	}

	// No source: an empty list, not an error. A failing source: 500.
	empty := httptest.NewServer(Handler(Options{Source: staticSource{snap}}))
	t.Cleanup(empty.Close)
	if code, body := get(t, empty.URL+"/api/v1/drills"); code != 200 || !strings.Contains(body, `"records":[]`) {
		t.Errorf("no source: %d %s", code, body)
	}
	broken := httptest.NewServer(Handler(Options{Source: staticSource{snap}, Drills: listedDrills{asked: &asked, err: errors.New("permission denied")}}))
	t.Cleanup(broken.Close)
	if code, body := get(t, broken.URL+"/api/v1/drills"); code != http.StatusInternalServerError || !strings.Contains(body, "permission denied") {
		t.Errorf("failing source: %d %s", code, body)
	}
}

// The page shows a group's last drill beside its last proof.
func TestPageShowsLastDrill(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	bond := spof.Group{ID: "network/bond/bond0", Kind: spof.KindNetwork, Function: "bond0", Required: 1, Provable: spof.Provable,
		Members: []spof.Member{{Name: "eth0", State: spof.MemberOK}, {Name: "eth1", State: spof.MemberOK}}}
	drill := spof.DrillOutcome{Group: bond.ID, Method: "bond-failover", Result: spof.ProofFailed, Reason: "eth1 cannot reach 10.9.0.1",
		At: now.Add(-time.Hour), FailedMembers: map[string]string{"eth1": "no ARP reply"}}
	snap := &agent.Snapshot{Taken: now, Evaluation: spof.Evaluate(spof.Input{Groups: []spof.Group{bond}, Drills: []spof.DrillOutcome{drill}, Now: now})}
	srv := httptest.NewServer(Handler(Options{Source: staticSource{snap}}))
	t.Cleanup(srv.Close)
	_, page := get(t, srv.URL+"/")
	for _, want := range []string{"last drill: bond-failover", `class="drill-failed">failed</span> 2026-12-04 11:00Z`, "eth1: failed (failed its bond-failover drill on 2026-12-04: no ARP reply)", "drill_failed"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
