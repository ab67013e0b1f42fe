package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/ipmi"
	"github.com/spofwatch/spofwatch/spof"
)

// Group IDs of the IPMI collector.
const (
	IPMIPowerGroup   = "power/ipmi/psu"
	IPMICoolingGroup = "cooling/ipmi/fans"
)

// Finding codes for BMC chassis facts that member counts cannot express
// (defined in spof.Codes with their severities).
const (
	CodeChassisPowerFault     = spof.CodeChassisPowerFault
	CodeChassisPowerOverload  = spof.CodeChassisPowerOverload
	CodeChassisCoolingFault   = spof.CodeChassisCoolingFault
	CodePowerRestoreAlwaysOff = spof.CodePowerRestoreAlwaysOff
)

// IPMIOptions configure the IPMI collector (config key `ipmi`).
type IPMIOptions struct {
	// Interface is "open" (in-band /dev/ipmi0) or "lanplus". Empty: lanplus
	// when Host is set, else open when /dev/ipmi0 exists, else the collector
	// has no data (agent.ErrNoData).
	Interface string
	Device    string // default /dev/ipmi0
	Host      string
	Port      int
	Username  string
	// Password is the content of password_file, already read. Never logged.
	Password    string
	CipherSuite int
	// RequestTimeout bounds one IPMI request; Collect's ctx bounds a poll.
	RequestTimeout time.Duration
	// PSURequired is how many PSUs the host needs (psu_required); 0 infers
	// it from the power-unit redundancy sensor, else 1.
	PSURequired int
	// BackoffMin/BackoffMax bound reconnect backoff (defaults 1s / 2m).
	BackoffMin, BackoffMax time.Duration
	Logger                 *slog.Logger
}

// IPMI reads PSU, power-unit and fan redundancy from the BMC.
type IPMI struct {
	bmc  *ipmi.BMC
	opts IPMIOptions
}

var (
	ipmiSensorStateDesc = prometheus.NewDesc("spofwatch_ipmi_sensor_state",
		"State of a BMC power supply, power unit or fan sensor as spofwatch reads it (state set).",
		[]string{"sensor", "type", "state"}, nil)
	ipmiRedundancyStateDesc = prometheus.NewDesc("spofwatch_ipmi_redundancy_state",
		"State of a BMC redundancy sensor (event/reading type 0Bh) (state set).",
		[]string{"sensor", "type", "state"}, nil)
	ipmiCommandsDesc = prometheus.NewDesc("spofwatch_ipmi_commands_total",
		"IPMI requests sent to the BMC, session setup, keep-alives and retries included.", nil, nil)
	ipmiPollCommandsDesc = prometheus.NewDesc("spofwatch_ipmi_poll_commands",
		"IPMI requests the last poll sent.", nil, nil)
	ipmiPollDurationDesc = prometheus.NewDesc("spofwatch_ipmi_poll_duration_seconds",
		"Wall time of the last BMC poll.", nil, nil)
	ipmiConnectsDesc = prometheus.NewDesc("spofwatch_ipmi_sessions_opened_total",
		"IPMI sessions opened; it grows only on reconnects, the session is reused.", nil, nil)
	ipmiRestorePolicyDesc = prometheus.NewDesc("spofwatch_ipmi_power_restore_policy",
		"What the BMC does when mains power returns (state set).", []string{"policy"}, nil)
	ipmiChassisFaultDesc = prometheus.NewDesc("spofwatch_ipmi_chassis_fault",
		"Faults in the BMC's chassis status (1 = asserted).", []string{"fault"}, nil)
)

