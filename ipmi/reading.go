package ipmi

import (
	"fmt"
	"strings"
)

// Reading is the answer to Get Sensor Reading (section 35.14) for one sensor.
type Reading struct {
	Raw uint8 // analog reading byte (threshold sensors)
	// ScanningDisabled: the BMC does not scan this sensor (often an
	// unpopulated fan header).
	ScanningDisabled bool
	// Unavailable: the BMC says the reading or state is not available.
	Unavailable bool
	// States holds the asserted discrete offsets 0-14 (bit n = offset n) for
	// discrete sensors, or the threshold comparison status (bits 0-5) for
	// threshold sensors.
	States uint16
}

// ParseSensorReading decodes Get Sensor Reading response data (completion
// code stripped). The discrete state bytes are optional in the spec: a BMC
// may return only the reading and flags byte.
func ParseSensorReading(b []byte) (Reading, error) {
	if len(b) < 2 {
		return Reading{}, fmt.Errorf("sensor reading of %d bytes, want at least 2", len(b))
	}
	r := Reading{
		Raw:              b[0],
		ScanningDisabled: b[1]&0x40 == 0,
		Unavailable:      b[1]&0x20 != 0,
	}
	if len(b) > 2 {
		r.States = uint16(b[2])
	}
	if len(b) > 3 {
		r.States |= uint16(b[3]&0x7f) << 8
	}
	return r, nil
}

// Asserted reports whether discrete offset n is asserted.
func (r Reading) Asserted(n uint) bool { return n < 15 && r.States&(1<<n) != 0 }

// Offset names as ipmitool prints them (its sensor-specific and generic
// event tables), so `ipmitool sdr elist` and spofwatch say the same words.
var (
	psuOffsets = [8]string{"Presence detected", "Failure detected", "Predictive failure", "Power Supply AC lost",
		"AC lost or out-of-range", "AC out-of-range, but present", "Config Error", "Power Supply Inactive"}
	powerUnitOffsets = [8]string{"Power off/down", "Power cycle", "240VA power down", "Interlock power down",
		"AC lost", "Soft-power control failure", "Failure detected", "Predictive failure"}
	redundancyOffsets = [8]string{"Fully Redundant", "Redundancy Lost", "Redundancy Degraded",
		"Non-Redundant: Sufficient from Redundant", "Non-Redundant: Sufficient from Insufficient",
		"Non-Redundant: Insufficient Resources", "Redundancy Degraded from Fully Redundant",
		"Redundancy Degraded from Non-Redundant"}
	presenceOffsets  = [2]string{"Device Absent", "Device Present"}
	thresholdOffsets = [6]string{"lower non-critical", "lower critical", "lower non-recoverable",
		"upper non-critical", "upper critical", "upper non-recoverable"}
)

// Describe lists the asserted states of a reading in ipmitool's words.
func Describe(s SDR, r Reading) string {
	var names []string
	add := func(table []string) {
		for i, n := range table {
			if r.Asserted(uint(i)) {
				names = append(names, n)
			}
		}
	}
	switch {
	case s.ReadingType == ReadingTypeThreshold:
		add(thresholdOffsets[:])
	case s.ReadingType == ReadingTypeRedundancy:
		add(redundancyOffsets[:])
	case s.ReadingType == ReadingTypePresence:
		add(presenceOffsets[:])
	case s.ReadingType == ReadingTypeSensorSpecific && s.SensorType == SensorTypePowerSupply:
		add(psuOffsets[:])
	case s.ReadingType == ReadingTypeSensorSpecific && s.SensorType == SensorTypePowerUnit:
		add(powerUnitOffsets[:])
	default:
		for i := uint(0); i < 15; i++ {
			if r.Asserted(i) {
				names = append(names, fmt.Sprintf("offset %d", i))
			}
		}
	}
	return strings.Join(names, ", ")
}

// PSU is a decoded power-supply sensor (type 08h, sensor-specific offsets).
type PSU struct {
	Present bool
	// PresenceReported is false when the SDR says the sensor cannot report
	// presence (offset 0 missing from its reading mask).
	PresenceReported   bool
	Failure            bool
	PredictiveFailure  bool
	ACLost             bool // offset 3: input lost (AC/DC)
	InputLostOrRange   bool // offset 4: input lost or out of range
	InputOutOfRange    bool // offset 5: input out of range, but present
	ConfigurationError bool
	Inactive           bool // offset 7: in standby
}

