package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/bonding"
	"github.com/spofwatch/spofwatch/spof"
)

// BondingOptions configures the bonding collector.
type BondingOptions struct {
	// SysPath and ProcPath are the sysfs and procfs mount points (default
	// /sys and /proc).
	SysPath  string
	ProcPath string
	Logger   *slog.Logger
}

// Bonding reports every NIC bond as a network group whose members are its
// slaves, with the single points a slave count hides: slaves on one card,
// a bond that cannot detect link loss, LACP ports outside the active
// aggregator.
type Bonding struct {
	opts  BondingOptions
	fs    bonding.FS
	descs bondDescs
}

type bondDescs struct {
	linkFailures, miiUp, activeSlave, slaveAggregator, lacpState *prometheus.Desc
	miimon, arpInterval, activeAggregator                        *prometheus.Desc
}

func (d bondDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.linkFailures, d.miiUp, d.activeSlave, d.slaveAggregator, d.lacpState, d.miimon, d.arpInterval, d.activeAggregator}
}

// NewBonding returns the bonding collector.
func NewBonding(opts BondingOptions) *Bonding {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	slave := []string{"bond", "slave"}
	return &Bonding{
		opts: opts,
		fs:   bonding.NewFS(opts.SysPath, opts.ProcPath),
		descs: bondDescs{
			linkFailures: prometheus.NewDesc("spofwatch_bond_slave_link_failures_total",
				"Link failures the bond has counted on this slave since it was enslaved.", slave, nil),
			miiUp: prometheus.NewDesc("spofwatch_bond_slave_mii_up",
				"1 when the bond's link monitor sees the slave up, 0 otherwise (down, going down, going back).", slave, nil),
			activeSlave: prometheus.NewDesc("spofwatch_bond_active_slave",
				"1 for the slave currently carrying the traffic of an active-backup/tlb/alb bond, 0 for the others.", slave, nil),
			slaveAggregator: prometheus.NewDesc("spofwatch_bond_slave_aggregator_id",
				"802.3ad aggregator the slave is in (0: none).", slave, nil),
			lacpState: prometheus.NewDesc("spofwatch_bond_slave_lacp_port_state",
				"802.3ad oper port state bits of the slave (63 = fully up), for side actor (this host) and partner (the switch).",
				[]string{"bond", "slave", "side"}, nil),
			miimon: prometheus.NewDesc("spofwatch_bond_miimon_seconds",
				"MII link monitoring interval of the bond; 0 means off.", []string{"bond"}, nil),
			arpInterval: prometheus.NewDesc("spofwatch_bond_arp_interval_seconds",
				"ARP link monitoring interval of the bond; 0 means off.", []string{"bond"}, nil),
			activeAggregator: prometheus.NewDesc("spofwatch_bond_active_aggregator_id",
				"802.3ad active aggregator of the bond (0: none).", []string{"bond"}, nil),
		},
	}
}

// Name implements Collector.
func (*Bonding) Name() string { return "bonding" }

// Collect implements Collector.
func (c *Bonding) Collect(ctx context.Context) (agent.Result, error) {
	bonds, err := c.fs.Bonds(ctx)
	if errors.Is(err, bonding.ErrNoBonding) {
		return agent.Result{}, agent.ErrNoData
	}
	if err != nil {
		return agent.Result{}, err
	}
	if len(bonds) == 0 {
		return agent.Result{}, agent.ErrNoData // the driver is loaded, but there is no bond
	}
	res := agent.Result{Descs: c.descs.all()}
	for _, b := range bonds {
		for _, p := range b.Problems {
			c.opts.Logger.Debug("bond field unreadable", "collector", "bonding", "group", bondGroupID(b.Name), "problem", p)
		}
		res.Groups = append(res.Groups, BondToGroup(b))
		res.Metrics = append(res.Metrics, c.metrics(b)...)
	}
	return res, nil
}

// BondGroup reads one bond and returns its group, for callers that meet a
// bond elsewhere: the uplink collector uses its Members, Required and
// Conditions verbatim, because a default route over bond0 is exactly as
// redundant as bond0.
func BondGroup(sysPath, procPath, bond string) (spof.Group, error) {
	b, err := bonding.NewFS(sysPath, procPath).Bond(bond)
	if err != nil {
		return spof.Group{ID: bondGroupID(bond), Kind: spof.KindNetwork, Function: bond, UnknownReason: err.Error()}, err
	}
	return BondToGroup(b), nil
}

