package bonding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spofwatch/spofwatch/sysdev"
)

// ErrNoBonding means the host has no bonding driver loaded and no bond.
var ErrNoBonding = errors.New("no bonding driver and no bonds on this host")

// FS reads bonds below a sysfs and a procfs root, so every reader runs
// against a fixture tree as well as against the live kernel.
type FS struct {
	sys  sysdev.Sys
	proc string
}

// NewFS returns a reader for the given sysfs and procfs mount points; empty
// paths mean /sys and /proc.
func NewFS(sysPath, procPath string) FS {
	if procPath == "" {
		procPath = "/proc"
	}
	return FS{sys: sysdev.New(sysPath), proc: procPath}
}

// netDir is the path of /sys/class/net/<parts...>.
func (f FS) netDir(parts ...string) string {
	return f.sys.Path(netRel(parts...))
}

// netRel is netDir relative to the sysfs root, for confined reads.
func netRel(parts ...string) string {
	return path.Join(append([]string{"class", "net"}, parts...)...)
}

// BondNames lists the bonds: those in bonding_masters, plus any interface
// with a bonding/ directory (a bond created by a second load of the module
// is not listed in bonding_masters, see bond_create_sysfs). It returns
// ErrNoBonding when there is neither.
func (f FS) BondNames() ([]string, error) {
	seen := map[string]bool{}
	var names []string
	masters := f.netDir("bonding_masters")
	data, err := f.sys.ReadAttr(netRel("bonding_masters"))
	mastersMissing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !mastersMissing {
		return nil, fmt.Errorf("read %s: %w", masters, err)
	}
	for _, n := range strings.Fields(data) {
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
		f.readBondSysfs(&b, netRel(name, "bonding"))
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

func (f FS) readBondSysfs(b *Bond, rel string) {
	r, ok := f.attrs(rel, &b.Problems)
	if !ok {
		return
	}
	defer r.close()
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

// slaveDir finds the slave's net device directory, relative to the sysfs
// root. Current kernels link it from the bond as lower_<if>; old ones as
// slave_<if>; /sys/class/net/<if> is the canonical place.
func (f FS) slaveDir(bond, slave string) string {
	candidates := []string{netRel(slave), netRel(bond, "lower_"+slave), netRel(bond, "slave_"+slave)}
	for _, p := range candidates {
		if st, err := os.Stat(f.sys.Path(p, "bonding_slave")); err == nil && st.IsDir() {
			return p
		}
	}
	for _, p := range candidates {
		if _, err := os.Stat(f.sys.Path(p)); err == nil {
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
	if st, err := os.Stat(f.sys.Path(dir, "bonding_slave")); err == nil && st.IsDir() {
		f.readSlaveAttrs(dir+"/bonding_slave", s)
	}
	nic, err := f.sys.NIC(dir)
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
	}
	s.Device, s.VirtualFunction, s.Card = nic.Device, nic.VirtualFunction, nic.Card
}

func (f FS) readSlaveAttrs(rel string, s *Slave) {
	r, ok := f.attrs(rel, &s.Problems)
	if !ok {
		return
	}
	defer r.close()
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

// attrReader reads single-value sysfs attributes of one directory and
// records unreadable ones. A missing attribute (older kernel) is not a
// problem; callers see ok=false.
type attrReader struct {
	dir      *sysdev.Dir
	problems *[]string
}

// attrs opens an attribute directory below the sysfs root; ok is false
// when it cannot be opened (recorded unless it does not exist).
func (f FS) attrs(rel string, problems *[]string) (r attrReader, ok bool) {
	d, err := f.sys.OpenDir(rel)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			*problems = append(*problems, fmt.Sprintf("read %s: %v", f.sys.Path(rel), err))
		}
		return attrReader{}, false
	}
	return attrReader{dir: d, problems: problems}, true
}

func (r attrReader) close() { r.dir.Close() }

func (r attrReader) str(name string) (string, bool) {
	v, err := r.dir.Read(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			*r.problems = append(*r.problems, fmt.Sprintf("read %s: %v", filepath.Join(r.dir.Path(), name), err))
		}
		return "", false
	}
	return v, true
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
		*r.problems = append(*r.problems, fmt.Sprintf("%s: not a number: %q", filepath.Join(r.dir.Path(), name), v))
		return Unknown
	}
	return n
}
