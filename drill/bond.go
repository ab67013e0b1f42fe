package drill

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/bonding"
)

// Defaults of the bond failover drill.
const (
	// DefaultARPProbes is how many ARP requests a slave gets within the
	// probe timeout before it is judged unable to reach a target.
	DefaultARPProbes = 2
	// bondSwitchTimeout bounds the wait for active_slave to read back the
	// slave just written (the kernel switches under RTNL, normally in
	// well under a millisecond).
	bondSwitchTimeout = 2 * time.Second
	// bondRestoreTimeout is the restore's own deadline: it runs even when
	// the drill's context is already cancelled.
	bondRestoreTimeout = 5 * time.Second
	// maxRouteBytes bounds the read of /proc/net/route.
	maxRouteBytes = 1 << 20
)

// bondFailover is the "bond-failover" method: each backup slave in turn
// becomes the active slave and must reach the targets by ARP, then the
// original active slave is restored.
type bondFailover struct {
	sysRoot, procRoot string
	bond              string
	targets           []netip.Addr
	probeTimeout      time.Duration
	probes            int
	switchTimeout     time.Duration
	restoreTimeout    time.Duration
	// probe and addrs are the network side; tests on a fixture tree
	// replace them.
	probe arpProber
	addrs func(ifname string) ([]netip.Prefix, error)
}

// NewBondFailover returns the bond failover drill of one bond. sysfsRoot
// is where sysfs is mounted ("" is /sys; /proc is then read from /proc).
// targets are the addresses each slave must reach by ARP; empty means the
// default gateway routed via the bond. probeTimeout is how long a slave
// gets to reach each target (0 means 3s).
//
// Modes: active-backup and balance-tlb. The kernel also lets active_slave
// be set in balance-alb, but there an ARP request leaves on the slave the
// receive load balancer assigns to the peer (rlb_arp_xmit in bond_alb.c),
// not on the active slave, so the probe would not prove the slave under
// test; such bonds are refused.
func NewBondFailover(sysfsRoot, bond string, targets []netip.Addr, probeTimeout time.Duration) Method {
	if probeTimeout <= 0 {
		probeTimeout = 3 * time.Second
	}
	procRoot := "/proc"
	if sysfsRoot == "" {
		sysfsRoot = "/sys"
	}
	return &bondFailover{
		sysRoot: sysfsRoot, procRoot: procRoot, bond: bond,
		targets: append([]netip.Addr(nil), targets...), probeTimeout: probeTimeout, probes: DefaultARPProbes,
		switchTimeout: bondSwitchTimeout, restoreTimeout: bondRestoreTimeout,
		probe: probeARP, addrs: interfaceIPv4,
	}
}

func (m *bondFailover) Name() string     { return "bond-failover" }
func (m *bondFailover) Disruptive() bool { return true }

// bondPlan is what inspecting the bond found: enough to run the drill.
type bondPlan struct {
	mode      bonding.Mode
	active    string
	backups   []string
	primary   string
	reselect  string
	src       netip.Addr
	targets   []netip.Addr
	targetWhy string
}

// refusal is a reason the drill cannot run now; nothing was changed.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refuse(format string, a ...any) error { return &refusal{fmt.Sprintf(format, a...)} }

