package ipmi

import (
	"encoding/binary"
	"fmt"
	"time"
)

// RestorePolicy is what the BMC does when mains power returns (Get Chassis
// Status byte 1, bits 6:5).
type RestorePolicy uint8

const (
	RestoreAlwaysOff RestorePolicy = 0
	RestorePrevious  RestorePolicy = 1
	RestoreAlwaysOn  RestorePolicy = 2
	RestoreUnknown   RestorePolicy = 3
)

// RestorePolicies lists every policy in a stable order (metrics state set).
var RestorePolicies = []RestorePolicy{RestoreAlwaysOff, RestorePrevious, RestoreAlwaysOn, RestoreUnknown}

func (p RestorePolicy) String() string {
	switch p {
	case RestoreAlwaysOff:
		return "always_off"
	case RestorePrevious:
		return "previous"
	case RestoreAlwaysOn:
		return "always_on"
	}
	return "unknown"
}

// ChassisStatus is the answer to Get Chassis Status (section 28.2).
type ChassisStatus struct {
	PowerOn           bool
	PowerOverload     bool
	PowerInterlock    bool
	PowerFault        bool // fault in the main power subsystem
	PowerControlFault bool
	RestorePolicy     RestorePolicy
	CoolingFault      bool // cooling/fan fault detected
	DriveFault        bool
}

// ParseChassisStatus decodes Get Chassis Status response data (completion
// code stripped).
func ParseChassisStatus(b []byte) (ChassisStatus, error) {
	if len(b) < 3 {
		return ChassisStatus{}, fmt.Errorf("chassis status of %d bytes, want at least 3", len(b))
	}
	return ChassisStatus{
		PowerOn:           b[0]&0x01 != 0,
		PowerOverload:     b[0]&0x02 != 0,
		PowerInterlock:    b[0]&0x04 != 0,
		PowerFault:        b[0]&0x08 != 0,
		PowerControlFault: b[0]&0x10 != 0,
		RestorePolicy:     RestorePolicy(b[0] >> 5 & 0x03),
		CoolingFault:      b[2]&0x08 != 0,
		DriveFault:        b[2]&0x04 != 0,
	}, nil
}

// SELInfo is the answer to Get SEL Info (section 31.2).
type SELInfo struct {
	Entries      uint16
	LastAddition uint32
	LastErase    uint32
}

// ParseSELInfo decodes Get SEL Info response data (completion code stripped).
func ParseSELInfo(b []byte) (SELInfo, error) {
	if len(b) < 13 {
		return SELInfo{}, fmt.Errorf("SEL info of %d bytes, want at least 13", len(b))
	}
	return SELInfo{
		Entries:      binary.LittleEndian.Uint16(b[1:3]),
		LastAddition: binary.LittleEndian.Uint32(b[5:9]),
		LastErase:    binary.LittleEndian.Uint32(b[9:13]),
	}, nil
}

// SELEntry is one system event record (section 32.1, record type 02h).
type SELEntry struct {
	RecordID uint16
	// NextRecordID comes from the Get SEL Entry response, 0xFFFF after the
	// last entry.
	NextRecordID uint16
	RecordType   uint8
	// Timestamp is the BMC's clock at the event. Values up to 0x20000000
	// count seconds since BMC initialisation (its clock was never set); see
	// TimeKnown.
	Timestamp    uint32
	GeneratorID  uint16
	SensorType   uint8
	SensorNumber uint8
	Deassertion  bool
	ReadingType  uint8
	Offset       uint8 // event data 1 bits 3:0
	EventData    [3]byte
}

// TimeKnown reports whether the timestamp is an absolute time (section
// 37.1: 0x00000000-0x20000000 are relative to BMC initialisation).
func (e SELEntry) TimeKnown() bool { return e.Timestamp > 0x20000000 && e.Timestamp != 0xffffffff }

// Time returns the event time when TimeKnown.
func (e SELEntry) Time() time.Time { return time.Unix(int64(e.Timestamp), 0).UTC() }

// ParseSELEntry decodes Get SEL Entry response data (completion code
// stripped): the next record ID, then the 16-byte record.
func ParseSELEntry(b []byte) (SELEntry, error) {
	if len(b) < 2+16 {
		return SELEntry{}, fmt.Errorf("SEL entry of %d bytes, want 18", len(b))
	}
	r := b[2:18]
	e := SELEntry{
		NextRecordID: binary.LittleEndian.Uint16(b[0:2]),
		RecordID:     binary.LittleEndian.Uint16(r[0:2]),
		RecordType:   r[2],
	}
	if e.RecordType != 0x02 {
		// OEM records (C0h-FFh) carry no sensor event; keep the IDs only.
		return e, nil
	}
	e.Timestamp = binary.LittleEndian.Uint32(r[3:7])
	e.GeneratorID = binary.LittleEndian.Uint16(r[7:9])
	e.SensorType = r[10]
	e.SensorNumber = r[11]
	e.Deassertion = r[12]&0x80 != 0
	e.ReadingType = r[12] & 0x7f
	e.Offset = r[13] & 0x0f
	copy(e.EventData[:], r[13:16])
	return e, nil
}

// Relevant reports whether a SEL entry concerns power or cooling redundancy:
// power supply, power unit and fan events and every redundancy event.
func (e SELEntry) Relevant() bool {
	if e.RecordType != 0x02 {
		return false
	}
	if e.ReadingType == ReadingTypeRedundancy {
		return true
	}
	switch e.SensorType {
	case SensorTypePowerSupply, SensorTypePowerUnit, SensorTypeFan:
		return true
	}
	return false
}

// Describe says what the event means in ipmitool's words.
func (e SELEntry) Describe() string {
	s := SDR{SensorType: e.SensorType, ReadingType: e.ReadingType}
	r := Reading{States: 1 << e.Offset}
	if e.ReadingType == ReadingTypeThreshold {
		r.States = 1 << (e.Offset / 2)
	}
	what := Describe(s, r)
	if e.Deassertion {
		return what + " deasserted"
	}
	return what + " asserted"
}
