package config

import (
	"net/netip"
	"path"
	"slices"
	"strconv"
	"time"
)

// DrillConfig configures `spofwatch drill` (config `drill:`). Only the
// root drill command uses it; the daemon loads and validates it like the
// rest, so a bad drill section is found by `check` too.
type DrillConfig struct {
	// Timeout caps every drill, overriding the methods' own defaults
	// (bond 2m, UPS 10m, md check and ZFS scrub 48h). 0: the defaults.
	Timeout Duration       `yaml:"timeout"`
	MD      DrillMDConfig  `yaml:"md"`
	Bonds   []DrillBond    `yaml:"bonds"`
	UPS     DrillUPSConfig `yaml:"ups"`
}

// DrillMDConfig configures the md check drill.
type DrillMDConfig struct {
	// AllowMismatch lists array name globs ("md9") whose check may find
	// mismatches without failing: on raid1/raid10 md counts blocks that
	// changed in flight (swap above all) as mismatches.
	AllowMismatch []string `yaml:"allow_mismatch"`
}

// DrillBond configures the failover drill of the bonds its glob matches.
type DrillBond struct {
	// Bond is a glob on the bond name ("bond*").
	Bond string `yaml:"bond"`
	// Targets are the addresses to ARP-probe through each slave; empty:
	// the default gateway routed via the bond.
	Targets []string `yaml:"targets"`
	// Scheduled lets the timer (drill run --scheduled) drill these bonds:
	// the drill moves traffic between slaves, so it is never implied.
	Scheduled bool `yaml:"scheduled"`
	// ProbeTimeout bounds each reachability probe (default 3s).
	ProbeTimeout Duration `yaml:"probe_timeout"`

	targets []netip.Addr
}

// DrillUPSConfig holds the upsd credentials of the battery-test drill: the
// user needs `instcmds = test.battery.start.quick` in upsd.users.
type DrillUPSConfig struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`

	// Password is read from PasswordFile at load time.
	Password string `yaml:"-"`
}

// DefaultDrillProbeTimeout bounds one reachability probe of a bond drill
// when the config does not say.
const DefaultDrillProbeTimeout = 3 * time.Second

// BondFor returns the drill settings of a bond: the first `drill.bonds`
// entry whose glob matches its name wins. Without one, targets are empty
// (probe the default gateway), the timer leaves the bond alone and probes
// wait DefaultDrillProbeTimeout.
func (d DrillConfig) BondFor(name string) (targets []netip.Addr, scheduled bool, probeTimeout time.Duration) {
	for _, b := range d.Bonds {
		if ok, _ := path.Match(b.Bond, name); !ok {
			continue
		}
		probeTimeout = time.Duration(b.ProbeTimeout)
		if probeTimeout <= 0 {
			probeTimeout = DefaultDrillProbeTimeout
		}
		return slices.Clone(b.targets), b.Scheduled, probeTimeout
	}
	return nil, false, DefaultDrillProbeTimeout
}

// MismatchAllowed reports whether an md array's check may find mismatches
// without failing the drill.
func (d DrillConfig) MismatchAllowed(array string) bool {
	for _, g := range d.MD.AllowMismatch {
		if ok, _ := path.Match(g, array); ok {
			return true
		}
	}
	return false
}

// UPSCredentials returns the upsd user and password of the battery-test
// drill ("" when not configured).
func (d DrillConfig) UPSCredentials() (username, password string) {
	return d.UPS.Username, d.UPS.Password
}

// TimeoutOr returns the configured drill timeout, or def when none is set.
func (d DrillConfig) TimeoutOr(def time.Duration) time.Duration {
	if d.Timeout > 0 {
		return time.Duration(d.Timeout)
	}
	return def
}

// validateDrill checks the globs, addresses and durations of `drill:`,
// each error at its line, and reads the UPS password file.
func (c *Config) validateDrill(v *validator) {
	d := &c.Drill
	if d.Timeout < 0 {
		v.failf([]string{"drill", "timeout"}, "must not be negative")
	}
	for i, g := range d.MD.AllowMismatch {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			v.failf([]string{"drill", "md", "allow_mismatch", strconv.Itoa(i)}, "bad array glob %q", g)
		}
	}
	for i := range d.Bonds {
		b := &d.Bonds[i]
		at := []string{"drill", "bonds", strconv.Itoa(i)}
		if b.Bond == "" {
			v.failf(at, "bond is required (a glob on the bond name)")
		} else if _, err := path.Match(b.Bond, ""); err != nil {
			v.failf(append(slices.Clone(at), "bond"), "bad bond glob %q: %v", b.Bond, err)
		}
		b.targets = nil
		for j, t := range b.Targets {
			a, err := netip.ParseAddr(t)
			if err != nil || a.Zone() != "" {
				v.failf(append(slices.Clone(at), "targets", strconv.Itoa(j)), "%q is not an IP address", t)
				continue
			}
			b.targets = append(b.targets, a.Unmap())
		}
		if b.ProbeTimeout < 0 {
			v.failf(append(slices.Clone(at), "probe_timeout"), "must not be negative")
		}
	}
	if d.UPS.PasswordFile != "" && d.UPS.Username == "" {
		v.failf([]string{"drill", "ups", "password_file"}, "is set but username is not")
	}
	d.UPS.Password = v.secret([]string{"drill", "ups", "password_file"}, d.UPS.PasswordFile)
}
