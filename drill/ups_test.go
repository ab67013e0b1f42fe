package drill_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/drill"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

// The UPS battery-test drill against a real upsd. ups-t is served by
// nuttest's emulated driver, the only way to have upsd offer
// test.battery.start.quick without hardware (dummy-ups 2.8.0 offers only
// load.off); what the UPS does after the command is injected by each case.
// ups-d is a real dummy-ups.

const (
	testUPS  = "ups-t"
	dummyUPS = "ups-d"
)

func startUpsd(t *testing.T) *nuttest.Server {
	t.Helper()
	return nuttest.StartT(t, nuttest.Config{
		FixtureDir: "testdata/nut", UPS: []string{dummyUPS}, Emulated: []string{testUPS},
		Commands: map[string][]string{testUPS: {drill.UPSCmdQuickTest, drill.UPSCmdStopTest}},
	})
}

// scriptedTest is a UPS that answers the quick test: on the command it
// goes on battery with its test in progress; once the drill has seen that
// (its progress line says so) it reports final, with ups.status after.
type scriptedTest struct {
	srv          *nuttest.Server
	t            *testing.T
	during       string // ups.status during the test
	final, after string // "" leaves the test in progress
	// onRunning runs once the drill has seen the test in progress.
	onRunning func()

	mu       sync.Mutex
	injected bool
}

func (s *scriptedTest) handler(cmd, _ string) int {
	if cmd == drill.UPSCmdQuickTest {
		if err := s.srv.Set(testUPS, map[string]string{"ups.status": s.during, "ups.test.result": "In progress"}); err != nil {
			s.t.Error(err)
		}
	}
	return nuttest.StatInstCmdHandled
}

func (s *scriptedTest) progress(_, _ float64, msg string) {
	if !strings.Contains(msg, `"In progress"`) {
		return
	}
	s.mu.Lock()
	first := !s.injected
	s.injected = true
	s.mu.Unlock()
	if !first {
		return
	}
	if s.onRunning != nil {
		s.onRunning()
	}
	if s.final != "" {
		if err := s.srv.Set(testUPS, map[string]string{"ups.test.result": s.final, "ups.status": s.after}); err != nil {
			s.t.Error(err)
		}
	}
}