func bondGroupID(name string) string { return "network/bond/" + name }

// BondToGroup turns a bond's state into its redundancy group.
//
// Required is 1 in every mode: one working slave carries the traffic. In
// 802.3ad it is min_links when set, since the bond drops carrier below it.
// An 802.3ad slave outside the active aggregator carries nothing, so it is
// failed whatever its link says.
func BondToGroup(b bonding.Bond) spof.Group {
	g := spof.Group{ID: bondGroupID(b.Name), Kind: spof.KindNetwork, Function: b.Name, Required: 1}
	if b.Mode != "" {
		g.Function = fmt.Sprintf("%s (%s)", b.Name, b.Mode)
	}
	if b.Mode == bonding.Mode8023AD && b.MinLinks > 1 {
		g.Required = b.MinLinks
	}
	if !b.SlavesKnown {
		// Without a slave list, "no members" would read as a bond that is
		// down; it is a bond we could not read.
		g.UnknownReason = "slave list unreadable"
		if len(b.Problems) > 0 {
			g.UnknownReason += ": " + strings.Join(b.Problems, "; ")
		}
		return g
	}
	for _, s := range b.Slaves {
		g.Members = append(g.Members, bondSlaveMember(b, s))
	}
	g.Attributes = bondAttributes(b)
	g.Conditions = bondConditions(b, g.Function)
	if len(g.Members) > g.Required {
		// A failover drill can prove a bond (issue 13); no source records
		// one yet, so a bond has no proof until drills land.
		g.Provable = spof.Provable
	}
	return g
}

func bondSlaveMember(b bonding.Bond, s bonding.Slave) spof.Member {
	m := spof.Member{Name: s.Name, State: spof.MemberOK}
	if s.Card != "" {
		m.Domains = map[string]string{spof.DomainNICCard: s.Card}
	}
	failures := ""
	if s.LinkFailureCount > 0 {
		failures = fmt.Sprintf(", %d link failures so far", s.LinkFailureCount)
	}
	switch s.MIIStatus {
	case "up":
	case "down":
		m.State, m.Detail = spof.MemberFailed, "link down"+failures
	case "going down":
		// Still carrying traffic until downdelay expires, but failing.
		m.State, m.Detail = spof.MemberDegraded, fmt.Sprintf("link lost, bond waits downdelay %s before failing it over", bondMS(b.DownDelay))
	case "going back":
		m.State, m.Detail = spof.MemberFailed, fmt.Sprintf("link back, not used until updelay %s has passed", bondMS(b.UpDelay))
	case "":
		m.State, m.Detail = spof.MemberUnknown, "link state unreadable"
		if len(s.Problems) > 0 {
			m.Detail += ": " + strings.Join(s.Problems, "; ")
		}
		return m
	default:
		m.State, m.Detail = spof.MemberUnknown, fmt.Sprintf("unrecognised link state %q", s.MIIStatus)
		return m
	}
	if !m.State.Working() || b.Mode != bonding.Mode8023AD {
		return m
	}
	switch {
	case b.ActiveAggregator == 0:
		m.State, m.Detail = spof.MemberFailed, "the bond has no active aggregator (LACP)"
	case s.AggregatorID == 0:
		m.State, m.Detail = spof.MemberFailed, "in no aggregator (LACP)"
	case b.ActiveAggregator > 0 && s.AggregatorID > 0 && s.AggregatorID != b.ActiveAggregator:
		m.State, m.Detail = spof.MemberFailed, fmt.Sprintf("in aggregator %d, active aggregator is %d", s.AggregatorID, b.ActiveAggregator)
	case s.ActorPortState >= 0 && s.ActorPortState&bonding.PortStateDefaulted == 0 && s.ActorPortState&bonding.PortStateDistributing == 0:
		// LACP with a partner, but the port does not transmit: the
		// partner's PDUs stopped (expired) or it is out of sync. Without a
		// partner (DEFAULTED) the kernel enables the port regardless of
		// these bits, see lacpNotNegotiated.
		m.State, m.Detail = spof.MemberFailed, fmt.Sprintf("link up but LACP not distributing (actor port state %d: %s)", s.ActorPortState, lacpStateText(s.ActorPortState))
	}
	return m
}

