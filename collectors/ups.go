package collectors

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
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
	// UPS lists the configured UPSes. Empty means: probe ProbeAddress and
	// monitor every UPS it lists; nothing answering is agent.ErrNoData.
	UPS          []UPSConfig
	ProbeAddress string
	// Timeout bounds one upsd server's poll, dial to LOGOUT (default 5 s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock for the last-good-read metric (default time.Now).
	Now func() time.Time
}

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

	descStatus, descCharge, descRuntime, descLoad, descInput, descOutput, descUp, descLastGood *prometheus.Desc
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &UPSCollector{opts: opts, log: opts.Logger.With("collector", "ups"), lastGood: map[string]time.Time{}}
	seen := map[string]bool{}
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
			if t.tls, err = ups.TLSConfigFromCAFile(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("ups[%d] %s: %w", i, t.name, err)
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
}

// Collect polls every upsd server once (one connection each, in parallel)
// and returns one group per UPS. A UPS whose driver is gone or stale is an
// unknown group with the reason; when no server can be reached at all,
// Collect returns an error (collector_unavailable).
func (c *UPSCollector) Collect(ctx context.Context) (agent.Result, error) {
	targets := c.targets
	if len(targets) == 0 {
		var err error
		targets, err = c.probe(ctx)
		if err != nil {
			return agent.Result{}, err
		}
	}
	reads, failed, sessions := c.pollAll(ctx, targets)
	if failed == sessions {
		// Every server is unreachable: the whole source is unavailable.
		var errs []error
		for _, r := range reads {
			errs = append(errs, r.err)
		}
		return agent.Result{}, fmt.Errorf("no upsd reachable: %w", errors.Join(upsDedupErrs(errs)...))
	}
	now := c.opts.Now()
	var res agent.Result
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range reads {
		g := upsGroup(r.target, r.state, r.err)
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

func upsDedupErrs(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if e == nil || seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		out = append(out, e)
	}
	return out
}

// probe asks the probe address which UPSes it serves. Nothing answering
// before anything ever answered is agent.ErrNoData: no NUT on this host.
func (c *UPSCollector) probe(ctx context.Context) ([]upsTarget, error) {
	c.mu.Lock()
	probed := c.probed
	c.mu.Unlock()
	timeout := c.opts.Timeout
	if !probed {
		timeout = min(timeout, 2*time.Second)
	}
	cl, err := ups.Dial(ctx, c.opts.ProbeAddress, ups.Options{Timeout: timeout})
	if err != nil {
		if probed {
			return nil, err
		}
		return nil, fmt.Errorf("%w: no upsd answers on %s (%v)", agent.ErrNoData, c.opts.ProbeAddress, err)
	}
	defer cl.Close()
	devs, err := cl.ListUPS(ctx)
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		if probed {
			return nil, fmt.Errorf("upsd on %s lists no UPS any more", c.opts.ProbeAddress)
		}
		return nil, fmt.Errorf("%w: upsd on %s lists no UPS", agent.ErrNoData, c.opts.ProbeAddress)
	}
	c.mu.Lock()
	c.probed = true
	c.mu.Unlock()
	var out []upsTarget
	for _, d := range devs {
		out = append(out, upsTarget{cfg: UPSConfig{Target: d.Name + "@" + c.opts.ProbeAddress}, name: d.Name, upsName: d.Name, addr: c.opts.ProbeAddress})
	}
	return out, nil
}

// upsSession is one connection to one upsd with one set of credentials.
type upsSession struct {
	addr    string
	opts    ups.Options
	targets []upsTarget
}

// pollAll reads every target, one connection per distinct server and
// credentials. It returns the reads in target order, the number of
// sessions that failed as a whole (dial, TLS, login) and the number of
// sessions.
func (c *UPSCollector) pollAll(ctx context.Context, targets []upsTarget) ([]upsRead, int, int) {
	var order []string
	byKey := map[string]*upsSession{}
	for _, t := range targets {
		key := strings.Join([]string{t.addr, t.cfg.Username, t.cfg.Password, strconv.FormatBool(t.cfg.StartTLS), t.cfg.CAFile}, "\x00")
		s, ok := byKey[key]
		if !ok {
			s = &upsSession{addr: t.addr, opts: ups.Options{
				Username: t.cfg.Username, Password: t.cfg.Password,
				StartTLS: t.cfg.StartTLS, TLSConfig: t.tls, Timeout: c.opts.Timeout,
			}}
			byKey[key] = s
			order = append(order, key)
		}
		s.targets = append(s.targets, t)
	}
	results := make(map[string][]upsRead, len(order))
	failedSessions := make(map[string]bool, len(order))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, key := range order {
		s := byKey[key]
		wg.Go(func() {
			reads, whole := upsPollSession(ctx, s)
			mu.Lock()
			results[key], failedSessions[key] = reads, whole
			mu.Unlock()
		})
	}
	wg.Wait()
	byName := map[string]upsRead{}
	failed := 0
	for _, key := range order {
		if failedSessions[key] {
			failed++
		}
		for _, r := range results[key] {
			byName[r.target.name] = r
		}
	}
	out := make([]upsRead, 0, len(targets))
	for _, t := range targets {
		out = append(out, byName[t.name])
	}
	return out, failed, len(order)
}

// upsPollSession reads the targets of one session over one connection. whole
// is true when the connection itself failed, so that no UPS was read.
func upsPollSession(ctx context.Context, s *upsSession) (reads []upsRead, whole bool) {
	sctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	cl, err := ups.Dial(sctx, s.addr, s.opts)
	if err != nil {
		for _, t := range s.targets {
			reads = append(reads, upsRead{target: t, err: err})
		}
		return reads, true
	}
	defer cl.Close()
	for _, t := range s.targets {
		vl, err := cl.ListVars(sctx, t.upsName)
		r := upsRead{target: t, err: err}
		if err == nil {
			r.state = ups.ParseState(vl)
		}
		reads = append(reads, r)
	}
	return reads, false
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
