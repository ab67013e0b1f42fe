package collectors_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/spofwatch/spofwatch/collectors"
	"github.com/spofwatch/spofwatch/ipmi/ipmisim"
	"github.com/spofwatch/spofwatch/spof"
)

func newSimCollector(t *testing.T, sim *ipmisim.Sim, psuRequired int) *collectors.IPMI {
	t.Helper()
	c, err := collectors.NewIPMI(collectors.IPMIOptions{
		Interface: "lanplus", Host: sim.Host, Port: sim.Port,
		Username: ipmisim.Username, Password: ipmisim.Password, CipherSuite: 3,
		PSURequired: psuRequired,
		BackoffMin:  50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func collect(t *testing.T, c *collectors.IPMI) (agent.Result, spof.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Collect(ctx)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return res, spof.Evaluate(spof.Input{Groups: res.Groups, HostConditions: res.HostConditions, Now: time.Unix(1e9, 0)})
}

func groupResult(t *testing.T, r spof.Result, id string) spof.GroupResult {
	t.Helper()
	for _, g := range r.Groups {
		if g.Group.ID == id {
			return g
		}
	}
	t.Fatalf("group %s missing; have %+v", id, r.Groups)
	return spof.GroupResult{}
}

func member(t *testing.T, g spof.GroupResult, name string) spof.Member {
	t.Helper()
	for _, m := range g.Group.Members {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("member %q missing in %s", name, g.Group.ID)
	return spof.Member{}
}

func findings(r spof.Result, group string, code spof.Code) []spof.Finding {
	var out []spof.Finding
	for _, f := range r.Findings {
		if f.Group == group && f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

func dump(r spof.Result) string {
	var b strings.Builder
	for _, g := range r.Groups {
		fmt.Fprintf(&b, "group %s %s (%d/%d, req %d)\n", g.Group.ID, g.State, g.Working, g.Total, g.Group.Required)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s %s %s %q: %s\n", f.Severity, f.Code, f.Group, f.Member, f.Summary)
	}
	return b.String()
}

// TestIPMIAcceptance runs the acceptance table against a real ipmi_sim,
// asserting through spof.Evaluate on the collector's output.
func TestIPMIAcceptance(t *testing.T) {
	type want struct {
		power, cooling spof.GroupState
		member         string
		memberState    spof.MemberState
		memberDetail   string
		finding        spof.Code
		findingGroup   string
		severity       spof.Severity
		summaryHas     string
	}
	cases := []struct {
		name   string
		inject []string
		want   want
	}{
		{"all ok", nil, want{power: spof.StateRedundant, cooling: spof.StateRedundant}},
		{"PSU2 failed", []string{"psu2-fail"}, want{power: spof.StateRedundancyLost, cooling: spof.StateRedundant,
			member: "PSU2 Status", memberState: spof.MemberFailed, memberDetail: "failure detected",
			finding: spof.CodeRedundancyLost, findingGroup: collectors.IPMIPowerGroup, severity: spof.SeverityCritical, summaryHas: "PSU2 Status failed"}},
		{"PSU2 removed", []string{"psu2-remove"}, want{power: spof.StateRedundancyLost, cooling: spof.StateRedundant,
			member: "PSU2 Status", memberState: spof.MemberMissing, memberDetail: "presence not detected",
			finding: spof.CodeRedundancyLost, findingGroup: collectors.IPMIPowerGroup, severity: spof.SeverityCritical, summaryHas: "PSU2 Status missing"}},
		{"predictive failure", []string{"psu2-predictive"}, want{power: spof.StateRedundant, cooling: spof.StateRedundant,
			member: "PSU2 Status", memberState: spof.MemberDegraded, memberDetail: "predictive failure",
			finding: spof.CodeMemberDegraded, findingGroup: collectors.IPMIPowerGroup, severity: spof.SeverityWarning, summaryHas: "PSU2 Status is degraded: predictive failure"}},
		{"AC lost", []string{"psu1-ac-lost"}, want{power: spof.StateRedundancyLost, cooling: spof.StateRedundant,
			member: "PSU1 Status", memberState: spof.MemberFailed, memberDetail: "AC lost",
			finding: spof.CodeRedundancyLost, findingGroup: collectors.IPMIPowerGroup, severity: spof.SeverityCritical, summaryHas: "PSU1 Status failed"}},
		// The BMC's sensor says worse than the members: its verdict wins,
		// in the group state and as a finding that names the sensor.
		{"power unit redundancy lost, PSUs ok", []string{"ps-red-lost"}, want{power: spof.StateRedundancyLost, cooling: spof.StateRedundant,
			member: "PSU2 Status", memberState: spof.MemberOK,
			finding: spof.CodeRedundancyLost, findingGroup: collectors.IPMIPowerGroup, severity: spof.SeverityCritical,
			summaryHas: `BMC sensor "PS Redundancy" reports Redundancy Lost, while the member count says redundant (2 of 2 working, 1 required)`}},
		{"fan redundancy degraded", []string{"fan-red-degr"}, want{power: spof.StateRedundant, cooling: spof.StateDegraded,
			member: "FAN3", memberState: spof.MemberOK,
			finding: spof.CodeRedundancyDegraded, findingGroup: collectors.IPMICoolingGroup, severity: spof.SeverityWarning,
			summaryHas: `BMC sensor "Fan Redundancy" reports Redundancy Degraded`}},
		{"fan stalled", []string{"fan3-stall"}, want{power: spof.StateRedundant, cooling: spof.StateRedundancyLost,
			member: "FAN3", memberState: spof.MemberFailed, memberDetail: "below lower critical threshold",
			finding: spof.CodeRedundancyLost, findingGroup: collectors.IPMICoolingGroup, severity: spof.SeverityCritical, summaryHas: "FAN3 failed"}},
		{"recovery", []string{"psu2-fail", "ps-red-lost", "fan-red-degr", "all-ok"}, want{power: spof.StateRedundant, cooling: spof.StateRedundant,
			member: "PSU2 Status", memberState: spof.MemberOK}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := ipmisim.Start(t)
			c := newSimCollector(t, sim, 0)
			collect(t, c) // baseline poll: SDR cache, SEL baseline
			for _, s := range tc.inject {
				sim.Inject(s)
			}
			_, r := collect(t, c) // the next poll sees the injected state
			t.Log("\n" + dump(r))
			w := tc.want
			if g := groupResult(t, r, collectors.IPMIPowerGroup); g.State != w.power {
				t.Errorf("power group %s, want %s\n%s", g.State, w.power, dump(r))
			}
			if g := groupResult(t, r, collectors.IPMICoolingGroup); g.State != w.cooling {
				t.Errorf("cooling group %s, want %s\n%s", g.State, w.cooling, dump(r))
			}
			if w.member != "" {
				gid := collectors.IPMIPowerGroup
				if strings.HasPrefix(w.member, "FAN") {
					gid = collectors.IPMICoolingGroup
				}
				m := member(t, groupResult(t, r, gid), w.member)
				if m.State != w.memberState || !strings.Contains(m.Detail, w.memberDetail) {
					t.Errorf("%s = %s (%q), want %s (%q)", w.member, m.State, m.Detail, w.memberState, w.memberDetail)
				}
			}
			// No redundancy finding unless one is expected.
			for _, f := range r.Findings {
				switch f.Code {
				case spof.CodeRedundancyLost, spof.CodeRedundancyDegraded, spof.CodeGroupDown, spof.CodeMemberDegraded, spof.CodeCollectorUnavailable:
					if f.Code != w.finding {
						t.Errorf("unexpected finding %s: %s", f.Code, f.Summary)
					}
				}
			}
			if w.finding != "" {
				fs := findings(r, w.findingGroup, w.finding)
				if len(fs) == 0 {
					t.Fatalf("no %s finding on %s\n%s", w.finding, w.findingGroup, dump(r))
				}
				if fs[0].Severity != w.severity || !strings.Contains(fs[0].Summary, w.summaryHas) {
					t.Errorf("finding %s %q, want %s containing %q", fs[0].Severity, fs[0].Summary, w.severity, w.summaryHas)
				}
				if strings.Contains(fs[0].Summary, "BMC sensor") && !strings.Contains(fs[0].Details, "Last BMC event:") {
					t.Errorf("finding from a BMC sensor lacks its SEL event: %q", fs[0].Details)
				}
			}
			// ipmi_sim always reports restore policy always-off.
			if fs := findings(r, collectors.IPMIPowerGroup, collectors.CodePowerRestoreAlwaysOff); len(fs) != 1 {
				t.Errorf("power_restore_always_off findings = %d, want 1", len(fs))
			}
		})
	}
}

// TestIPMIPSURequiredAndEvents: psu_required from config beats inference,
// and new SEL events appear with timestamps on the group.
func TestIPMIPSURequiredAndEvents(t *testing.T) {
	sim := ipmisim.Start(t)
	c := newSimCollector(t, sim, 2)
	_, r := collect(t, c)
	if g := groupResult(t, r, collectors.IPMIPowerGroup); g.State != spof.StateNoRedundancy || g.Group.Required != 2 {
		t.Errorf("with psu_required 2: %s, required %d; want no_redundancy, 2\n%s", g.State, g.Group.Required, dump(r))
	}
	sim.Inject("psu2-fail")
	_, r = collect(t, c)
	g := groupResult(t, r, collectors.IPMIPowerGroup)
	if g.State != spof.StateDown {
		t.Errorf("PSU2 failed with 2 required: %s, want down", g.State)
	}
	var events []string
	for _, a := range g.Group.Attributes {
		if a.Key == "event" {
			events = append(events, a.Value)
		}
	}
	if len(events) != 1 || !strings.Contains(events[0], "PSU2 Status: Failure detected asserted") {
		t.Errorf("events = %q, want the PSU2 failure", events)
	}
	if _, err := time.Parse(time.RFC3339, strings.Fields(events[0])[0]); err != nil {
		t.Errorf("event %q has no timestamp: %v", events[0], err)
	}
}

// TestIPMIMetrics checks the state sets and the command counter.
func TestIPMIMetrics(t *testing.T) {
	sim := ipmisim.Start(t)
	c := newSimCollector(t, sim, 0)
	collect(t, c)
	sim.Inject("psu2-fail")
	sim.Inject("fan-red-degr")
	res, _ := collect(t, c)
	got := map[string]float64{}
	for _, m := range res.Metrics {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		var lbl []string
		for _, l := range pb.GetLabel() {
			lbl = append(lbl, l.GetName()+"="+l.GetValue())
		}
		v := pb.GetGauge().GetValue() + pb.GetCounter().GetValue()
		got[name+"{"+strings.Join(lbl, ",")+"}"] = v
	}
	for k, want := range map[string]float64{
		"spofwatch_ipmi_sensor_state{sensor=PSU2 Status,state=failed,type=power_supply}":                         1,
		"spofwatch_ipmi_sensor_state{sensor=PSU2 Status,state=ok,type=power_supply}":                             0,
		"spofwatch_ipmi_sensor_state{sensor=PSU1 Status,state=ok,type=power_supply}":                             1,
		"spofwatch_ipmi_redundancy_state{sensor=Fan Redundancy,state=redundancy_degraded,type=fan}":              1,
		"spofwatch_ipmi_redundancy_state{sensor=PS Redundancy,state=fully_redundant,type=power_unit}":            1,
		"spofwatch_ipmi_power_restore_policy{policy=always_off}":                                                 1,
		"spofwatch_ipmi_sessions_opened_total{}":                                                                 1,
		"spofwatch_ipmi_sensor_state{sensor=FAN1,state=ok,type=fan}":                                             1,
		"spofwatch_ipmi_redundancy_state{sensor=PS Redundancy,state=redundancy_lost,type=power_unit}":            0,
		"spofwatch_ipmi_chassis_fault{fault=power_fault}":                                                        0,
		"spofwatch_ipmi_redundancy_state{sensor=Fan Redundancy,state=fully_redundant,type=fan}":                  0,
		"spofwatch_ipmi_sensor_state{sensor=PSU2 Status,state=missing,type=power_supply}":                        0,
		"spofwatch_ipmi_redundancy_state{sensor=Fan Redundancy,state=unknown,type=fan}":                          0,
		"spofwatch_ipmi_sensor_state{sensor=FAN3,state=unknown,type=fan}":                                        0,
		"spofwatch_ipmi_redundancy_state{sensor=PS Redundancy,state=non_redundant_insufficient,type=power_unit}": 0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if got["spofwatch_ipmi_commands_total{}"] <= 0 || got["spofwatch_ipmi_poll_commands{}"] <= 0 {
		t.Errorf("command counters not exported: %v", got)
	}
	// Every metric uses a declared descriptor, and the set registers cleanly.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(constCollector(res)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}

type constCollector agent.Result

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.Descs {
		ch <- d
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.Metrics {
		ch <- m
	}
}

// TestIPMIFaults: a killed BMC fails Collect within its ctx timeout (the
// scheduler turns that into collector_unavailable); a restarted one is
// reconnected and its findings return.
func TestIPMIFaults(t *testing.T) {
	sim := ipmisim.Start(t)
	c := newSimCollector(t, sim, 0)
	sim.Inject("psu2-fail")
	collect(t, c)
	sim.Kill()
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	start := time.Now()
	_, err := c.Collect(ctx)
	took := time.Since(start)
	cancel()
	if err == nil || errors.Is(err, agent.ErrNoData) {
		t.Fatalf("collect from a killed BMC: err %v, want a failure", err)
	}
	if took > timeout+500*time.Millisecond {
		t.Errorf("failing collect took %s, more than its %s timeout", took, timeout)
	}
	r := spof.Evaluate(spof.Input{Collectors: []spof.CollectorStatus{{Name: c.Name(), Error: err.Error()}}})
	if len(r.Findings) != 1 || r.Findings[0].Code != spof.CodeCollectorUnavailable {
		t.Errorf("findings for the failed collector = %+v", r.Findings)
	}

	sim.Restart()
	sim.Inject("psu2-fail")
	var res agent.Result
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		res, err = c.Collect(ctx)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no reconnect after restart: %v", err)
	}
	r = spof.Evaluate(spof.Input{Groups: res.Groups, HostConditions: res.HostConditions})
	if fs := findings(r, collectors.IPMIPowerGroup, spof.CodeRedundancyLost); len(fs) != 1 || !strings.Contains(fs[0].Summary, "PSU2 Status") {
		t.Errorf("after reconnect: %s", dump(r))
	}
}

// TestIPMINoBMC: nothing configured and no /dev/ipmi0 is agent.ErrNoData.
func TestIPMINoBMC(t *testing.T) {
	c, err := collectors.NewIPMI(collectors.IPMIOptions{Device: filepath.Join(t.TempDir(), "ipmi0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collect(context.Background()); !errors.Is(err, agent.ErrNoData) {
		t.Errorf("collect = %v, want agent.ErrNoData", err)
	}
	// Configured in-band without the device is a real error.
	c, err = collectors.NewIPMI(collectors.IPMIOptions{Interface: "open", Device: filepath.Join(t.TempDir(), "ipmi0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collect(context.Background()); err == nil || errors.Is(err, agent.ErrNoData) {
		t.Errorf("collect with interface open and no device = %v, want an error", err)
	}
}

// TestIPMIToolCrossCheck reads the same simulator with `ipmitool -I lanplus
// -C 3 sdr elist`: names, sensor numbers and asserted states must agree.
func TestIPMIToolCrossCheck(t *testing.T) {
	if _, err := exec.LookPath("ipmitool"); err != nil {
		t.Fatalf("ipmitool not found (Debian package ipmitool): %v", err)
	}
	sim := ipmisim.Start(t)
	c := newSimCollector(t, sim, 0)
	sim.Inject("psu2-fail")
	sim.Inject("ps-red-lost")
	sim.Inject("fan-red-degr")
	res, _ := collect(t, c)
	out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", sim.Host, "-p", fmt.Sprint(sim.Port),
		"-U", ipmisim.Username, "-P", ipmisim.Password, "sdr", "elist").CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool: %v\n%s", err, out)
	}
	// "PSU2 Status      | 11h | ok  | 10.2 | Presence detected, Failure detected"
	tool := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 5 {
			continue
		}
		tool[strings.TrimSpace(f[0])] = strings.TrimSpace(f[1]) + " " + strings.TrimSpace(f[4])
	}
	want := map[string]string{
		"PSU1 Status":    "10h Presence detected",
		"PSU2 Status":    "11h Presence detected, Failure detected",
		"PS Redundancy":  "12h Redundancy Lost",
		"Fan Redundancy": "13h Redundancy Degraded",
	}
	for name, w := range want {
		if tool[name] != w {
			t.Errorf("ipmitool says %s = %q, want %q", name, tool[name], w)
		}
	}
	// Our decoding of the same states, as carried in member details and
	// group attributes.
	r := spof.Evaluate(spof.Input{Groups: res.Groups})
	power := groupResult(t, r, collectors.IPMIPowerGroup)
	if m := member(t, power, "PSU2 Status"); m.State != spof.MemberFailed {
		t.Errorf("PSU2 = %s, ipmitool says Failure detected", m.State)
	}
	if m := member(t, power, "PSU1 Status"); m.State != spof.MemberOK {
		t.Errorf("PSU1 = %s, ipmitool says only Presence detected", m.State)
	}
	attrs := ""
	for _, g := range res.Groups {
		for _, a := range g.Attributes {
			attrs += a.Key + "=" + a.Value + "\n"
		}
	}
	for _, w := range []string{"bmc_redundancy=PS Redundancy: Redundancy Lost", "bmc_redundancy=Fan Redundancy: Redundancy Degraded"} {
		if !strings.Contains(attrs, w) {
			t.Errorf("attributes lack %q:\n%s", w, attrs)
		}
	}
	// Fans: ipmitool reads 6000 RPM where we read raw 60 with M=100.
	for _, n := range []string{"FAN1", "FAN2", "FAN3"} {
		if !strings.Contains(tool[n], "6000 RPM") {
			t.Errorf("ipmitool %s = %q", n, tool[n])
		}
	}
}

// TestIPMIRedundancySensorsWithoutUnitSensors: a BMC whose SDR has the
// power-unit and fan redundancy sensors but no per-PSU or per-fan sensor
// still gets both groups, in the sensors' state, and every finding about
// them names its group.
func TestIPMIRedundancySensorsWithoutUnitSensors(t *testing.T) {
	sim := ipmisim.StartWith(t, ipmisim.ConfigRedundancyOnly)
	c := newSimCollector(t, sim, 0)
	_, r := collect(t, c)
	for _, id := range []string{collectors.IPMIPowerGroup, collectors.IPMICoolingGroup} {
		if g := groupResult(t, r, id); g.State != spof.StateRedundant || g.Total != 0 {
			t.Errorf("%s = %s with %d members, want redundant from its sensor alone\n%s", id, g.State, g.Total, dump(r))
		}
	}
	sim.Inject("fan-red-degr")
	sim.Inject("ps-red-lost")
	_, r = collect(t, c)
	t.Log("\n" + dump(r))
	for _, tc := range []struct {
		group  string
		state  spof.GroupState
		code   spof.Code
		sensor string
	}{
		{collectors.IPMICoolingGroup, spof.StateDegraded, spof.CodeRedundancyDegraded, `"Fan Redundancy" reports Redundancy Degraded`},
		{collectors.IPMIPowerGroup, spof.StateRedundancyLost, spof.CodeRedundancyLost, `"PS Redundancy" reports Redundancy Lost`},
	} {
		if g := groupResult(t, r, tc.group); g.State != tc.state {
			t.Errorf("%s = %s, want %s", tc.group, g.State, tc.state)
		}
		if fs := findings(r, tc.group, tc.code); len(fs) != 1 || !strings.Contains(fs[0].Summary, tc.sensor) {
			t.Errorf("%s: %s findings %+v, want one naming %s", tc.group, tc.code, fs, tc.sensor)
		}
	}
	for _, f := range r.Findings {
		if f.Group == "" && !spof.HostWide(f.Code) {
			t.Errorf("finding about hardware without a group: %+v", f)
		}
	}
}
