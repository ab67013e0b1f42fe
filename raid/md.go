// Package raid reads the state of software and hardware RAID: Linux md
// arrays (/proc/mdstat and /sys/block/md*/md), ZFS pools (zpool status) and
// MegaRAID controllers (storcli JSON). It returns plain typed structs and
// knows nothing of redundancy groups or Prometheus; collectors/ adapts them.
package raid

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SlotState is what one slot of an md array holds, in the operator's words.
type SlotState string

const (
	SlotInSync     SlotState = "in_sync"    // a working copy
	SlotAtRisk     SlotState = "at_risk"    // in sync, but write errors / wants replacement / blocked
	SlotRebuilding SlotState = "rebuilding" // a device in the slot, not yet in sync
	SlotFaulty     SlotState = "faulty"     // the device in (or last in) this slot failed
	SlotEmpty      SlotState = "empty"      // no device: the slot is missing
	SlotUnknown    SlotState = "unknown"    // could not be read
)

// MdSlot is one of the raid_disks positions of an array.
type MdSlot struct {
	Index int
	// Device is the component in the slot (sda1), empty for an empty slot.
	Device string
	State  SlotState
	// Detail says why, e.g. "recovery 42.0%, 12.3 MB/s, ETA 3m10s".
	Detail string
	// Disk is the physical disk holding Device (sda for sda1) and
	// Controller the PCI address of the host it hangs off; empty when
	// unknown.
	Disk       string
	Controller string
}

// MdDevice is one component device as sysfs (dev-*) or mdstat lists it.
type MdDevice struct {
	Name string
	// Flags is the comma list of /sys/block/mdX/md/dev-Y/state: in_sync,
	// faulty, spare, write_error, want_replacement, replacement, journal...
	Flags []string
	// Slot is the raid slot, -1 when none (spare, faulty, journal).
	Slot int
	// Errors is dev-Y/errors: read errors corrected.
	Errors     uint64
	Disk       string
	Controller string
	Err        string
	// slotUnknown: neither dev-*/slot nor an rdN link says where it is.
	slotUnknown bool
}

