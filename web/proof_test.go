package web

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/spof"
)

// TestLastProven follows one group of each proof kind through every
// output: the page, the JSON and /metrics.
func TestLastProven(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	scrub := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	pair := []spof.Member{{Name: "a", State: spof.MemberOK}, {Name: "b", State: spof.MemberOK}}
	groups := []spof.Group{
		{ID: "power/ipmi/psu", Kind: spof.KindPower, Function: "power supplies", Required: 1, Members: pair},
		{ID: "network/bond/bond0", Kind: spof.KindNetwork, Function: "bond0", Required: 1, Members: pair, Provable: spof.Provable},
		{ID: "storage/zfs/tank/mirror-0", Kind: spof.KindStorage, Function: "tank mirror-0", Required: 1, Members: pair, Provable: spof.Provable,
			Proof: &spof.Proof{At: scrub, Method: "zfs scrub", Result: spof.ProofPassed, Detail: "0 errors"}},
		{ID: "storage/md/md0", Kind: spof.KindStorage, Function: "md0 (raid1)", Required: 1, Members: pair, Provable: spof.Provable,
			Proof: &spof.Proof{At: scrub, Method: "md check", Result: spof.ProofFailed, Detail: "mismatch_cnt 128"}},
	}
	snap := &agent.Snapshot{Taken: now, Evaluation: spof.Evaluate(spof.Input{Groups: groups, Now: now})}
	metrics := agent.NewMetricsHandler(agent.MetricsHandlerOpts{Snapshot: agent.NewExporter(staticSource{snap}, nil), Live: prometheus.NewRegistry()})
	srv := httptest.NewServer(Handler(Options{Host: "db-07", Source: staticSource{snap}, Metrics: metrics, Version: "test", Ready: func() bool { return true }}))
	t.Cleanup(srv.Close)

	_, page := get(t, srv.URL+"/")
	for _, want := range []string{"<th>Last proven</th>", "not provable here", "never", "2026-11-23 zfs scrub passed", "2026-11-23 md check failed", "mismatch_cnt 128"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	_, body := get(t, srv.URL+"/api/v1/findings")
	var doc struct {
		Groups []struct {
			ID         string          `json:"id"`
			LastProven json.RawMessage `json:"last_proven"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"power/ipmi/psu":            "null",
		"network/bond/bond0":        "null",
		"storage/zfs/tank/mirror-0": `{"at":"2026-11-23T10:00:00Z","method":"zfs scrub","result":"passed"}`,
		"storage/md/md0":            `{"at":"2026-11-23T10:00:00Z","method":"md check","result":"failed"}`,
	}
	for _, g := range doc.Groups {
		var compact bytes.Buffer
		if err := json.Compact(&compact, g.LastProven); err != nil {
			t.Fatalf("%s: last_proven %q: %v", g.ID, g.LastProven, err)
		}
		if compact.String() != want[g.ID] {
			t.Errorf("%s: last_proven = %s, want %s", g.ID, compact.String(), want[g.ID])
		}
		delete(want, g.ID)
	}
	if len(want) > 0 {
		t.Errorf("groups missing from the JSON: %v", want)
	}

	_, m := get(t, srv.URL+"/metrics")
	if line := `spofwatch_group_last_proven_timestamp_seconds{group="storage/zfs/tank/mirror-0",method="zfs scrub"} 1.795428e+09`; !strings.Contains(m, line) {
		t.Errorf("/metrics lacks %s", line)
	}
	for _, absent := range []string{`last_proven_timestamp_seconds{group="storage/md/md0"`, `last_proven_timestamp_seconds{group="network/bond/bond0"`, `last_proven_timestamp_seconds{group="power/ipmi/psu"`} {
		if strings.Contains(m, absent) {
			t.Errorf("/metrics has %s: only passing proofs are exported", absent)
		}
	}
}
