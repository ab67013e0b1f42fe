// Package ipmi reads power-supply, power-unit and fan redundancy from a BMC,
// in-band through /dev/ipmi0 or remotely over RMCP+ (lanplus), using one
// reused go-ipmi session. It returns typed state and knows nothing of
// redundancy groups or Prometheus; collectors/ipmi.go adapts it.
//
// Every wire format (SDR records, Get Sensor Reading, Get Chassis Status, SEL
// entries) is parsed here from bytes, separate from the transport, so each
// parser is table-tested and fuzzed. References are to the IPMI v2.0 rev 1.1
// specification.
package ipmi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Sensor types (IPMI v2.0 table 42-3) this package reads on every poll.
const (
	SensorTypeFan         uint8 = 0x04
	SensorTypePowerSupply uint8 = 0x08
	SensorTypePowerUnit   uint8 = 0x09
	SensorTypeCooling     uint8 = 0x0A
)

// Event/reading type codes (table 42-1, 42-2).
const (
	ReadingTypeThreshold      uint8 = 0x01
	ReadingTypePresence       uint8 = 0x08 // generic "device removed / inserted"
	ReadingTypeRedundancy     uint8 = 0x0B
	ReadingTypeSensorSpecific uint8 = 0x6F
)

// SDR record types (section 43).
const (
	recordTypeFull    uint8 = 0x01
	recordTypeCompact uint8 = 0x02
)

// SDR describes one sensor from the BMC's sensor data record repository.
type SDR struct {
	RecordID       uint16
	RecordType     uint8
	OwnerID        uint8 // slave address (bit 0 = 0) or software ID of the sensor owner
	OwnerLUN       uint8
	Number         uint8
	EntityID       uint8
	EntityInstance uint8
	SensorType     uint8
	ReadingType    uint8
	// ReadingMask says which discrete offsets (bits 0-14) the sensor can
	// return; zero when the record does not say.
	ReadingMask uint16
	// Name is the ID string, trimmed: the member name operators see in
	// ipmitool and on the BMC's web page ("PSU2 Status").
	Name string
}

// ErrNotSensor is returned by ParseSDR for records that describe no readable
// sensor (event-only, entity association, MC locator, OEM). Callers skip them.
var ErrNotSensor = errors.New("SDR record describes no readable sensor")

// ParseSDR decodes one SDR record (header included) of type 01h (full sensor)
// or 02h (compact sensor), tables 43-1 and 43-2. Other record types return
// ErrNotSensor.
func ParseSDR(rec []byte) (SDR, error) {
	if len(rec) < 5 {
		return SDR{}, fmt.Errorf("SDR record of %d bytes is shorter than its 5-byte header", len(rec))
	}
	s := SDR{RecordID: binary.LittleEndian.Uint16(rec[0:2]), RecordType: rec[3]}
	body := int(rec[4])
	if len(rec) < 5+body {
		return s, fmt.Errorf("SDR record %#04x: length field says %d bytes, have %d", s.RecordID, body, len(rec)-5)
	}
	rec = rec[:5+body]
	var idAt int
	switch s.RecordType {
	case recordTypeFull:
		idAt = 47
	case recordTypeCompact:
		idAt = 31
	default:
		return s, ErrNotSensor
	}
	// The key and body fields up to the reading mask are common to both
	// record types (bytes 6-20).
	if len(rec) < 20 {
		return s, fmt.Errorf("SDR record %#04x: sensor record of %d bytes is truncated", s.RecordID, len(rec))
	}
	s.OwnerID = rec[5]
	s.OwnerLUN = rec[6] & 0x03
	s.Number = rec[7]
	s.EntityID = rec[8]
	s.EntityInstance = rec[9]
	s.SensorType = rec[12]
	s.ReadingType = rec[13]
	if s.ReadingType != ReadingTypeThreshold {
		s.ReadingMask = binary.LittleEndian.Uint16(rec[18:20]) & 0x7fff
	}
	if len(rec) > idAt {
		s.Name = decodeIDString(rec[idAt], rec[idAt+1:])
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("sensor %#02x", s.Number)
	}
	return s, nil
}

// decodeIDString decodes an SDR ID string (section 43.15: type/length byte,
// then the bytes). 8-bit ASCII+Latin1 is what BMCs use in practice; BCD plus
// and 6-bit packed ASCII are decoded too, unicode is read as bytes.
func decodeIDString(typeLen byte, b []byte) string {
	n := int(typeLen & 0x1f)
	if n > len(b) {
		n = len(b)
	}
	b = b[:n]
	var s string
	switch typeLen >> 6 {
	case 0b01: // BCD plus
		const digits = "0123456789 -.:,_"
		var sb strings.Builder
		for _, c := range b {
			sb.WriteByte(digits[c&0x0f])
			sb.WriteByte(digits[c>>4])
		}
		s = sb.String()
	case 0b10: // 6-bit ASCII packed, 4 characters in 3 bytes
		var sb strings.Builder
		var acc uint32
		bits := 0
		for _, c := range b {
			acc |= uint32(c) << bits
			bits += 8
			for bits >= 6 {
				sb.WriteByte(byte(acc&0x3f) + 0x20)
				acc >>= 6
				bits -= 6
			}
		}
		s = sb.String()
	default:
		s = latin1(b)
	}
	return strings.TrimSpace(strings.TrimRight(s, "\x00"))
}

func latin1(b []byte) string {
	r := make([]rune, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		r = append(r, rune(c))
	}
	return string(r)
}

// SDRRepoInfo is the answer to Get SDR Repository Info (section 33.9). A
// change in count or in either timestamp means the cached SDRs are stale.
type SDRRepoInfo struct {
	Version       uint8
	RecordCount   uint16
	LastAddition  uint32
	LastErase     uint32
	OperationFlag uint8
}

// ParseSDRRepoInfo decodes the Get SDR Repository Info response data (the
// completion code already stripped).
func ParseSDRRepoInfo(b []byte) (SDRRepoInfo, error) {
	if len(b) < 13 {
		return SDRRepoInfo{}, fmt.Errorf("SDR repository info of %d bytes, want at least 13", len(b))
	}
	i := SDRRepoInfo{
		Version:      b[0],
		RecordCount:  binary.LittleEndian.Uint16(b[1:3]),
		LastAddition: binary.LittleEndian.Uint32(b[5:9]),
		LastErase:    binary.LittleEndian.Uint32(b[9:13]),
	}
	if len(b) > 13 {
		i.OperationFlag = b[13]
	}
	return i, nil
}

// SameRepository reports whether two repository infos describe the same SDR
// contents.
func (i SDRRepoInfo) SameRepository(o SDRRepoInfo) bool {
	return i.RecordCount == o.RecordCount && i.LastAddition == o.LastAddition && i.LastErase == o.LastErase
}

// OfInterest reports whether a sensor is read on every poll: power supplies,
// power units and fans, and every redundancy sensor whatever its type.
func (s SDR) OfInterest() bool {
	if s.ReadingType == ReadingTypeRedundancy {
		return true
	}
	switch s.SensorType {
	case SensorTypePowerSupply, SensorTypePowerUnit, SensorTypeFan:
		return true
	}
	return false
}
