package bonding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBonding means the host has no bonding driver loaded and no bond.
var ErrNoBonding = errors.New("no bonding driver and no bonds on this host")

// FS reads bonds below a sysfs and a procfs root, so every reader runs
// against a fixture tree as well as against the live kernel.
type FS struct {
	sys  string
	proc string
}

// NewFS returns a reader for the given sysfs and procfs mount points; empty
// paths mean /sys and /proc.
func NewFS(sysPath, procPath string) FS {
	if sysPath == "" {
		sysPath = "/sys"
	}
	if procPath == "" {
		procPath = "/proc"
	}
	return FS{sys: sysPath, proc: procPath}
}

func (f FS) netDir(parts ...string) string {
	return filepath.Join(append([]string{f.sys, "class", "net"}, parts...)...)
}

// BondNames lists the bonds: those in bonding_masters, plus any interface
// with a bonding/ directory (a bond created by a second load of the module
// is not listed in bonding_masters, see bond_create_sysfs). It returns
// ErrNoBonding when there is neither.
func (f FS) BondNames() ([]string, error) {
	seen := map[string]bool{}
	var names []string
	masters := f.netDir("bonding_masters")
	data, err := os.ReadFile(masters)
	mastersMissing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !mastersMissing {
		return nil, fmt.Errorf("read %s: %w", masters, err)
	}
	for _, n := range strings.Fields(string(data)) {
		if n == "++more++" || seen[n] {
			continue
		}
		seen[n] = true
		names = append(names, n)
	}
	entries, err := os.ReadDir(f.netDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", f.netDir(), err)
	}
	for _, e := range entries {
		n := e.Name()
		if seen[n] {
			continue
		}
		if st, err := os.Stat(f.netDir(n, "bonding")); err == nil && st.IsDir() {
			seen[n] = true
			names = append(names, n)
		}
	}
	if mastersMissing && len(names) == 0 {
		// Without sysfs support, /proc/net/bonding still lists bonds.
		pe, err := os.ReadDir(filepath.Join(f.proc, "net", "bonding"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list %s: %w", filepath.Join(f.proc, "net", "bonding"), err)
		}
		for _, e := range pe {
			names = append(names, e.Name())
		}
		if len(names) == 0 {
			return nil, ErrNoBonding
		}
	}
	sort.Strings(names)
	return names, nil
}

// Bonds reads every bond. A bond that cannot be read at all is returned
// with its Problems set rather than failing the others.
func (f FS) Bonds(ctx context.Context) ([]Bond, error) {
	names, err := f.BondNames()
	if err != nil {
		return nil, err
	}
	bonds := make([]Bond, 0, len(names))
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return bonds, err
		}
		b, err := f.Bond(n)
		if err != nil {
			b.Problems = append(b.Problems, err.Error())
		}
		bonds = append(bonds, b)
	}
	return bonds, nil
}

// Bond reads one bond from sysfs and fills what sysfs lacks or hides from
// /proc/net/bonding/<name>. It returns an error only when neither source
// exists for the bond.
func (f FS) Bond(name string) (Bond, error) {
	b := unknownBond(name)
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return b, fmt.Errorf("invalid bond name %q", name)
	}
	dir := f.netDir(name, "bonding")
	_, statErr := os.Stat(dir)
	haveSys := statErr == nil
	if haveSys {
		f.readBondSysfs(&b, dir)
	} else if !errors.Is(statErr, fs.ErrNotExist) {
		b.Problems = append(b.Problems, fmt.Sprintf("%s: %v", dir, statErr))
	}

	procFile := filepath.Join(f.proc, "net", "bonding", name)
	procData, err := os.ReadFile(procFile)
	haveProc := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.Problems = append(b.Problems, fmt.Sprintf("read %s: %v", procFile, err))
	}
	if !haveSys && !haveProc {
		return b, fmt.Errorf("bond %s: neither %s nor %s exists", name, dir, procFile)
	}
	if haveProc {
		p, err := ParseProc(name, bytes.NewReader(procData))
		if err != nil {
			b.Problems = append(b.Problems, fmt.Sprintf("%s: %v", procFile, err))
		} else {
			merge(&b, p, haveSys)
			for _, pr := range p.Problems {
				b.Problems = append(b.Problems, procFile+": "+pr)
			}
		}
	}
	for i := range b.Slaves {
		f.readSlaveSysfs(name, &b.Slaves[i])
	}
	if b.Mode == Mode8023AD && b.PartnerMAC == "" && b.ActiveAggregator > 0 {
		b.Problems = append(b.Problems, "ad_partner_mac: hidden (reading it needs CAP_NET_ADMIN)")
	}
	return b, nil
}

