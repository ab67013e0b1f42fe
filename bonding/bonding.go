// Package bonding reads the state of Linux NIC bonds from sysfs
// (/sys/class/net/bonding_masters, <bond>/bonding/*, <slave>/bonding_slave/*)
// and procfs (/proc/net/bonding/<bond>), into plain structs. It knows
// nothing of redundancy groups or Prometheus: collectors/bonding.go adapts
// it.
//
// The format authorities are the kernel's drivers/net/bonding/bond_sysfs.c,
// bond_sysfs_slave.c, bond_procfs.c and Documentation/networking/bonding.rst.
// Some fields are only shown to readers with CAP_NET_ADMIN (the bond's
// ad_partner_mac, ad_actor_key, ad_partner_key; the per-slave "details
// actor/partner lacp pdu" blocks in /proc); a reader without it gets empty
// files or missing lines, which this package reports as unknown with a
// reason instead of failing.
package bonding

// Unknown marks a numeric field that could not be read.
const Unknown = -1

// Mode is a bonding mode in the kernel's sysfs spelling.
type Mode string

// Bonding modes, as bond_sysfs.c prints them in <bond>/bonding/mode.
const (
	ModeBalanceRR    Mode = "balance-rr"
	ModeActiveBackup Mode = "active-backup"
	ModeBalanceXOR   Mode = "balance-xor"
	ModeBroadcast    Mode = "broadcast"
	Mode8023AD       Mode = "802.3ad"
	ModeBalanceTLB   Mode = "balance-tlb"
	ModeBalanceALB   Mode = "balance-alb"
)

// procModeNames maps the long names of bond_mode_name() in /proc/net/bonding
// to the sysfs names.
var procModeNames = map[string]Mode{
	"load balancing (round-robin)":          ModeBalanceRR,
	"fault-tolerance (active-backup)":       ModeActiveBackup,
	"load balancing (xor)":                  ModeBalanceXOR,
	"fault-tolerance (broadcast)":           ModeBroadcast,
	"IEEE 802.3ad Dynamic link aggregation": Mode8023AD,
	"transmit load balancing":               ModeBalanceTLB,
	"adaptive load balancing":               ModeBalanceALB,
}

// UsesPrimary reports whether the mode has an active slave and honours the
// primary option (bond_uses_primary in the kernel).
func (m Mode) UsesPrimary() bool {
	return m == ModeActiveBackup || m == ModeBalanceTLB || m == ModeBalanceALB
}

// LACP port state bits (IEEE 802.1AX), as in ad_actor_oper_port_state and
// ad_partner_oper_port_state.
const (
	PortStateActivity     = 0x01
	PortStateTimeout      = 0x02
	PortStateAggregation  = 0x04
	PortStateSync         = 0x08
	PortStateCollecting   = 0x10
	PortStateDistributing = 0x20
	PortStateDefaulted    = 0x40
	PortStateExpired      = 0x80
)

// Bond is one bonding master.
type Bond struct {
	Name string
	// Mode is "" when neither sysfs nor procfs told it.
	Mode Mode
	// ActiveSlave and Primary are "" when none is set (or the mode has none).
	ActiveSlave string
	Primary     string
	// MIIStatus is the bond's carrier: "up" or "down"; "" if unknown.
	MIIStatus string
	// Intervals and delays in milliseconds; Unknown if unreadable.
	MIIMon      int
	ARPInterval int
	UpDelay     int
	DownDelay   int
	// ARPIPTargets are the ARP monitor's targets (IPv4, dotted quad).
	ARPIPTargets []string
	// MinLinks is the 802.3ad min_links option (0 = not set).
	MinLinks int
	LACPRate string
	// ActiveAggregator is the 802.3ad active aggregator ID: 0 means the bond
	// has no active aggregator, Unknown that it could not be read.
	ActiveAggregator int
	// NumPorts is the number of ports in the active aggregator.
	NumPorts int
	// PartnerMAC is the LACP partner's system MAC of the active aggregator;
	// "" when hidden (reader lacks CAP_NET_ADMIN) or unknown.
	PartnerMAC string
	Slaves     []Slave
	// SlavesKnown is set when a slave list was read (sysfs bonding/slaves or
	// /proc): an empty Slaves then means the bond really has none.
	SlavesKnown bool
	// Problems lists what could not be read, as "what: why".
	Problems []string
}

// Slave is one member of a bond.
type Slave struct {
	Name string
	// MIIStatus is "up", "down", "going down" (downdelay running) or
	// "going back" (updelay running); "" if unknown.
	MIIStatus string
	// State is "active" or "backup"; "" if unknown.
	State string
	// LinkFailureCount counts link failures since enslaving; Unknown if
	// unreadable.
	LinkFailureCount int64
	PermHWAddr       string
	// AggregatorID is the 802.3ad aggregator the port is in: 0 when it is in
	// none ("N/A"), Unknown if unreadable or not 802.3ad.
	AggregatorID int
	// ActorPortState and PartnerPortState are the LACP oper port states
	// (PortState* bits); Unknown if unreadable.
	ActorPortState   int
	PartnerPortState int
	// PartnerMAC is the LACP partner system of this port ("details partner
	// lacp pdu" in /proc, CAP_NET_ADMIN only); "" if not shown.
	PartnerMAC string
	// Device is the resolved PCI function of the NIC ("0000:3b:00.1"); for a
	// virtual function, the PCI function of its physical port. "" when the
	// slave has no PCI device (virtual, or unreadable).
	Device string
	// VirtualFunction is set when the slave is an SR-IOV VF; Device then
	// names its physical function.
	VirtualFunction bool
	// Card is the NIC card: the PCI domain:bus:device of Device, shared by
	// all ports (functions) of one card and by the VFs of its ports.
	Card     string
	Problems []string
}

// unknownBond returns a Bond with every numeric field Unknown.
func unknownBond(name string) Bond {
	return Bond{
		Name: name, MIIMon: Unknown, ARPInterval: Unknown, UpDelay: Unknown, DownDelay: Unknown,
		MinLinks: Unknown, ActiveAggregator: Unknown, NumPorts: Unknown,
	}
}

func unknownSlave(name string) Slave {
	return Slave{Name: name, LinkFailureCount: Unknown, AggregatorID: Unknown, ActorPortState: Unknown, PartnerPortState: Unknown}
}