// DecodePSU decodes a power-supply sensor. A sensor of reading type 08h
// (generic device presence) reports only presence.
func DecodePSU(s SDR, r Reading) PSU {
	if s.ReadingType == ReadingTypePresence {
		return PSU{Present: r.Asserted(1), PresenceReported: true}
	}
	return PSU{
		Present:            r.Asserted(0),
		PresenceReported:   s.ReadingMask == 0 || s.ReadingMask&1 != 0,
		Failure:            r.Asserted(1),
		PredictiveFailure:  r.Asserted(2),
		ACLost:             r.Asserted(3),
		InputLostOrRange:   r.Asserted(4),
		InputOutOfRange:    r.Asserted(5),
		ConfigurationError: r.Asserted(6),
		Inactive:           r.Asserted(7),
	}
}

// Redundancy is the state of a redundancy sensor (reading type 0Bh, table
// 42-2). The offsets are mutually exclusive by spec; when a BMC asserts more
// than one, the worst wins.
type Redundancy int

const (
	RedundancyUnknown Redundancy = iota
	FullyRedundant
	RedundancyDegradedFromNonRedundant
	RedundancyDegradedFromFull
	RedundancyDegraded
	NonRedundantSufficientFromInsufficient
	NonRedundantSufficientFromRedundant
	RedundancyLost
	NonRedundantInsufficient
)

var redundancyNames = map[Redundancy]string{
	RedundancyUnknown:                      "unknown",
	FullyRedundant:                         "fully_redundant",
	RedundancyLost:                         "redundancy_lost",
	RedundancyDegraded:                     "redundancy_degraded",
	NonRedundantSufficientFromRedundant:    "non_redundant_sufficient_from_redundant",
	NonRedundantSufficientFromInsufficient: "non_redundant_sufficient_from_insufficient",
	NonRedundantInsufficient:               "non_redundant_insufficient",
	RedundancyDegradedFromFull:             "redundancy_degraded_from_fully_redundant",
	RedundancyDegradedFromNonRedundant:     "redundancy_degraded_from_non_redundant",
}

// RedundancyStates lists every state in a stable order (metrics state set).
var RedundancyStates = []Redundancy{FullyRedundant, RedundancyLost, RedundancyDegraded,
	NonRedundantSufficientFromRedundant, NonRedundantSufficientFromInsufficient, NonRedundantInsufficient,
	RedundancyDegradedFromFull, RedundancyDegradedFromNonRedundant, RedundancyUnknown}

// String is the snake_case state name used in metrics.
func (r Redundancy) String() string { return redundancyNames[r] }

// redundancyByOffset is the state of each 0Bh offset.
var redundancyByOffset = [8]Redundancy{FullyRedundant, RedundancyLost, RedundancyDegraded,
	NonRedundantSufficientFromRedundant, NonRedundantSufficientFromInsufficient, NonRedundantInsufficient,
	RedundancyDegradedFromFull, RedundancyDegradedFromNonRedundant}

// Text is the state as ipmitool prints it.
func (r Redundancy) Text() string {
	for i, s := range redundancyByOffset {
		if s == r {
			return redundancyOffsets[i]
		}
	}
	return "no state asserted"
}

// DecodeRedundancy returns the worst asserted redundancy state, or
// RedundancyUnknown when no offset is asserted.
func DecodeRedundancy(r Reading) Redundancy {
	worst := RedundancyUnknown
	for i, st := range redundancyByOffset {
		if r.Asserted(uint(i)) && st > worst {
			worst = st
		}
	}
	return worst
}

// PowerUnit is a decoded power-unit sensor (type 09h, sensor-specific).
type PowerUnit struct {
	PowerOff          bool
	ACLost            bool
	SoftPowerFailure  bool
	Failure           bool
	PredictiveFailure bool
}

// DecodePowerUnit decodes a power-unit sensor with sensor-specific offsets.
func DecodePowerUnit(r Reading) PowerUnit {
	return PowerUnit{
		PowerOff:          r.Asserted(0),
		ACLost:            r.Asserted(4),
		SoftPowerFailure:  r.Asserted(5),
		Failure:           r.Asserted(6),
		PredictiveFailure: r.Asserted(7),
	}
}

// Threshold comparison status bits (Get Sensor Reading byte 3, threshold
// sensors).
const (
	BelowLowerNonCritical    uint16 = 1 << 0
	BelowLowerCritical       uint16 = 1 << 1
	BelowLowerNonRecoverable uint16 = 1 << 2
	AboveUpperNonCritical    uint16 = 1 << 3
	AboveUpperCritical       uint16 = 1 << 4
	AboveUpperNonRecoverable uint16 = 1 << 5
)