func (f FS) readBondSysfs(b *Bond, dir string) {
	r := attrReader{dir: dir, problems: &b.Problems}
	if v, ok := r.str("mode"); ok {
		b.Mode = Mode(firstField(v))
	}
	if v, ok := r.str("slaves"); ok {
		b.SlavesKnown = true
		for _, s := range strings.Fields(v) {
			if s != "++more++" {
				b.Slaves = append(b.Slaves, unknownSlave(s))
			}
		}
	}
	if v, ok := r.str("active_slave"); ok {
		b.ActiveSlave = v
	}
	if v, ok := r.str("primary"); ok {
		b.Primary = v
	}
	if v, ok := r.str("mii_status"); ok {
		b.MIIStatus = v
	}
	b.MIIMon = r.int("miimon")
	b.ARPInterval = r.int("arp_interval")
	b.UpDelay = r.int("updelay")
	b.DownDelay = r.int("downdelay")
	b.MinLinks = r.int("min_links")
	if v, ok := r.str("arp_ip_target"); ok {
		b.ARPIPTargets = strings.Fields(v)
	}
	if b.Mode == Mode8023AD {
		if v, ok := r.str("lacp_rate"); ok {
			b.LACPRate = firstField(v)
		}
		b.ActiveAggregator = r.int("ad_aggregator")
		b.NumPorts = r.int("ad_num_ports")
		if v, ok := r.str("ad_partner_mac"); ok {
			b.PartnerMAC = strings.ToLower(v)
		}
	}
}

// merge fills the fields sysfs left unknown from the /proc view.
func merge(b *Bond, p Bond, haveSys bool) {
	if b.Mode == "" {
		b.Mode = p.Mode
	}
	if !haveSys {
		// Without sysfs, /proc is the only source of these; with it, an
		// empty sysfs value means "none" and must not be overridden.
		b.ActiveSlave, b.Primary = p.ActiveSlave, p.Primary
		b.ARPIPTargets = p.ARPIPTargets
	}
	if b.MIIStatus == "" {
		b.MIIStatus = p.MIIStatus
	}
	for _, pair := range []struct {
		dst *int
		src int
	}{
		{&b.MIIMon, p.MIIMon}, {&b.ARPInterval, p.ARPInterval}, {&b.UpDelay, p.UpDelay}, {&b.DownDelay, p.DownDelay},
		{&b.MinLinks, p.MinLinks}, {&b.ActiveAggregator, p.ActiveAggregator}, {&b.NumPorts, p.NumPorts},
	} {
		if *pair.dst == Unknown {
			*pair.dst = pair.src
		}
	}
	if b.LACPRate == "" {
		b.LACPRate = p.LACPRate
	}
	if b.PartnerMAC == "" {
		b.PartnerMAC = p.PartnerMAC
	}
	if !haveSys || len(b.Slaves) == 0 {
		b.Slaves = append([]Slave(nil), p.Slaves...)
		b.SlavesKnown = true
		return
	}
	byName := map[string]Slave{}
	for _, s := range p.Slaves {
		byName[s.Name] = s
	}
	for i := range b.Slaves {
		ps, ok := byName[b.Slaves[i].Name]
		if !ok {
			continue
		}
		s := &b.Slaves[i]
		s.MIIStatus, s.LinkFailureCount, s.PermHWAddr = ps.MIIStatus, ps.LinkFailureCount, ps.PermHWAddr
		s.AggregatorID, s.ActorPortState, s.PartnerPortState, s.PartnerMAC = ps.AggregatorID, ps.ActorPortState, ps.PartnerPortState, ps.PartnerMAC
	}
}

