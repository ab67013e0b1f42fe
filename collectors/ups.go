package collectors

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups"
)

// DefaultUPSProbeAddress is where the ups collector looks for upsd when no
// UPS is configured.
const DefaultUPSProbeAddress = "localhost:3493"

// UPSConfig is one configured UPS (config key `ups:`).
type UPSConfig struct {
	// Name names the group ups/nut/<Name>; empty means the UPS name of
	// Target.
	Name string
	// Target is "upsname@host:port" (host defaults to localhost, port to
	// 3493).
	Target   string
	Username string
	// Password is the content of password_file, already read by the
	// caller (trailing newline removed). Never logged.
	Password string
	StartTLS bool
	// CAFile is the PEM certificate (or CA) upsd's certificate must chain
	// to; empty means the system roots.
	CAFile string
	// MinRuntime: a battery runtime below it is ups_low_battery. Zero
	// disables the check (the LB flag still counts).
	MinRuntime time.Duration
	// MaxLoad in percent: a load above it is ups_overload. Zero disables
	// the check (the OVER flag still counts).
	MaxLoad float64
}

// UPSOptions configure the ups collector.
type UPSOptions struct {
	// UPS lists the configured UPSes. Empty means: when NUT is set up to
	// run upsd on this host (ups.LocalServerConfigured under RootPath),
	// probe ProbeAddress and monitor the UPSes it lists; otherwise, or
	// with nothing answering, agent.ErrNoData.
	UPS          []UPSConfig
	ProbeAddress string
	// RootPath is the host's root directory (--path.rootfs) under which
	// the local NUT configuration is looked up; default "/".
	RootPath string
	// MaxUPS bounds the UPSes taken from a probed upsd (default
	// DefaultMaxUPSPerServer); MaxVars the variables read per UPS (default
	// ups.DefaultMaxVars). Anything beyond is a collector_unavailable
	// finding naming the upsd and the counts.
	MaxUPS  int
	MaxVars int
	// Timeout bounds one upsd server's poll, dial to LOGOUT (default 5 s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock for the last-good-read metric and the log reminders
	// (default time.Now).
	Now func() time.Time
	// RemindEvery is how often an unchanged upsd failure is logged again
	// (default 10 min); a changed failure is logged at once.
	RemindEvery time.Duration
}

// DefaultMaxUPSPerServer bounds the UPSes monitored from one probed upsd:
// a host has one or two; thousands are a hostile or broken server.
const DefaultMaxUPSPerServer = 64

// DefaultUPSRemindEvery is how often an unchanged upsd failure is logged
// again.
const DefaultUPSRemindEvery = 10 * time.Minute

// Group attribute keys set on every ups/nut/<name> group. ApplyPowerFeeds
// reads AttrUPSStatus and AttrUPSLoad back, so the scheduler needs nothing
// but the groups.
const (
	AttrUPSTarget  = "target"
	AttrUPSModel   = "model"
	AttrUPSStatus  = ups.VarStatus         // "OL CHRG"
	AttrUPSLoad    = ups.VarLoad           // percent, e.g. "23"
	AttrUPSCharge  = ups.VarBatteryCharge  // percent
	AttrUPSRuntime = ups.VarBatteryRuntime // seconds
)

// UPSGroupPrefix starts the ID of every UPS group; the rest is the UPS name.
const UPSGroupPrefix = "ups/nut/"

// Member names inside a UPS group: the UPS has two sources of power for its
// load, and needs one of them.
const (
	UPSMemberMains   = "mains"
	UPSMemberBattery = "battery"
)

type upsTarget struct {
	cfg     UPSConfig
	name    string // group name
	upsName string // name on the server
	addr    string
	tls     *tls.Config
}

// UPSCollector reads UPSes from upsd with package ups and adapts each into
// a group ups/nut/<name>.
type UPSCollector struct {
	opts    UPSOptions
	targets []upsTarget
	log     *slog.Logger

	mu       sync.Mutex
	lastGood map[string]time.Time
	probed   bool // the probe address answered once: failing later is an error
	// failing is the logged failure of each upsd session (see logSessions).
	failing map[string]upsdFailure
	// selfTests is, per UPS, the last finished self-test seen and when it
	// was first seen: ups.test.result carries no time, so "seen" is ours.
	// In memory only: after a restart a passing result counts from the
	// restart (durable storage in the state directory is a follow-up).
	selfTests map[string]seenSelfTest

	descStatus, descCharge, descRuntime, descLoad, descInput, descOutput, descUp, descLastGood *prometheus.Desc
}

