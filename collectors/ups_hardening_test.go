package collectors

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

// upsScheduler runs the collector the way the agent does, logging into
// the returned buffer, on the clock *now.
func upsScheduler(t *testing.T, opts UPSOptions, now *time.Time) (*agent.Scheduler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := func() time.Time { return *now }
	opts.Logger, opts.Now = log, clock
	col, err := NewUPS(opts)
	if err != nil {
		t.Fatal(err)
	}
	return agent.NewScheduler(agent.SchedulerOptions{
		Entries: []agent.Entry{{Collector: col, Schedule: agent.Schedule{Interval: 5 * time.Second, Timeout: 10 * time.Second}}},
		Logger:  log, Now: clock,
	}), &logs
}

// upsGauge returns the value of a gauge from gathered families, and whether
// it is there.
func upsGauge(fams []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestUPSProbeOnlyWithLocalNUT: port 3493 is unprivileged, so the probe
// runs only where NUT is set up to run upsd. Elsewhere nothing connects to
// the probe address at all.
func TestUPSProbeOnlyWithLocalNUT(t *testing.T) {
	modeNone := t.TempDir()
	if err := os.MkdirAll(filepath.Join(modeNone, "etc/nut"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"nut.conf": "MODE=none\n", "upsd.conf": "", "ups.conf": ""} {
		if err := os.WriteFile(filepath.Join(modeNone, "etc/nut", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		root   string
		probes bool
	}{
		{"no NUT configuration", t.TempDir(), false},
		{"NUT installed, MODE=none", modeNone, false},
		{"MODE=standalone with ups.conf", upsNUTRoot, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := nuttest.StartFake(t, nuttest.FakeConfig{UPS: 2})
			col, err := NewUPS(UPSOptions{ProbeAddress: fake.Addr, RootPath: tc.root, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			res, err := col.Collect(context.Background())
			if !tc.probes {
				if !errors.Is(err, agent.ErrNoData) || len(res.Groups) != 0 || fake.Conns() != 0 {
					t.Fatalf("err %v, %d groups, %d connections to the probe address; want ErrNoData and none", err, len(res.Groups), fake.Conns())
				}
				t.Logf("not probed: %v", err)
				return
			}
			if err != nil || len(res.Groups) != 2 || fake.Conns() == 0 {
				t.Fatalf("err %v, %d groups, %d connections; want 2 groups", err, len(res.Groups), fake.Conns())
			}
		})
	}
}

// TestUPSProbeFloodIsCapped: a fake upsd listing 5,000 UPSes on battery
// with 1,000 variables each yields at most MaxUPS groups, and a finding
// that names the upsd and the counts.
func TestUPSProbeFloodIsCapped(t *testing.T) {
	fake := nuttest.StartFake(t, nuttest.FakeConfig{UPS: 5000, Vars: 1000, Status: "OB DISCHRG"})
	now := time.Unix(1_700_000_000, 0)
	sched, _ := upsScheduler(t, UPSOptions{ProbeAddress: fake.Addr, RootPath: upsNUTRoot}, &now)
	start := time.Now()
	snap := sched.CollectOnce(context.Background())
	took := time.Since(start)
	ev := snap.Evaluation
	if n := len(ev.Groups); n == 0 || n > DefaultMaxUPSPerServer {
		t.Fatalf("%d groups, want 1..%d", n, DefaultMaxUPSPerServer)
	}
	var excess, varExcess, critical int
	for _, f := range ev.Findings {
		switch {
		case f.Group == "" && f.Code == spof.CodeCollectorUnavailable:
			excess++
			if !strings.Contains(f.Summary, fake.Addr) || !strings.Contains(f.Summary, "5000") || !strings.Contains(f.Summary, "64") || f.Severity != spof.SeverityWarning {
				t.Errorf("excess finding %+v", f)
			}
		case f.Code == spof.CodeCollectorUnavailable && strings.Contains(f.Summary, "1000 variables"):
			varExcess++
			if !strings.Contains(f.Summary, fake.Addr) || !strings.Contains(f.Summary, "512") {
				t.Errorf("variable excess finding %+v", f)
			}
		}
		if f.Severity == spof.SeverityCritical {
			critical++
		}
	}
	if excess != 1 || varExcess != len(ev.Groups) {
		t.Errorf("%d UPS-excess findings (want 1), %d variable-excess findings (want one per group, %d)", excess, varExcess, len(ev.Groups))
	}
	fams, err := agent.NewExporter(sched, nil).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	enc := expfmt.NewEncoder(&page, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("5,000 UPSes x 1,000 variables: %d groups, %d findings (%d critical), /metrics %d bytes, collection %v",
		len(ev.Groups), len(ev.Findings), critical, page.Len(), took.Round(time.Millisecond))
}

// TestUPSLogsOncePerFailure: a dead upsd is logged once per change of its
// failure, not once per poll, even when each poll's error names a new
// ephemeral port, and again after RemindEvery.
func TestUPSLogsOncePerFailure(t *testing.T) {
	reset := nuttest.StartFake(t, nuttest.FakeConfig{UPS: 1, Reset: true})
	// A upsd that accepts and never answers: each poll runs out of its
	// budget at a slightly different remaining time.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	tests := []struct {
		name, addr string
	}{
		{"closed port", nuttest.ClosedAddr(t)},
		{"silent upsd", silent.Addr().String()},
		// The reset arrives during login: "read tcp 127.0.0.1:<new port>->...".
		{"connection reset", reset.Addr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			sched, logs := upsScheduler(t, UPSOptions{Timeout: 700 * time.Millisecond, RemindEvery: 10 * time.Minute, UPS: []UPSConfig{
				{Target: "ups-a@" + tc.addr, Username: "monuser", Password: "monpass"},
			}}, &now)
			warns := func() int { return strings.Count(logs.String(), "level=WARN") }
			for range 6 {
				sched.CollectOnce(context.Background())
				now = now.Add(5 * time.Second)
			}
			if n := warns(); n != 1 {
				t.Fatalf("6 failing polls logged %d warnings, want 1:\n%s", n, logs)
			}
			now = now.Add(10 * time.Minute)
			sched.CollectOnce(context.Background())
			sched.CollectOnce(context.Background())
			if n := warns(); n != 2 || !strings.Contains(logs.String(), "still unusable") {
				t.Fatalf("after 10 min: %d warnings, want 2 (one reminder):\n%s", n, logs)
			}
			t.Logf("%s", logs)
		})
	}
}

// TestUPSUnreachableFromFirstPoll: a configured UPS that was never
// reached has its group, unknown, and spofwatch_ups_up 0 from the first
// poll, through the scheduler and the exporter as in the agent.
func TestUPSUnreachableFromFirstPoll(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: upsFixtures, UPS: []string{"ups-a"}})
	dead := nuttest.ClosedAddr(t)
	tests := []struct {
		name    string
		ups     []UPSConfig
		unknown []string // groups that must be unknown
		reason  string
	}{
		{"nothing listening", []UPSConfig{{Name: "ghost", Target: "ups-a@" + dead}}, []string{"ghost"}, "connect"},
		{"name upsd does not know", []UPSConfig{{Target: "nope@" + srv.Addr}}, []string{"nope"}, "UNKNOWN-UPS"},
		{"beside a working UPS", []UPSConfig{{Name: "ghost", Target: "ups-a@" + dead}, {Target: "ups-a@" + srv.Addr}}, []string{"ghost"}, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			sched, logs := upsScheduler(t, UPSOptions{Timeout: 2 * time.Second, UPS: tc.ups}, &now)
			snap := sched.CollectOnce(context.Background())
			fams, err := agent.NewExporter(sched, nil).Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tc.unknown {
				id := UPSGroupPrefix + name
				g, ok := upsGroupOf(snap.Evaluation, id)
				if !ok || g.State != spof.StateUnknown || !strings.Contains(g.Group.UnknownReason, tc.reason) {
					t.Errorf("group %s: present %v, %+v; logs:\n%s", id, ok, g, logs)
				}
				if v, ok := upsGauge(fams, "spofwatch_ups_up", map[string]string{"ups": name}); !ok || v != 0 {
					t.Errorf(`spofwatch_ups_up{ups=%q} = %v (present %v), want 0`, name, v, ok)
				}
				if v, ok := upsGauge(fams, "spofwatch_group_state", map[string]string{"group": id, "state": string(spof.StateUnknown)}); !ok || v != 1 {
					t.Errorf("spofwatch_group_state{group=%q,state=unknown} = %v (present %v), want 1", id, v, ok)
				}
			}
		})
	}
}
