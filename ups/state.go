package ups

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Flag is one token of ups.status.
type Flag string

// Status flags of ups.status (NUT docs/new-drivers.txt, "Status data").
const (
	FlagOnline         Flag = "OL"      // on line power
	FlagOnBattery      Flag = "OB"      // on battery: mains lost
	FlagLowBattery     Flag = "LB"      // battery low: shutdown imminent
	FlagHighBattery    Flag = "HB"      // battery high
	FlagReplaceBattery Flag = "RB"      // the battery needs replacing
	FlagCharging       Flag = "CHRG"    // battery charging
	FlagDischarging    Flag = "DISCHRG" // battery discharging
	FlagBypass         Flag = "BYPASS"  // on bypass: protection is off
	FlagCalibrating    Flag = "CAL"     // runtime calibration (runs on battery on purpose)
	FlagOff            Flag = "OFF"     // output off: feeds no power
	FlagOverload       Flag = "OVER"    // overloaded
	FlagTrim           Flag = "TRIM"    // trimming a high input voltage
	FlagBoost          Flag = "BOOST"   // boosting a low input voltage
	FlagForcedShutdown Flag = "FSD"     // forced shutdown ordered by the primary upsmon
	FlagAlarm          Flag = "ALARM"   // an alarm is active, see ups.alarm
	FlagWait           Flag = "WAIT"    // driver still initialising: no data yet
)

// Flags lists every known flag in a stable order (the metrics state set).
var Flags = []Flag{
	FlagOnline, FlagOnBattery, FlagLowBattery, FlagHighBattery, FlagReplaceBattery,
	FlagCharging, FlagDischarging, FlagBypass, FlagCalibrating, FlagOff, FlagOverload,
	FlagTrim, FlagBoost, FlagForcedShutdown, FlagAlarm, FlagWait,
}

func knownFlag(f Flag) bool { return slices.Contains(Flags, f) }

// Reading is one numeric variable; Valid is false when the UPS did not
// report it or reported something that is not a number.
type Reading struct {
	Value float64
	Valid bool
}

// NUT variable names read by ParseState.
const (
	VarStatus         = "ups.status"
	VarAlarm          = "ups.alarm"
	VarLoad           = "ups.load"
	VarBatteryCharge  = "battery.charge"
	VarBatteryRuntime = "battery.runtime"
	VarBatteryDate    = "battery.date"
	VarBatteryMfrDate = "battery.mfr.date"
	VarInputVoltage   = "input.voltage"
	VarOutputVoltage  = "output.voltage"
	VarDeviceModel    = "device.model"
	VarUPSModel       = "ups.model"
	VarTestResult     = "ups.test.result"
	VarTestDate       = "ups.test.date"
)

// State is what one UPS reports, read from its variables.
type State struct {
	// Status holds the tokens of ups.status in order. Known says whether
	// ups.status was reported at all.
	Status      []Flag
	StatusKnown bool
	// UnknownFlags are tokens of ups.status this package does not know.
	UnknownFlags []Flag

	BatteryCharge  Reading // percent
	BatteryRuntime Reading // seconds
	Load           Reading // percent of the UPS's rating
	InputVoltage   Reading // volts
	OutputVoltage  Reading // volts
	// BatteryDate is battery.date (last replacement), else battery.mfr.date.
	BatteryDate string
	Alarm       string
	Model       string
	// TestResult is ups.test.result (the last self-test's outcome, in the
	// driver's words); TestDate is ups.test.date where the UPS reports it.
	TestResult, TestDate string

	// Problems name variables that were present but unreadable, and list
	// lines that did not parse; the rest of the state is still good.
	Problems []string
}

// Has reports whether ups.status carries f.
func (s State) Has(f Flag) bool {
	for _, t := range s.Status {
		if t == f {
			return true
		}
	}
	return false
}

// Runtime returns battery.runtime as a duration.
func (s State) Runtime() (time.Duration, bool) {
	if !s.BatteryRuntime.Valid {
		return 0, false
	}
	return time.Duration(s.BatteryRuntime.Value * float64(time.Second)), true
}

// ParseState reads a UPS's variables. Each variable is read on its own: an
// unreadable one is left invalid and named in Problems.
func ParseState(list VarList) State {
	vars := list.Vars
	var s State
	for _, l := range list.Malformed {
		s.Problems = append(s.Problems, fmt.Sprintf("unreadable line %q", l))
	}
	if st, ok := vars[VarStatus]; ok {
		s.StatusKnown = true
		for _, tok := range strings.Fields(st) {
			f := Flag(tok)
			s.Status = append(s.Status, f)
			if !knownFlag(f) {
				s.UnknownFlags = append(s.UnknownFlags, f)
			}
		}
	}
	num := func(name string, min, max float64) Reading {
		v, ok := vars[name]
		if !ok || v == "" {
			return Reading{}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < min || f > max {
			s.Problems = append(s.Problems, fmt.Sprintf("%s %q is not a number in [%g, %g]", name, clip(v), min, max))
			return Reading{}
		}
		return Reading{Value: f, Valid: true}
	}
	s.BatteryCharge = num(VarBatteryCharge, 0, 100)
	s.BatteryRuntime = num(VarBatteryRuntime, 0, math.MaxInt32)
	s.Load = num(VarLoad, 0, 10000)
	s.InputVoltage = num(VarInputVoltage, 0, 100000)
	s.OutputVoltage = num(VarOutputVoltage, 0, 100000)
	s.BatteryDate = vars[VarBatteryDate]
	if s.BatteryDate == "" {
		s.BatteryDate = vars[VarBatteryMfrDate]
	}
	s.Alarm = vars[VarAlarm]
	s.TestResult = vars[VarTestResult]
	s.TestDate = vars[VarTestDate]
	s.Model = vars[VarDeviceModel]
	if s.Model == "" {
		s.Model = vars[VarUPSModel]
	}
	sort.Strings(s.Problems)
	return s
}

// TestOutcome classifies ups.test.result.
type TestOutcome int

const (
	// TestNone: no finished test (none run, in progress, aborted, or
	// words this package does not know).
	TestNone TestOutcome = iota
	TestPassed
	TestFailed
)

// SelfTest classifies the last self-test from ups.test.result. Drivers use
// their own words: usbhid-ups "Done and passed" / "Done and warning" /
// "Done and error" / "Aborted" / "In progress" / "No test initiated",
// apcsmart "OK" / "Failed" / "Battery failed" / "No test results" (NUT
// docs/nut-names.txt lists the variable, not the values). A warning counts
// as failed: the battery did not prove itself.
func (s State) SelfTest() TestOutcome {
	r := strings.ToLower(strings.TrimSpace(s.TestResult))
	switch {
	case r == "":
		return TestNone
	case strings.Contains(r, "fail"), strings.Contains(r, "error"), strings.Contains(r, "warning"):
		return TestFailed
	case strings.Contains(r, "passed"), r == "ok":
		return TestPassed
	}
	return TestNone
}

// testDateLayouts are the ups.test.date forms seen from drivers (NUT's
// own dates are YYYY/MM/DD; APC's are MM/DD/YY).
var testDateLayouts = []string{"2006/01/02", "2006-01-02", "01/02/06", "01/02/2006"}

// ParseTestDate reads ups.test.date as a calendar day in loc.
func ParseTestDate(v string, loc *time.Location) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, l := range testDateLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