func TestUPSBatteryTestRealUpsd(t *testing.T) {
	srv := startUpsd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tests := []struct {
		name string
		// before is injected before the drill and awaited.
		before            map[string]string
		during            string
		final, after      string
		cancelWhenRunning bool
		wait              bool
		timeout           time.Duration
		want              drill.Result
		reason            []string // substrings of the reason
		failedBattery     bool
		sent              []string // commands the driver received
	}{
		{name: "passes", during: "OB DISCHRG", final: "Done and passed", after: "OL CHRG", wait: true,
			want: drill.ResultPassed, reason: []string{"passed", `"Done and passed"`}, sent: []string{drill.UPSCmdQuickTest}},
		// The same words as the last test: passed only because the drill
		// saw this test in progress first.
		{name: "passes again with the same words", before: map[string]string{"ups.test.result": "Done and passed"},
			during: "OB DISCHRG", final: "Done and passed", after: "OL", wait: true,
			want: drill.ResultPassed, sent: []string{drill.UPSCmdQuickTest}},
		{name: "warning fails", during: "OB DISCHRG", final: "Done and warning", after: "OL", wait: true,
			want: drill.ResultFailed, reason: []string{"failed", `"Done and warning"`}, failedBattery: true, sent: []string{drill.UPSCmdQuickTest}},
		{name: "error fails", during: "OB DISCHRG", final: "Done and error", after: "OL", wait: true,
			want: drill.ResultFailed, reason: []string{`"Done and error"`}, failedBattery: true, sent: []string{drill.UPSCmdQuickTest}},
		{name: "aborted fails", during: "OB DISCHRG", final: "Aborted", after: "OL", wait: true,
			want: drill.ResultFailed, reason: []string{`"Aborted"`}, failedBattery: true, sent: []string{drill.UPSCmdQuickTest}},
		{name: "low battery stops the test", during: "OB DISCHRG LB", wait: true,
			want: drill.ResultFailed, reason: []string{"low battery"}, failedBattery: true,
			sent: []string{drill.UPSCmdQuickTest, drill.UPSCmdStopTest}},
		{name: "no verdict within the timeout stops the test", during: "OB DISCHRG", wait: true, timeout: 2 * time.Second,
			want: drill.ResultFailed, reason: []string{"no result", `"In progress"`}, sent: []string{drill.UPSCmdQuickTest, drill.UPSCmdStopTest}},
		{name: "a signal stops the test", during: "OB DISCHRG", wait: true, cancelWhenRunning: true,
			want: drill.ResultFailed, reason: []string{"interrupted"}, sent: []string{drill.UPSCmdQuickTest, drill.UPSCmdStopTest}},
		{name: "without wait: started", during: "OB DISCHRG", wait: false,
			want: drill.ResultStarted, sent: []string{drill.UPSCmdQuickTest}},
		{name: "on battery already: refused", before: map[string]string{"ups.status": "OB DISCHRG"}, wait: true,
			want: drill.ResultRefused, reason: []string{"not on line power", `"OB DISCHRG"`}},
		{name: "test already running: refused", before: map[string]string{"ups.test.result": "In progress"}, wait: true,
			want: drill.ResultRefused, reason: []string{"already testing"}},
		{name: "low charge: refused", before: map[string]string{"battery.charge": "20"}, wait: true,
			want: drill.ResultRefused, reason: []string{"battery.charge is 20%"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := srv.Reset(testUPS); err != nil {
				t.Fatal(err)
			}
			if err := srv.WaitVar(ctx, testUPS, "ups.status", "OL"); err != nil {
				t.Fatal(err)
			}
			if err := srv.WaitVar(ctx, testUPS, "ups.test.result", "No test initiated"); err != nil {
				t.Fatal(err)
			}
			if err := srv.Set(testUPS, tc.before); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.before {
				if err := srv.WaitVar(ctx, testUPS, k, v); err != nil {
					t.Fatal(err)
				}
			}
			rctx, rcancel := context.WithCancel(ctx)
			defer rcancel()
			s := &scriptedTest{srv: srv, t: t, during: tc.during, final: tc.final, after: tc.after}
			if tc.cancelWhenRunning {
				s.onRunning = rcancel
			}
			if err := srv.OnInstCmd(testUPS, s.handler); err != nil {
				t.Fatal(err)
			}
			before, _ := srv.InstCmds(testUPS)
			m, err := drill.NewUPSBatteryTest(testUPS+"@"+srv.Addr, "drilluser", "drillpass",
				drill.WithUPSPollInterval(20*time.Millisecond), drill.WithUPSFollowTimeout(tc.timeout))
			if err != nil {
				t.Fatal(err)
			}
			out := m.Run(rctx, tc.wait, s.progress)
			t.Logf("%s: %s\n\t%s", out.Result, out.Reason, strings.Join(out.Details, "\n\t"))
			if out.Result != tc.want {
				t.Fatalf("result %s (%s), want %s", out.Result, out.Reason, tc.want)
			}
			for _, r := range tc.reason {
				if !strings.Contains(out.Reason, r) {
					t.Errorf("reason %q does not say %q", out.Reason, r)
				}
			}
			if _, ok := out.FailedMembers["battery"]; ok != tc.failedBattery {
				t.Errorf("failed members %v, battery failed want %v", out.FailedMembers, tc.failedBattery)
			}
			after, _ := srv.InstCmds(testUPS)
			if sent := after[len(before):]; !slices.Equal(sent, tc.sent) {
				t.Errorf("the UPS's driver received %q, want %q", sent, tc.sent)
			}
		})
	}
}

