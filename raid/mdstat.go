package raid

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// MdstatArray is one array as /proc/mdstat shows it. The kernel prints it
// in md_seq_show (drivers/md/md.c): a device line, a status line and, while
// a sync runs, a progress line.
type MdstatArray struct {
	Name string
	// State is "active" or "inactive" (the kernel's only two words here).
	State string
	// ReadOnly is "read-only" or "auto-read-only" when the array is so.
	ReadOnly string
	// Level is raid1, raid5, linear... Empty for an inactive array that
	// lost its personality.
	Level string
	// Super is the metadata note of the status line, e.g. "1.2",
	// "external:imsm" (a container) or "external:/md127/0" (a subarray).
	Super   string
	Devices []MdstatDevice
	// RaidDisks and InSync come from "[n/m]"; Slots is the "[UU_]" string,
	// one byte per slot, U in sync, _ not. Zero/empty when not printed
	// (raid0, linear, inactive arrays).
	RaidDisks int
	InSync    int
	Slots     string
	Blocks    uint64
	Sync      MdstatSync
	// Err is set when part of this array's text could not be parsed; what
	// parsed is kept.
	Err string
}

// MdstatDevice is one component of the device line: "sdb1[1](F)".
type MdstatDevice struct {
	Name string
	// Index is the descriptor index in brackets. It is not the slot.
	Index       int
	Faulty      bool // (F)
	Spare       bool // (S): not in a slot
	Journal     bool // (J)
	Replacement bool // (R)
	WriteMostly bool // (W)
}

// MdstatSync is the progress line: "[=>...]  recovery =  8.5%
// (16775552/195310144) finish=17.0min speed=259783K/sec", or
// "resync=DELAYED" / "resync=PENDING".
type MdstatSync struct {
	Action string // recovery, resync, check, repair, reshape; empty when idle
	// Delayed or Pending: the sync waits (DELAYED: another array on the
	// same disks goes first; PENDING: the array is read-only).
	Delayed, Pending bool
	Percent          float64
	Done, Total      uint64  // 1K blocks
	FinishMinutes    float64 // kernel's estimate
	SpeedKBps        float64
}

// ParseMdstat parses /proc/mdstat. It never fails as a whole: an array
// whose lines do not parse is kept with Err set, so one odd array cannot
// hide the others.
func ParseMdstat(data []byte) []MdstatArray {
	var arrays []MdstatArray
	var cur *MdstatArray
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(line, "Personalities"), strings.HasPrefix(line, "unused devices"):
			cur = nil
			continue
		case line[0] != ' ' && line[0] != '\t':
			a := parseMdstatDeviceLine(line)
			arrays = append(arrays, a)
			cur = &arrays[len(arrays)-1]
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.Contains(trimmed, " blocks"):
			parseMdstatStatusLine(cur, trimmed)
		case strings.HasPrefix(trimmed, "bitmap:"):
		default:
			if act, ok := parseMdstatSyncLine(&cur.Sync, trimmed); ok {
				cur.Sync.Action = act
			}
		}
	}
	if err := sc.Err(); err != nil && cur != nil {
		cur.Err = joinErr(cur.Err, fmt.Sprintf("read: %v", err))
	}
	return arrays
}

// mdLevels are the personalities the kernel registers; used to tell a level
// from a device in the device line.
var mdLevels = map[string]bool{
	"linear": true, "multipath": true, "faulty": true, "raid0": true, "raid1": true,
	"raid4": true, "raid5": true, "raid6": true, "raid10": true,
}

func parseMdstatDeviceLine(line string) MdstatArray {
	// md6 : active (auto-read-only) raid1 sdb2[2](F) sdc[1](S) sda2[0]
	f := strings.Fields(line)
	a := MdstatArray{Name: f[0]}
	if len(f) < 3 || f[1] != ":" {
		a.Err = fmt.Sprintf("unexpected device line %q", line)
		return a
	}
	a.State = f[2]
	rest := f[3:]
	if len(rest) > 0 && strings.HasPrefix(rest[0], "(") {
		a.ReadOnly = strings.Trim(rest[0], "()")
		rest = rest[1:]
	}
	if len(rest) > 0 && mdLevels[rest[0]] {
		a.Level = rest[0]
		rest = rest[1:]
	}
	for _, tok := range rest {
		d, ok := parseMdstatDevice(tok)
		if !ok {
			a.Err = joinErr(a.Err, fmt.Sprintf("unparsable component %q", tok))
			continue
		}
		a.Devices = append(a.Devices, d)
	}
	return a
}

