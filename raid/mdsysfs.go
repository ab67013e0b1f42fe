package raid

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spofwatch/spofwatch/sysdev"
)

// ErrNoMd is returned (wrapped with fs.ErrNotExist) when the host has no md
// support loaded and no arrays.
var ErrNoMd = fmt.Errorf("no md arrays: %w", fs.ErrNotExist)

// MdFS reads md arrays below a procfs and a sysfs root, so every reader runs
// against a fixture tree as well as the real /proc and /sys.
type MdFS struct {
	ProcPath string // default /proc
	SysPath  string // default /sys
	// Domains, when set, remembers each component's disk and controller
	// by its sysfs link, so a collection costs one readlink per device
	// instead of a walk of the device path.
	Domains *sysdev.DomainCache
}

func (m MdFS) proc() string { return orDefault(m.ProcPath, "/proc") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// MdstatPath is the file WatchMdstat polls.
func (m MdFS) MdstatPath() string { return filepath.Join(m.proc(), "mdstat") }

// Arrays reads every md array. sysfs is the primary source (it has slots and
// per-device flags); /proc/mdstat adds the kernel's speed and finish
// estimate and covers arrays sysfs does not show. It returns ErrNoMd when
// neither exists. Per-array problems are in MdArray.Problems, never a
// failure of the whole read.
func (m MdFS) Arrays() ([]MdArray, error) {
	if m.Domains != nil {
		m.Domains.Begin()
		defer m.Domains.Prune()
	}
	mdstatData, mdstatErr := os.ReadFile(m.MdstatPath())
	var fromMdstat map[string]MdstatArray
	var order []string
	if mdstatErr == nil {
		parsed := ParseMdstat(mdstatData)
		fromMdstat = make(map[string]MdstatArray, len(parsed))
		for _, a := range parsed {
			fromMdstat[a.Name] = a
			order = append(order, a.Name)
		}
	} else if !errors.Is(mdstatErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", m.MdstatPath(), mdstatErr)
	}

	// One listing of /sys/block; filepath.Glob would open every mdX
	// directory a second time. Each array's directory is then opened
	// through the same root descriptor, confined to it.
	sys := sysdev.New(m.SysPath)
	var candidates []string
	root, err := sys.Open()
	if err == nil {
		defer root.Close()
		if blk, err := root.OpenDir("block"); err == nil {
			names, _ := blk.Names()
			blk.Close()
			for _, n := range names {
				if strings.HasPrefix(n, "md") {
					candidates = append(candidates, n)
				}
			}
		}
	}
	seen := map[string]bool{}
	var arrays []MdArray
	for _, name := range candidates {
		raw, ok := readMdSysfs(root, name)
		if !ok {
			continue // not an md array (no md/ directory)
		}
		a := BuildMdArray(raw)
		resolveDomainsCached(sys, &a, m.Domains)
		if ms, ok := fromMdstat[name]; ok {
			supplementFromMdstat(&a, ms)
		}
		seen[name] = true
		arrays = append(arrays, a)
	}
	if mdstatErr != nil && len(arrays) == 0 {
		return nil, ErrNoMd
	}
	for _, name := range order {
		if seen[name] {
			continue
		}
		a := MdArrayFromMdstat(fromMdstat[name])
		resolveDomainsCached(sys, &a, m.Domains)
		arrays = append(arrays, a)
	}
	sort.Slice(arrays, func(i, j int) bool { return naturalLess(arrays[i].Name, arrays[j].Name) })
	return arrays, nil
}

// mdFiles are the per-array sysfs attributes read (Documentation/admin-guide/md.rst).
var mdFiles = []string{"level", "array_state", "raid_disks", "layout", "sync_action", "sync_completed", "sync_speed", "mismatch_cnt", "last_sync_action"}

// MdSysfsRaw is the text of one array's sysfs files, as read. A missing
// key means the file was absent or unreadable (Missing says why).
type MdSysfsRaw struct {
	Name    string
	Files   map[string]string
	Missing map[string]string
	Devices []MdDeviceRaw
	// SlotLinks maps rdN slot links to device names, for kernels or
	// fixtures without dev-*/slot.
	SlotLinks map[int]string
}

// MdDeviceRaw is the text of one dev-* directory.
type MdDeviceRaw struct {
	Name   string
	State  string
	Slot   string // "" when the file is absent
	Errors string
	Err    string
}

// ReadMdArray reads one array from <sysPath>/block/<name>/md. It never fails:
// what cannot be read is listed in Problems. Other collectors (mounts) use
// it to inherit the state of the array a filesystem lives on.
func ReadMdArray(sysPath, name string) MdArray {
	a := BuildMdArray(readMdSysfsRaw(sysPath, name))
	resolveDomains(sysdev.New(sysPath), &a)
	return a
}

func readMdSysfsRaw(sysPath, name string) MdSysfsRaw {
	root, err := sysdev.New(sysPath).Open()
	if err != nil {
		return unreadableMd(name, err)
	}
	defer root.Close()
	raw, _ := readMdSysfs(root, name)
	return raw
}

func newMdSysfsRaw(name string) MdSysfsRaw {
	return MdSysfsRaw{Name: name, Files: map[string]string{}, Missing: map[string]string{}, SlotLinks: map[int]string{}}
}

// unreadableMd is an array whose directory could not be opened: every file
// it needs is missing, with the reason.
func unreadableMd(name string, err error) MdSysfsRaw {
	raw := newMdSysfsRaw(name)
	for _, f := range []string{"level", "array_state", "raid_disks", "sync_action", "mismatch_cnt", "dev-*"} {
		raw.Missing[f] = err.Error()
	}
	return raw
}

// readMdSysfs reads one array below an open sysfs root; ok is false when
// block/<name>/md does not exist (not an md array).
func readMdSysfs(root *sysdev.Dir, name string) (raw MdSysfsRaw, ok bool) {
	if root == nil {
		return newMdSysfsRaw(name), false
	}
	// Attributes are opened relative to the md directory: the kernel walks
	// the long path (and the /sys/block symlink) once, not per file.
	dir, err := root.OpenDir("block/" + name + "/md")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return newMdSysfsRaw(name), false
	}
	if err != nil {
		return unreadableMd(name, err), true
	}
	defer dir.Close()
	raw = newMdSysfsRaw(name)
	read := func(f string) {
		v, err := dir.Read(f)
		if err != nil {
			raw.Missing[f] = err.Error()
			return
		}
		raw.Files[f] = v
	}
	// Read what the verdict needs; progress files only while a sync runs
	// (sysfs reads are syscalls, and they are not free on every host).
	for _, f := range []string{"level", "array_state", "raid_disks", "sync_action", "mismatch_cnt", "last_sync_action"} {
		read(f)
	}
	if raw.Files["level"] == "raid10" {
		read("layout")
	}
	if act := raw.Files["sync_action"]; act != "idle" && act != "frozen" {
		read("sync_completed")
		read("sync_speed")
	}
	names, err := dir.Names()
	if err != nil {
		raw.Missing["dev-*"] = err.Error()
		return raw, true
	}
	var devDirs []string
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "dev-"):
			devDirs = append(devDirs, n)
		case strings.HasPrefix(n, "rd"):
			// rdN links exist exactly while a device holds slot N
			// (sysfs_link_rdev in drivers/md/md.c): one readlink instead
			// of reading every dev-*/slot.
			idx, err := strconv.Atoi(strings.TrimPrefix(n, "rd"))
			if err != nil {
				continue
			}
			if target, err := dir.Readlink(n); err == nil {
				raw.SlotLinks[idx] = strings.TrimPrefix(filepath.Base(target), "dev-")
			}
		}
	}
	for _, n := range devDirs {
		d := MdDeviceRaw{Name: strings.TrimPrefix(n, "dev-")}
		if v, err := dir.Read(n + "/state"); err == nil {
			d.State = v
		} else {
			d.Err = err.Error()
		}
		if len(raw.SlotLinks) == 0 {
			// No slot links at all: an old kernel or a trimmed tree.
			if v, err := dir.Read(n + "/slot"); err == nil {
				d.Slot = v
			}
		} else {
			d.Slot = "none"
			for idx, dev := range raw.SlotLinks {
				if dev == d.Name {
					d.Slot = strconv.Itoa(idx)
				}
			}
		}
		raw.Devices = append(raw.Devices, d)
	}
	return raw, true
}

