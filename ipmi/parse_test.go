package ipmi

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// unhex turns "05 c0 03 00" into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simSDRs reads the SDR records of the test BMC from its main_sdr_add lines
// (sdrcomp output and the hand-assembled fan records, see
// testdata/sim/PROVENANCE.md).
func simSDRs(t testing.TB) [][]byte {
	t.Helper()
	var recs [][]byte
	for _, f := range []string{"sdrs.emu", "fans.emu"} {
		fh, err := os.Open(filepath.Join("testdata", "sim", f))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 || fields[0] != "main_sdr_add" {
				continue
			}
			var rec []byte
			for _, x := range fields[2:] {
				v, err := strconv.ParseUint(x, 0, 8)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				rec = append(rec, byte(v))
			}
			recs = append(recs, rec)
		}
		fh.Close()
	}
	return recs
}

func TestParseSDRFixtures(t *testing.T) {
	var got []string
	for _, rec := range simSDRs(t) {
		s, err := ParseSDR(rec)
		if err == ErrNotSensor {
			continue
		}
		if err != nil {
			t.Fatalf("record % x: %v", rec, err)
		}
		got = append(got, strings.Join([]string{s.Name, strconv.Itoa(int(s.Number)), strconv.Itoa(int(s.SensorType)),
			strconv.Itoa(int(s.ReadingType)), strconv.FormatBool(s.OfInterest())}, "/"))
	}
	want := []string{
		"PSU1 Status/16/8/111/true", "PSU2 Status/17/8/111/true", "PS Redundancy/18/9/11/true",
		"Fan Redundancy/19/4/11/true", "FAN1/32/4/1/true", "FAN2/33/4/1/true", "FAN3/34/4/1/true",
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("SDRs\n got %v\nwant %v", got, want)
	}
}

func TestParseSDRErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  string
		want string
	}{
		{"short header", "01 00 51", "shorter than its 5-byte header"},
		{"length beyond data", "01 00 51 02 26 20 00", "length field says 38"},
		{"truncated compact", "01 00 51 02 03 20 00 10", "truncated"},
		{"mc locator", "01 00 51 12 02 20 00", ErrNotSensor.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSDR(unhex(t, tc.rec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDecodeIDString(t *testing.T) {
	for _, tc := range []struct {
		typeLen byte
		b       string
		want    string
	}{
		{0xcb, "505355322053746174757320", "PSU2 Status"}, // 8-bit, trailing pad trimmed
		{0xc8, "46414e3100000000", "FAN1"},                // NUL padded
		{0x43, "214365", "123456"},                        // BCD plus, low nibble first
		{0x83, "29dc02", "IPM"},                           // 6-bit packed, first character in the low bits
		{0xcf, "4142", "AB"},                              // length beyond data
	} {
		got := decodeIDString(tc.typeLen, unhex(t, tc.b))
		if got != tc.want {
			t.Errorf("decodeIDString(%#02x, %s) = %q, want %q", tc.typeLen, tc.b, got, tc.want)
		}
	}
}

// Raw responses captured from ipmi_sim with `ipmitool raw` (completion code
// stripped by ipmitool), see testdata/sim/PROVENANCE.md.
func TestParseResponses(t *testing.T) {
	r, err := ParseSensorReading(unhex(t, "05 c0 03 00")) // FAN3 at 500 RPM, below LNC and LC
	if err != nil {
		t.Fatal(err)
	}
	if r.Raw != 5 || r.ScanningDisabled || r.Unavailable || r.States != BelowLowerNonCritical|BelowLowerCritical {
		t.Errorf("fan reading = %+v", r)
	}
	r, _ = ParseSensorReading(unhex(t, "00 c0 03 00")) // PSU2: presence + failure
	psu := DecodePSU(SDR{SensorType: SensorTypePowerSupply, ReadingType: ReadingTypeSensorSpecific, ReadingMask: 0x0f}, r)
	if !psu.Present || !psu.Failure || psu.PredictiveFailure || !psu.PresenceReported {
		t.Errorf("PSU = %+v", psu)
	}
	if got := Describe(SDR{SensorType: SensorTypePowerSupply, ReadingType: ReadingTypeSensorSpecific}, r); got != "Presence detected, Failure detected" {
		t.Errorf("Describe = %q", got)
	}
	if r, _ := ParseSensorReading(unhex(t, "00 a0")); !r.Unavailable || !r.ScanningDisabled {
		t.Errorf("unavailable reading = %+v", r)
	}
	if _, err := ParseSensorReading(unhex(t, "00")); err == nil {
		t.Error("1-byte reading accepted")
	}

	info, err := ParseSDRRepoInfo(unhex(t, "51 08 00 fe ff c4 02 00 00 00 00 00 00 02"))
	if err != nil || info.RecordCount != 8 || info.LastAddition != 0x2c4 || info.LastErase != 0 {
		t.Errorf("repo info = %+v, %v", info, err)
	}
	if info.SameRepository(SDRRepoInfo{RecordCount: 9, LastAddition: 0x2c4}) {
		t.Error("a changed record count is the same repository")
	}

	cs, err := ParseChassisStatus(unhex(t, "00 00 00"))
	if err != nil || cs.RestorePolicy != RestoreAlwaysOff || cs.PowerOn || cs.PowerFault {
		t.Errorf("chassis = %+v, %v", cs, err)
	}
	cs, _ = ParseChassisStatus(unhex(t, "4b 00 08 00")) // on, overload, fault, previous; cooling fault
	if !cs.PowerOn || !cs.PowerOverload || !cs.PowerFault || cs.RestorePolicy != RestoreAlwaysOn || !cs.CoolingFault {
		t.Errorf("chassis = %+v", cs)
	}

	sel, err := ParseSELInfo(unhex(t, "51 02 00 60 3e c9 02 00 00 00 00 00 00 0a"))
	if err != nil || sel.Entries != 2 || sel.LastAddition != 0x2c9 {
		t.Errorf("SEL info = %+v, %v", sel, err)
	}
	e, err := ParseSELEntry(unhex(t, "ff ff 02 00 02 c9 02 00 00 20 00 04 04 22 01 52 05 0a"))
	if err != nil {
		t.Fatal(err)
	}
	if e.RecordID != 2 || e.NextRecordID != 0xffff || e.SensorNumber != 0x22 || e.SensorType != SensorTypeFan ||
		e.ReadingType != ReadingTypeThreshold || e.Deassertion || e.TimeKnown() || !e.Relevant() {
		t.Errorf("SEL entry = %+v", e)
	}
	if got := e.Describe(); got != "lower critical asserted" {
		t.Errorf("SEL entry says %q", got)
	}
}

func TestDecodeRedundancy(t *testing.T) {
	for _, tc := range []struct {
		states uint16
		want   Redundancy
	}{
		{0, RedundancyUnknown},
		{1 << 0, FullyRedundant},
		{1 << 1, RedundancyLost},
		{1 << 2, RedundancyDegraded},
		{1 << 3, NonRedundantSufficientFromRedundant},
		{1 << 5, NonRedundantInsufficient},
		{1<<0 | 1<<1, RedundancyLost}, // contradictory bits: the worst wins
		{1 << 7, RedundancyDegradedFromNonRedundant},
	} {
		if got := DecodeRedundancy(Reading{States: tc.states}); got != tc.want {
			t.Errorf("states %#04x = %s, want %s", tc.states, got, tc.want)
		}
	}
	if FullyRedundant.Text() != "Fully Redundant" || RedundancyLost.String() != "redundancy_lost" {
		t.Error("redundancy names")
	}
}

func TestDecodePSU(t *testing.T) {
	sdr := SDR{SensorType: SensorTypePowerSupply, ReadingType: ReadingTypeSensorSpecific, ReadingMask: 0xff}
	for _, tc := range []struct {
		states uint16
		want   PSU
	}{
		{0, PSU{PresenceReported: true}},
		{1, PSU{Present: true, PresenceReported: true}},
		{1 | 1<<2, PSU{Present: true, PresenceReported: true, PredictiveFailure: true}},
		{1 | 1<<3, PSU{Present: true, PresenceReported: true, ACLost: true}},
		{1 | 1<<4 | 1<<5, PSU{Present: true, PresenceReported: true, InputLostOrRange: true, InputOutOfRange: true}},
		{1 | 1<<6 | 1<<7, PSU{Present: true, PresenceReported: true, ConfigurationError: true, Inactive: true}},
	} {
		if got := DecodePSU(sdr, Reading{States: tc.states}); got != tc.want {
			t.Errorf("states %#04x = %+v, want %+v", tc.states, got, tc.want)
		}
	}
	// A sensor whose reading mask lacks offset 0 cannot report presence.
	if p := DecodePSU(SDR{ReadingType: ReadingTypeSensorSpecific, ReadingMask: 0x02}, Reading{}); p.PresenceReported {
		t.Error("presence reported without offset 0 in the reading mask")
	}
	// Generic device presence (08h): offset 1 = present.
	if p := DecodePSU(SDR{ReadingType: ReadingTypePresence}, Reading{States: 2}); !p.Present {
		t.Error("presence sensor device present not decoded")
	}
}

func FuzzParseSDR(f *testing.F) {
	for _, rec := range simSDRs(f) {
		f.Add(rec)
	}
	f.Add([]byte{1, 0, 0x51, 2, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		s, err := ParseSDR(rec)
		if err != nil {
			return
		}
		if s.Name == "" || len(s.Name) > 3*32 || !utf8.ValidString(s.Name) {
			t.Errorf("name %q", s.Name)
		}
		if s.RecordType != recordTypeFull && s.RecordType != recordTypeCompact {
			t.Errorf("record type %#02x parsed as a sensor", s.RecordType)
		}
	})
}

func FuzzParseSensorReading(f *testing.F) {
	for _, s := range []string{"05 c0 03 00", "00 c0 03 00", "00 a0", "3c c0 00 00", "00 c0 01"} {
		f.Add(unhex(f, s), byte(SensorTypePowerSupply), byte(ReadingTypeSensorSpecific))
	}
	f.Fuzz(func(t *testing.T, b []byte, sensorType, readingType byte) {
		r, err := ParseSensorReading(b)
		if err != nil {
			return
		}
		sdr := SDR{SensorType: sensorType, ReadingType: readingType}
		_ = Describe(sdr, r)
		_ = DecodePSU(sdr, r)
		_ = DecodePowerUnit(r)
		if red := DecodeRedundancy(r); red.String() == "" || red.Text() == "" {
			t.Errorf("redundancy %d has no name", red)
		}
		if r.States&0x8000 != 0 {
			t.Error("offset 15 set")
		}
	})
}

func FuzzParseSELEntry(f *testing.F) {
	f.Add(unhex(f, "ff ff 02 00 02 c9 02 00 00 20 00 04 04 22 01 52 05 0a"))
	f.Add(unhex(f, "ff ff 01 00 02 de 03 00 00 20 00 04 08 11 6f 01 ff ff"))
	f.Add(unhex(f, "03 00 02 00 c1 00 00 00 00 00 00 00 00 00 00 00 00 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseSELEntry(b)
		if err != nil {
			return
		}
		if e.Offset > 15 {
			t.Errorf("offset %d", e.Offset)
		}
		_ = e.Describe()
		_ = e.Relevant()
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add(unhex(f, "00 00 00"))
	f.Add(unhex(f, "4b 00 08 00"))
	f.Add(unhex(f, "51 02 00 60 3e c9 02 00 00 00 00 00 00 0a"))
	f.Add(unhex(f, "51 08 00 fe ff c4 02 00 00 00 00 00 00 02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if cs, err := ParseChassisStatus(b); err == nil && cs.RestorePolicy > RestoreUnknown {
			t.Errorf("restore policy %d", cs.RestorePolicy)
		}
		_, _ = ParseSELInfo(b)
		_, _ = ParseSDRRepoInfo(b)
	})
}