// NewIPMI builds the collector. It does not connect; Collect does, and
// reuses the session.
func NewIPMI(opts IPMIOptions) (*IPMI, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	bmc, err := ipmi.New(ipmi.Options{
		Interface:      opts.Interface,
		Device:         opts.Device,
		Host:           opts.Host,
		Port:           opts.Port,
		Username:       opts.Username,
		Password:       opts.Password,
		CipherSuite:    opts.CipherSuite,
		RequestTimeout: opts.RequestTimeout,
		BackoffMin:     opts.BackoffMin,
		BackoffMax:     opts.BackoffMax,
		Logger:         opts.Logger.With("collector", "ipmi"),
	})
	if errors.Is(err, ipmi.ErrNoBMC) {
		return &IPMI{opts: opts}, nil
	}
	if err != nil {
		return nil, err
	}
	return &IPMI{bmc: bmc, opts: opts}, nil
}

// Name implements Collector.
func (c *IPMI) Name() string { return "ipmi" }

// Close ends the BMC session.
func (c *IPMI) Close() error {
	if c.bmc == nil {
		return nil
	}
	return c.bmc.Close()
}

// Collect polls the BMC once. Without a configured BMC and without
// /dev/ipmi0 it returns agent.ErrNoData.
func (c *IPMI) Collect(ctx context.Context) (agent.Result, error) {
	if c.bmc == nil {
		return agent.Result{}, agent.ErrNoData
	}
	st, err := c.bmc.Poll(ctx)
	if err != nil {
		return agent.Result{}, fmt.Errorf("ipmi: %w", err)
	}
	groups, host := IPMIGroups(st, c.opts.PSURequired)
	return agent.Result{
		Groups:         groups,
		HostConditions: host,
		Metrics:        ipmiMetrics(st),
		Descs:          ipmiDescs(),
	}, nil
}

func ipmiDescs() []*prometheus.Desc {
	return []*prometheus.Desc{ipmiSensorStateDesc, ipmiRedundancyStateDesc, ipmiCommandsDesc, ipmiPollCommandsDesc,
		ipmiPollDurationDesc, ipmiConnectsDesc, ipmiRestorePolicyDesc, ipmiChassisFaultDesc}
}

// sensorNames gives every sensor a unique name: the trimmed SDR ID string,
// with the sensor number added when two sensors share one.
func sensorNames(st *ipmi.State) []string {
	count := map[string]int{}
	for _, s := range st.Sensors {
		count[s.Name]++
	}
	names := make([]string, len(st.Sensors))
	for i, s := range st.Sensors {
		names[i] = s.Name
		if count[s.Name] > 1 {
			names[i] = fmt.Sprintf("%s #%#02x", s.Name, s.Number)
		}
	}
	return names
}

// sensorClass says what a sensor of interest is to the collector.
type sensorClass int

const (
	classOther sensorClass = iota
	classPSU
	classPowerUnit
	classFan
	classPowerRedundancy
	classFanRedundancy
	classOtherRedundancy
)

func classify(s ipmi.SDR) sensorClass {
	if s.ReadingType == ipmi.ReadingTypeRedundancy {
		switch s.SensorType {
		case ipmi.SensorTypePowerSupply, ipmi.SensorTypePowerUnit:
			return classPowerRedundancy
		case ipmi.SensorTypeFan, ipmi.SensorTypeCooling:
			return classFanRedundancy
		}
		return classOtherRedundancy
	}
	switch s.SensorType {
	case ipmi.SensorTypePowerSupply:
		// Only the sensor-specific (status) reading is a PSU's presence and
		// failure bits. A threshold "Power Supply N" sensor (watts, as HPE
		// iLO reports them) would read "below lower non-critical" as
		// presence; it is not a member.
		if s.ReadingType != ipmi.ReadingTypeSensorSpecific {
			return classOther
		}
		return classPSU
	case ipmi.SensorTypePowerUnit:
		return classPowerUnit
	case ipmi.SensorTypeFan:
		return classFan
	}
	return classOther
}

func typeLabel(c sensorClass) string {
	switch c {
	case classPSU:
		return "power_supply"
	case classPowerUnit, classPowerRedundancy:
		return "power_unit"
	case classFan, classFanRedundancy:
		return "fan"
	}
	return "other"
}