// BuildMdArray turns the raw sysfs text into an array. It is pure (no I/O)
// and tolerant: a value that does not parse becomes a Problem and the rest
// is kept.
func BuildMdArray(raw MdSysfsRaw) MdArray {
	a := MdArray{Name: raw.Name, MismatchCount: -1, Source: "sysfs"}
	problem := func(format string, args ...any) { a.Problems = append(a.Problems, fmt.Sprintf(format, args...)) }

	a.Level = raw.Files["level"]
	a.ArrayState = raw.Files["array_state"]
	if _, ok := raw.Files["array_state"]; !ok {
		problem("array_state unreadable: %s", raw.Missing["array_state"])
	}
	if a.ArrayState == "clear" && len(raw.Devices) == 0 {
		a.Stopped = true
		return a
	}
	if a.Level == "container" {
		a.Container = true
		return a
	}
	if v, ok := raw.Files["raid_disks"]; ok {
		cur, before, err := parseRaidDisks(v)
		if err != nil && !(v == "" && a.Inactive()) {
			problem("%v", err)
		}
		a.RaidDisks, a.RaidDisksBefore = cur, before
	} else if !a.Inactive() {
		problem("raid_disks unreadable: %s", raw.Missing["raid_disks"])
	}
	if v, ok := raw.Files["layout"]; ok && a.Level == "raid10" {
		// "layout" may also read "new (old)" during a reshape; the new one
		// is what the array is becoming, the old one still holds data, so
		// take the one with fewer copies (the worse).
		first, rest, _ := strings.Cut(v, " ")
		if l, err := strconv.Atoi(first); err == nil {
			a.Layout, a.LayoutKnown = l, true
			if old, err := strconv.Atoi(strings.Trim(strings.TrimSpace(rest), "()")); err == nil && Raid10Copies(old) < Raid10Copies(l) {
				a.Layout = old
			}
		} else {
			problem("unparsable layout %q", v)
		}
	}
	a.Sync.Action = raw.Files["sync_action"]
	a.Sync.LastAction = raw.Files["last_sync_action"]
	if v, ok := raw.Files["sync_completed"]; ok {
		if err := parseSyncCompleted(v, &a.Sync); err != nil {
			problem("%v", err)
		}
	}
	if v, ok := raw.Files["sync_speed"]; ok && v != "none" && v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			a.Sync.SpeedKBps = s
		} else {
			problem("unparsable sync_speed %q", v)
		}
	}
	if v, ok := raw.Files["mismatch_cnt"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			a.MismatchCount = n
		} else {
			problem("unparsable mismatch_cnt %q", v)
		}
	}
	a.Sync.computeETA()

	slotOf := map[string]int{}
	for idx, dev := range raw.SlotLinks {
		slotOf[dev] = idx
	}
	var devs []MdDevice
	for _, rd := range raw.Devices {
		d := MdDevice{Name: rd.Name, Slot: -1, Err: rd.Err}
		if rd.State != "" {
			d.Flags = strings.Split(rd.State, ",")
		}
		switch {
		case rd.Slot == "none":
		case rd.Slot != "":
			if n, err := strconv.Atoi(rd.Slot); err == nil && n >= 0 && n <= 1<<16 {
				d.Slot = n
			} else {
				problem("%s: unparsable slot %q", rd.Name, rd.Slot)
			}
		default:
			if n, ok := slotOf[rd.Name]; ok {
				d.Slot = n
			} else {
				d.slotUnknown = true
			}
		}
		if rd.Errors != "" {
			if n, err := strconv.ParseUint(rd.Errors, 10, 64); err == nil {
				d.Errors = n
			}
		}
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool { return naturalLess(devs[i].Name, devs[j].Name) })
	assignSlots(&a, devs)
	return a
}