// inspect reads the bond and decides what the drill would do. A *refusal
// error means the drill must not run.
func (m *bondFailover) inspect() (bondPlan, error) {
	var p bondPlan
	if !validIfName(m.bond) {
		return p, refuse("invalid bond name %q", m.bond)
	}
	b, err := bonding.NewFS(m.sysRoot, m.procRoot).Bond(m.bond)
	if err != nil {
		return p, refuse("cannot read bond %s: %v", m.bond, err)
	}
	p.mode = b.Mode
	switch b.Mode {
	case bonding.ModeActiveBackup, bonding.ModeBalanceTLB:
	case bonding.ModeBalanceALB:
		return p, refuse("%s is balance-alb: an ARP request leaves on the slave the receive load balancer picks for the peer, not on the active slave, so an ARP probe cannot prove one slave's path", m.bond)
	case bonding.Mode8023AD:
		return p, refuse("%s is 802.3ad: the kernel has no active slave to switch in this mode; use lacp-state", m.bond)
	case "":
		return p, refuse("%s: bonding mode unknown", m.bond)
	default:
		return p, refuse("%s is %s: the kernel sets active_slave only in active-backup, balance-tlb and balance-alb", m.bond, b.Mode)
	}
	// The sysfs file is the one the drill writes; read it directly so the
	// plan and the writes agree.
	active, err := m.readActive()
	if err != nil {
		return p, refuse("%v", err)
	}
	if active == "" {
		return p, refuse("%s has no active slave", m.bond)
	}
	p.active = active
	if len(b.Slaves) < 2 {
		return p, refuse("%s has %d slave(s): no backup to drill", m.bond, len(b.Slaves))
	}
	for _, s := range b.Slaves {
		if s.Name == active {
			continue
		}
		if !validIfName(s.Name) {
			return p, refuse("%s: invalid slave name %q", m.bond, s.Name)
		}
		if s.MIIStatus != "up" {
			st := s.MIIStatus
			if st == "" {
				st = "unknown"
			}
			return p, refuse("backup slave %s link is %s: %s is not fully redundant", s.Name, st, m.bond)
		}
		p.backups = append(p.backups, s.Name)
	}
	if len(p.backups) == 0 {
		return p, refuse("%s: active slave %s is not among its slaves", m.bond, active)
	}
	p.primary = b.Primary
	if v, err := m.readBondAttr("primary_reselect"); err == nil {
		p.reselect = firstWord(v)
	}

	p.targets, p.targetWhy = m.targets, "target"
	if len(p.targets) == 0 {
		gw, err := defaultGateway(filepath.Join(m.procRoot, "net", "route"), m.bond)
		if err != nil {
			return p, refuse("no gateway via %s (%v); set drill.bonds[].targets", m.bond, err)
		}
		if !gw.IsValid() {
			return p, refuse("no gateway via %s; set drill.bonds[].targets", m.bond)
		}
		p.targets, p.targetWhy = []netip.Addr{gw}, "gateway"
	}
	for _, t := range p.targets {
		if !t.Is4() {
			return p, refuse("target %s is not IPv4: the drill probes with ARP", t)
		}
	}
	prefixes, err := m.addrs(m.bond)
	if err != nil {
		return p, refuse("addresses of %s: %v", m.bond, err)
	}
	p.src = sourceFor(prefixes, p.targets[0])
	if !p.src.IsValid() {
		return p, refuse("%s has no IPv4 address to send ARP from", m.bond)
	}
	return p, nil
}

func (m *bondFailover) Plan(ctx context.Context) ([]string, error) {
	p, err := m.inspect()
	if err != nil {
		return nil, err
	}
	ts := addrList(p.targets)
	steps := []string{
		fmt.Sprintf("%s (%s): active slave %s, backup(s) %s; %s %s, ARP from %s, %s in %s per slave and target", m.bond, p.mode, p.active, strings.Join(p.backups, ", "), p.targetWhy, ts, p.src, probesText(m.probes), m.probeTimeout),
		fmt.Sprintf("check that %s answers ARP on the active slave %s (nothing changed yet)", ts, p.active),
	}
	if note := p.primaryNote(m.bond); note != "" {
		steps = append(steps, note)
	}
	for _, s := range p.backups {
		steps = append(steps,
			fmt.Sprintf("write %s to %s; wait until it reads back", s, m.activePath()),
			fmt.Sprintf("send ARP who-has %s from %s on %s (active %s); fail %s if no reply within %s", ts, p.src, m.bond, s, s, m.probeTimeout),
			fmt.Sprintf("write %s back to %s; wait until it reads back (own deadline %s)", p.active, m.activePath(), m.restoreTimeout))
	}
	steps = append(steps, fmt.Sprintf("on any failure, error or signal: restore %s at once and stop", p.active))
	return steps, nil
}

