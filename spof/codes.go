package spof

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Severity orders findings: critical > warning > info. The zero value means
// "not set" and is only used in Condition to take the code's default.
type Severity int

const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityCritical
)

// Severities lists every severity, lowest first.
var Severities = []Severity{SeverityInfo, SeverityWarning, SeverityCritical}

func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityCritical:
		return "critical"
	}
	return "unset"
}

// ParseSeverity accepts "info", "warning" or "critical".
func ParseSeverity(s string) (Severity, error) {
	for _, v := range Severities {
		if v.String() == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want info, warning or critical)", s)
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	v, err := ParseSeverity(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Code is a stable snake_case finding identifier used by the API, metrics
// and alerts. Never rename one.
type Code string

const (
	CodeGroupDown            Code = "group_down"
	CodeRedundancyLost       Code = "redundancy_lost"
	CodeRedundancyDegraded   Code = "redundancy_degraded"
	CodeNoRedundancy         Code = "no_redundancy"
	CodeSharedFailureDomain  Code = "shared_failure_domain"
	CodeFailureUndetectable  Code = "failure_undetectable"
	CodeMemberDegraded       Code = "member_degraded"
	CodeRebuildInProgress    Code = "rebuild_in_progress"
	CodeUPSOnBattery         Code = "ups_on_battery"
	CodeUPSLowBattery        Code = "ups_low_battery"
	CodeUPSBypass            Code = "ups_bypass"
	CodeUPSOverload          Code = "ups_overload"
	CodeCollectorUnavailable Code = "collector_unavailable"
	// CodeAlertingDegraded: the agent's own alert path is broken (the
	// outbox cannot be written): said on every output, since an alert about
	// it might not get out.
	CodeAlertingDegraded Code = "alerting_degraded"
	// Chassis facts from the BMC (additions to the brief).
	CodeChassisPowerFault     Code = "chassis_power_fault"
	CodeChassisPowerOverload  Code = "chassis_power_overload"
	CodeChassisCoolingFault   Code = "chassis_cooling_fault"
	CodePowerRestoreAlwaysOff Code = "power_restore_always_off"
	// CodeVirtualMachine is an addition to the design brief: on a VM the
	// hypervisor owns hardware redundancy, which we say as an info line.
	CodeVirtualMachine Code = "virtual_machine"
	// CodeNotice carries source facts worth showing that are not a risk by
	// themselves (a bond running on a slave other than its primary).
	CodeNotice Code = "notice"
	// CodeRedundancyUntested: a provable group's last proof is older than
	// its policy (issue 13).
	CodeRedundancyUntested Code = "redundancy_untested"
	// CodeDrillFailed: the group's latest drill failed (issue 13); the
	// members it found unable to carry the load are failed until a passing
	// drill.
	CodeDrillFailed Code = "drill_failed"
)

// CodeInfo documents one code: its default severity and meaning.
type CodeInfo struct {
	Code     Code
	Severity Severity
	Meaning  string
}

// Codes is the reference table of every finding code, in documentation order.
var Codes = []CodeInfo{
	{CodeGroupDown, SeverityCritical, "margin < 0: the function is out (array failed or inactive, bond without an active slave, PSUs below required)"},
	{CodeRedundancyLost, SeverityCritical, "failures left margin 0: one more failure is an outage"},
	{CodeRedundancyDegraded, SeverityWarning, "a member failed, margin still > 0"},
	{CodeNoRedundancy, SeverityWarning, "the group never had spare capacity: one PSU, RAID0, single-slave bond, root on one disk, default route over a lone NIC"},
	{CodeSharedFailureDomain, SeverityWarning, "all working members depend on one domain value (one disk, one NIC card, one UPS)"},
	{CodeFailureUndetectable, SeverityWarning, "redundancy exists but a failure would not trigger failover (bond with miimon=0 and no ARP monitor)"},
	{CodeMemberDegraded, SeverityWarning, "a member works but is at risk: predictive failure, UPS battery needs replacement"},
	{CodeRebuildInProgress, SeverityInfo, "resync or recovery running, with progress and ETA"},
	{CodeUPSOnBattery, SeverityCritical, "mains lost; the UPS is the last thing between the host and an outage"},
	{CodeUPSLowBattery, SeverityCritical, "LB flag, or runtime below the configured minimum"},
	{CodeUPSBypass, SeverityWarning, "UPS protection bypassed"},
	{CodeUPSOverload, SeverityWarning, "UPS load above its rating or the configured maximum"},
	{CodeCollectorUnavailable, SeverityWarning, "a configured source cannot be read: unknown is never reported as OK"},
	{CodeAlertingDegraded, SeverityWarning, "the agent's own alert path is broken (outbox unwritable): notifications are kept in memory only"},
	{CodeChassisPowerFault, SeverityCritical, "the BMC's chassis status reports a main power fault"},
	{CodeChassisPowerOverload, SeverityWarning, "the BMC's chassis status reports a power overload"},
	{CodeChassisCoolingFault, SeverityWarning, "the BMC's chassis status reports a cooling or fan fault"},
	{CodePowerRestoreAlwaysOff, SeverityWarning, "power restore policy is always-off: after a power blip the host stays off"},
	{CodeRedundancyUntested, SeverityWarning, "a provable group's last proof (check, scrub, self-test) is older than its policy (default 90 days); never for groups not provable here"},
	{CodeDrillFailed, SeverityWarning, "the group's latest drill (spofwatch drill run) failed, naming the method and reason; the members it found unable to carry the load are failed until a passing drill"},
	{CodeVirtualMachine, SeverityInfo, "the host is a virtual machine: the hypervisor owns hardware redundancy"},
	{CodeNotice, SeverityInfo, "a source fact worth knowing that is not a risk by itself"},
}

// DefaultSeverity returns the severity a code has unless a condition
// overrides it. Unknown codes are warnings: a new source fact is surfaced,
// not hidden.
func DefaultSeverity(c Code) Severity {
	for _, ci := range Codes {
		if ci.Code == c {
			return ci.Severity
		}
	}
	return SeverityWarning
}

// AlertName turns a code into an alert name: redundancy_lost ->
// SpofRedundancyLost.
func (c Code) AlertName() string {
	var b strings.Builder
	b.WriteString("Spof")
	for _, part := range strings.Split(string(c), "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}