// assignSlots fills a.Slots from devices with their slots, and files the
// rest as spares, faulty, replacements or journal.
func assignSlots(a *MdArray, devs []MdDevice) {
	n := a.RaidDisks
	for _, d := range devs {
		if d.Slot >= n && !d.Has("replacement") && !d.Has("journal") {
			// A device beyond raid_disks: raid_disks was unreadable, or a
			// reshape shrinks the array. Count the slot rather than lose it.
			if a.RaidDisks == 0 || a.RaidDisksBefore > n {
				n = d.Slot + 1
			}
		}
	}
	a.Slots = make([]MdSlot, n)
	for i := range a.Slots {
		a.Slots[i] = MdSlot{Index: i, State: SlotEmpty}
	}
	// Without dev-*/slot or rdN links (old kernels, trimmed fixtures) an
	// in_sync device still holds some slot: the kernel sets In_sync only
	// for devices in one. Give those the free slots in name order.
	next := 0
	taken := map[int]bool{}
	for _, d := range devs {
		if !d.slotUnknown && d.Slot >= 0 {
			taken[d.Slot] = true
		}
	}
	for i := range devs {
		d := &devs[i]
		if !d.slotUnknown || !d.Has("in_sync") || d.Has("faulty") || d.Has("journal") || d.Has("replacement") {
			continue
		}
		for next < n && taken[next] {
			next++
		}
		if next < n {
			d.Slot = next
			taken[next] = true
		}
	}
	for _, d := range devs {
		switch {
		case d.Has("journal"):
			a.Journal = append(a.Journal, d)
			continue
		case d.Has("replacement"):
			a.Replacements = append(a.Replacements, d)
			continue
		case d.Slot < 0 || d.Slot >= n:
			if d.Has("faulty") {
				a.Faulty = append(a.Faulty, d)
			} else {
				a.Spares = append(a.Spares, d)
			}
			continue
		}
		s := &a.Slots[d.Slot]
		if s.Device != "" {
			a.Problems = append(a.Problems, fmt.Sprintf("slot %d claimed by %s and %s", d.Slot, s.Device, d.Name))
			continue
		}
		s.Device = d.Name
		s.State, s.Detail = deviceSlotState(d, a.Sync)
	}
	// A failed device the kernel already took out of its slot still tells
	// the operator which disk to replace: put it in an empty slot.
	var leftover []MdDevice
	fi := 0
	for i := range a.Slots {
		if a.Slots[i].State != SlotEmpty {
			continue
		}
		if fi < len(a.Faulty) {
			a.Slots[i].Device = a.Faulty[fi].Name
			a.Slots[i].State = SlotFaulty
			a.Slots[i].Detail = otherFlags(a.Faulty[fi], "faulty")
			fi++
			continue
		}
	}
	leftover = append(leftover, a.Faulty[fi:]...)
	a.Faulty = leftover
}