// primaryNote explains how a configured primary interacts with the drill.
// The drill leaves primary alone: changing the bond's configuration is a
// bigger risk than the kernel switching back early, which the drill
// detects (the slave under test must still be active after its probe).
func (p bondPlan) primaryNote(bond string) string {
	if p.primary == "" {
		return ""
	}
	return fmt.Sprintf("%s has primary %s (primary_reselect %s): a link event during the drill returns the kernel to %s; each slave must still be active after its probe, or the drill fails without blaming it", bond, p.primary, orUnknown(p.reselect), p.primary)
}

func (m *bondFailover) Run(ctx context.Context, wait bool, progress Progress) (out Outcome) {
	p, err := m.inspect()
	if err != nil {
		return Outcome{Result: ResultRefused, Reason: err.Error()}
	}
	if progress == nil {
		progress = func(float64, float64, string) {}
	}
	var details []string
	if note := p.primaryNote(m.bond); note != "" {
		details = append(details, note)
	}

	// The baseline: the targets must answer on the active slave, or a
	// silent backup says nothing about the backup.
	for _, t := range p.targets {
		res, err := m.probe(ctx, m.bond, p.src, t, m.probes, m.probeTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return Outcome{Result: ResultFailed, Reason: "aborted before any change: " + ctx.Err().Error(), Details: details}
			}
			return Outcome{Result: ResultRefused, Reason: fmt.Sprintf("ARP on %s: %v", m.bond, err), Details: details}
		}
		if !res.Reply {
			return Outcome{Result: ResultRefused, Details: details,
				Reason: fmt.Sprintf("%s %s does not answer ARP on the active slave %s either (%s in %s): check the target", p.targetWhy, t, p.active, probesText(res.Sent), m.probeTimeout)}
		}
		details = append(details, fmt.Sprintf("baseline: %s answers on %s in %s", t, p.active, ms(res.RTT)))
	}

	out = Outcome{Result: ResultPassed, Details: details}
	// Whatever happens below, the bond ends on its original active slave.
	defer func() {
		if r := m.ensureRestored(p.active); r != "" {
			out.Result = ResultFailed
			out.Reason = joinReason(out.Reason, r)
		}
	}()
	for i, s := range p.backups {
		progress(float64(i), float64(len(p.backups)), "drilling "+s)
		line, failed, stop := m.drillSlave(ctx, p, s)
		out.Details = append(out.Details, line)
		if failed != "" {
			out.Result = ResultFailed
			if out.FailedMembers == nil {
				out.FailedMembers = map[string]string{}
			}
			out.FailedMembers[s] = failed
			out.Reason = joinReason(out.Reason, s+" "+failed)
		}
		if stop != "" {
			out.Result = ResultFailed
			if failed == "" {
				out.Reason = joinReason(out.Reason, stop)
			}
			for _, rest := range p.backups[i+1:] {
				out.Details = append(out.Details, rest+": not tried (the drill stopped)")
			}
			return out
		}
	}
	progress(float64(len(p.backups)), float64(len(p.backups)), "done")
	out.Reason = fmt.Sprintf("every backup slave of %s reached %s by ARP (%s); %s restored", m.bond, addrList(p.targets), strings.Join(p.backups, ", "), p.active)
	return out
}