// psuMember turns a power-supply sensor into a member.
func psuMember(name string, s ipmi.SensorState) spof.Member {
	m := spof.Member{Name: name, State: spof.MemberOK}
	if !s.Known() {
		m.State, m.Detail = spof.MemberUnknown, s.Why()
		return m
	}
	p := ipmi.DecodePSU(s.SDR, s.Reading)
	var failed, degraded, notes []string
	if p.PresenceReported && !p.Present {
		failed = append(failed, "presence not detected")
	}
	if p.Failure {
		failed = append(failed, "failure detected")
	}
	if p.ACLost {
		failed = append(failed, "AC lost")
	}
	if p.InputLostOrRange {
		failed = append(failed, "input lost or out of range")
	}
	if p.ConfigurationError {
		failed = append(failed, "configuration error")
	}
	if p.PredictiveFailure {
		degraded = append(degraded, "predictive failure")
	}
	if p.InputOutOfRange {
		degraded = append(degraded, "input out of range, but present")
	}
	if p.Inactive {
		notes = append(notes, "inactive (standby)")
	}
	if !p.PresenceReported {
		notes = append(notes, "the BMC does not report presence for this sensor")
	}
	switch {
	case p.PresenceReported && !p.Present:
		m.State = spof.MemberMissing
	case len(failed) > 0:
		m.State = spof.MemberFailed
	case len(degraded) > 0:
		m.State = spof.MemberDegraded
	}
	m.Detail = strings.Join(append(append(failed, degraded...), notes...), ", ")
	return m
}

// fanMember turns a fan sensor into a member.
func fanMember(name string, s ipmi.SensorState) spof.Member {
	m := spof.Member{Name: name, State: spof.MemberOK}
	if !s.Known() {
		m.State, m.Detail = spof.MemberUnknown, s.Why()
		return m
	}
	r := s.Reading
	switch s.ReadingType {
	case ipmi.ReadingTypeThreshold:
		switch {
		case r.States&(ipmi.BelowLowerCritical|ipmi.BelowLowerNonRecoverable) != 0:
			m.State, m.Detail = spof.MemberFailed, "below lower critical threshold"
		case r.States&ipmi.AboveUpperNonRecoverable != 0:
			m.State, m.Detail = spof.MemberFailed, "above upper non-recoverable threshold"
		case r.States&ipmi.BelowLowerNonCritical != 0:
			m.State, m.Detail = spof.MemberDegraded, "below lower non-critical threshold"
		case r.States&(ipmi.AboveUpperNonCritical|ipmi.AboveUpperCritical) != 0:
			m.State, m.Detail = spof.MemberDegraded, "above upper threshold"
		}
	case ipmi.ReadingTypePresence:
		switch {
		case r.Asserted(1):
		case r.Asserted(0):
			m.State, m.Detail = spof.MemberMissing, "device absent"
		default:
			m.State, m.Detail = spof.MemberUnknown, "no presence state asserted"
		}
	case 0x07: // generic severity
		switch {
		case r.Asserted(2) || r.Asserted(3) || r.Asserted(5) || r.Asserted(6):
			m.State, m.Detail = spof.MemberFailed, "critical"
		case r.Asserted(1) || r.Asserted(4):
			m.State, m.Detail = spof.MemberDegraded, "non-critical"
		case !r.Asserted(0):
			m.State, m.Detail = spof.MemberUnknown, "no severity state asserted"
		}
	default:
		m.State, m.Detail = spof.MemberUnknown, fmt.Sprintf("event/reading type %#02x is not interpreted", s.ReadingType)
	}
	return m
}

// sensorVerdict is what a BMC redundancy state says about the group, in the
// model's states. Ranking it against the member count is Evaluate's job.
func sensorVerdict(r ipmi.Redundancy) spof.GroupState {
	switch r {
	case ipmi.FullyRedundant:
		return spof.StateRedundant
	case ipmi.RedundancyDegraded, ipmi.RedundancyDegradedFromFull, ipmi.RedundancyDegradedFromNonRedundant:
		return spof.StateDegraded
	case ipmi.RedundancyLost, ipmi.NonRedundantSufficientFromRedundant, ipmi.NonRedundantSufficientFromInsufficient:
		return spof.StateRedundancyLost
	case ipmi.NonRedundantInsufficient:
		return spof.StateDown
	}
	return spof.StateUnknown
}

