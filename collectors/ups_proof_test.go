package collectors

import (
	"context"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

// TestUPSSelfTestProof injects ups.test.result (and ups.test.date) into a
// real upsd with dummy-ups and follows the UPS group's proof, with a fixed
// clock for "first seen".
func TestUPSSelfTestProof(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: upsFixtures, UPS: []string{"ups-a"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	col, err := NewUPS(UPSOptions{Timeout: 2 * time.Second, Now: func() time.Time { return now },
		UPS: []UPSConfig{{Target: "ups-a@" + srv.Addr, Username: "monuser", Password: "monpass"}}})
	if err != nil {
		t.Fatal(err)
	}
	group := func() spof.Group {
		t.Helper()
		res, err := col.Collect(ctx)
		if err != nil || len(res.Groups) != 1 {
			t.Fatalf("collect: %v, %d groups", err, len(res.Groups))
		}
		return res.Groups[0]
	}
	// waitProof collects until the proof has the wanted result ("" = none).
	waitProof := func(what string, want spof.ProofResult) spof.Group {
		t.Helper()
		for {
			g := group()
			if (want == "" && g.Proof == nil) || (g.Proof != nil && g.Proof.Result == want) {
				return g
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: proof %+v, want %q", what, g.Proof, want)
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	untested := func(g spof.Group, maxAge time.Duration) bool {
		r := spof.Evaluate(spof.Input{Groups: []spof.Group{g}, ProofPolicy: spof.ProofPolicy{MaxAge: maxAge}, Now: now,
			FirstSeen: map[string]time.Time{g.ID: now.Add(-1000 * 24 * time.Hour)}})
		return upsHasCode(r, g.ID, spof.CodeRedundancyUntested)
	}

	g := waitProof("fixture without a test", "")
	if g.Provable != spof.Provable {
		t.Fatalf("UPS group not provable")
	}
	if !untested(g, 90*24*time.Hour) {
		t.Errorf("a UPS never tested (first seen 1000 days ago) raises no redundancy_untested")
	}

	if err := srv.Set("ups-a", map[string]string{"ups.test.result": "Done and passed"}); err != nil {
		t.Fatal(err)
	}
	seen := now
	g = waitProof("Done and passed", spof.ProofPassed)
	if !g.Proof.At.Equal(seen) || g.Proof.Method != "ups self-test" {
		t.Errorf("passing test: proof %+v, want at %v (first seen)", g.Proof, seen)
	}
	// Ten days on, the same result is the same old test.
	now = now.Add(10 * 24 * time.Hour)
	g = group()
	if g.Proof == nil || !g.Proof.At.Equal(seen) {
		t.Fatalf("ten days on: proof %+v, want still at %v", g.Proof, seen)
	}
	if !untested(g, 7*24*time.Hour) {
		t.Errorf("policy 7d, proof 10d old: no redundancy_untested")
	}
	if untested(g, 30*24*time.Hour) {
		t.Errorf("policy 30d, proof 10d old: redundancy_untested raised")
	}

	if err := srv.Set("ups-a", map[string]string{"ups.test.result": "Done and error"}); err != nil {
		t.Fatal(err)
	}
	g = waitProof("Done and error", spof.ProofFailed)
	if !g.Proof.At.Equal(now) {
		t.Errorf("failing test: proof %+v, want at %v", g.Proof, now)
	}

	// "In progress" keeps the last finished test.
	if err := srv.Set("ups-a", map[string]string{"ups.test.result": "In progress"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitVar(ctx, "ups-a", "ups.test.result", "In progress"); err != nil {
		t.Fatal(err)
	}
	if g = group(); g.Proof == nil || g.Proof.Result != spof.ProofFailed {
		t.Errorf("test in progress: proof %+v, want the last finished (failed) one", g.Proof)
	}

	// ups.test.date dates the test when the UPS reports it.
	if err := srv.Set("ups-a", map[string]string{"ups.test.result": "Done and passed", "ups.test.date": "2026/11/01"}); err != nil {
		t.Fatal(err)
	}
	g = waitProof("dated pass", spof.ProofPassed)
	if want := time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local); !g.Proof.At.Equal(want) {
		t.Errorf("dated test: proof %+v, want at %v", g.Proof, want)
	}
}
