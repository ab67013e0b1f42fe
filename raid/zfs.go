package raid

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Zpool is one pool of `zpool status` (text -p or JSON -j).
type Zpool struct {
	Name  string
	State string // ONLINE, DEGRADED, FAULTED, UNAVAIL, SUSPENDED, ...
	// Status and Action are zpool's own explanation, when it gives one.
	Status, Action string
	Scan           ZfsScan
	// Vdevs are the top-level data vdevs; Logs, Special, Dedup and Cache
	// the allocation-class and auxiliary vdevs; Spares the hot spares
	// (state AVAIL or INUSE).
	Vdevs, Logs, Special, Dedup, Cache, Spares []Zvdev
	// Note is the text after the pool's counters ("bad intent log").
	Note string
	// Problems lists lines that could not be parsed.
	Problems []string
}

// Zvdev is one vdev of the config tree.
type Zvdev struct {
	Name string
	// Type is mirror, raidz, draid, replacing, spare, disk, file, ...
	// derived from the name in text output ("raidz2-0" -> raidz).
	Type string
	// Parity is N of raidzN/draidN.
	Parity                    int
	State                     string
	Read, Write, Cksum        uint64
	Note                      string // "cannot open", "(resilvering)", "was /dev/..."
	Children                  []Zvdev
	resilvering, awaitingScan bool
}

// Resilvering reports whether this leaf is being resilvered now.
func (v Zvdev) Resilvering() bool { return v.resilvering }

// ZfsScan is the pool's scrub or resilver state.
type ZfsScan struct {
	// Function is "resilver" or "scrub" (or "" when none ran).
	Function   string
	InProgress bool
	Percent    float64 // -1 when unknown
	ToGo       string  // zpool's own remaining-time text, "05:30:06"
	Text       string
	// Stats are the scan_stats fields of `zpool status -j` that say how a
	// scan ended (nil from the text output): see ScrubDone.
	Stats *ZfsScanStats
}

// ZfsScanStats are scan_stats of `zpool status -j` as zpool printed them:
// state NONE, SCANNING, FINISHED or CANCELED; end_time a Unix time (-p,
// --json-int) or the C library's date text ("-" when none); errors a count.
type ZfsScanStats struct {
	State, EndTime, Errors string
}

// ScrubDone is the pool's last completed scrub: from scan_stats when zpool
// gave JSON, else from the text scan line. Times printed as text are in
// loc, the zone zpool ran in.
func (s ZfsScan) ScrubDone(loc *time.Location) (ZfsScrub, bool) {
	if s.Stats != nil {
		if s.Function != "scrub" {
			return ZfsScrub{}, false
		}
		return ParseScanStatsDone(s.Stats.State, s.Stats.EndTime, s.Stats.Errors, loc)
	}
	return ParseScrubDone(s.Text, loc)
}

// String is "resilver 4.87% done, 05:30:06 to go".
func (s ZfsScan) String() string {
	if !s.InProgress {
		return s.Function + " not running"
	}
	out := s.Function + " in progress"
	if s.Percent >= 0 {
		out = fmt.Sprintf("%s %.2f%% done", s.Function, s.Percent)
	}
	if s.ToGo != "" {
		out += ", " + s.ToGo + " to go"
	}
	return out
}

var zfsPercent = regexp.MustCompile(`([0-9.]+)% done`)

func parseScan(text string) ZfsScan {
	s := ZfsScan{Text: text, Percent: -1}
	low := strings.ToLower(text)
	switch {
	case strings.Contains(low, "resilver"):
		s.Function = "resilver"
	case strings.Contains(low, "scrub"):
		s.Function = "scrub"
	}
	s.InProgress = strings.Contains(low, "in progress")
	if m := zfsPercent.FindStringSubmatch(text); m != nil {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			s.Percent = v
		}
	}
	for _, line := range strings.Split(text, "\n") {
		for _, part := range strings.Split(line, ",") {
			part = strings.TrimSpace(part)
			if strings.HasSuffix(part, " to go") {
				s.ToGo = strings.TrimSuffix(part, " to go")
			}
		}
	}
	return s
}

// vdevType derives type and parity from a text-output vdev name.
func vdevType(name string) (string, int) {
	base := name
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			base = name[:i]
		}
	}
	switch {
	case base == "mirror", base == "replacing", base == "spare":
		return base, 0
	case strings.HasPrefix(base, "raidz"):
		p, err := strconv.Atoi(strings.TrimPrefix(base, "raidz"))
		if err != nil {
			p = 1
		}
		return "raidz", p
	case strings.HasPrefix(name, "draid"):
		// draid2:4d:12c:1s-0
		spec := strings.TrimPrefix(name, "draid")
		p := 1
		if d := strings.IndexByte(spec, ':'); d > 0 {
			if v, err := strconv.Atoi(spec[:d]); err == nil {
				p = v
			}
		}
		return "draid", p
	}
	return "disk", 0
}

