package multipath

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// DMStatus is the multipath target's status (dmsetup status), as
// drivers/md/dm-mpath.c multipath_status() writes it for STATUSTYPE_INFO
// (the kernel documents no status format; that function is the reference):
//
//	<#features> <features...> <#hw handler args> <args...>
//	<#path groups> <next/current group (1-based)>
//	per group: <A|E|D> <#selector status args> <args...>
//	           <#paths> <#selector info args per path>
//	  per path: <major:minor> <A|F> <fail count> <selector info args...>
//
// A active (the current group), E enabled, D disabled (bypassed); a path
// is A active or F failed.
type DMStatus struct {
	// ActiveGroup is the 1-based group I/O goes to next (0: none).
	ActiveGroup int
	Groups      []DMPathGroup
}

// DMPathGroup is one priority group of paths.
type DMPathGroup struct {
	// State is A (active), E (enabled) or D (disabled/bypassed).
	State string
	Paths []DMPathStatus
}

// DMPathStatus is one path's state in the multipath target.
type DMPathStatus struct {
	// Dev is the path device's major:minor.
	Dev       string
	Active    bool
	FailCount int
}

// maxStatusFields bounds the fields of one status line; a map of 1024
// paths with two selector fields each stays under it.
const maxStatusFields = 8192

// ParseDMStatus parses the multipath target's status parameters (what
// follows "<start> <length> multipath" in `dmsetup status`).
func ParseDMStatus(params string) (DMStatus, error) {
	f := strings.Fields(params)
	if len(f) > maxStatusFields {
		return DMStatus{}, fmt.Errorf("status has %d fields, more than %d", len(f), maxStatusFields)
	}
	t := tokens{f: f}
	var st DMStatus
	// Features and hardware-handler arguments: counted lists we skip.
	for _, what := range []string{"feature", "hardware handler argument"} {
		n, err := t.count(what)
		if err != nil {
			return st, err
		}
		if err := t.skip(n, what); err != nil {
			return st, err
		}
	}
	ngroups, err := t.count("path group")
	if err != nil {
		return st, err
	}
	if st.ActiveGroup, err = t.count("active path group"); err != nil {
		return st, err
	}
	// Kernels before 4.x print group 1 for a map with no groups.
	if ngroups > 0 && st.ActiveGroup > ngroups {
		return st, fmt.Errorf("active path group %d of %d", st.ActiveGroup, ngroups)
	}
	for g := 1; g <= ngroups; g++ {
		state, err := t.next(fmt.Sprintf("state of path group %d", g))
		if err != nil {
			return st, err
		}
		if state != "A" && state != "E" && state != "D" {
			return st, fmt.Errorf("path group %d: state %q, want A, E or D", g, state)
		}
		nsel, err := t.count("selector status argument")
		if err != nil {
			return st, err
		}
		if err := t.skip(nsel, "selector status argument"); err != nil {
			return st, err
		}
		npaths, err := t.count("path")
		if err != nil {
			return st, err
		}
		ninfo, err := t.count("selector info argument")
		if err != nil {
			return st, err
		}
		pg := DMPathGroup{State: state}
		for p := 0; p < npaths; p++ {
			dev, err := t.next("path device")
			if err != nil {
				return st, err
			}
			if !isDevNumber(dev) {
				return st, fmt.Errorf("path group %d: path device %q is not major:minor", g, dev)
			}
			a, err := t.next("path state")
			if err != nil {
				return st, err
			}
			if a != "A" && a != "F" {
				return st, fmt.Errorf("path %s: state %q, want A or F", dev, a)
			}
			fails, err := t.count("fail count")
			if err != nil {
				return st, err
			}
			if err := t.skip(ninfo, "selector info argument"); err != nil {
				return st, err
			}
			pg.Paths = append(pg.Paths, DMPathStatus{Dev: dev, Active: a == "A", FailCount: fails})
		}
		st.Groups = append(st.Groups, pg)
	}
	if t.i != len(t.f) {
		return st, fmt.Errorf("%d unexpected fields after the last path group", len(t.f)-t.i)
	}
	return st, nil
}

// Paths lists every path of every group, in table order.
func (s DMStatus) Paths() []DMPathStatus {
	var out []DMPathStatus
	for _, g := range s.Groups {
		out = append(out, g.Paths...)
	}
	return out
}

// ParseDMSetupStatus parses `dmsetup status --target multipath` over all
// devices: lines "<name>: <start> <length> multipath <params>" (dmsetup
// 1.02 on Debian 12 prints the name even for a single map; the output of
// `dmsetup status <one device>` has none, and libdm/dm-tools/dmsetup.c
// _status prints it only for multiple_devices, so a line without a name
// belongs to sole, the only device-mapper device sysfs shows). A map with several
// multipath targets (rare: one per LUN is what multipathd makes) keeps the
// first. "No devices found" is no maps.
func ParseDMSetupStatus(out []byte, sole string) (map[string]DMStatus, error) {
	maps := map[string]DMStatus{}
	for _, raw := range bytes.Split(out, []byte("\n")) {
		line := strings.TrimSpace(string(raw))
		if line == "" || line == "No devices found" {
			continue
		}
		name, rest, ok := cutName(line)
		if !ok {
			if sole == "" {
				return nil, fmt.Errorf("dmsetup status line %q: no device name", clip(line))
			}
			name, rest = sole, line
		}
		f := strings.SplitN(rest, " ", 4)
		if len(f) < 3 {
			return nil, fmt.Errorf("dmsetup status line of %s: %q: want <start> <length> <target> <params>", name, clip(rest))
		}
		if f[2] != "multipath" {
			continue
		}
		params := ""
		if len(f) == 4 {
			params = f[3]
		}
		st, err := ParseDMStatus(params)
		if err != nil {
			return nil, fmt.Errorf("multipath status of %s: %w", name, err)
		}
		if _, dup := maps[name]; !dup {
			maps[name] = st
		}
	}
	return maps, nil
}

// cutName splits "name: rest". Device-mapper names may contain ": " only
// in theory (dmsetup mangles unusual names by default), so the last ": "
// before the numeric start field is taken.
func cutName(line string) (name, rest string, ok bool) {
	i := strings.Index(line, ": ")
	for i >= 0 {
		rest = line[i+2:]
		if f := strings.Fields(rest); len(f) > 0 {
			if _, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				return line[:i], rest, i > 0
			}
		}
		j := strings.Index(line[i+2:], ": ")
		if j < 0 {
			break
		}
		i += 2 + j
	}
	return "", "", false
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func isDevNumber(s string) bool {
	ma, mi, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	_, e1 := strconv.ParseUint(ma, 10, 32)
	_, e2 := strconv.ParseUint(mi, 10, 32)
	return e1 == nil && e2 == nil
}

type tokens struct {
	f []string
	i int
}

func (t *tokens) next(what string) (string, error) {
	if t.i >= len(t.f) {
		return "", fmt.Errorf("status ends before the %s", what)
	}
	t.i++
	return t.f[t.i-1], nil
}

// count reads a non-negative count no larger than the fields there are.
func (t *tokens) count(what string) (int, error) {
	s, err := t.next(what + " count")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil || n > maxStatusFields {
		return 0, fmt.Errorf("%s count %q is not a number up to %d", what, s, maxStatusFields)
	}
	return int(n), nil
}

func (t *tokens) skip(n int, what string) error {
	if n > len(t.f)-t.i {
		return fmt.Errorf("status ends inside the %d %ss", n, what)
	}
	t.i += n
	return nil
}