// drillSlave makes s active, probes, and restores. It returns a Details
// line, a member failure (s cannot carry the traffic) and, when the drill
// must stop, why.
func (m *bondFailover) drillSlave(ctx context.Context, p bondPlan, s string) (line, failed, stop string) {
	t0 := time.Now()
	if err := m.writeActive(s); err != nil {
		// The kernel refuses a slave whose link is down (EINVAL); nothing
		// changed, but the backup cannot take over.
		return fmt.Sprintf("%s: refused by the kernel: %v", s, err), "cannot be made the active slave: " + errText(err), "stopped at the first failure"
	}
	switched, err := m.waitActive(ctx, s, m.switchTimeout)
	if err != nil {
		rest := m.restore(p.active)
		if ctx.Err() != nil {
			return fmt.Sprintf("%s: aborted while switching; %s", s, rest), "", "aborted: " + ctx.Err().Error()
		}
		return fmt.Sprintf("%s: %v; %s", s, err, rest), "did not become the active slave within " + m.switchTimeout.String(), "stopped at the first failure"
	}
	tSwitch := switched.Sub(t0)
	var parts []string
	var firstReply time.Time
	for _, t := range p.targets {
		res, err := m.probe(ctx, m.bond, p.src, t, m.probes, m.probeTimeout)
		if err != nil {
			rest := m.restore(p.active)
			if ctx.Err() != nil {
				return fmt.Sprintf("%s: active in %s, aborted during the ARP probe of %s; %s", s, ms(tSwitch), t, rest), "", "aborted: " + ctx.Err().Error()
			}
			return fmt.Sprintf("%s: active in %s, ARP probe of %s: %v; %s", s, ms(tSwitch), t, err, rest), "", fmt.Sprintf("ARP probe on %s failed: %v", m.bond, err)
		}
		if !res.Reply {
			rest := m.restore(p.active)
			why := fmt.Sprintf("cannot reach %s %s (ARP, %s in %s)", p.targetWhy, t, probesText(res.Sent), m.probeTimeout)
			return fmt.Sprintf("%s: active in %s, no ARP reply from %s (%s in %s); %s", s, ms(tSwitch), t, probesText(res.Sent), m.probeTimeout, rest), why, "stopped at the first failure"
		}
		if firstReply.IsZero() {
			firstReply = res.Answered
		}
		parts = append(parts, fmt.Sprintf("ARP reply from %s in %s", t, ms(res.RTT)))
	}
	// The kernel may have switched on its own (a link event with a primary
	// set): then the replies did not prove s.
	now, err := m.readActive()
	rest := m.restore(p.active)
	if err != nil || now != s {
		why := fmt.Sprintf("%s left %s during the probe (active slave now %q", m.bond, s, now)
		if err != nil {
			why = fmt.Sprintf("cannot confirm %s stayed active (%v", s, err)
		}
		return fmt.Sprintf("%s: %s); %s", s, why, rest), "", why + "): the probe proves nothing"
	}
	gap := firstReply.Sub(t0)
	return fmt.Sprintf("%s: active in %s, %s, write-to-first-reply gap %s; %s", s, ms(tSwitch), strings.Join(parts, ", "), ms(gap), rest), "", ""
}

// restore writes the original active slave back under its own deadline
// and says how it went, for the Details line.
func (m *bondFailover) restore(orig string) string {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), m.restoreTimeout)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		if err := m.writeActive(orig); err != nil {
			lastErr = err
		} else if _, err := m.waitActive(ctx, orig, m.restoreTimeout); err == nil {
			return fmt.Sprintf("restored %s in %s", orig, ms(time.Since(t0)))
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Sprintf("NOT restored to %s after %s: %v", orig, ms(time.Since(t0)), lastErr)
}

// ensureRestored is the last line of defence (it runs on every return
// from Run, panics included): it returns "" when the bond is on orig.
func (m *bondFailover) ensureRestored(orig string) string {
	if cur, err := m.readActive(); err == nil && cur == orig {
		return ""
	}
	r := m.restore(orig)
	if strings.HasPrefix(r, "restored") {
		return ""
	}
	return fmt.Sprintf("%s %s", m.bond, r)
}

func (m *bondFailover) activePath() string {
	return filepath.Join(m.sysRoot, "class", "net", m.bond, "bonding", "active_slave")
}

func (m *bondFailover) readBondAttr(name string) (string, error) {
	p := filepath.Join(m.sysRoot, "class", "net", m.bond, "bonding", name)
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (m *bondFailover) readActive() (string, error) {
	v, err := m.readBondAttr("active_slave")
	if err != nil {
		return "", fmt.Errorf("read %s active slave: %w", m.bond, err)
	}
	return v, nil
}

// writeActive asks the kernel to make slave the active slave. The write
// goes to the existing sysfs attribute only (no O_CREATE).
func (m *bondFailover) writeActive(slave string) error {
	f, err := os.OpenFile(m.activePath(), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(slave + "\n"))
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %s to %s: %w", slave, m.activePath(), werr)
	}
	if cerr != nil {
		return fmt.Errorf("write %s to %s: %w", slave, m.activePath(), cerr)
	}
	return nil
}

