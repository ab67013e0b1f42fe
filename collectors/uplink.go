package collectors

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/sysdev"

	"github.com/spofwatch/spofwatch/spof"
)

// UplinkOptions configures the uplink collector.
type UplinkOptions struct {
	ProcPath string
	SysPath  string
	Logger   *slog.Logger
}

// Uplink reports the interfaces that carry the default routes, followed
// through VLANs and bridges down to physical NICs or bonds.
type Uplink struct {
	opts UplinkOptions
}

// NewUplink returns the uplink collector.
func NewUplink(opts UplinkOptions) *Uplink { return &Uplink{opts: opts} }

// Name implements Collector.
func (*Uplink) Name() string { return "uplink" }

// Collect implements Collector.
func (u *Uplink) Collect(ctx context.Context) (agent.Result, error) {
	var ifaces []string
	routeFiles := []struct {
		path  string
		parse func([]byte) ([]string, error)
	}{
		{filepath.Join(u.opts.ProcPath, "net", "route"), parseDefaultRoutesV4},
		{filepath.Join(u.opts.ProcPath, "net", "ipv6_route"), parseDefaultRoutesV6},
	}
	readable := 0
	var errs []error
	for _, rf := range routeFiles {
		b, err := os.ReadFile(rf.path)
		if err != nil {
			// A host without IPv6 has no ipv6_route; that is not a failure.
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("read %s: %w", rf.path, err))
			}
			continue
		}
		readable++
		found, err := rf.parse(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse %s: %w", rf.path, err))
		}
		for _, f := range found {
			if !slices.Contains(ifaces, f) {
				ifaces = append(ifaces, f)
			}
		}
	}
	if readable == 0 {
		return agent.Result{}, fmt.Errorf("no routing table readable: %w", errors.Join(errs...))
	}
	g := spof.Group{ID: "network/uplink/default", Kind: spof.KindNetwork, Function: "default route uplink"}
	if len(ifaces) == 0 {
		if len(errs) > 0 {
			g.UnknownReason = errors.Join(errs...).Error()
			return agent.Result{Groups: []spof.Group{g}}, nil
		}
		return agent.Result{HostConditions: []spof.Condition{{
			Code: spof.CodeNotice, Severity: spof.SeverityInfo,
			Summary: "no default route: the uplink is not evaluated",
		}}}, nil
	}
	sort.Strings(ifaces)
	g.Attributes = append(g.Attributes, spof.Attribute{Key: "default route via", Value: strings.Join(ifaces, ", ")})
	net := sysNet{sys: u.opts.SysPath, proc: u.opts.ProcPath}
	var paths [][]spof.Member
	for _, ifc := range ifaces {
		if err := ctx.Err(); err != nil {
			return agent.Result{}, err
		}
		members, required, err := net.uplinkMembers(ifc, 0)
		if err != nil {
			g.UnknownReason = err.Error()
			return agent.Result{Groups: []spof.Group{g}}, nil
		}
		g.Required += required
		paths = append(paths, members)
	}
	// IPv4 and IPv6 over the same lower devices count once.
	if len(paths) == 2 && sameMembers(paths[0], paths[1]) {
		paths = paths[:1]
		g.Required /= 2
	}
	for _, p := range paths {
		g.Members = append(g.Members, p...)
	}
	return agent.Result{Groups: []spof.Group{g}}, nil
}

func sameMembers(a, b []spof.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

// parseDefaultRoutesV4 returns the interfaces of usable default routes in
// /proc/net/route (net/ipv4/fib_trie.c: hex destination and mask, flags).
func parseDefaultRoutesV4(b []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 || len(f) == 0 {
			continue // header
		}
		if len(f) < 8 {
			return out, fmt.Errorf("line %d: %d fields, want at least 8", line, len(f))
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return out, fmt.Errorf("line %d: flags %q: %w", line, f[3], err)
		}
		const rtfUp = 0x1
		if f[1] == "00000000" && f[7] == "00000000" && flags&rtfUp != 0 && !slices.Contains(out, f[0]) {
			out = append(out, f[0])
		}
	}
	return out, sc.Err()
}

// parseDefaultRoutesV6 returns the interfaces of usable default routes in
// /proc/net/ipv6_route (net/ipv6/route.c: dest, plen, src, plen, next hop,
// metric, refcnt, use, flags, device). The kernel keeps reject routes on lo.
func parseDefaultRoutesV6(b []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 10 {
			return out, fmt.Errorf("line %d: %d fields, want 10", line, len(f))
		}
		flags, err := strconv.ParseUint(f[8], 16, 32)
		if err != nil {
			return out, fmt.Errorf("line %d: flags %q: %w", line, f[8], err)
		}
		const rtfUp, rtfReject = 0x1, 0x200
		if strings.Trim(f[0], "0") == "" && f[1] == "00" && flags&rtfUp != 0 && flags&rtfReject == 0 && f[9] != "lo" && !slices.Contains(out, f[9]) {
			out = append(out, f[9])
		}
	}
	return out, sc.Err()
}

