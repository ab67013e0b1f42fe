package diskhealth

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// NVMeSMARTLogSize is the length of the SMART / Health Information log
// page (log identifier 02h).
const NVMeSMARTLogSize = 512

// NVMeSMARTLog is the SMART / Health Information log page as the NVMe base
// specification defines it (NVM Express Base Specification 2.0c, section
// 5.16.1.3 "SMART / Health Information (Log Page Identifier 02h)"; 1.4 has
// the same layout in 5.14.1.2). Byte offsets are in the field comments.
// The 128-bit counters are read as uint64 and saturate at MaxUint64: no
// drive gets near 2^64 of anything that matters here.
type NVMeSMARTLog struct {
	CriticalWarning uint8 // byte 0, bits below
	// CompositeTemperatureK is bytes 1-2 in kelvin; 0 when not reported.
	CompositeTemperatureK uint16
	AvailableSpare        uint8 // byte 3, percent of the spare capacity left
	SpareThreshold        uint8 // byte 4, percent
	PercentageUsed        uint8 // byte 5, percent of rated endurance, may exceed 100 (255 = 255 or more)
	DataUnitsRead         uint64
	DataUnitsWritten      uint64
	HostReadCommands      uint64
	HostWriteCommands     uint64
	ControllerBusyMinutes uint64
	PowerCycles           uint64
	PowerOnHours          uint64
	UnsafeShutdowns       uint64
	MediaErrors           uint64 // bytes 160-175: unrecovered data integrity errors
	ErrorLogEntries       uint64
}

// Critical warning bits (byte 0).
const (
	NVMeWarnSpare          uint8 = 1 << 0 // available spare below threshold
	NVMeWarnTemperature    uint8 = 1 << 1 // temperature beyond a threshold
	NVMeWarnReliability    uint8 = 1 << 2 // reliability degraded: excessive media or internal errors
	NVMeWarnReadOnly       uint8 = 1 << 3 // media placed in read-only mode
	NVMeWarnVolatileBackup uint8 = 1 << 4 // volatile memory backup device failed
	NVMeWarnPMRReadOnly    uint8 = 1 << 5 // persistent memory region read-only (NVMe 1.4+)
)

var nvmeWarnWords = []struct {
	bit  uint8
	word string
}{
	{NVMeWarnSpare, "available spare below threshold"},
	{NVMeWarnTemperature, "temperature beyond its threshold"},
	{NVMeWarnReliability, "reliability degraded by media or internal errors"},
	{NVMeWarnReadOnly, "media is read-only"},
	{NVMeWarnVolatileBackup, "volatile memory backup failed"},
	{NVMeWarnPMRReadOnly, "persistent memory region is read-only"},
}

// ParseNVMeSMARTLog decodes a SMART / Health log page. It needs the whole
// 512 bytes: a shorter transfer is a failed read, never a healthy drive.
func ParseNVMeSMARTLog(b []byte) (NVMeSMARTLog, error) {
	if len(b) < NVMeSMARTLogSize {
		return NVMeSMARTLog{}, fmt.Errorf("SMART / Health log page is %d bytes, want %d", len(b), NVMeSMARTLogSize)
	}
	u128 := func(off int) uint64 {
		if binary.LittleEndian.Uint64(b[off+8:off+16]) != 0 {
			return math.MaxUint64
		}
		return binary.LittleEndian.Uint64(b[off : off+8])
	}
	return NVMeSMARTLog{
		CriticalWarning:       b[0],
		CompositeTemperatureK: binary.LittleEndian.Uint16(b[1:3]),
		AvailableSpare:        b[3],
		SpareThreshold:        b[4],
		PercentageUsed:        b[5],
		DataUnitsRead:         u128(32),
		DataUnitsWritten:      u128(48),
		HostReadCommands:      u128(64),
		HostWriteCommands:     u128(80),
		ControllerBusyMinutes: u128(96),
		PowerCycles:           u128(112),
		PowerOnHours:          u128(128),
		UnsafeShutdowns:       u128(144),
		MediaErrors:           u128(160),
		ErrorLogEntries:       u128(176),
	}, nil
}

// CriticalWarningWords names the set bits of a critical warning byte;
// reserved bits are named by number.
func CriticalWarningWords(w uint8) []string {
	var out []string
	known := uint8(0)
	for _, ww := range nvmeWarnWords {
		known |= ww.bit
		if w&ww.bit != 0 {
			out = append(out, ww.word)
		}
	}
	for bit := range 8 {
		if m := uint8(1) << bit; w&m != 0 && known&m == 0 {
			out = append(out, fmt.Sprintf("reserved bit %d", bit))
		}
	}
	return out
}

// Judge applies the verdict rules to the log page: a read-only medium
// (bit 3) is failing (the drive refuses writes: in a mirror it is kicked
// out at the next write); any other critical warning bit (the persistent
// memory region's read-only bit 5 included: it does not stop the
// namespace's writes), available spare below
// its threshold, or rated endurance used up (percentage_used >= 100) is
// degraded. Media errors alone are exported, not judged: a few are
// recovered by the array, and the drive raises bit 2 when they matter.
func (l NVMeSMARTLog) Judge() (Verdict, []string) {
	v := VerdictOK
	var problems []string
	if l.CriticalWarning != 0 {
		v = VerdictDegraded
		if l.CriticalWarning&NVMeWarnReadOnly != 0 {
			v = VerdictFailing
		}
		problems = append(problems, fmt.Sprintf("critical warning 0x%02x: %s",
			l.CriticalWarning, strings.Join(CriticalWarningWords(l.CriticalWarning), ", ")))
	}
	if l.AvailableSpare < l.SpareThreshold {
		v = worse(v, VerdictDegraded)
		problems = append(problems, fmt.Sprintf("available spare %d%% below threshold %d%%", l.AvailableSpare, l.SpareThreshold))
	}
	if l.PercentageUsed >= 100 {
		v = worse(v, VerdictDegraded)
		problems = append(problems, fmt.Sprintf("%d%% of rated endurance used", l.PercentageUsed))
	}
	return v, problems
}

// Health fills a Health from the log page.
func (l NVMeSMARTLog) Health(disk, controller string) Health {
	h := Health{Disk: disk, Controller: controller, Protocol: ProtocolNVMe}
	h.Verdict, h.Problems = l.Judge()
	cw, as, st, pu := l.CriticalWarning, l.AvailableSpare, l.SpareThreshold, l.PercentageUsed
	me, poh := l.MediaErrors, l.PowerOnHours
	h.CriticalWarning, h.AvailableSpare, h.SpareThreshold, h.PercentageUsed = &cw, &as, &st, &pu
	h.MediaErrors, h.PowerOnHours = &me, &poh
	if l.CompositeTemperatureK != 0 {
		c := float64(l.CompositeTemperatureK) - 273.15
		h.TemperatureCelsius = &c
	}
	return h
}

// worse orders verdicts ok < degraded < failing; unknown is not ranked
// here (a read either happened or not).
func worse(a, b Verdict) Verdict {
	rank := map[Verdict]int{VerdictOK: 0, VerdictDegraded: 1, VerdictFailing: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
