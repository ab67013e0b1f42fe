package raid

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	Domains *DomainCache
}

// DomainCache remembers each component's disk and controller by array and
// device name, so a collection does not walk the device's sysfs path again.
// An entry lives while its device stays in the array: a collection that no
// longer sees the device drops it, so a re-added device (a replaced disk)
// is resolved afresh. Safe for concurrent use. The zero value is ready.
type DomainCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]domainEntry
}

type domainEntry struct {
	disk, controller string
	gen              uint64
}

func (c *DomainCache) begin() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// prune drops the devices the last collection did not see.
func (c *DomainCache) prune() {
	c.mu.Lock()
	for k, e := range c.m {
		if e.gen != c.gen {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

func (c *DomainCache) lookup(sysPath, md, dev string) (disk, controller string) {
	key := md + "/" + dev
	c.mu.Lock()
	e, ok := c.m[key]
	if ok {
		e.gen = c.gen
		c.m[key] = e
	}
	c.mu.Unlock()
	if ok {
		return e.disk, e.controller
	}
	disk, controller = DiskOf(sysPath, md, dev)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]domainEntry{}
	}
	c.m[key] = domainEntry{disk: disk, controller: controller, gen: c.gen}
	c.mu.Unlock()
	return disk, controller
}

func (m MdFS) proc() string { return orDefault(m.ProcPath, "/proc") }
func (m MdFS) sys() string  { return orDefault(m.SysPath, "/sys") }

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
		m.Domains.begin()
		defer m.Domains.prune()
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
	// directory a second time.
	blockDir := filepath.Join(m.sys(), "block")
	var candidates []string
	if f, err := os.Open(blockDir); err == nil {
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, n := range names {
			if strings.HasPrefix(n, "md") {
				candidates = append(candidates, n)
			}
		}
	}
	seen := map[string]bool{}
	var arrays []MdArray
	for _, name := range candidates {
		raw, ok := readMdSysfs(m.sys(), name)
		if !ok {
			continue // not an md array (no md/ directory)
		}
		a := BuildMdArray(raw)
		resolveDomainsCached(m.sys(), &a, m.Domains)
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
		resolveDomainsCached(m.sys(), &a, m.Domains)
		arrays = append(arrays, a)
	}
	sort.Slice(arrays, func(i, j int) bool { return naturalLess(arrays[i].Name, arrays[j].Name) })
	return arrays, nil
}

// mdFiles are the per-array sysfs attributes read (Documentation/admin-guide/md.rst).
var mdFiles = []string{"level", "array_state", "raid_disks", "layout", "sync_action", "sync_completed", "sync_speed", "mismatch_cnt"}

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
	raw := readMdSysfsRaw(sysPath, name)
	a := BuildMdArray(raw)
	resolveDomains(sysPath, &a)
	return a
}

func readMdSysfsRaw(sysPath, name string) MdSysfsRaw {
	raw, _ := readMdSysfs(sysPath, name)
	return raw
}

