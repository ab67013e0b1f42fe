package ups_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/ups"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

// TestPollRealUpsd groups targets onto connections against a real upsd:
// equal options share one, other credentials get their own, and one
// UPS's ERR reply or one dead server touches nothing else.
func TestPollRealUpsd(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: "testdata/nut", UPS: []string{"ups-a", "ups-b"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user := ups.Options{Username: "monuser", Password: "monpass", Timeout: 2 * time.Second}
	anon := ups.Options{Timeout: 2 * time.Second}
	dead := nuttest.ClosedAddr(t)
	targets := []ups.Target{
		{UPS: "ups-a", Addr: srv.Addr, Options: user},
		{UPS: "ups-b", Addr: srv.Addr, Options: anon},
		{UPS: "ups-a", Addr: dead, Options: user},
		{UPS: "nope", Addr: srv.Addr, Options: user},
		{UPS: "ups-b", Addr: srv.Addr, Options: user},
	}
	res := ups.Poll(ctx, targets)
	if len(res.Reads) != len(targets) {
		t.Fatalf("%d reads for %d targets", len(res.Reads), len(targets))
	}
	for i, r := range res.Reads {
		if r.Target != targets[i] {
			t.Errorf("read %d is for %+v, want %+v", i, r.Target, targets[i])
		}
	}
	for _, i := range []int{0, 1, 4} {
		if st := ups.ParseState(res.Reads[i].Vars); res.Reads[i].Err != nil || !st.Has(ups.FlagOnline) {
			t.Errorf("read %d: %v, %+v", i, res.Reads[i].Err, st)
		}
	}
	if err := res.Reads[2].Err; err == nil {
		t.Error("read from a closed port succeeded")
	}
	if err := res.Reads[3].Err; !errors.Is(err, ups.ErrUnknownUPS) {
		t.Errorf("unknown UPS: %v", err)
	}
	// user@srv (ups-a, nope, ups-b), anon@srv, user@dead
	if len(res.Sessions) != 3 {
		t.Fatalf("sessions %+v, want 3", res.Sessions)
	}
	want := []struct {
		addr, user string
		n          int
		failed     bool
	}{{srv.Addr, "monuser", 3, false}, {srv.Addr, "", 1, false}, {dead, "monuser", 1, true}}
	for i, w := range want {
		s := res.Sessions[i]
		if s.Addr != w.addr || s.Username != w.user || s.UPS != w.n || (s.Err != nil) != w.failed || s.Broken != nil {
			t.Errorf("session %d = %+v, want %+v", i, s, w)
		}
	}
	if res.AllFailed() {
		t.Error("AllFailed with two working sessions")
	}
	if only := ups.Poll(ctx, targets[2:3]); !only.AllFailed() || only.Sessions[0].Problem() == nil {
		t.Errorf("dead server alone: %+v", only.Sessions)
	}
}

func TestPollLimits(t *testing.T) {
	ctx := context.Background()
	fake := nuttest.StartFake(t, nuttest.FakeConfig{UPS: 2, Vars: 1000})
	res := ups.Poll(ctx, []ups.Target{{UPS: nuttest.FakeUPSName(0), Addr: fake.Addr}, {UPS: nuttest.FakeUPSName(1), Addr: fake.Addr, Options: ups.Options{MaxVars: 10}}})
	for i, want := range []struct{ kept, dropped int }{{ups.DefaultMaxVars, 1000 - ups.DefaultMaxVars}, {10, 990}} {
		r := res.Reads[i]
		if r.Err != nil || len(r.Vars.Vars) != want.kept || r.Vars.Dropped != want.dropped {
			t.Errorf("read %d: %v, kept %d dropped %d, want %+v", i, r.Err, len(r.Vars.Vars), r.Vars.Dropped, want)
		}
		// the variables listed first are the ones kept
		if r.Vars.Vars[ups.VarStatus] != "OL" {
			t.Errorf("read %d lost ups.status", i)
		}
	}
	// A server that resets the connection mid-poll: broken, not an ERR.
	reset := nuttest.StartFake(t, nuttest.FakeConfig{UPS: 2, Reset: true})
	res = ups.Poll(ctx, []ups.Target{{UPS: "a", Addr: reset.Addr}, {UPS: "b", Addr: reset.Addr}})
	s := res.Sessions[0]
	if s.Err != nil || s.Broken == nil || res.Reads[0].Err == nil || res.Reads[1].Err == nil {
		t.Errorf("reset mid-poll: session %+v, reads %v / %v", s, res.Reads[0].Err, res.Reads[1].Err)
	}
	if s.Problem() != s.Broken {
		t.Errorf("Problem() = %v, want the break", s.Problem())
	}
	if empty := ups.Poll(ctx, nil); empty.AllFailed() || len(empty.Reads) != 0 {
		t.Errorf("empty poll: %+v", empty)
	}
}