// ParseZpoolStatus parses `zpool status -p` text output. It is tolerant: a
// config line that does not parse is listed in the pool's Problems and the
// rest is kept.
func ParseZpoolStatus(data []byte) []Zpool {
	var pools []Zpool
	var cur *Zpool
	var field *string
	inConfig := false
	type frame struct {
		indent int
		v      *Zvdev
	}
	var stack []frame
	var section *[]Zvdev
	rootIndent := -1

	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.ReplaceAll(sc.Text(), "\t", "        ")
		trimmed := strings.TrimSpace(line)
		if key, val, ok := headerLine(line); ok {
			inConfig = false
			field = nil
			switch key {
			case "pool":
				pools = append(pools, Zpool{Name: val})
				cur = &pools[len(pools)-1]
				cur.Scan.Percent = -1
			case "state":
				if cur != nil {
					cur.State = val
				}
			case "status":
				if cur != nil {
					cur.Status, field = val, &cur.Status
				}
			case "action":
				if cur != nil {
					cur.Action, field = val, &cur.Action
				}
			case "scan", "scrub":
				if cur != nil {
					cur.Scan.Text, field = val, &cur.Scan.Text
				}
			case "config":
				inConfig = true
				stack, section, rootIndent = nil, nil, -1
			}
			continue
		}
		if cur == nil || trimmed == "" {
			continue
		}
		if !inConfig {
			if field != nil {
				*field += "\n" + trimmed
			}
			continue
		}
		f := strings.Fields(trimmed)
		if f[0] == "NAME" && len(f) > 1 && f[1] == "STATE" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if rootIndent < 0 {
			rootIndent = indent
			if f[0] != cur.Name {
				cur.Problems = append(cur.Problems, fmt.Sprintf("config root %q is not the pool name", f[0]))
			}
			if len(f) > 5 {
				cur.Note = strings.Join(f[5:], " ")
			}
			continue
		}
		if indent <= rootIndent {
			// logs, dedup, special, cache, spares: a class header at the
			// root's indent, its vdevs below it.
			switch f[0] {
			case "logs":
				section = &cur.Logs
			case "special":
				section = &cur.Special
			case "dedup":
				section = &cur.Dedup
			case "cache":
				section = &cur.Cache
			case "spares":
				section = &cur.Spares
			default:
				cur.Problems = append(cur.Problems, fmt.Sprintf("unexpected config line %q", trimmed))
				section = nil
			}
			stack = nil
			continue
		}
		v, err := parseVdevLine(f)
		if err != nil {
			cur.Problems = append(cur.Problems, err.Error())
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		target := section
		if target == nil {
			target = &cur.Vdevs
		}
		if len(stack) > 0 {
			target = &stack[len(stack)-1].v.Children
		}
		*target = append(*target, v)
		stack = append(stack, frame{indent, &(*target)[len(*target)-1]})
	}
	for i := range pools {
		pools[i].Scan = parseScan(pools[i].Scan.Text)
	}
	return pools
}