// sysNet reads network devices under one sysfs root.
type sysNet struct {
	sys  string
	proc string // for /proc/net/bonding
}

// attr reads one attribute of an interface, "" when unreadable.
func (n sysNet) attr(ifc, name string) string {
	v, err := sysdev.New(n.sys).ReadAttr(path.Join("class/net", ifc, name))
	if err != nil {
		return ""
	}
	return v
}

func (n sysNet) dir(ifc string) string { return filepath.Join(n.sys, "class", "net", ifc) }

// uplinkMembers follows an interface down to what carries its traffic and
// returns those parts as members with how many are required.
func (n sysNet) uplinkMembers(ifc string, depth int) ([]spof.Member, int, error) {
	if depth > maxStackDepth {
		return nil, 0, fmt.Errorf("interface stack deeper than %d at %s", maxStackDepth, ifc)
	}
	dir := n.dir(ifc)
	if _, err := os.Stat(dir); err != nil {
		return nil, 0, fmt.Errorf("interface %s: %w", ifc, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bonding")); err == nil {
		return n.bondMembers(ifc)
	}
	if _, err := os.Stat(filepath.Join(dir, "bridge")); err == nil {
		ports, err := os.ReadDir(filepath.Join(dir, "brif"))
		if err != nil {
			return nil, 0, fmt.Errorf("read bridge ports of %s: %w", ifc, err)
		}
		var lowers []string
		for _, p := range ports {
			if n.carriesUplink(p.Name()) {
				lowers = append(lowers, p.Name())
			}
		}
		return n.followLowers(ifc, lowers, depth)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", dir, err)
	}
	var lowers []string
	for _, e := range entries {
		if l, ok := strings.CutPrefix(e.Name(), "lower_"); ok {
			lowers = append(lowers, l)
		}
	}
	if len(lowers) > 0 {
		return n.followLowers(ifc, lowers, depth) // VLAN, macvlan
	}
	m := n.nicMember(ifc)
	return []spof.Member{m}, 1, nil
}

// carriesUplink says whether a bridge port leads off the host: a physical
// NIC, a bond, or a VLAN on one. veth and tap ports lead to guests.
func (n sysNet) carriesUplink(ifc string) bool {
	dir := n.dir(ifc)
	for _, probe := range []string{"device", "bonding"} {
		if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
			return true
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "lower_") {
			return true
		}
	}
	return false
}

func (n sysNet) followLowers(ifc string, lowers []string, depth int) ([]spof.Member, int, error) {
	switch len(lowers) {
	case 0:
		return nil, 0, fmt.Errorf("%s has no lower device that leads off the host", ifc)
	case 1:
		return n.uplinkMembers(lowers[0], depth+1)
	}
	// Several uplink ports on one bridge: traffic survives while one works
	// (spanning tree keeps one forwarding).
	sort.Strings(lowers)
	var members []spof.Member
	for _, l := range lowers {
		ms, _, err := n.uplinkMembers(l, depth+1)
		if err != nil {
			return nil, 0, err
		}
		members = append(members, ms...)
	}
	return members, 1, nil
}

// bondMembers returns the bond's members and required count exactly as
// the bonding collector judges them (BondGroup): a default route over bond0
// is exactly as redundant as bond0, including slaves outside the active
// LACP aggregator and slaves on one card.
func (n sysNet) bondMembers(bond string) ([]spof.Member, int, error) {
	g, err := BondGroup(n.sys, n.proc, bond)
	if err != nil {
		return nil, 0, err
	}
	if g.UnknownReason != "" {
		return nil, 0, fmt.Errorf("bond %s: %s", bond, g.UnknownReason)
	}
	if len(g.Members) == 0 {
		return []spof.Member{{Name: bond + " (no slaves)", State: spof.MemberMissing, Detail: "bond has no slaves"}}, g.Required, nil
	}
	members := append([]spof.Member(nil), g.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	return members, g.Required, nil
}

// nicMember describes one NIC with its card as failure domain.
func (n sysNet) nicMember(ifc string) spof.Member {
	m := spof.Member{Name: ifc, State: spof.MemberOK}
	switch op := n.attr(ifc, "operstate"); op {
	case "":
		m.State, m.Detail = spof.MemberUnknown, "operstate unreadable"
	case "up", "unknown":
		// "unknown" is what drivers without link state (virtio, tun) report;
		// carrier decides for them.
		if n.attr(ifc, "carrier") == "0" {
			m.State, m.Detail = spof.MemberFailed, "no carrier"
		}
	default:
		m.State, m.Detail = spof.MemberFailed, "operstate "+op
	}
	// The same resolver as the bonding collector's, so a port named here
	// and in a bond carries the same nic_card (usb:<device> for USB NICs);
	// a card that cannot be resolved gives no domain, as before.
	if nic, err := sysdev.New(n.sys).NIC(path.Join("class/net", ifc)); err == nil && nic.Card != "" {
		m.Domains = map[string]string{spof.DomainNICCard: nic.Card}
	}
	return m
}