// lacpStateText names the set bits of an LACP port state that matter to
// an operator.
func lacpStateText(st int) string {
	var parts []string
	for _, b := range []struct {
		bit  int
		name string
	}{
		{bonding.PortStateSync, "in sync"}, {bonding.PortStateCollecting, "collecting"},
		{bonding.PortStateDistributing, "distributing"}, {bonding.PortStateDefaulted, "defaulted"},
		{bonding.PortStateExpired, "expired"},
	} {
		if st&b.bit != 0 {
			parts = append(parts, b.name)
		}
	}
	if st&bonding.PortStateSync == 0 {
		parts = append(parts, "out of sync")
	}
	return strings.Join(parts, ", ")
}

func bondAttributes(b bonding.Bond) []spof.Attribute {
	var a []spof.Attribute
	add := func(k, v string) { a = append(a, spof.Attribute{Key: k, Value: v}) }
	add("mode", bondOrUnknown(string(b.Mode)))
	if b.Mode.UsesPrimary() || b.ActiveSlave != "" {
		add("active_slave", bondOrNone(b.ActiveSlave))
		add("primary", bondOrNone(b.Primary))
	}
	switch b.MIIMon {
	case bonding.Unknown:
		add("miimon", "unknown")
	case 0:
		add("miimon", "off")
	default:
		add("miimon", bondMS(b.MIIMon))
	}
	add("arp", bondARPText(b))
	if b.UpDelay > 0 || b.DownDelay > 0 {
		add("updelay/downdelay", bondMS(b.UpDelay)+" / "+bondMS(b.DownDelay))
	}
	if b.Mode == bonding.Mode8023AD {
		switch b.ActiveAggregator {
		case bonding.Unknown:
			add("aggregator", "unknown")
		case 0:
			add("aggregator", "none active")
		default:
			v := strconv.Itoa(b.ActiveAggregator)
			if b.NumPorts >= 0 {
				v += fmt.Sprintf(" (%d ports)", b.NumPorts)
			}
			add("aggregator", v)
		}
		if b.MinLinks >= 0 {
			add("min_links", strconv.Itoa(b.MinLinks))
		}
		if b.LACPRate != "" {
			add("lacp_rate", b.LACPRate)
		}
		switch {
		case b.PartnerMAC != "":
			add("partner_mac", b.PartnerMAC)
		case b.ActiveAggregator > 0:
			add("partner_mac", "hidden (needs CAP_NET_ADMIN)")
		}
	}
	return a
}

func bondARPText(b bonding.Bond) string {
	switch {
	case b.ARPInterval == bonding.Unknown:
		return "unknown"
	case b.ARPInterval == 0:
		return "off"
	case len(b.ARPIPTargets) == 0:
		return bondMS(b.ARPInterval) + ", no target"
	}
	return bondMS(b.ARPInterval) + " to " + strings.Join(b.ARPIPTargets, ", ")
}

const bondZeroMAC = "00:00:00:00:00:00"