// redundancySource is one BMC redundancy sensor with its state.
type redundancySource struct {
	name  string
	state ipmi.Redundancy
	known bool
	why   string
	event string // the sensor's latest SEL event, for alert descriptions
}

// addSensorVerdicts hands each BMC redundancy sensor's verdict to Evaluate
// as a group-level condition. Evaluate weighs it against the member count:
// the worse verdict wins, and an outvoted sensor becomes a notice. The
// summary says what both sides say, whichever wins. It returns how many
// sensors could be read.
func addSensorVerdicts(g *spof.Group, srcs []redundancySource) int {
	countSays := "; the BMC has no sensors for the individual members to count"
	if len(g.Members) > 0 {
		count, working := spof.CountVerdict(g.Members, g.Required)
		countSays = fmt.Sprintf(", while the member count says %s (%d of %d working, %d required)",
			strings.ReplaceAll(string(count), "_", " "), working, len(g.Members), max(g.Required, 1))
	}
	known := 0
	for _, src := range srcs {
		if !src.known {
			g.Attributes = append(g.Attributes, spof.Attribute{Key: "bmc_redundancy", Value: src.name + ": unknown (" + src.why + ")"})
			g.Conditions = append(g.Conditions, spof.Condition{
				Code:    spof.CodeCollectorUnavailable,
				Member:  src.name,
				Summary: fmt.Sprintf("%s: BMC redundancy sensor %q unreadable: %s", g.Function, src.name, src.why),
			})
			continue
		}
		known++
		g.Attributes = append(g.Attributes, spof.Attribute{Key: "bmc_redundancy", Value: src.name + ": " + src.state.Text()})
		g.Conditions = append(g.Conditions, spof.Condition{
			State:   sensorVerdict(src.state),
			Summary: fmt.Sprintf("%s: BMC sensor %q reports %s%s", g.Function, src.name, src.state.Text(), countSays),
			Details: "Where the BMC's own redundancy sensor and the individual sensors disagree, the worse verdict wins. " +
				"Check the BMC's event log and the configuration of the parts." + src.event,
		})
	}
	return known
}

// sensorOnlyGroup completes a group the BMC describes only by redundancy
// sensors (no per-PSU or per-fan sensors): it exists, with the sensors'
// verdict, so its findings name it; with no readable sensor it is unknown.
func sensorOnlyGroup(g *spof.Group, srcs []redundancySource, parts string) {
	g.Attributes = append(g.Attributes, spof.Attribute{Key: "members",
		Value: "none: the BMC has no " + parts + " sensors; the state is its redundancy sensor's"})
	if addSensorVerdicts(g, srcs) > 0 {
		return
	}
	var why []string
	for _, src := range srcs {
		why = append(why, fmt.Sprintf("BMC redundancy sensor %q unreadable: %s", src.name, src.why))
	}
	g.UnknownReason = strings.Join(why, "; ")
}