func parseMdstatDevice(tok string) (MdstatDevice, bool) {
	open := strings.IndexByte(tok, '[')
	if open <= 0 {
		return MdstatDevice{}, false
	}
	closing := strings.IndexByte(tok[open:], ']')
	if closing < 0 {
		return MdstatDevice{}, false
	}
	closing += open
	idx, err := strconv.Atoi(tok[open+1 : closing])
	if err != nil || idx < 0 {
		return MdstatDevice{}, false
	}
	d := MdstatDevice{Name: tok[:open], Index: idx}
	flags := tok[closing+1:]
	for len(flags) > 0 {
		if len(flags) < 3 || flags[0] != '(' || flags[2] != ')' {
			return MdstatDevice{}, false
		}
		switch flags[1] {
		case 'F':
			d.Faulty = true
		case 'S':
			d.Spare = true
		case 'J':
			d.Journal = true
		case 'R':
			d.Replacement = true
		case 'W':
			d.WriteMostly = true
		default:
			return MdstatDevice{}, false
		}
		flags = flags[3:]
	}
	return d, true
}

func parseMdstatStatusLine(a *MdstatArray, line string) {
	// 5853468288 blocks super 1.2 level 6, 64k chunk, algorithm 2 [8/8] [UUUUUUUU]
	f := strings.Fields(line)
	if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
		a.Blocks = n
	} else {
		a.Err = joinErr(a.Err, fmt.Sprintf("unparsable block count in %q", line))
	}
	for i, tok := range f {
		if tok == "super" && i+1 < len(f) {
			a.Super = strings.TrimSuffix(f[i+1], ",")
		}
	}
	if len(f) < 2 {
		return
	}
	last, prev := f[len(f)-1], f[len(f)-2]
	if !strings.HasPrefix(last, "[") || !strings.HasSuffix(last, "]") || !strings.Contains(prev, "/") {
		return // raid0/linear/inactive: no slot summary
	}
	slots := strings.Trim(last, "[]")
	if strings.Trim(slots, "U_") != "" {
		a.Err = joinErr(a.Err, fmt.Sprintf("unexpected slot map %q", last))
		return
	}
	n, m, ok := strings.Cut(strings.Trim(prev, "[]"), "/")
	total, err1 := strconv.Atoi(n)
	insync, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || total < 0 || insync < 0 {
		a.Err = joinErr(a.Err, fmt.Sprintf("unexpected disk count %q", prev))
		return
	}
	a.RaidDisks, a.InSync, a.Slots = total, insync, slots
}

// parseMdstatSyncLine reads a progress line. ok is false for lines that are
// not about a sync (unknown extra lines are ignored, not errors).
func parseMdstatSyncLine(s *MdstatSync, line string) (string, bool) {
	// resync=DELAYED / resync=PENDING / recovery=DELAYED
	if act, state, found := strings.Cut(line, "="); found && !strings.Contains(act, " ") && !strings.HasPrefix(line, "[") {
		switch strings.TrimSpace(state) {
		case "DELAYED":
			s.Delayed = true
			return act, true
		case "PENDING":
			s.Pending = true
			return act, true
		}
		return "", false
	}
	if !strings.HasPrefix(line, "[") {
		return "", false
	}
	// [=>...]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return "", false
	}
	f := strings.Fields(line[end+1:])
	if len(f) < 3 || f[1] != "=" {
		return "", false
	}
	act := f[0]
	for _, tok := range f[2:] {
		switch {
		case strings.HasSuffix(tok, "%"):
			if v, err := strconv.ParseFloat(strings.TrimSuffix(tok, "%"), 64); err == nil {
				s.Percent = v
			}
		case strings.HasPrefix(tok, "(") && strings.HasSuffix(tok, ")"):
			done, total, ok := strings.Cut(strings.Trim(tok, "()"), "/")
			if ok {
				d, err1 := strconv.ParseUint(done, 10, 64)
				t, err2 := strconv.ParseUint(total, 10, 64)
				if err1 == nil && err2 == nil {
					s.Done, s.Total = d, t
				}
			}
		case strings.HasPrefix(tok, "finish="):
			if v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(tok, "finish="), "min"), 64); err == nil {
				s.FinishMinutes = v
			}
		case strings.HasPrefix(tok, "speed="):
			if v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(tok, "speed="), "K/sec"), 64); err == nil {
				s.SpeedKBps = v
			}
		}
	}
	return act, true
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