func bondConditions(b bonding.Bond, fn string) []spof.Condition {
	var cs []spof.Condition
	// Link monitoring: without it the bond never notices a dead slave and
	// keeps sending into it.
	switch {
	case b.MIIMon == 0 && b.ARPInterval == 0:
		cs = append(cs, spof.Condition{
			Code:    spof.CodeFailureUndetectable,
			Summary: fmt.Sprintf("%s has no link monitoring (miimon=0, arp_interval=0): a dead slave would never be failed over", fn),
			Details: "Set miimon (e.g. 100) or arp_interval with arp_ip_target; see the kernel's bonding.rst, \"Link Monitoring\".",
		})
	case b.MIIMon == 0 && b.ARPInterval > 0 && len(b.ARPIPTargets) == 0:
		cs = append(cs, spof.Condition{
			Code:    spof.CodeFailureUndetectable,
			Summary: fmt.Sprintf("%s has ARP monitoring (arp_interval=%d) but no arp_ip_target: link loss is not detected", fn, b.ARPInterval),
			Details: "The ARP monitor needs at least one arp_ip_target to probe.",
		})
	}
	if b.Mode == bonding.Mode8023AD {
		if why := lacpNotNegotiated(b); why != "" {
			cs = append(cs, spof.Condition{
				Code:     spof.CodeNotice,
				Severity: spof.SeverityWarning,
				Summary:  fmt.Sprintf("%s: LACP was never negotiated with the switch (%s)", fn, why),
				Details:  "The switch ports are not configured for LACP (or not as one LAG). The bond runs on a single port: ports outside the active aggregator carry nothing.",
			})
		}
	}
	if b.Mode.UsesPrimary() && b.Primary != "" && b.ActiveSlave != "" && b.ActiveSlave != b.Primary {
		cs = append(cs, spof.Condition{
			Code:     spof.CodeNotice,
			Severity: spof.SeverityInfo,
			Member:   b.ActiveSlave,
			Summary:  fmt.Sprintf("%s runs on %s, not on its primary %s", fn, b.ActiveSlave, b.Primary),
			Details:  "The bond failed over; it returns to the primary per primary_reselect once the primary's link is back.",
		})
	}
	return cs
}

// lacpNotNegotiated says why LACP looks never negotiated, or "". The
// active aggregator's partner MAC reads all zeros then; without
// CAP_NET_ADMIN that is hidden, and the ports' own LACP state tells
// instead: DEFAULTED means no LACPDU was ever received from a partner.
func lacpNotNegotiated(b bonding.Bond) string {
	if b.PartnerMAC == bondZeroMAC {
		return "partner MAC " + bondZeroMAC
	}
	if b.PartnerMAC != "" {
		return ""
	}
	known, defaulted := 0, 0
	for _, s := range b.Slaves {
		if s.MIIStatus != "up" || s.ActorPortState < 0 {
			continue
		}
		known++
		if s.ActorPortState&bonding.PortStateDefaulted != 0 {
			defaulted++
		}
	}
	if known > 0 && defaulted == known {
		return "no LACPDU received on any port: actor state DEFAULTED"
	}
	return ""
}

func (c *Bonding) metrics(b bonding.Bond) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	if b.MIIMon >= 0 {
		gauge(c.descs.miimon, float64(b.MIIMon)/1000, b.Name)
	}
	if b.ARPInterval >= 0 {
		gauge(c.descs.arpInterval, float64(b.ARPInterval)/1000, b.Name)
	}
	if b.Mode == bonding.Mode8023AD && b.ActiveAggregator >= 0 {
		gauge(c.descs.activeAggregator, float64(b.ActiveAggregator), b.Name)
	}
	slaves := append([]bonding.Slave(nil), b.Slaves...)
	sort.Slice(slaves, func(i, j int) bool { return slaves[i].Name < slaves[j].Name })
	seen := map[string]bool{}
	for _, s := range slaves {
		if seen[s.Name] {
			continue // a duplicate name would make the registry reject the scrape
		}
		seen[s.Name] = true
		if s.LinkFailureCount >= 0 {
			out = append(out, prometheus.MustNewConstMetric(c.descs.linkFailures, prometheus.CounterValue, float64(s.LinkFailureCount), b.Name, s.Name))
		}
		if s.MIIStatus != "" {
			gauge(c.descs.miiUp, agent.GaugeBool(s.MIIStatus == "up"), b.Name, s.Name)
		}
		if b.Mode.UsesPrimary() {
			gauge(c.descs.activeSlave, agent.GaugeBool(s.Name == b.ActiveSlave), b.Name, s.Name)
		}
		if b.Mode == bonding.Mode8023AD {
			if s.AggregatorID >= 0 {
				gauge(c.descs.slaveAggregator, float64(s.AggregatorID), b.Name, s.Name)
			}
			if s.ActorPortState >= 0 {
				gauge(c.descs.lacpState, float64(s.ActorPortState), b.Name, s.Name, "actor")
			}
			if s.PartnerPortState >= 0 {
				gauge(c.descs.lacpState, float64(s.PartnerPortState), b.Name, s.Name, "partner")
			}
		}
	}
	return out
}

func bondMS(v int) string {
	if v < 0 {
		return "unknown"
	}
	return strconv.Itoa(v) + " ms"
}

func bondOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func bondOrUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