// IPMIGroups adapts one poll into the power and cooling groups and host-wide
// conditions. psuRequired > 0 overrides the inferred PSU count needed.
// Member names are the SDR ID strings, which power_feeds keys use
// (ApplyPowerFeeds adds the feed domains when groups are composed).
func IPMIGroups(st *ipmi.State, psuRequired int) ([]spof.Group, []spof.Condition) {
	names := sensorNames(st)
	power := spof.Group{ID: IPMIPowerGroup, Kind: spof.KindPower, Function: "power supplies"}
	cooling := spof.Group{ID: IPMICoolingGroup, Kind: spof.KindCooling, Function: "fans"}
	var powerRed, fanRed []redundancySource
	var host []spof.Condition
	var notMonitored []string
	for i, s := range st.Sensors {
		name := names[i]
		class := classify(s.SDR)
		switch class {
		case classPSU:
			power.Members = append(power.Members, psuMember(name, s))
		case classFan:
			if s.Err == "" && s.Reading.ScanningDisabled {
				// Unpopulated fan headers are typically not scanned; the BMC
				// itself says it does not watch them.
				notMonitored = append(notMonitored, name)
				continue
			}
			cooling.Members = append(cooling.Members, fanMember(name, s))
		case classPowerUnit:
			power.Conditions = append(power.Conditions, powerUnitConditions(name, s)...)
		case classPowerRedundancy, classFanRedundancy, classOtherRedundancy:
			src := redundancySource{name: name, known: s.Known(), why: s.Why(), event: lastEvent(st.Events, s.SDR)}
			if src.known {
				src.state = ipmi.DecodeRedundancy(s.Reading)
				if src.state == ipmi.RedundancyUnknown {
					src.known, src.why = false, "no redundancy state asserted"
				}
			}
			switch class {
			case classPowerRedundancy:
				powerRed = append(powerRed, src)
			case classFanRedundancy:
				fanRed = append(fanRed, src)
			default:
				host = append(host, orphanRedundancy(src)...)
			}
		}
	}

	if len(power.Members) > 0 {
		switch {
		case psuRequired > 0:
			power.Required = psuRequired
			power.Attributes = append(power.Attributes, spof.Attribute{Key: "required", Value: fmt.Sprintf("%d (psu_required)", psuRequired)})
		case len(powerRed) > 0:
			power.Required = max(1, len(power.Members)-1)
			power.Attributes = append(power.Attributes, spof.Attribute{Key: "required",
				Value: fmt.Sprintf("%d (N-1: the BMC has power redundancy sensor %q)", power.Required, powerRed[0].name)})
		default:
			power.Required = 1
			power.Attributes = append(power.Attributes, spof.Attribute{Key: "required", Value: "1 (default; set psu_required)"})
		}
		addSensorVerdicts(&power, powerRed)
	} else if len(powerRed) > 0 {
		sensorOnlyGroup(&power, powerRed, "power supply")
	}

	if len(cooling.Members) > 0 {
		cooling.Required = max(1, len(cooling.Members)-1)
		if len(fanRed) > 0 {
			cooling.Attributes = append(cooling.Attributes, spof.Attribute{Key: "required",
				Value: fmt.Sprintf("%d (N-1: the BMC has fan redundancy sensor %q)", cooling.Required, fanRed[0].name)})
		} else {
			cooling.Attributes = append(cooling.Attributes, spof.Attribute{Key: "required",
				Value: fmt.Sprintf("%d (assumed N-1: the BMC has no fan redundancy sensor)", cooling.Required)})
		}
		if len(notMonitored) > 0 {
			cooling.Attributes = append(cooling.Attributes, spof.Attribute{Key: "not_monitored", Value: strings.Join(notMonitored, ", ")})
		}
		addSensorVerdicts(&cooling, fanRed)
	} else if len(fanRed) > 0 {
		sensorOnlyGroup(&cooling, fanRed, "fan")
	}

	if ch := st.Chassis; ch != nil {
		if ch.PowerFault {
			power.Conditions = append(power.Conditions, spof.Condition{Code: CodeChassisPowerFault, Severity: spof.SeverityCritical,
				Summary: "BMC chassis status: fault in the main power subsystem"})
		}
		if ch.PowerOverload {
			power.Conditions = append(power.Conditions, spof.Condition{Code: CodeChassisPowerOverload, Severity: spof.SeverityWarning,
				Summary: "BMC chassis status: power overload (the system was shut down by an overload)"})
		}
		if ch.RestorePolicy == ipmi.RestoreAlwaysOff {
			power.Conditions = append(power.Conditions, spof.Condition{Code: CodePowerRestoreAlwaysOff, Severity: spof.SeverityWarning,
				Summary: "power restore policy is always-off: after a power loss the host stays off until someone powers it on",
				Details: "Set it with `ipmitool chassis policy always-on` or `previous` if the host must come back by itself."})
		}
		if ch.CoolingFault {
			cooling.Conditions = append(cooling.Conditions, spof.Condition{Code: CodeChassisCoolingFault, Severity: spof.SeverityWarning,
				Summary: "BMC chassis status: cooling/fan fault detected"})
		}
		power.Attributes = append(power.Attributes, spof.Attribute{Key: "power_restore_policy", Value: ch.RestorePolicy.String()})
	} else if st.ChassisErr != "" {
		power.Attributes = append(power.Attributes, spof.Attribute{Key: "chassis_status", Value: "unreadable: " + st.ChassisErr})
		// Power fault and restore policy cannot be judged: say so rather
		// than skip the checks in silence.
		power.Conditions = append(power.Conditions, spof.Condition{Code: spof.CodeCollectorUnavailable, Member: "chassis status",
			Summary: "BMC chassis status unreadable (power fault, overload and restore policy not checked): " + st.ChassisErr})
	}

	for _, ev := range st.Events {
		line := ev.Time.Format(time.RFC3339) + " " + orName(ev.Sensor, ev.SensorNumber) + ": " + ev.Text
		if ev.BMCTimeUnset {
			line += " (BMC clock unset; time first seen)"
		}
		a := spof.Attribute{Key: "event", Value: line}
		switch ev.SensorType {
		case ipmi.SensorTypeFan, ipmi.SensorTypeCooling:
			cooling.Attributes = append(cooling.Attributes, a)
		case ipmi.SensorTypePowerSupply, ipmi.SensorTypePowerUnit:
			power.Attributes = append(power.Attributes, a)
		}
	}

	// A group exists when the BMC has a sensor for it, member or redundancy.
	// Chassis facts about a function the BMC has no sensor for stay
	// host-wide.
	var groups []spof.Group
	if len(power.Members) > 0 || len(powerRed) > 0 {
		groups = append(groups, power)
	} else {
		host = append(host, power.Conditions...)
	}
	if len(cooling.Members) > 0 || len(fanRed) > 0 {
		groups = append(groups, cooling)
	} else {
		host = append(host, cooling.Conditions...)
	}
	return groups, host
}

