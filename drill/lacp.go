package drill

import (
	"context"
	"fmt"
	"strings"

	"github.com/spofwatch/spofwatch/bonding"
)

// lacpState is the "lacp-state" method: an 802.3ad bond's ports prove
// their path by what LACP already negotiated. It changes nothing.
type lacpState struct {
	sysRoot, procRoot, bond string
}

// NewLACPState returns the LACP state proof of one 802.3ad bond, read from
// sysfs (<slave>/bonding_slave/ad_*) and /proc/net/bonding/<bond> below
// the given roots ("" means /sys and /proc). Reading the partner's MAC
// needs CAP_NET_ADMIN; without it the proof is refused, not passed.
func NewLACPState(sysfsRoot, procRoot, bond string) Method {
	if sysfsRoot == "" {
		sysfsRoot = "/sys"
	}
	if procRoot == "" {
		procRoot = "/proc"
	}
	return &lacpState{sysRoot: sysfsRoot, procRoot: procRoot, bond: bond}
}

func (m *lacpState) Name() string     { return "lacp-state" }
func (m *lacpState) Disruptive() bool { return false }

// lacpInSync are the state bits of a port that carries traffic: in sync
// with its partner, collecting and distributing (IEEE 802.1AX mux state
// COLLECTING_DISTRIBUTING).
const lacpInSync = bonding.PortStateSync | bonding.PortStateCollecting | bonding.PortStateDistributing

func (m *lacpState) read() (bonding.Bond, error) {
	if !validIfName(m.bond) {
		return bonding.Bond{}, refuse("invalid bond name %q", m.bond)
	}
	b, err := bonding.NewFS(m.sysRoot, m.procRoot).Bond(m.bond)
	if err != nil {
		return b, refuse("cannot read bond %s: %v", m.bond, err)
	}
	if b.Mode != bonding.Mode8023AD {
		mode := string(b.Mode)
		if mode == "" {
			mode = "of unknown mode"
		}
		return b, refuse("%s is %s, not 802.3ad: lacp-state proves LACP bonds only", m.bond, mode)
	}
	if b.ActiveAggregator == bonding.Unknown {
		return b, refuse("%s: active aggregator unreadable", m.bond)
	}
	if len(b.Slaves) == 0 {
		return b, refuse("%s has no ports", m.bond)
	}
	return b, nil
}

func (m *lacpState) Plan(ctx context.Context) ([]string, error) {
	b, err := m.read()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(b.Slaves))
	for i, s := range b.Slaves {
		names[i] = s.Name
	}
	return []string{
		fmt.Sprintf("read the LACP state of %s's ports (%s) from sysfs and /proc/net/bonding/%s; nothing is changed", m.bond, strings.Join(names, ", "), m.bond),
		fmt.Sprintf("a port proves its path when its link is up, it is in the active aggregator (%d), actor and partner are both in sync, collecting and distributing, and the partner's MAC is not zero", b.ActiveAggregator),
	}, nil
}

func (m *lacpState) Run(ctx context.Context, wait bool, progress Progress) Outcome {
	b, err := m.read()
	if err != nil {
		return Outcome{Result: ResultRefused, Reason: err.Error()}
	}
	out := Outcome{Result: ResultPassed}
	var unknown []string
	var proven []string
	for _, s := range b.Slaves {
		why, known := portProblem(b, s)
		switch {
		case !known:
			unknown = append(unknown, s.Name+": "+why)
			out.Details = append(out.Details, s.Name+": unknown: "+why)
		case why != "":
			if out.FailedMembers == nil {
				out.FailedMembers = map[string]string{}
			}
			out.FailedMembers[s.Name] = why
			out.Details = append(out.Details, s.Name+": "+why)
		default:
			proven = append(proven, s.Name)
			out.Details = append(out.Details, fmt.Sprintf("%s: aggregator %d, actor state %d, partner state %d, partner %s", s.Name, s.AggregatorID, s.ActorPortState, s.PartnerPortState, partnerOf(b, s)))
		}
	}
	switch {
	case len(out.FailedMembers) > 0:
		out.Result = ResultFailed
		var parts []string
		for _, s := range b.Slaves {
			if why, ok := out.FailedMembers[s.Name]; ok {
				parts = append(parts, s.Name+" "+why)
			}
		}
		out.Reason = strings.Join(parts, "; ")
	case len(unknown) > 0:
		// Unknown is not proven: no verdict on the ports we cannot read.
		out.Result = ResultRefused
		out.Reason = "cannot read the LACP state of " + strings.Join(unknown, "; ")
	default:
		out.Reason = fmt.Sprintf("every port of %s (%s) is collecting and distributing with partner %s in aggregator %d", m.bond, strings.Join(proven, ", "), partnerOf(b, b.Slaves[0]), b.ActiveAggregator)
	}
	return out
}

// partnerOf is the port's LACP partner system: its own (from /proc, root
// only) or, for a port in the active aggregator, the aggregator's.
func partnerOf(b bonding.Bond, s bonding.Slave) string {
	if s.PartnerMAC != "" {
		return s.PartnerMAC
	}
	if s.AggregatorID == b.ActiveAggregator && s.AggregatorID > 0 {
		return b.PartnerMAC
	}
	return ""
}

// portProblem says why a port does not prove its path ("" when it does);
// known is false when the state needed to judge could not be read.
func portProblem(b bonding.Bond, s bonding.Slave) (why string, known bool) {
	switch s.MIIStatus {
	case "up":
	case "":
		return "link state unreadable", false
	default:
		return "link is " + s.MIIStatus, true
	}
	if b.ActiveAggregator == 0 {
		return fmt.Sprintf("%s has no active aggregator", b.Name), true
	}
	switch {
	case s.AggregatorID == bonding.Unknown:
		return "aggregator unreadable", false
	case s.AggregatorID == 0:
		return "in no aggregator", true
	case s.AggregatorID != b.ActiveAggregator:
		return fmt.Sprintf("in aggregator %d, not the active aggregator %d", s.AggregatorID, b.ActiveAggregator), true
	}
	if s.ActorPortState == bonding.Unknown || s.PartnerPortState == bonding.Unknown {
		return "port states unreadable (they need root)", false
	}
	if s.ActorPortState&bonding.PortStateDefaulted != 0 {
		return fmt.Sprintf("no LACPDUs from a partner (actor state %d: defaulted)", s.ActorPortState), true
	}
	if miss := missingBits(s.ActorPortState, lacpInSync); miss != "" {
		return fmt.Sprintf("actor state %d: not %s", s.ActorPortState, miss), true
	}
	if miss := missingBits(s.PartnerPortState, lacpInSync); miss != "" {
		return fmt.Sprintf("partner state %d: not %s", s.PartnerPortState, miss), true
	}
	switch p := partnerOf(b, s); p {
	case "":
		return "partner MAC hidden (reading it needs CAP_NET_ADMIN)", false
	case "00:00:00:00:00:00":
		return "no LACP partner (partner MAC 00:00:00:00:00:00)", true
	}
	return "", true
}

func missingBits(state, want int) string {
	var miss []string
	for _, b := range []struct {
		bit  int
		name string
	}{{bonding.PortStateSync, "in sync"}, {bonding.PortStateCollecting, "collecting"}, {bonding.PortStateDistributing, "distributing"}} {
		if want&b.bit != 0 && state&b.bit == 0 {
			miss = append(miss, b.name)
		}
	}
	return strings.Join(miss, ", ")
}