// seenSelfTest is a self-test result and when the collector first saw it.
type seenSelfTest struct {
	result, date string
	at           time.Time
}

// selfTestProof turns ups.test.result into proof. ups.test.date, when it
// parses, dates the test; otherwise the time this collector first saw this
// result does (a result that stays "Done and passed" for a year is one old
// test, not a fresh one each poll).
func (c *UPSCollector) selfTestProof(name string, st ups.State, now time.Time) *spof.Proof {
	outcome := st.SelfTest()
	if outcome == ups.TestNone {
		return c.rememberedProof(name)
	}
	seen, ok := c.selfTests[name]
	if !ok || seen.result != st.TestResult || seen.date != st.TestDate {
		seen = seenSelfTest{result: st.TestResult, date: st.TestDate, at: now}
		c.selfTests[name] = seen
	}
	return selfTestProof(seen, outcome, st.BatteryDate)
}

// rememberedProof keeps the last finished test while the UPS shows none
// (a test in progress, an unreadable poll).
func (c *UPSCollector) rememberedProof(name string) *spof.Proof {
	seen, ok := c.selfTests[name]
	if !ok {
		return nil
	}
	outcome := ups.State{TestResult: seen.result}.SelfTest()
	return selfTestProof(seen, outcome, "")
}

func selfTestProof(seen seenSelfTest, outcome ups.TestOutcome, batteryDate string) *spof.Proof {
	p := &spof.Proof{At: seen.at, Method: "ups self-test", Result: spof.ProofPassed, Detail: fmt.Sprintf("ups.test.result %q, first seen %s", seen.result, seen.at.UTC().Format(time.RFC3339))}
	if d, ok := ups.ParseTestDate(seen.date, time.Local); ok {
		p.At, p.Detail = d, fmt.Sprintf("ups.test.result %q, ups.test.date %s", seen.result, seen.date)
	}
	if outcome == ups.TestFailed {
		p.Result = spof.ProofFailed
	}
	if batteryDate != "" {
		p.Detail += ", battery dated " + batteryDate
	}
	return p
}

// upsdFailure is a logged upsd failure: its normalised text and when it
// was last logged.
type upsdFailure struct {
	key    string
	since  time.Time
	logged time.Time
}