// lastEvent describes a sensor's most recent kept SEL event, or "".
func lastEvent(events []ipmi.Event, s ipmi.SDR) string {
	for i := len(events) - 1; i >= 0; i-- {
		if e := events[i]; e.SensorNumber == s.Number && e.Sensor == s.Name {
			return " Last BMC event: " + e.Time.Format(time.RFC3339) + " " + e.Text + "."
		}
	}
	return ""
}

func orName(name string, number uint8) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("sensor %#02x", number)
}

// orphanRedundancy reports a redundancy sensor of a type with no group here
// (memory, processor, network) as a host-wide fact when it is not fully
// redundant.
func orphanRedundancy(src redundancySource) []spof.Condition {
	if !src.known {
		return []spof.Condition{{Code: spof.CodeCollectorUnavailable, Member: src.name,
			Summary: fmt.Sprintf("BMC redundancy sensor %q unreadable: %s", src.name, src.why)}}
	}
	if st := sensorVerdict(src.state); st != spof.StateRedundant {
		return []spof.Condition{{State: st, Member: src.name,
			Summary: fmt.Sprintf("BMC sensor %q reports %s", src.name, src.state.Text())}}
	}
	return nil
}

// powerUnitConditions turns a power-unit sensor with sensor-specific
// offsets into conditions.
func powerUnitConditions(name string, s ipmi.SensorState) []spof.Condition {
	if s.ReadingType != ipmi.ReadingTypeSensorSpecific {
		return nil
	}
	if !s.Known() {
		return []spof.Condition{{Code: spof.CodeCollectorUnavailable, Member: name,
			Summary: fmt.Sprintf("power supplies: BMC power unit sensor %q unreadable: %s", name, s.Why())}}
	}
	code := spof.Code("")
	switch powerUnitState(s) {
	case spof.MemberFailed:
		code = spof.CodeGroupDown
	case spof.MemberDegraded:
		code = spof.CodeMemberDegraded
	default:
		return nil
	}
	return []spof.Condition{{Code: code, Member: name,
		Summary: fmt.Sprintf("power supplies: BMC power unit sensor %q reports %s", name, ipmi.Describe(s.SDR, s.Reading))}}
}

