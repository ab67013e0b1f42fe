package drill

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/internal/secretfile"
	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups"
)

// Env is what the methods need from the host and the config.
type Env struct {
	// SysPath and ProcPath are --path.sysfs and --path.procfs.
	SysPath, ProcPath string
	// StateDir is --path.state: the lock and the audit log.
	StateDir string
	// Drill is the config's drill: section.
	Drill config.DrillConfig
	// ZpoolPath is the zpool command (config raid.zpool_path).
	ZpoolPath string
	// UPS are the configured UPSes (config ups:), for the connection
	// settings (STARTTLS, CA) of the battery test.
	UPS []config.UPSConfig
}

// NotDrillableError says why a group has no drill.
type NotDrillableError struct {
	Group  string
	Reason string
}

func (e *NotDrillableError) Error() string {
	return fmt.Sprintf("%s cannot be drilled: %s", e.Group, e.Reason)
}

// Select returns the drill method for a group, by its ID (kind/source/
// name), or a *NotDrillableError saying why there is none. Add a source
// here when its method exists.
func Select(g spof.Group, env Env) (Method, error) {
	not := func(format string, a ...any) (Method, error) {
		return nil, &NotDrillableError{Group: g.ID, Reason: fmt.Sprintf(format, a...)}
	}
	parts := strings.Split(g.ID, "/")
	switch {
	case len(parts) == 3 && parts[0] == "storage" && parts[1] == "md":
		if g.Provable != spof.Provable {
			return not("the array has no redundancy for a check to compare")
		}
		return &MdCheck{Array: parts[2], SysPath: env.SysPath, AllowMismatch: env.Drill.MismatchAllowed(parts[2])}, nil
	case len(parts) == 4 && parts[0] == "storage" && parts[1] == "zfs":
		if g.Provable != spof.Provable {
			return not("the vdev has no redundancy for a scrub to prove")
		}
		return &ZpoolScrub{Pool: parts[2], ZpoolPath: env.ZpoolPath}, nil
	case len(parts) == 3 && parts[0] == "network" && parts[1] == "bond":
		if g.Provable != spof.Provable {
			return not("the bond has no spare slave to fail over to")
		}
		return selectBond(g, parts[2], env)
	case len(parts) == 3 && parts[0] == "ups" && parts[1] == "nut":
		return selectUPS(g, parts[2], env)
	case strings.HasPrefix(g.ID, "storage/mount/"):
		return not("a filesystem is proven through the arrays it lives on; drill those")
	case strings.HasPrefix(g.ID, "network/uplink/"):
		return not("the uplink is proven through its bond; drill the bond")
	case g.Provable != spof.Provable:
		return not("not provable here")
	}
	return not("no drill for this kind of group")
}

// Scheduled says whether the timer's run (drill run --scheduled) may drill
// the group with m, and why not: non-disruptive drills always may, a
// disruptive one only where the config allows it (drill.bonds[].scheduled).
func Scheduled(g spof.Group, m Method, env Env) (bool, string) {
	if !m.Disruptive() {
		return true, ""
	}
	if name, ok := strings.CutPrefix(g.ID, "network/bond/"); ok {
		if _, scheduled, _ := env.Drill.BondFor(name); scheduled {
			return true, ""
		}
		return false, "disruptive: the config does not mark this bond scheduled (drill.bonds[].scheduled)"
	}
	return false, "disruptive: not run by the timer"
}

// Key names what a drill exercises, so that the scheduled run does one
// drill per thing: a pool's scrub covers every vdev group of the pool.
func Key(g spof.Group, m Method) string {
	if k, ok := m.(interface{ Key() string }); ok {
		return k.Key()
	}
	return m.Name() + ":" + g.ID
}

// upsTargetAttr is the attribute in which the ups collector names a UPS
// group's upsd target (collectors.AttrUPSTarget).
const upsTargetAttr = "target"

// selectUPS builds the battery test of ups/nut/<name>: the target from the
// group, the credentials from drill.ups, STARTTLS and its CA from the
// matching ups: entry.
func selectUPS(g spof.Group, name string, env Env) (Method, error) {
	target := attr(g, upsTargetAttr)
	if target == "" {
		return nil, &NotDrillableError{Group: g.ID, Reason: "the UPS group does not say its upsd target"}
	}
	var opts []UPSOption
	for _, u := range env.UPS {
		un, _, err := ups.ParseTarget(u.Target)
		if err != nil || (u.Name != name && (u.Name != "" || un != name)) {
			continue
		}
		if u.StartTLS {
			o := ups.Options{StartTLS: true}
			if u.CAFile != "" {
				pool, err := secretfile.CertPool(u.CAFile)
				if err != nil {
					return nil, fmt.Errorf("%s: ups %s ca_file: %w", g.ID, name, err)
				}
				o.TLSConfig = &tls.Config{RootCAs: pool}
			}
			opts = append(opts, WithUPSClientOptions(o))
		}
		break
	}
	user, pass := env.Drill.UPSCredentials()
	m, err := NewUPSBatteryTest(target, user, pass, opts...)
	if err != nil {
		return nil, &NotDrillableError{Group: g.ID, Reason: err.Error()}
	}
	return m, nil
}

// bondModeAttr is the attribute in which the bonding collector gives a
// bond's mode.
const bondModeAttr = "mode"

// selectBond picks the bond's drill by its mode: a failover through each
// backup slave where one slave carries the traffic, the negotiated LACP
// state for 802.3ad (no disruptive drill there).
func selectBond(g spof.Group, name string, env Env) (Method, error) {
	mode := attr(g, bondModeAttr)
	switch mode {
	case "active-backup", "balance-tlb":
		targets, _, probe := env.Drill.BondFor(name)
		return NewBondFailover(env.SysPath, name, targets, probe), nil
	case "802.3ad":
		return NewLACPState(env.SysPath, env.ProcPath, name), nil
	case "balance-alb":
		return nil, &NotDrillableError{Group: g.ID, Reason: "balance-alb: an ARP probe leaves on the slave the receive load balancer picks, so it cannot prove the slave under test"}
	}
	return nil, &NotDrillableError{Group: g.ID, Reason: fmt.Sprintf("no drill for bonding mode %s (drills: active-backup, balance-tlb, 802.3ad)", orUnknown(mode))}
}

func attr(g spof.Group, key string) string {
	for _, a := range g.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}