// otherFlags lists a device's state flags besides the one its slot state
// already says ("write_error" for a faulty device that saw write errors).
func otherFlags(d MdDevice, except string) string {
	var out []string
	for _, f := range d.Flags {
		if f != except && f != "" {
			out = append(out, f)
		}
	}
	return strings.Join(out, ",")
}

func deviceSlotState(d MdDevice, sync MdSync) (SlotState, string) {
	switch {
	case d.Err != "" && len(d.Flags) == 0:
		return SlotUnknown, "state unreadable: " + d.Err
	case d.Has("faulty"):
		return SlotFaulty, otherFlags(d, "faulty")
	case d.Has("in_sync"):
		var risk []string
		for _, f := range []string{"write_error", "want_replacement", "blocked"} {
			if d.Has(f) {
				risk = append(risk, f)
			}
		}
		if len(risk) > 0 {
			return SlotAtRisk, strings.Join(risk, ", ")
		}
		return SlotInSync, ""
	}
	if sync.Running() || sync.Delayed || sync.Pending {
		return SlotRebuilding, sync.String()
	}
	return SlotRebuilding, "not in sync, no recovery running (" + strings.Join(d.Flags, ",") + ")"
}

// supplementFromMdstat adds what only mdstat has (finish estimate, speed on
// kernels without sync_speed, DELAYED/PENDING).
func supplementFromMdstat(a *MdArray, ms MdstatArray) {
	if a.Sync.Action == "" && ms.Sync.Action != "" {
		a.Sync.Action = normaliseAction(ms.Sync.Action)
	}
	if ms.Sync.Delayed {
		a.Sync.Delayed = true
	}
	if ms.Sync.Pending {
		a.Sync.Pending = true
	}
	if a.Sync.SpeedKBps == 0 && ms.Sync.SpeedKBps > 0 {
		a.Sync.SpeedKBps = ms.Sync.SpeedKBps
	}
	if a.Sync.Total == 0 && ms.Sync.Total > 0 {
		a.Sync.Done, a.Sync.Total = ms.Sync.Done*2, ms.Sync.Total*2
	}
	if a.Sync.ETA == 0 && ms.Sync.FinishMinutes > 0 {
		a.Sync.ETA = time.Duration(ms.Sync.FinishMinutes * float64(time.Minute))
	}
	a.Sync.computeETA()
}

func normaliseAction(s string) string {
	if s == "recovery" {
		return "recover"
	}
	return s
}