// powerUnitState rates a power-unit sensor: failure or AC lost is failed,
// predictive or soft-power-control failure degraded.
func powerUnitState(s ipmi.SensorState) spof.MemberState {
	if !s.Known() {
		return spof.MemberUnknown
	}
	if s.ReadingType != ipmi.ReadingTypeSensorSpecific {
		return spof.MemberOK
	}
	switch pu := ipmi.DecodePowerUnit(s.Reading); {
	case pu.Failure || pu.ACLost:
		return spof.MemberFailed
	case pu.PredictiveFailure || pu.SoftPowerFailure:
		return spof.MemberDegraded
	}
	return spof.MemberOK
}

// sensorMemberState is the member-like state of a non-redundancy sensor for
// the state-set metric.
func sensorMemberState(c sensorClass, s ipmi.SensorState) spof.MemberState {
	switch c {
	case classPSU:
		return psuMember("", s).State
	case classFan:
		return fanMember("", s).State
	case classPowerUnit:
		return powerUnitState(s)
	}
	return spof.MemberUnknown
}

func ipmiMetrics(st *ipmi.State) []prometheus.Metric {
	var ms []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...))
	}
	names := sensorNames(st)
	for i, s := range st.Sensors {
		c := classify(s.SDR)
		switch c {
		case classPowerRedundancy, classFanRedundancy, classOtherRedundancy:
			cur := ipmi.RedundancyUnknown
			if s.Known() {
				cur = ipmi.DecodeRedundancy(s.Reading)
			}
			for _, r := range ipmi.RedundancyStates {
				gauge(ipmiRedundancyStateDesc, agent.GaugeBool(r == cur), names[i], typeLabel(c), r.String())
			}
		case classPSU, classFan, classPowerUnit:
			cur := sensorMemberState(c, s)
			for _, state := range spof.MemberStates {
				gauge(ipmiSensorStateDesc, agent.GaugeBool(state == cur), names[i], typeLabel(c), string(state))
			}
		}
	}
	ms = append(ms, prometheus.MustNewConstMetric(ipmiCommandsDesc, prometheus.CounterValue, float64(st.CommandsTotal)))
	ms = append(ms, prometheus.MustNewConstMetric(ipmiConnectsDesc, prometheus.CounterValue, float64(st.Connects)))
	gauge(ipmiPollCommandsDesc, float64(st.Commands))
	gauge(ipmiPollDurationDesc, st.Duration.Seconds())
	if ch := st.Chassis; ch != nil {
		for _, p := range ipmi.RestorePolicies {
			gauge(ipmiRestorePolicyDesc, agent.GaugeBool(p == ch.RestorePolicy), p.String())
		}
		gauge(ipmiChassisFaultDesc, agent.GaugeBool(ch.PowerFault), "power_fault")
		gauge(ipmiChassisFaultDesc, agent.GaugeBool(ch.PowerOverload), "power_overload")
		gauge(ipmiChassisFaultDesc, agent.GaugeBool(ch.PowerControlFault), "power_control_fault")
		gauge(ipmiChassisFaultDesc, agent.GaugeBool(ch.CoolingFault), "cooling_fault")
		gauge(ipmiChassisFaultDesc, agent.GaugeBool(ch.DriveFault), "drive_fault")
	}
	return ms
}