// waitActive polls active_slave until it reads want, and returns when it
// first did.
func (m *bondFailover) waitActive(ctx context.Context, want string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var cur string
	var err error
	for {
		cur, err = m.readActive()
		now := time.Now()
		if err == nil && cur == want {
			return now, nil
		}
		if ctx.Err() != nil {
			return now, ctx.Err()
		}
		if now.After(deadline) {
			if err != nil {
				return now, err
			}
			return now, fmt.Errorf("%s active slave reads %q, want %q after %s", m.bond, cur, want, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// route is one IPv4 route of /proc/net/route.
type route struct {
	Iface   string
	Dst     netip.Addr
	Gateway netip.Addr
	Mask    netip.Addr
	Flags   uint32
	Metric  int
}

const (
	rtfUp      = 0x1
	rtfGateway = 0x2
)

// parseRoutes reads /proc/net/route: a header line, then tab-separated
// fields with addresses as the kernel's __be32 printed with %08X in the
// host's byte order (fib_route_seq_show in net/ipv4/fib_trie.c).
func parseRoutes(r io.Reader) ([]route, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxRouteBytes))
	sc.Buffer(make([]byte, 4096), 4096)
	var out []route
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 {
			if len(f) < 8 || f[0] != "Iface" {
				return nil, fmt.Errorf("route table: unexpected header %q", sc.Text())
			}
			continue
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("route table line %d: %d fields, want at least 8", line, len(f))
		}
		var rt route
		rt.Iface = f[0]
		var err error
		if rt.Dst, err = hexAddr(f[1]); err != nil {
			return nil, fmt.Errorf("route table line %d destination: %w", line, err)
		}
		if rt.Gateway, err = hexAddr(f[2]); err != nil {
			return nil, fmt.Errorf("route table line %d gateway: %w", line, err)
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("route table line %d flags %q: %w", line, f[3], err)
		}
		rt.Flags = uint32(flags)
		if rt.Metric, err = strconv.Atoi(f[6]); err != nil {
			return nil, fmt.Errorf("route table line %d metric %q: %w", line, f[6], err)
		}
		if rt.Mask, err = hexAddr(f[7]); err != nil {
			return nil, fmt.Errorf("route table line %d mask: %w", line, err)
		}
		out = append(out, rt)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("route table: %w", err)
	}
	if line == 0 {
		return nil, errors.New("route table: empty (no header)")
	}
	return out, nil
}

func hexAddr(s string) (netip.Addr, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("not an 8-digit hex address: %q", s)
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), nil
}

// gatewayVia picks the default route (destination and mask 0, up, with a
// gateway) on iface with the lowest metric; invalid when there is none.
func gatewayVia(routes []route, iface string) netip.Addr {
	var best *route
	for i := range routes {
		r := &routes[i]
		if r.Iface != iface || !r.Dst.IsUnspecified() || !r.Mask.IsUnspecified() || r.Flags&(rtfUp|rtfGateway) != rtfUp|rtfGateway {
			continue
		}
		if best == nil || r.Metric < best.Metric {
			best = r
		}
	}
	if best == nil {
		return netip.Addr{}
	}
	return best.Gateway
}

func defaultGateway(path, iface string) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	routes, err := parseRoutes(f)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", path, err)
	}
	return gatewayVia(routes, iface), nil
}

// interfaceIPv4 lists an interface's IPv4 prefixes.
func interfaceIPv4(ifname string) ([]netip.Prefix, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !ip.Is4() {
			continue
		}
		ones, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// sourceFor picks the bond address in target's subnet, else its first
// IPv4 address.
func sourceFor(prefixes []netip.Prefix, target netip.Addr) netip.Addr {
	for _, p := range prefixes {
		if p.Addr().Is4() && p.Masked().Contains(target) {
			return p.Addr()
		}
	}
	for _, p := range prefixes {
		if p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

func validIfName(n string) bool {
	return n != "" && len(n) < 16 && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00 \t\n")
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// errText is an error without the path prefix of a *PathError, for a
// member's reason.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func probesText(n int) string {
	if n == 1 {
		return "1 probe"
	}
	return strconv.Itoa(n) + " probes"
}

// ms formats a duration in milliseconds with 0.1ms resolution.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + "ms"
}