// slaveDir finds the slave's net device directory. Current kernels link it
// from the bond as lower_<if>; old ones as slave_<if>; /sys/class/net/<if>
// is the canonical place.
func (f FS) slaveDir(bond, slave string) string {
	for _, p := range []string{
		f.netDir(slave),
		f.netDir(bond, "lower_"+slave),
		f.netDir(bond, "slave_"+slave),
	} {
		if st, err := os.Stat(filepath.Join(p, "bonding_slave")); err == nil && st.IsDir() {
			return p
		}
	}
	for _, p := range []string{f.netDir(slave), f.netDir(bond, "lower_"+slave), f.netDir(bond, "slave_"+slave)} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// readSlaveSysfs overlays sysfs bonding_slave/* on what /proc gave, and
// resolves the NIC card.
func (f FS) readSlaveSysfs(bond string, s *Slave) {
	if s.Name == "" || strings.ContainsAny(s.Name, "/\x00") || s.Name == "." || s.Name == ".." {
		s.Problems = append(s.Problems, fmt.Sprintf("invalid slave name %q", s.Name))
		return
	}
	dir := f.slaveDir(bond, s.Name)
	if dir == "" {
		if s.MIIStatus == "" {
			s.Problems = append(s.Problems, fmt.Sprintf("no sysfs directory for slave %s", s.Name))
		}
		return
	}
	if st, err := os.Stat(filepath.Join(dir, "bonding_slave")); err == nil && st.IsDir() {
		r := attrReader{dir: filepath.Join(dir, "bonding_slave"), problems: &s.Problems}
		if v, ok := r.str("mii_status"); ok && v != "" {
			s.MIIStatus = v
		}
		if v, ok := r.str("state"); ok && v != "" {
			s.State = v
		}
		if v, ok := r.str("perm_hwaddr"); ok && v != "" {
			s.PermHWAddr = strings.ToLower(v)
		}
		if v, ok := r.str("link_failure_count"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				s.LinkFailureCount = n
			} else {
				s.Problems = append(s.Problems, fmt.Sprintf("link_failure_count: not a number: %q", v))
			}
		}
		if v, ok := r.str("ad_aggregator_id"); ok {
			s.AggregatorID = naInt(v, s.AggregatorID, 0)
		}
		if v, ok := r.str("ad_actor_oper_port_state"); ok {
			s.ActorPortState = naInt(v, s.ActorPortState, Unknown)
		}
		if v, ok := r.str("ad_partner_oper_port_state"); ok {
			s.PartnerPortState = naInt(v, s.PartnerPortState, Unknown)
		}
	}
	dev, vf, card, err := f.nicCard(dir)
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
	}
	s.Device, s.VirtualFunction, s.Card = dev, vf, card
}

// naInt parses a sysfs number that reads "N/A" when not applicable.
func naInt(v string, prev, na int) int {
	if v == "N/A" {
		return na
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return prev
	}
	return n
}

var (
	pciAddr = regexp.MustCompile(`^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2})\.[0-7]$`)
	usbBus  = regexp.MustCompile(`^usb[0-9]+$`)
)

// nicCard resolves the slave's "device" link to the card it sits on. Ports
// of one card are functions of one PCI device (same domain:bus:device); a
// virtual function is charged to its physical function (device/physfn). A
// net device without a device link (veth, dummy, a nested bond) has none.
func (f FS) nicCard(netDevDir string) (device string, vf bool, card string, err error) {
	link := filepath.Join(netDevDir, "device")
	p, err := filepath.EvalSymlinks(link)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, "", nil
		}
		return "", false, "", fmt.Errorf("resolve %s: %w", link, err)
	}
	if pf, err := filepath.EvalSymlinks(filepath.Join(p, "physfn")); err == nil {
		p, vf = pf, true
	}
	root, _ := filepath.EvalSymlinks(f.sys)
	parts := strings.Split(filepath.ToSlash(p), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		dir := strings.Join(parts[:i+1], "/")
		if root != "" && !strings.HasPrefix(dir+"/", filepath.ToSlash(root)+"/") {
			break
		}
		if usbBus.MatchString(parts[i]) {
			// A USB NIC: the card is the USB device below the bus (a
			// dual-port USB adapter), not the host controller.
			if i+1 < len(parts) {
				return parts[len(parts)-1], vf, "usb:" + parts[i+1], nil
			}
			return parts[len(parts)-1], vf, "", nil
		}
		if m := pciAddr.FindStringSubmatch(parts[i]); m != nil {
			return parts[i], vf, m[1], nil
		}
	}
	return filepath.Base(p), vf, "", nil
}

// attrReader reads single-value sysfs attributes of one directory and
// records unreadable ones. A missing attribute (older kernel) is not a
// problem; callers see ok=false.
type attrReader struct {
	dir      string
	problems *[]string
}

func (r attrReader) str(name string) (string, bool) {
	p := filepath.Join(r.dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			*r.problems = append(*r.problems, fmt.Sprintf("read %s: %v", p, err))
		}
		return "", false
	}
	return strings.TrimSpace(string(data)), true
}

// int reads a non-negative number; an empty file (hidden or not applicable
// in this mode) or garbage is Unknown.
func (r attrReader) int(name string) int {
	v, ok := r.str(name)
	if !ok || v == "" {
		return Unknown
	}
	n, err := strconv.Atoi(firstField(v))
	if err != nil || n < 0 {
		*r.problems = append(*r.problems, fmt.Sprintf("%s: not a number: %q", filepath.Join(r.dir, name), v))
		return Unknown
	}
	return n
}
