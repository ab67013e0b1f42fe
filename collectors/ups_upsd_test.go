package collectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	dto "github.com/prometheus/client_model/go"

	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

const upsFixtures = "../ups/testdata/nut"

// upsNUTRoot is a host root on which NUT is set up to run upsd: only then
// does the collector probe.
const upsNUTRoot = "testdata/ups/nutroot"

// evaluateUPS runs one collection and evaluates it the way the scheduler
// does: a failed collection becomes a collector status that is not OK.
func evaluateUPS(ctx context.Context, c *UPSCollector) (spof.Result, agent.Result, error) {
	res, err := c.Collect(ctx)
	st := spof.CollectorStatus{Name: c.Name(), OK: err == nil}
	if err != nil {
		st.Error = err.Error()
	}
	return spof.Evaluate(spof.Input{Groups: res.Groups, Collectors: []spof.CollectorStatus{st}, Now: time.Now()}), res, err
}

func upsHasCode(r spof.Result, group string, code spof.Code) bool {
	for _, f := range r.Findings {
		if f.Group == group && f.Code == code {
			return true
		}
	}
	return false
}

func upsGroupOf(r spof.Result, id string) (spof.GroupResult, bool) {
	for _, g := range r.Groups {
		if g.Group.ID == id {
			return g, true
		}
	}
	return spof.GroupResult{}, false
}