// MdArrayFromMdstat builds an array from /proc/mdstat alone, for arrays
// with no sysfs directory. mdstat has no slot numbers for devices, so slots
// marked "_" in [UU_] get the failed devices first, then a rebuilding
// device, then stay empty.
func MdArrayFromMdstat(ms MdstatArray) MdArray {
	a := MdArray{Name: ms.Name, Level: ms.Level, ArrayState: ms.State, MismatchCount: -1, Source: "mdstat"}
	if ms.Err != "" {
		a.Problems = append(a.Problems, ms.Err)
	}
	if ms.ReadOnly != "" && ms.State == "active" {
		a.ArrayState = ms.ReadOnly
	}
	if ms.State == "inactive" && strings.HasPrefix(ms.Super, "external:") && !strings.HasPrefix(ms.Super, "external:/") && !strings.Contains(ms.Super[len("external:"):], "/") {
		a.Container = true
		return a
	}
	a.Sync = MdSync{Action: normaliseAction(ms.Sync.Action), Delayed: ms.Sync.Delayed, Pending: ms.Sync.Pending,
		Done: ms.Sync.Done * 2, Total: ms.Sync.Total * 2, SpeedKBps: ms.Sync.SpeedKBps}
	if ms.Sync.FinishMinutes > 0 {
		a.Sync.ETA = time.Duration(ms.Sync.FinishMinutes * float64(time.Minute))
	}
	var active []MdDevice
	for _, d := range ms.Devices {
		md := MdDevice{Name: d.Name, Slot: -1}
		switch {
		case d.Journal:
			md.Flags = []string{"journal"}
			a.Journal = append(a.Journal, md)
		case d.Replacement:
			md.Flags = []string{"replacement"}
			a.Replacements = append(a.Replacements, md)
		case d.Faulty:
			md.Flags = []string{"faulty"}
			a.Faulty = append(a.Faulty, md)
		case d.Spare:
			md.Flags = []string{"spare"}
			a.Spares = append(a.Spares, md)
		default:
			active = append(active, md)
		}
	}
	sort.SliceStable(active, func(i, j int) bool { return ms.indexOf(active[i].Name) < ms.indexOf(active[j].Name) })

	slots := ms.Slots
	if slots == "" {
		// raid0/linear/inactive: every listed active device is a slot, in sync.
		slots = strings.Repeat("U", len(active))
	}
	a.RaidDisks = len(slots)
	if ms.Slots != "" && ms.RaidDisks != len(ms.Slots) {
		a.Problems = append(a.Problems, fmt.Sprintf("[%d/%d] disagrees with slot map [%s]", ms.RaidDisks, ms.InSync, ms.Slots))
	}
	// Devices beyond the in-sync count are being rebuilt; the kernel adds
	// them last, so take those with the highest descriptor index.
	up := strings.Count(slots, "U")
	inSync, rebuilding := active, []MdDevice(nil)
	if len(active) > up {
		inSync, rebuilding = active[:up], active[up:]
	}
	a.Slots = make([]MdSlot, 0, len(slots))
	ui, ri, fi := 0, 0, 0
	for i := 0; i < len(slots); i++ {
		s := MdSlot{Index: i}
		switch {
		case slots[i] == 'U' && ui < len(inSync):
			s.Device, s.State = inSync[ui].Name, SlotInSync
			ui++
		case slots[i] == 'U':
			s.State, s.Detail = SlotUnknown, "in sync per /proc/mdstat, device not listed"
		case fi < len(a.Faulty):
			s.Device, s.State = a.Faulty[fi].Name, SlotFaulty
			fi++
		case ri < len(rebuilding):
			s.Device, s.State = rebuilding[ri].Name, SlotRebuilding
			s.Detail = a.Sync.String()
			if !a.Sync.Running() {
				s.Detail = "not in sync, no recovery running"
			}
			ri++
		default:
			s.State = SlotEmpty
		}
		a.Slots = append(a.Slots, s)
	}
	a.Faulty = a.Faulty[fi:]
	for _, d := range rebuilding[ri:] {
		a.Spares = append(a.Spares, d)
	}
	return a
}

func (ms MdstatArray) indexOf(name string) int {
	for _, d := range ms.Devices {
		if d.Name == name {
			return d.Index
		}
	}
	return 0
}

// resolveDomains fills Disk and Controller of every slot.
func resolveDomains(sys sysdev.Sys, a *MdArray) { resolveDomainsCached(sys, a, nil) }

func resolveDomainsCached(sys sysdev.Sys, a *MdArray, cache *sysdev.DomainCache) {
	for i := range a.Slots {
		s := &a.Slots[i]
		if s.Device == "" {
			continue
		}
		if cache != nil {
			s.Disk, s.Controller = cache.Lookup(sys, a.Name, s.Device)
		} else {
			s.Disk, s.Controller = sys.DiskOf(a.Name, s.Device)
		}
	}
}

// naturalLess orders md2 before md10.
func naturalLess(a, b string) bool {
	pa, na := splitNum(a)
	pb, nb := splitNum(b)
	if pa != pb {
		return pa < pb
	}
	if na != nb {
		return na < nb
	}
	return a < b
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil || i == len(s) {
		return s, -1
	}
	return s[:i], n
}