// headerLine matches "  pool: tank", " state: ONLINE", "config:".
func headerLine(line string) (key, val string, ok bool) {
	k, v, found := strings.Cut(line, ":")
	if !found {
		return "", "", false
	}
	k = strings.TrimSpace(k)
	switch k {
	case "pool", "state", "status", "action", "see", "scan", "scrub", "config", "errors", "remove", "checkpoint", "id":
	default:
		return "", "", false
	}
	// A header's key is right-aligned in the first 8 columns.
	if strings.Index(line, k) > 8 {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

func parseVdevLine(f []string) (Zvdev, error) {
	v := Zvdev{Name: f[0]}
	v.Type, v.Parity = vdevType(f[0])
	if len(f) == 1 {
		return v, fmt.Errorf("vdev %q has no state", f[0])
	}
	v.State = f[1]
	rest := f[2:]
	if len(rest) >= 3 {
		r, e1 := parseCount(rest[0])
		w, e2 := parseCount(rest[1])
		c, e3 := parseCount(rest[2])
		if e1 == nil && e2 == nil && e3 == nil {
			v.Read, v.Write, v.Cksum = r, w, c
			rest = rest[3:]
		}
	}
	v.Note = strings.Join(rest, " ")
	v.resilvering = strings.Contains(v.Note, "(resilvering)")
	v.awaitingScan = strings.Contains(v.Note, "(awaiting resilver)")
	return v, nil
}

// parseCount reads an error counter: exact with -p ("11700"), or
// human-readable without it ("11.7K").
func parseCount(s string) (uint64, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, nil
	}
	mult := map[byte]float64{'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}
	if len(s) > 1 {
		if m, ok := mult[s[len(s)-1]]; ok {
			if f, err := strconv.ParseFloat(s[:len(s)-1], 64); err == nil && f >= 0 && f < 1e7 {
				return uint64(f * m), nil
			}
		}
	}
	return 0, fmt.Errorf("not a counter: %q", s)
}

// zpoolJSON is the `zpool status -j` document (OpenZFS 2.3+).
type zpoolJSON struct {
	Pools map[string]struct {
		Name      string                `json:"name"`
		State     string                `json:"state"`
		Status    string                `json:"status"`
		Action    string                `json:"action"`
		Vdevs     map[string]zvdevJSON  `json:"vdevs"`
		Logs      map[string]zvdevJSON  `json:"logs"`
		Special   map[string]zvdevJSON  `json:"special"`
		Dedup     map[string]zvdevJSON  `json:"dedup"`
		L2cache   map[string]zvdevJSON  `json:"l2cache"`
		Spares    map[string]zvdevJSON  `json:"spares"`
		ScanStats map[string]jsonScalar `json:"scan_stats"`
	} `json:"pools"`
}

type zvdevJSON struct {
	Name     string               `json:"name"`
	VdevType string               `json:"vdev_type"`
	State    string               `json:"state"`
	Read     jsonScalar           `json:"read_errors"`
	Write    jsonScalar           `json:"write_errors"`
	Cksum    jsonScalar           `json:"checksum_errors"`
	Vdevs    map[string]zvdevJSON `json:"vdevs"`
	Path     string               `json:"path"`
	Resilver jsonScalar           `json:"resilvering"`
}

// jsonScalar takes a string or a number (zpool -j prints numbers as
// strings unless --json-int).
type jsonScalar string

func (s *jsonScalar) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = jsonScalar(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*s = jsonScalar(n.String())
		return nil
	}
	*s = ""
	return nil
}

// ParseZpoolStatusJSON parses `zpool status -j` output.
func ParseZpoolStatusJSON(data []byte) ([]Zpool, error) {
	var doc zpoolJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse zpool status JSON: %w", err)
	}
	var pools []Zpool
	for key, p := range doc.Pools {
		zp := Zpool{Name: p.Name, State: normState(p.State), Status: p.Status, Action: p.Action}
		if zp.Name == "" {
			zp.Name = key
		}
		// vdevs holds the root vdev (named after the pool) with the
		// top-level vdevs below it.
		for _, root := range p.Vdevs {
			zp.Vdevs = append(zp.Vdevs, jsonVdevs(root.Vdevs)...)
		}
		zp.Logs, zp.Special, zp.Dedup, zp.Cache, zp.Spares = jsonVdevs(p.Logs), jsonVdevs(p.Special), jsonVdevs(p.Dedup), jsonVdevs(p.L2cache), jsonVdevs(p.Spares)
		zp.Scan = ZfsScan{Percent: -1}
		if p.ScanStats != nil {
			fn := strings.ToLower(string(p.ScanStats["function"]))
			st := strings.ToUpper(string(p.ScanStats["state"]))
			zp.Scan.Function = fn
			zp.Scan.InProgress = st == "SCANNING"
			zp.Scan.Text = fn + " " + strings.ToLower(st)
			zp.Scan.Stats = &ZfsScanStats{State: st, EndTime: string(p.ScanStats["end_time"]), Errors: string(p.ScanStats["errors"])}
			issued, e1 := parseSize(string(p.ScanStats["issued"]))
			total, e2 := parseSize(string(p.ScanStats["to_examine"]))
			if e1 == nil && e2 == nil && total > 0 && issued <= total {
				zp.Scan.Percent = issued / total * 100
			}
		}
		pools = append(pools, zp)
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	return pools, nil
}

func jsonVdevs(m map[string]zvdevJSON) []Zvdev {
	var out []Zvdev
	for key, j := range m {
		v := Zvdev{Name: j.Name, State: normState(j.State)}
		if v.Name == "" {
			v.Name = key
		}
		t, p := vdevType(v.Name)
		v.Type, v.Parity = t, p
		switch j.VdevType {
		case "mirror", "replacing", "spare", "draid", "disk", "file":
			v.Type = j.VdevType
		case "raidz":
			v.Type = "raidz"
		}
		if v.Type == "raidz" && v.Parity == 0 {
			v.Parity = 1
		}
		v.Read, _ = parseCount(string(j.Read))
		v.Write, _ = parseCount(string(j.Write))
		v.Cksum, _ = parseCount(string(j.Cksum))
		v.resilvering = j.Resilver == "1" || strings.EqualFold(string(j.Resilver), "true")
		v.Children = jsonVdevs(j.Vdevs)
		out = append(out, v)
	}
	sort.Slice(out, func(i, k int) bool { return naturalLess(out[i].Name, out[k].Name) })
	return out
}

// normState maps the JSON "HEALTHY" (seen in the zpool-status(8) example)
// to the text output's ONLINE.
func normState(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "HEALTHY" {
		return "ONLINE"
	}
	return s
}

// parseSize reads "1.23G", "456M" or a plain byte count.
func parseSize(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, nil
	}
	mult := map[byte]float64{'B': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40, 'P': 1 << 50}
	m, ok := mult[s[len(s)-1]]
	if !ok {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	v, err := strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return v * m, nil
}

// Tolerance is how many working children a top-level vdev needs: a mirror
// of n needs 1, raidzN/draidN of n needs n-N, a single disk needs itself.
// Redundant is false for a single disk.
func (v Zvdev) Tolerance() (required int, redundant bool) {
	n := len(v.Children)
	switch v.Type {
	case "mirror":
		return 1, n > 1
	case "raidz", "draid":
		if n == 0 {
			return 1, false
		}
		req := max(n-v.Parity, 1)
		return req, req < n
	case "replacing", "spare":
		return 1, false
	}
	return 1, false
}