// NewUPS validates the configuration (targets, CA files) and returns the
// collector.
func NewUPS(opts UPSOptions) (*UPSCollector, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.ProbeAddress == "" {
		opts.ProbeAddress = DefaultUPSProbeAddress
	}
	if opts.RootPath == "" {
		opts.RootPath = "/"
	}
	if opts.MaxUPS <= 0 {
		opts.MaxUPS = DefaultMaxUPSPerServer
	}
	if opts.MaxVars <= 0 {
		opts.MaxVars = ups.DefaultMaxVars
	}
	if opts.RemindEvery <= 0 {
		opts.RemindEvery = DefaultUPSRemindEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &UPSCollector{opts: opts, log: opts.Logger.With("collector", "ups"), lastGood: map[string]time.Time{}, failing: map[string]upsdFailure{}, selfTests: map[string]seenSelfTest{}}
	seen := map[string]bool{}
	// One *tls.Config per CA file: UPSes on one upsd with the same
	// credentials and CA then share a connection (ups.Poll groups by
	// equal Options).
	tlsByCA := map[string]*tls.Config{}
	for i, cfg := range opts.UPS {
		upsName, addr, err := ups.ParseTarget(cfg.Target)
		if err != nil {
			return nil, fmt.Errorf("ups[%d]: %w", i, err)
		}
		t := upsTarget{cfg: cfg, name: cfg.Name, upsName: upsName, addr: addr}
		if t.name == "" {
			t.name = upsName
		}
		if seen[t.name] {
			return nil, fmt.Errorf("ups[%d]: name %q used twice", i, t.name)
		}
		seen[t.name] = true
		if cfg.MaxLoad < 0 || cfg.MinRuntime < 0 {
			return nil, fmt.Errorf("ups[%d] %s: min_runtime and max_load must not be negative", i, t.name)
		}
		if cfg.CAFile != "" && !cfg.StartTLS {
			return nil, fmt.Errorf("ups[%d] %s: ca_file is set but starttls is not", i, t.name)
		}
		if cfg.StartTLS && cfg.CAFile != "" {
			if t.tls = tlsByCA[cfg.CAFile]; t.tls == nil {
				if t.tls, err = ups.TLSConfigFromCAFile(cfg.CAFile); err != nil {
					return nil, fmt.Errorf("ups[%d] %s: %w", i, t.name, err)
				}
				tlsByCA[cfg.CAFile] = t.tls
			}
		}
		c.targets = append(c.targets, t)
	}
	labels := []string{"ups"}
	c.descStatus = prometheus.NewDesc("spofwatch_ups_status", "UPS status flags from ups.status, one series per known flag (1 set, 0 not set).", []string{"ups", "flag"}, nil)
	c.descCharge = prometheus.NewDesc("spofwatch_ups_battery_charge_ratio", "Battery charge (battery.charge), 0 to 1.", labels, nil)
	c.descRuntime = prometheus.NewDesc("spofwatch_ups_battery_runtime_seconds", "Estimated battery runtime at the present load (battery.runtime).", labels, nil)
	c.descLoad = prometheus.NewDesc("spofwatch_ups_load_ratio", "UPS load relative to its rating (ups.load), 1 = 100 %.", labels, nil)
	c.descInput = prometheus.NewDesc("spofwatch_ups_input_voltage_volts", "UPS input voltage (input.voltage).", labels, nil)
	c.descOutput = prometheus.NewDesc("spofwatch_ups_output_voltage_volts", "UPS output voltage (output.voltage).", labels, nil)
	c.descUp = prometheus.NewDesc("spofwatch_ups_up", "1 when the last poll read the UPS's variables, 0 when upsd or the driver failed.", labels, nil)
	c.descLastGood = prometheus.NewDesc("spofwatch_ups_last_success_timestamp_seconds", "Time of the last good read of the UPS's variables.", labels, nil)
	return c, nil
}

// Name implements Collector.
func (c *UPSCollector) Name() string { return "ups" }

// upsRead is the outcome of reading one UPS.
type upsRead struct {
	target upsTarget
	state  ups.State
	err    error
	// vars counts the variables upsd listed, dropped counts those beyond
	// MaxVars that were not read.
	vars, dropped int
}

// Collect polls every upsd server once (one connection each, in parallel)
// and returns one group per UPS. A configured UPS always has its group,
// from the first poll on: unreachable, its driver gone or stale, it is an
// unknown group with the reason, and spofwatch_ups_up 0. Only probing
// fails as a whole: a probed upsd that answered once and no longer does is
// an error (collector_unavailable).
func (c *UPSCollector) Collect(ctx context.Context) (agent.Result, error) {
	var res agent.Result
	targets := c.targets
	probing := len(targets) == 0
	if probing {
		var excess *spof.Condition
		var err error
		targets, excess, err = c.probe(ctx)
		if err != nil {
			return agent.Result{}, stableError(err)
		}
		if excess != nil {
			res.HostConditions = append(res.HostConditions, *excess)
		}
	}
	poll := ups.Poll(ctx, c.pollTargets(targets))
	if err := ctx.Err(); err != nil {
		// Cut short (shutdown, overall deadline): not the UPSes' state.
		return agent.Result{}, fmt.Errorf("ups poll interrupted: %w", err)
	}
	if probing && poll.AllFailed() {
		return agent.Result{}, stableError(fmt.Errorf("upsd on %s listed its UPSes, then failed: %w", c.opts.ProbeAddress, poll.Sessions[0].Err))
	}
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !probing {
		c.logSessions(poll.Sessions, now)
	}
	for i, pr := range poll.Reads {
		r := upsRead{target: targets[i], err: pr.Err, vars: len(pr.Vars.Vars) + pr.Vars.Dropped, dropped: pr.Vars.Dropped}
		if pr.Err == nil {
			r.state = ups.ParseState(pr.Vars)
		}
		// The reason without the connection's local port: the same failure
		// reads the same from one poll to the next.
		g := upsGroup(r.target, r.state, stableError(r.err))
		if r.err == nil {
			g.Proof = c.selfTestProof(r.target.name, r.state, now)
		} else {
			g.Proof = c.rememberedProof(r.target.name)
		}
		if r.dropped > 0 {
			g.Conditions = append(g.Conditions, spof.Condition{
				Code: spof.CodeCollectorUnavailable,
				Summary: fmt.Sprintf("UPS %s: upsd on %s lists %d variables; only the first %d are read, %d ignored",
					r.target.name, r.target.addr, r.vars, c.opts.MaxVars, r.dropped),
				Details: "A UPS lists tens to a few hundred variables. Check what serves this UPS; a variable beyond the limit (ups.status among them) is not seen.",
			})
		}
		res.Groups = append(res.Groups, g)
		if r.err == nil && g.UnknownReason == "" {
			c.lastGood[r.target.name] = now
		} else {
			c.log.Debug("UPS unreadable", "group", g.ID, "peer", r.target.addr, "reason", g.UnknownReason)
		}
		res.Metrics = append(res.Metrics, c.metrics(r, g)...)
	}
	res.Descs = []*prometheus.Desc{c.descStatus, c.descCharge, c.descRuntime, c.descLoad, c.descInput, c.descOutput, c.descUp, c.descLastGood}
	return res, nil
}

// pollTargets turns the collector's targets into package ups targets.
func (c *UPSCollector) pollTargets(targets []upsTarget) []ups.Target {
	out := make([]ups.Target, len(targets))
	for i, t := range targets {
		out[i] = ups.Target{UPS: t.upsName, Addr: t.addr, Options: ups.Options{
			Username: t.cfg.Username, Password: t.cfg.Password,
			StartTLS: t.cfg.StartTLS, TLSConfig: t.tls,
			Timeout: c.opts.Timeout, MaxVars: c.opts.MaxVars,
		}}
	}
	return out
}

// logSessions warns when a upsd session starts failing or fails
// differently, repeats the warning every RemindEvery while it stays the
// same, and says when it works again. Failures compare by upsErrorKey, so
// an ephemeral source port or a deadline's remainder in the text does not
// count as a change. c.mu is held.
func (c *UPSCollector) logSessions(sessions []ups.SessionResult, now time.Time) {
	for _, s := range sessions {
		id := s.Addr + "\x00" + s.Username + "\x00" + strconv.FormatBool(s.StartTLS)
		prev, failed := c.failing[id]
		err := s.Problem()
		if err == nil {
			if failed {
				c.log.Info("upsd answers again", "upsd", s.Addr, "failing_since", prev.since)
				delete(c.failing, id)
			}
			continue
		}
		key := upsErrorKey(err)
		switch {
		case !failed || prev.key != key:
			c.log.Warn("upsd unusable: its UPSes are unknown", "upsd", s.Addr, "ups", s.UPS, "err", stableError(err))
			c.failing[id] = upsdFailure{key: key, since: now, logged: now}
		case now.Sub(prev.logged) >= c.opts.RemindEvery:
			c.log.Warn("upsd still unusable: its UPSes are unknown", "upsd", s.Addr, "ups", s.UPS, "failing_since", prev.since, "err", stableError(err))
			prev.logged = now
			c.failing[id] = prev
		}
	}
}

// Volatile parts of a network error's text: the local address of a
// connection ("read tcp 127.0.0.1:41234->127.0.0.1:3493"), whose port is
// new on every connection, and a duration such as the remaining budget in
// "no complete reply within 4.998s".
var (
	upsLocalAddr = regexp.MustCompile(`[^\s]+:\d+->`)
	upsDuration  = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b`)
)

// upsErrorKey is the text of err with the volatile parts normalised, so
// that the same failure compares equal from one poll to the next.
func upsErrorKey(err error) string {
	s := upsLocalAddr.ReplaceAllString(err.Error(), "")
	return upsDuration.ReplaceAllString(s, "<d>")
}

// upsStableErr keeps the chain of an error but prints it with the local
// address of the connection left out, so the scheduler, which logs a
// collector's error only when its text changes, does not log every poll.
type upsStableErr struct {
	msg string
	err error
}

func (e *upsStableErr) Error() string { return e.msg }
func (e *upsStableErr) Unwrap() error { return e.err }

func stableError(err error) error {
	if err == nil {
		return nil
	}
	// Durations in the text are whole seconds at the source (ups.Client),
	// so they stay the same from poll to poll.
	return &upsStableErr{msg: upsLocalAddr.ReplaceAllString(err.Error(), ""), err: err}
}

// probe asks the probe address which UPSes it serves, when NUT is set up
// to run upsd on this host: port 3493 is unprivileged, so anyone on the
// host could otherwise answer and be believed. No local NUT server, or
// nothing answering before anything ever answered, is agent.ErrNoData.
// More than MaxUPS UPSes are cut to the first MaxUPS, and excess says so.
func (c *UPSCollector) probe(ctx context.Context) (targets []upsTarget, excess *spof.Condition, err error) {
	c.mu.Lock()
	probed := c.probed
	c.mu.Unlock()
	if ok, why := ups.LocalServerConfigured(os.DirFS(c.opts.RootPath)); !ok {
		if probed {
			return nil, nil, fmt.Errorf("upsd on %s was probed before, but NUT is no longer set up for a local upsd: %s", c.opts.ProbeAddress, why)
		}
		return nil, nil, fmt.Errorf("%w: no local NUT server configured, %s not probed (%s)", agent.ErrNoData, c.opts.ProbeAddress, why)
	}
	timeout := c.opts.Timeout
	if !probed {
		timeout = min(timeout, 2*time.Second)
	}
	cl, err := ups.Dial(ctx, c.opts.ProbeAddress, ups.Options{Timeout: timeout})
	if err != nil {
		if probed {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: no upsd answers on %s (%v)", agent.ErrNoData, c.opts.ProbeAddress, err)
	}
	defer cl.Close()
	devs, err := cl.ListUPS(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(devs) == 0 {
		if probed {
			return nil, nil, fmt.Errorf("upsd on %s lists no UPS any more", c.opts.ProbeAddress)
		}
		return nil, nil, fmt.Errorf("%w: upsd on %s lists no UPS", agent.ErrNoData, c.opts.ProbeAddress)
	}
	c.mu.Lock()
	c.probed = true
	c.mu.Unlock()
	if n := len(devs); n > c.opts.MaxUPS {
		devs = devs[:c.opts.MaxUPS]
		excess = &spof.Condition{
			Code: spof.CodeCollectorUnavailable,
			Summary: fmt.Sprintf("upsd on %s lists %d UPSes; only the first %d are monitored, %d ignored",
				c.opts.ProbeAddress, n, c.opts.MaxUPS, n-c.opts.MaxUPS),
			Details: fmt.Sprintf("A host has one or a few UPSes. Check what listens on %s; list the UPSes to watch under ups: in the configuration.", c.opts.ProbeAddress),
		}
	}
	for _, d := range devs {
		targets = append(targets, upsTarget{cfg: UPSConfig{Target: d.Name + "@" + c.opts.ProbeAddress}, name: d.Name, upsName: d.Name, addr: c.opts.ProbeAddress})
	}
	return targets, excess, nil
}

// upsGroup adapts one UPS read into its group. The UPS feeds its load from
// two sources, mains and battery, and needs one: OL with a good battery is
// redundant, OB leaves the battery alone (redundancy_lost plus
// ups_on_battery), a battery to replace is a degraded member.
func upsGroup(t upsTarget, st ups.State, readErr error) spof.Group {
	g := spof.Group{
		ID:         UPSGroupPrefix + t.name,
		Kind:       spof.KindUPS,
		Function:   "UPS " + t.name,
		Required:   1,
		Attributes: []spof.Attribute{{Key: AttrUPSTarget, Value: t.upsName + "@" + t.addr}},
		// A battery self-test proves the battery carries the load.
		Provable: spof.Provable,
	}
	switch {
	case readErr != nil:
		g.UnknownReason = readErr.Error()
		return g
	case !st.StatusKnown:
		g.UnknownReason = "upsd reports no ups.status for " + t.upsName
		return g
	case st.Has(ups.FlagWait):
		g.UnknownReason = "the UPS driver is still initialising (ups.status WAIT)"
		return g
	}
	g.Attributes = append(g.Attributes, upsAttributes(st)...)

	mains := spof.Member{Name: UPSMemberMains, State: spof.MemberOK, Detail: "on line power" + upsVoltage(" input", st.InputVoltage)}
	switch {
	case st.Has(ups.FlagOnBattery):
		mains.State, mains.Detail = spof.MemberFailed, "mains lost: on battery"+upsVoltage(", input", st.InputVoltage)
	case st.Has(ups.FlagOnline), st.Has(ups.FlagBypass):
	default:
		mains.State, mains.Detail = spof.MemberUnknown, fmt.Sprintf("ups.status %q says neither OL nor OB", strings.Join(upsFlagStrings(st.Status), " "))
	}
	battery := spof.Member{Name: UPSMemberBattery, State: spof.MemberOK, Detail: upsBatteryDetail(st)}
	if st.Has(ups.FlagReplaceBattery) {
		battery.State, battery.Detail = spof.MemberDegraded, "replace battery (RB)"+upsDateClause(st.BatteryDate)
	}
	g.Members = []spof.Member{mains, battery}
	g.Conditions = upsConditions(t, st)
	return g
}

// upsConditions turns the UPS's flags and readings into source findings.
func upsConditions(t upsTarget, st ups.State) []spof.Condition {
	fn := "UPS " + t.name
	var cs []spof.Condition
	add := func(code spof.Code, sev spof.Severity, summary, details string) {
		cs = append(cs, spof.Condition{Code: code, Severity: sev, Summary: summary, Details: details})
	}
	runtime, runtimeOK := st.Runtime()
	if st.Has(ups.FlagOnBattery) {
		add(spof.CodeUPSOnBattery, 0, fmt.Sprintf("%s is on battery: mains lost; %s", fn, upsBatteryDetail(st)),
			"The UPS is the last thing between the host and an outage. Restore mains power or shut down cleanly before the battery runs out.")
	}
	var low []string
	if st.Has(ups.FlagLowBattery) {
		low = append(low, "low battery (LB)")
	}
	if t.cfg.MinRuntime > 0 {
		switch {
		case runtimeOK && runtime < t.cfg.MinRuntime:
			low = append(low, fmt.Sprintf("runtime %s below the minimum %s", runtime.Round(time.Second), t.cfg.MinRuntime))
		case !runtimeOK:
			add(spof.CodeCollectorUnavailable, 0, fmt.Sprintf("%s reports no battery.runtime: the min_runtime check (%s) cannot run", fn, t.cfg.MinRuntime), "")
		}
	}
	if len(low) > 0 {
		add(spof.CodeUPSLowBattery, 0, fmt.Sprintf("%s: %s; %s", fn, strings.Join(low, ", "), upsBatteryDetail(st)),
			"On battery the host would not stay up for long. Check the battery and its charge.")
	}
	if st.Has(ups.FlagAlarm) || st.Alarm != "" {
		alarm := st.Alarm
		if alarm == "" {
			alarm = "ALARM flag set, no ups.alarm text"
		}
		add(spof.CodeMemberDegraded, 0, fmt.Sprintf("%s alarm: %s", fn, alarm), "The UPS reports an active alarm (ups.alarm).")
	}
	if st.Has(ups.FlagBypass) {
		add(spof.CodeUPSBypass, 0, fmt.Sprintf("%s is on bypass: the load is fed straight from mains, without battery protection", fn),
			"A mains failure now is an outage. Find out why the UPS switched to bypass (maintenance, fault, overload).")
	}
	var over []string
	if st.Has(ups.FlagOverload) {
		over = append(over, "overload (OVER)")
	}
	if t.cfg.MaxLoad > 0 {
		switch {
		case st.Load.Valid && st.Load.Value > t.cfg.MaxLoad:
			over = append(over, fmt.Sprintf("load %g%% above the maximum %g%%", st.Load.Value, t.cfg.MaxLoad))
		case !st.Load.Valid:
			add(spof.CodeCollectorUnavailable, 0, fmt.Sprintf("%s reports no ups.load: the max_load check (%g%%) cannot run", fn, t.cfg.MaxLoad), "")
		}
	}
	if len(over) > 0 {
		add(spof.CodeUPSOverload, 0, fmt.Sprintf("%s: %s", fn, strings.Join(over, ", ")), "Move load off this UPS.")
	}
	// OFF and FSD mean the UPS feeds (or is about to feed) no power at all:
	// the function the group stands for is out.
	if st.Has(ups.FlagForcedShutdown) {
		add(spof.CodeGroupDown, spof.SeverityCritical, fmt.Sprintf("%s: forced shutdown (FSD): the systems it feeds are being shut down and its output will be cut", fn), "")
	}
	if st.Has(ups.FlagOff) {
		add(spof.CodeGroupDown, spof.SeverityCritical, fmt.Sprintf("%s: output is off (OFF): it feeds no power", fn), "")
	}
	if len(st.Problems) > 0 || len(st.UnknownFlags) > 0 {
		var p []string
		p = append(p, st.Problems...)
		if len(st.UnknownFlags) > 0 {
			p = append(p, fmt.Sprintf("unknown status flags %s", strings.Join(upsFlagStrings(st.UnknownFlags), " ")))
		}
		add(spof.CodeNotice, spof.SeverityInfo, fmt.Sprintf("%s: %s", fn, strings.Join(p, "; ")), "These variables are ignored; the rest of the UPS's data is used.")
	}
	return cs
}

func upsAttributes(st ups.State) []spof.Attribute {
	var a []spof.Attribute
	put := func(k, v string) {
		if v != "" {
			a = append(a, spof.Attribute{Key: k, Value: v})
		}
	}
	num := func(r ups.Reading) string {
		if !r.Valid {
			return ""
		}
		return strconv.FormatFloat(r.Value, 'f', -1, 64)
	}
	put(AttrUPSModel, st.Model)
	put(AttrUPSStatus, strings.Join(upsFlagStrings(st.Status), " "))
	put(AttrUPSCharge, num(st.BatteryCharge))
	put(AttrUPSRuntime, num(st.BatteryRuntime))
	put(AttrUPSLoad, num(st.Load))
	put(ups.VarBatteryDate, st.BatteryDate)
	put(ups.VarInputVoltage, num(st.InputVoltage))
	put(ups.VarOutputVoltage, num(st.OutputVoltage))
	put(ups.VarAlarm, st.Alarm)
	return a
}

func upsFlagStrings(fs []ups.Flag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func upsBatteryDetail(st ups.State) string {
	var p []string
	if rt, ok := st.Runtime(); ok {
		p = append(p, fmt.Sprintf("runtime %s", rt.Round(time.Second)))
	}
	if st.BatteryCharge.Valid {
		p = append(p, fmt.Sprintf("charge %g%%", st.BatteryCharge.Value))
	}
	if st.Load.Valid {
		p = append(p, fmt.Sprintf("load %g%%", st.Load.Value))
	}
	if len(p) == 0 {
		return "no battery readings"
	}
	return strings.Join(p, ", ")
}

func upsDateClause(d string) string {
	if d == "" {
		return ""
	}
	return ", battery dated " + d
}

func upsVoltage(prefix string, r ups.Reading) string {
	if !r.Valid {
		return ""
	}
	return fmt.Sprintf("%s %g V", prefix, r.Value)
}

func (c *UPSCollector) metrics(r upsRead, g spof.Group) []prometheus.Metric {
	name := r.target.name
	var ms []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	ok := r.err == nil && g.UnknownReason == ""
	gauge(c.descUp, agent.GaugeBool(ok), name)
	if t, seen := c.lastGood[name]; seen {
		gauge(c.descLastGood, float64(t.UnixNano())/1e9, name)
	}
	if !ok {
		return ms
	}
	st := r.state
	for _, f := range ups.Flags {
		gauge(c.descStatus, agent.GaugeBool(st.Has(f)), name, string(f))
	}
	if st.BatteryCharge.Valid {
		gauge(c.descCharge, st.BatteryCharge.Value/100, name)
	}
	if st.BatteryRuntime.Valid {
		gauge(c.descRuntime, st.BatteryRuntime.Value, name)
	}
	if st.Load.Valid {
		gauge(c.descLoad, st.Load.Value/100, name)
	}
	if st.InputVoltage.Valid {
		gauge(c.descInput, st.InputVoltage.Value, name)
	}
	if st.OutputVoltage.Valid {
		gauge(c.descOutput, st.OutputVoltage.Value, name)
	}
	return ms
}

// upsAttr returns the value of an attribute of a group.
func upsAttr(g spof.Group, key string) (string, bool) {
	for _, a := range g.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}