// upsWaitFor collects every 25 ms until cond holds and returns how long it
// took.
func upsWaitFor(t *testing.T, ctx context.Context, c *UPSCollector, what string, cond func(spof.Result, error) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last spof.Result
	var lastErr error
	for {
		r, _, err := evaluateUPS(ctx, c)
		if cond(r, err) {
			return time.Since(start)
		}
		last, lastErr = r, err
		if time.Since(start) > 20*time.Second || ctx.Err() != nil {
			t.Fatalf("%s: not seen within 20 s; last err %v, findings %s", what, lastErr, upsDescribe(last))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func upsDescribe(r spof.Result) string {
	var parts []string
	for _, g := range r.Groups {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", g.Group.ID, g.State, g.Group.UnknownReason))
	}
	for _, f := range r.Findings {
		parts = append(parts, fmt.Sprintf("[%s %s %s: %s]", f.Group, f.Code, f.Member, f.Summary))
	}
	return strings.Join(parts, " ")
}

// clean reports whether a UPS group is redundant with no findings.
func upsClean(r spof.Result, name string) bool {
	g, ok := upsGroupOf(r, UPSGroupPrefix+name)
	if !ok || g.State != spof.StateRedundant {
		return false
	}
	for _, f := range r.Findings {
		if f.Group == UPSGroupPrefix+name {
			return false
		}
	}
	return true
}

// TestUPSCollectorAcceptance is the acceptance table of the UPS issue,
// against a real upsd with dummy-ups drivers: faults are injected by
// rewriting ups-a's .dev file, and each expected finding is asserted through
// spof.Evaluate on the collector's output. It also measures the time from
// injection to finding.
func TestUPSCollectorAcceptance(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: upsFixtures, UPS: []string{"ups-a", "ups-b"}, MaxAge: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	col, err := NewUPS(UPSOptions{Timeout: 2 * time.Second, UPS: []UPSConfig{
		{Target: "ups-a@" + srv.Addr, Username: "monuser", Password: "monpass", MinRuntime: 10 * time.Minute, MaxLoad: 80},
		{Target: "ups-b@" + srv.Addr, Username: "monuser", Password: "monpass"},
	}})
	if err != nil {
		t.Fatal(err)
	}

	// OL: redundant.
	r, res, err := evaluateUPS(ctx, col)
	if err != nil || !upsClean(r, "ups-a") || !upsClean(r, "ups-b") {
		t.Fatalf("baseline OL: err %v, %s", err, upsDescribe(r))
	}
	upsCheckMetrics(t, res)

	tests := []struct {
		name string
		vars map[string]string
		code spof.Code
	}{
		{"OB", map[string]string{"ups.status": "OB DISCHRG"}, spof.CodeUPSOnBattery},
		{"OB LB", map[string]string{"ups.status": "OB LB"}, spof.CodeUPSLowBattery},
		{"runtime below min_runtime", map[string]string{"battery.runtime": "120"}, spof.CodeUPSLowBattery},
		{"RB", map[string]string{"ups.status": "OL RB"}, spof.CodeMemberDegraded},
		{"ALARM", map[string]string{"ups.status": "OL ALARM", "ups.alarm": "Fan failure"}, spof.CodeMemberDegraded},
		{"BYPASS", map[string]string{"ups.status": "OL BYPASS"}, spof.CodeUPSBypass},
		{"OVER", map[string]string{"ups.status": "OL OVER"}, spof.CodeUPSOverload},
		{"load above max_load", map[string]string{"ups.load": "95"}, spof.CodeUPSOverload},
		{"FSD", map[string]string{"ups.status": "OB LB FSD"}, spof.CodeGroupDown},
	}
	var inject, recover []time.Duration
	for _, tc := range tests {
		if err := srv.Set("ups-a", tc.vars); err != nil {
			t.Fatal(err)
		}
		d := upsWaitFor(t, ctx, col, tc.name, func(r spof.Result, err error) bool {
			return err == nil && upsHasCode(r, "ups/nut/ups-a", tc.code)
		})
		inject = append(inject, d)
		r, _, _ := evaluateUPS(ctx, col)
		if !upsClean(r, "ups-b") {
			t.Errorf("%s on ups-a changed ups-b: %s", tc.name, upsDescribe(r))
		}
		t.Logf("%-26s -> %-16s after %v", tc.name, tc.code, d.Round(time.Millisecond))
		if err := srv.Reset("ups-a"); err != nil {
			t.Fatal(err)
		}
		recover = append(recover, upsWaitFor(t, ctx, col, tc.name+" recovery", func(r spof.Result, err error) bool {
			return err == nil && upsClean(r, "ups-a")
		}))
	}
	t.Logf("injection -> finding: %s", upsStats(inject))
	t.Logf("reset -> clean again: %s", upsStats(recover))

	// One driver killed: that UPS unknown with the reason, the other fine.
	if err := srv.KillDriver("ups-b"); err != nil {
		t.Fatal(err)
	}
	d := upsWaitFor(t, ctx, col, "driver killed", func(r spof.Result, err error) bool {
		g, ok := upsGroupOf(r, "ups/nut/ups-b")
		return err == nil && ok && g.State == spof.StateUnknown &&
			(strings.Contains(g.Group.UnknownReason, "DRIVER-NOT-CONNECTED") || strings.Contains(g.Group.UnknownReason, "DATA-STALE")) &&
			upsHasCode(r, "ups/nut/ups-b", spof.CodeCollectorUnavailable) && upsClean(r, "ups-a")
	})
	r, _, _ = evaluateUPS(ctx, col)
	g, _ := upsGroupOf(r, "ups/nut/ups-b")
	t.Logf("driver killed -> ups-b unknown after %v: %s", d.Round(time.Millisecond), g.Group.UnknownReason)
	if err := srv.StartDriver("ups-b"); err != nil {
		t.Fatal(err)
	}
	d = upsWaitFor(t, ctx, col, "driver restarted", func(r spof.Result, err error) bool { return err == nil && upsClean(r, "ups-b") })
	t.Logf("driver restarted -> ups-b redundant after %v", d.Round(time.Millisecond))

	// upsd stopped: both configured UPSes stay, unknown with the reason
	// (collector_unavailable on each group), so alerts on them fire.
	if err := srv.StopUpsd(); err != nil {
		t.Fatal(err)
	}
	r, _, err = evaluateUPS(ctx, col)
	for _, name := range []string{"ups-a", "ups-b"} {
		g, ok := upsGroupOf(r, UPSGroupPrefix+name)
		if err != nil || !ok || g.State != spof.StateUnknown || !strings.Contains(g.Group.UnknownReason, "connect") ||
			!upsHasCode(r, UPSGroupPrefix+name, spof.CodeCollectorUnavailable) {
			t.Fatalf("upsd stopped: err %v, %s", err, upsDescribe(r))
		}
	}
	g, _ = upsGroupOf(r, "ups/nut/ups-a")
	t.Logf("upsd stopped -> ups-a unknown: %s", g.Group.UnknownReason)
	// upsd restarted: recovery.
	if err := srv.StartUpsd(ctx); err != nil {
		t.Fatal(err)
	}
	d = upsWaitFor(t, ctx, col, "upsd restarted", func(r spof.Result, err error) bool {
		return err == nil && upsClean(r, "ups-a") && upsClean(r, "ups-b")
	})
	t.Logf("upsd restarted -> both redundant after %v (from readiness)", d.Round(time.Millisecond))
}

func upsStats(ds []time.Duration) string {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprintf("n=%d min %v median %v max %v", len(s), s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

func upsCheckMetrics(t *testing.T, res agent.Result) {
	t.Helper()
	got := map[string]float64{}
	for _, m := range res.Metrics {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, l := range pb.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		got[name+"{"+strings.Join(labels, ",")+"}"] = pb.GetGauge().GetValue()
	}
	want := map[string]float64{
		"spofwatch_ups_status{flag=OL,ups=ups-a}":          1,
		"spofwatch_ups_status{flag=OB,ups=ups-a}":          0,
		"spofwatch_ups_load_ratio{ups=ups-a}":              0.23,
		"spofwatch_ups_battery_charge_ratio{ups=ups-a}":    1,
		"spofwatch_ups_battery_runtime_seconds{ups=ups-a}": 3600,
		"spofwatch_ups_load_ratio{ups=ups-b}":              0.41,
		"spofwatch_ups_up{ups=ups-b}":                      1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("metric %s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if _, ok := got["spofwatch_ups_last_success_timestamp_seconds{ups=ups-a}"]; !ok {
		t.Error("no last-success timestamp for ups-a")
	}
}

func TestUPSCollectorProbe(t *testing.T) {
	ctx := context.Background()
	// Nothing listening: quiet agent.ErrNoData.
	closed, err := NewUPS(UPSOptions{ProbeAddress: "127.0.0.1:1", RootPath: upsNUTRoot, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := closed.Collect(ctx); !errors.Is(err, agent.ErrNoData) {
		t.Fatalf("probe of a closed port: %v, want agent.ErrNoData", err)
	}

	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: upsFixtures, UPS: []string{"ups-a", "ups-b"}})
	col, err := NewUPS(UPSOptions{ProbeAddress: srv.Addr, RootPath: upsNUTRoot, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := evaluateUPS(ctx, col)
	if err != nil || !upsClean(r, "ups-a") || !upsClean(r, "ups-b") {
		t.Fatalf("probe: err %v, %s", err, upsDescribe(r))
	}
	// Once upsd answered, losing it is an error, not "no UPS here".
	if err := srv.StopUpsd(); err != nil {
		t.Fatal(err)
	}
	if _, err := col.Collect(ctx); err == nil || errors.Is(err, agent.ErrNoData) {
		t.Fatalf("upsd gone after probing: %v, want a real error", err)
	}
}

// TestPowerFeedsWithRealUPS runs the power-feed composition on groups from
// the real upsd: both PSUs on ups-a is a shared failure domain, ups-a on
// battery puts its PSU at risk.
func TestPowerFeedsWithRealUPS(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: upsFixtures, UPS: []string{"ups-a", "ups-b"}})
	ctx := context.Background()
	col, err := NewUPS(UPSOptions{ProbeAddress: srv.Addr, RootPath: upsNUTRoot})
	if err != nil {
		t.Fatal(err)
	}
	res, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups := append([]spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK)}, res.Groups...)
	r := spof.Evaluate(spof.Input{Groups: ApplyPowerFeeds(groups, map[string]string{"PSU1": "ups-a", "PSU2": "ups-a"})})
	if fs := upsFindings(r, "power/ipmi/psu", spof.CodeSharedFailureDomain); len(fs) != 1 || !strings.Contains(fs[0].Summary, "ups-a") {
		t.Errorf("both PSUs on ups-a: %s", upsDescribe(r))
	}
	// split feeds, ups-a on battery
	if err := srv.Set("ups-a", map[string]string{"ups.status": "OB DISCHRG"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitVar(ctx, "ups-a", "ups.status", "OB DISCHRG"); err != nil {
		t.Fatal(err)
	}
	if res, err = col.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	groups = append([]spof.Group{upsTestPSUs(spof.MemberOK, spof.MemberOK)}, res.Groups...)
	r = spof.Evaluate(spof.Input{Groups: ApplyPowerFeeds(groups, map[string]string{"PSU1": "ups-a", "PSU2": "ups-b"})})
	if fs := upsFindings(r, "power/ipmi/psu", spof.CodeMemberDegraded); len(fs) != 1 || fs[0].Member != "PSU1" {
		t.Errorf("ups-a on battery: %s", upsDescribe(r))
	}
	if upsHasCode(r, "power/ipmi/psu", spof.CodeSharedFailureDomain) || upsHasCode(r, "power/ipmi/psu", spof.CodeUPSOverload) {
		t.Errorf("split feeds with 23%% + 41%% load: %s", upsDescribe(r))
	}
}

func TestUPSCollectorStartTLS(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: upsFixtures, UPS: []string{"ups-a"}, TLS: true})
	col, err := NewUPS(UPSOptions{Timeout: 5 * time.Second, UPS: []UPSConfig{
		{Target: "ups-a@" + srv.Addr, Username: "monuser", Password: "monpass", StartTLS: true, CAFile: srv.CAFile},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := evaluateUPS(context.Background(), col)
	if err != nil || !upsClean(r, "ups-a") {
		t.Fatalf("over STARTTLS: err %v, %s", err, upsDescribe(r))
	}
}