// TestUPSBatteryTestRefusals: the drill is refused, with upsd's reason,
// and no command reaches the UPS.
func TestUPSBatteryTestRefusals(t *testing.T) {
	srv := startUpsd(t)
	if err := srv.OnInstCmd(testUPS, func(string, string) int { return nuttest.StatInstCmdHandled }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	down := nuttest.ClosedAddr(t)
	for _, tc := range []struct {
		name, target, user, pass string
		reason                   []string
	}{
		{"UPS without the command", dummyUPS + "@" + srv.Addr, "drilluser", "drillpass",
			[]string{"does not support test.battery.start.quick", "LIST CMD: load.off"}},
		{"no credentials", testUPS + "@" + srv.Addr, "", "",
			[]string{"drill.ups.username/password_file not set"}},
		{"user without instcmds", testUPS + "@" + srv.Addr, "monuser", "monpass",
			[]string{"ERR ACCESS-DENIED", `"monuser"`, "instcmds = test.battery.start.quick", "upsd.users"}},
		{"wrong password", testUPS + "@" + srv.Addr, "drilluser", "wrong",
			[]string{"ERR ACCESS-DENIED", "password_file"}},
		{"unknown UPS", "nope@" + srv.Addr, "drilluser", "drillpass",
			[]string{"nope@", "UNKNOWN-UPS"}},
		{"upsd down", testUPS + "@" + down, "drilluser", "drillpass",
			[]string{"cannot reach upsd", down}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := srv.InstCmds(testUPS)
			m, err := drill.NewUPSBatteryTest(tc.target, tc.user, tc.pass, drill.WithUPSPollInterval(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			out := m.Run(ctx, true, nil)
			if out.Result != drill.ResultRefused {
				t.Fatalf("result %s (%s), want refused", out.Result, out.Reason)
			}
			for _, r := range tc.reason {
				if !strings.Contains(out.Reason, r) {
					t.Errorf("reason %q does not say %q", out.Reason, r)
				}
			}
			if len(out.FailedMembers) != 0 {
				t.Errorf("a refusal condemned %v", out.FailedMembers)
			}
			if after, _ := srv.InstCmds(testUPS); len(after) != len(before) {
				t.Errorf("the UPS received %q", after[len(before):])
			}
		})
	}
}

// TestUPSBatteryTestDriverRefuses: upsd accepts the command but the driver
// reports failure through TRACKING; the drill fails without condemning
// the battery, which was never tested.
func TestUPSBatteryTestDriverRefuses(t *testing.T) {
	srv := startUpsd(t)
	if err := srv.OnInstCmd(testUPS, func(string, string) int { return nuttest.StatInstCmdFailed }); err != nil {
		t.Fatal(err)
	}
	m, err := drill.NewUPSBatteryTest(testUPS+"@"+srv.Addr, "drilluser", "drillpass", drill.WithUPSPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := m.Run(ctx, true, nil)
	if out.Result != drill.ResultFailed || !strings.Contains(out.Reason, "ERR FAILED") || len(out.FailedMembers) != 0 {
		t.Errorf("outcome %+v, want failed with ERR FAILED and no failed member", out)
	}
}

func TestUPSBatteryTestPlan(t *testing.T) {
	srv := startUpsd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := drill.NewUPSBatteryTest(testUPS+"@"+srv.Addr, "drilluser", "drillpass")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := m.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(steps, "\n")
	for _, s := range []string{"INSTCMD ups-t test.battery.start.quick", `"No test initiated"`, "test.battery.stop"} {
		if !strings.Contains(plan, s) {
			t.Errorf("plan does not say %q:\n%s", s, plan)
		}
	}
	if got, _ := srv.InstCmds(testUPS); len(got) != 0 {
		t.Errorf("Plan sent %q", got)
	}
	m, _ = drill.NewUPSBatteryTest(dummyUPS+"@"+srv.Addr, "drilluser", "drillpass")
	if _, err := m.Plan(ctx); err == nil || !strings.Contains(err.Error(), "does not support") {
		t.Errorf("plan on a UPS without the test: %v", err)
	}
	if m.Name() != "ups-battery-test" || m.Disruptive() {
		t.Errorf("name %q disruptive %v", m.Name(), m.Disruptive())
	}
	if _, err := drill.NewUPSBatteryTest("@host", "u", "p"); err == nil {
		t.Error("a target without a UPS name was accepted")
	}
}

// TestUPSBatteryTestUpsdDiesDuringTest: upsd stops while the drill
// follows the test; the drill fails naming the peer, after trying to stop
// the test.
func TestUPSBatteryTestUpsdDiesDuringTest(t *testing.T) {
	srv := startUpsd(t)
	s := &scriptedTest{srv: srv, t: t, during: "OB DISCHRG"}
	s.onRunning = func() {
		if err := srv.StopUpsd(); err != nil {
			t.Error(err)
		}
	}
	if err := srv.OnInstCmd(testUPS, s.handler); err != nil {
		t.Fatal(err)
	}
	m, err := drill.NewUPSBatteryTest(testUPS+"@"+srv.Addr, "drilluser", "drillpass", drill.WithUPSPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := m.Run(ctx, true, s.progress)
	t.Logf("%s: %s\n\t%s", out.Result, out.Reason, strings.Join(out.Details, "\n\t"))
	if out.Result != drill.ResultFailed || !strings.Contains(out.Reason, "lost UPS") || !strings.Contains(out.Reason, srv.Addr) {
		t.Errorf("outcome %s %q, want failed: lost UPS, naming %s", out.Result, out.Reason, srv.Addr)
	}
	if !slices.ContainsFunc(out.Details, func(d string) bool { return strings.Contains(d, "could not stop the test") }) {
		t.Errorf("details do not say the test could not be stopped: %q", out.Details)
	}
}