// Has reports whether the device state has the flag.
func (d MdDevice) Has(flag string) bool {
	for _, f := range d.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// MdSync is the array's sync_action with its progress.
type MdSync struct {
	// Action is sync_action: idle, resync, recover, check, repair, reshape,
	// frozen. mdstat's "recovery" is normalised to "recover".
	Action string
	// LastAction is last_sync_action: the last sync action the kernel
	// started (check, repair, resync, recover, …), "" where the kernel has
	// no such file (Documentation/admin-guide/md.rst, "last_sync_action").
	LastAction string
	// Delayed: sync_completed reads "delayed" (or mdstat resync=DELAYED):
	// another array sharing the disks syncs first. Pending: the array is
	// read-only so the sync waits (mdstat resync=PENDING).
	Delayed, Pending bool
	// Done and Total are in 512-byte sectors (sync_completed); Total 0
	// when unknown.
	Done, Total uint64
	// SpeedKBps is sync_speed in KiB/s (0 when unknown).
	SpeedKBps float64
	// ETA is the remaining time, computed from Done/Total and the speed or
	// taken from mdstat's finish=; 0 when unknown.
	ETA time.Duration
}

// Running reports whether a sync action other than idle/frozen is set.
func (s MdSync) Running() bool {
	return s.Action != "" && s.Action != "idle" && s.Action != "frozen"
}

// Ratio is the fraction done, and false when unknown.
func (s MdSync) Ratio() (float64, bool) {
	if s.Total == 0 || s.Done > s.Total {
		return 0, false
	}
	return float64(s.Done) / float64(s.Total), true
}

// String formats progress the way an operator reads it:
// "recovery 42.0%, 12.3 MB/s, ETA 3m10s".
func (s MdSync) String() string {
	name := s.Action
	if name == "recover" {
		name = "recovery"
	}
	switch {
	case s.Delayed:
		return name + " delayed (another array on the same disks syncs first)"
	case s.Pending:
		return name + " pending (array is read-only)"
	}
	parts := []string{name}
	if r, ok := s.Ratio(); ok {
		parts[0] += fmt.Sprintf(" %.1f%%", r*100)
	}
	if s.SpeedKBps > 0 {
		parts = append(parts, fmt.Sprintf("%.1f MB/s", s.SpeedKBps*1024/1e6))
	}
	if s.ETA > 0 {
		parts = append(parts, "ETA "+s.ETA.Round(time.Second).String())
	}
	return strings.Join(parts, ", ")
}

// MdArray is the state of one md array.
type MdArray struct {
	Name string
	// Level is raid1, raid5, raid10, linear, ... ("" when inactive).
	Level string
	// ArrayState is sysfs array_state (clean, active, inactive, readonly,
	// read-auto, broken, ...), or mdstat's active/inactive.
	ArrayState string
	// RaidDisks is the slot count; RaidDisksBefore is the old count while a
	// reshape changes it (raid_disks reads "11 (10)"), else 0.
	RaidDisks       int
	RaidDisksBefore int
	// Layout is the raid10 layout word; LayoutKnown false when unread.
	Layout      int
	LayoutKnown bool
	// Container is true for external-metadata containers (imsm/ddf): they
	// hold disks for subarrays and are never active themselves.
	Container bool
	// Stopped is true for an array with array_state "clear" and no
	// devices: it was stopped (mdadm --stop) and its sysfs entry lingers.
	// It provides nothing and is not a fault.
	Stopped bool
	Sync    MdSync
	// MismatchCount is mismatch_cnt (sectors found inconsistent by the
	// last check); -1 when not available.
	MismatchCount int64
	// Slots are the raid_disks positions; Spares are devices in no slot.
	Slots []MdSlot
	// Spares, Faulty (failed devices not holding a slot any more),
	// Replacements (mdadm --replace targets) and Journal devices.
	Spares       []MdDevice
	Faulty       []MdDevice
	Replacements []MdDevice
	Journal      []MdDevice
	// Problems lists what could not be read or parsed.
	Problems []string
	// Source is "sysfs" or "mdstat".
	Source string
}

// Inactive reports whether the array does not run: assembled but not
// started, stopped with devices attached, or broken (raid0/linear that lost
// a member).
func (a MdArray) Inactive() bool {
	switch a.ArrayState {
	case "inactive", "broken", "suspended":
		return true
	case "clear":
		return !a.Stopped
	}
	return false
}

// Copies is the number of copies of each block a level keeps: 1 for
// raid0/linear, all members for raid1, the layout's near*far copies for
// raid10. ok is false when the layout is unknown.
func Raid10Copies(layout int) int {
	near := layout & 0xff
	far := (layout >> 8) & 0xff
	c := near * far
	if c < 1 {
		return 1
	}
	return c
}

// RequiredMembers is how many slots must hold a working copy for the array
// to run. For raid10 it takes the worst case: losing all copies of one
// block is an outage, so copies-1 failures are tolerated whatever the
// geometry, and required = n - (copies-1). Redundant is false for levels
// without redundancy (raid0, linear, faulty, unknown).
func (a MdArray) RequiredMembers() (required int, redundant bool) {
	n := a.RaidDisks
	if n < 1 {
		n = len(a.Slots)
	}
	if n < 1 {
		return 1, false
	}
	switch a.Level {
	case "raid1", "multipath":
		return 1, n > 1
	case "raid4", "raid5":
		return max(n-1, 1), n > 1
	case "raid6":
		return max(n-2, 1), n > 2
	case "raid10":
		copies := 2 // mdadm's default n2 when the layout is unreadable
		if a.LayoutKnown {
			copies = Raid10Copies(a.Layout)
		}
		tol := min(copies-1, n-1)
		return n - tol, tol > 0
	}
	return n, false
}

// Working counts the slots that hold a working copy.
func (a MdArray) Working() int {
	w := 0
	for _, s := range a.Slots {
		if s.State == SlotInSync || s.State == SlotAtRisk {
			w++
		}
	}
	return w
}

// Summary is a one-line description for other collectors (mounts): "md0
// raid1: 1 of 2 in sync, recovery 42.0%".
func (a MdArray) Summary() string {
	if a.Inactive() {
		return fmt.Sprintf("%s is %s", a.Name, a.ArrayState)
	}
	s := fmt.Sprintf("%s %s: %d of %d in sync", a.Name, a.Level, a.Working(), len(a.Slots))
	if a.Sync.Running() || a.Sync.Delayed || a.Sync.Pending {
		s += ", " + a.Sync.String()
	}
	return s
}

// Degraded reports whether the array runs with fewer working copies than
// slots, or does not run at all.
func (a MdArray) Degraded() bool {
	return a.Inactive() || a.Working() < len(a.Slots)
}

// parseRaidDisks reads raid_disks: "4", or "11 (10)" while a reshape
// changes the count (new, then old).
func parseRaidDisks(s string) (cur, before int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, fmt.Errorf("empty raid_disks")
	}
	first, rest, _ := strings.Cut(s, " ")
	cur, err = strconv.Atoi(first)
	if err != nil || cur < 0 || cur > 1<<16 {
		return 0, 0, fmt.Errorf("unparsable raid_disks %q", s)
	}
	rest = strings.TrimSpace(rest)
	if rest != "" {
		b, err := strconv.Atoi(strings.Trim(rest, "()"))
		if err != nil || b < 0 {
			return cur, 0, fmt.Errorf("unparsable previous raid_disks in %q", s)
		}
		before = b
	}
	return cur, before, nil
}

// parseSyncCompleted reads sync_completed: "none", "delayed" or
// "done / total" in sectors.
func parseSyncCompleted(s string, sync *MdSync) error {
	s = strings.TrimSpace(s)
	switch s {
	case "none", "":
		return nil
	case "delayed":
		sync.Delayed = true
		return nil
	}
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("unparsable sync_completed %q", s)
	}
	done, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	total, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("unparsable sync_completed %q", s)
	}
	sync.Done, sync.Total = done, total
	return nil
}

// eta computes the remaining time from sectors left and KiB/s.
func (s *MdSync) computeETA() {
	if s.ETA > 0 || s.SpeedKBps <= 0 || s.Total == 0 || s.Done > s.Total {
		return
	}
	leftKiB := float64(s.Total-s.Done) / 2
	secs := leftKiB / s.SpeedKBps
	if secs > 0 && secs < 1e9 {
		s.ETA = time.Duration(secs * float64(time.Second))
	}
}