// readMdSysfs reads one array; ok is false when <name>/md does not exist.
func readMdSysfs(sysPath, name string) (raw MdSysfsRaw, ok bool) {
	dir := filepath.Join(orDefault(sysPath, "/sys"), "block", name, "md")
	raw = MdSysfsRaw{Name: name, Files: map[string]string{}, Missing: map[string]string{}, SlotLinks: map[int]string{}}
	buf := make([]byte, 4096)
	// Attributes are opened relative to the md directory: the kernel walks
	// the long path (and the /sys/block symlink) once, not per file.
	dirfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		return raw, false
	}
	if err != nil {
		dirfd = -1
	} else {
		defer syscall.Close(dirfd)
	}
	readAt := func(rel string) (string, error) {
		if dirfd < 0 {
			return readSmall(filepath.Join(dir, rel), buf)
		}
		return readSmallAt(dirfd, dir, rel, buf)
	}
	read := func(f string) {
		v, err := readAt(f)
		if err != nil {
			raw.Missing[f] = err.Error()
			return
		}
		raw.Files[f] = v
	}
	// Read what the verdict needs; progress files only while a sync runs
	// (sysfs reads are syscalls, and they are not free on every host).
	for _, f := range []string{"level", "array_state", "raid_disks", "sync_action", "mismatch_cnt"} {
		read(f)
	}
	if raw.Files["level"] == "raid10" {
		read("layout")
	}
	if act := raw.Files["sync_action"]; act != "idle" && act != "frozen" {
		read("sync_completed")
		read("sync_speed")
	}
	names, err := listDir(dirfd, dir)
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
			if target, err := os.Readlink(filepath.Join(dir, n)); err == nil {
				raw.SlotLinks[idx] = strings.TrimPrefix(filepath.Base(target), "dev-")
			}
		}
	}
	for _, n := range devDirs {
		d := MdDeviceRaw{Name: strings.TrimPrefix(n, "dev-")}
		if v, err := readAt(n + "/state"); err == nil {
			d.State = v
		} else {
			d.Err = err.Error()
		}
		if len(raw.SlotLinks) == 0 {
			// No slot links at all: an old kernel or a trimmed tree.
			if v, err := readAt(n + "/slot"); err == nil {
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

// listDir lists a directory through an already open descriptor (os.ReadDir
// would open it again, with its poller set-up).
func listDir(dirfd int, dir string) ([]string, error) {
	if dirfd < 0 {
		entries, err := os.ReadDir(dir)
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names, err
	}
	buf := make([]byte, 8192)
	var names []string
	for {
		n, err := unix.ReadDirent(dirfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return names, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// readSmallAt is readSmall relative to an open directory.
func readSmallAt(dirfd int, dir, rel string, buf []byte) (string, error) {
	var fd int
	var err error
	for {
		fd, err = openat(dirfd, rel)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return "", &fs.PathError{Op: "open", Path: filepath.Join(dir, rel), Err: err}
	}
	defer syscall.Close(fd)
	var n int
	for {
		n, err = syscall.Read(fd, buf)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return "", &fs.PathError{Op: "read", Path: filepath.Join(dir, rel), Err: err}
	}
	return strings.TrimSpace(string(buf[:max(n, 0)])), nil
}

// readSmall reads a sysfs attribute with one open, one read and one close
// (os.ReadFile costs twice the system calls), trimmed.
func readSmall(path string, buf []byte) (string, error) {
	return readSmallAt(unix.AT_FDCWD, "", path, buf)
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

var pciAddr = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// resolveDomains fills Disk and Controller of every slot.
func resolveDomains(sysPath string, a *MdArray) { resolveDomainsCached(sysPath, a, nil) }

func resolveDomainsCached(sysPath string, a *MdArray, cache *DomainCache) {
	for i := range a.Slots {
		s := &a.Slots[i]
		if s.Device == "" {
			continue
		}
		if cache != nil {
			s.Disk, s.Controller = cache.lookup(sysPath, a.Name, s.Device)
		} else {
			s.Disk, s.Controller = DiskOf(sysPath, a.Name, s.Device)
		}
	}
}

// DiskOf finds the physical disk under an md component and the PCI address
// of its controller. It follows /sys/block/<md>/md/dev-<dev>/block (or
// /sys/class/block/<dev>) to the device's sysfs path: a partition's parent
// directory is its disk, and the deepest PCI function on the path is the
// controller. A device stacked on exactly one other (dm-crypt over a
// partition) is followed through slaves/. Without sysfs the disk is derived
// from the name (sda1 -> sda, nvme0n1p2 -> nvme0n1).
func DiskOf(sysPath, md, dev string) (disk, controller string) {
	sysPath = orDefault(sysPath, "/sys")
	var real string
	for _, p := range []string{
		filepath.Join(sysPath, "block", md, "md", "dev-"+dev, "block"),
		filepath.Join(sysPath, "class", "block", dev),
	} {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			real = r
			break
		}
	}
	if real == "" {
		return DiskFromName(dev), ""
	}
	for range 4 {
		if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
			real = filepath.Dir(real)
		}
		slaves, err := os.ReadDir(filepath.Join(real, "slaves"))
		if err != nil || len(slaves) != 1 {
			break
		}
		next, err := filepath.EvalSymlinks(filepath.Join(real, "slaves", slaves[0].Name()))
		if err != nil {
			break
		}
		real = next
	}
	return filepath.Base(real), ControllerOf(real)
}

// ControllerOf returns the last PCI function in a sysfs device path: the
// HBA, NVMe controller or NIC the device hangs off ("" when none).
func ControllerOf(path string) string {
	controller := ""
	for _, part := range strings.Split(path, string(filepath.Separator)) {
		if pciAddr.MatchString(part) {
			controller = part
		}
	}
	return controller
}

var (
	partSuffix  = regexp.MustCompile(`^((?:sd|vd|xvd|hd)[a-z]+)[0-9]+$`)
	partPSuffix = regexp.MustCompile(`^((?:nvme[0-9]+n[0-9]+)|(?:mmcblk[0-9]+)|(?:nbd[0-9]+)|(?:loop[0-9]+))p[0-9]+$`)
)

// DiskFromName derives a disk from a partition name (sda1 -> sda).
func DiskFromName(dev string) string {
	if m := partSuffix.FindStringSubmatch(dev); m != nil {
		return m[1]
	}
	if m := partPSuffix.FindStringSubmatch(dev); m != nil {
		return m[1]
	}
	return dev
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
