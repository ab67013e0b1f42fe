package ipmi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// IPMI network functions and commands used per poll.
const (
	netFnChassis types.NetFn = 0x00
	netFnSensor  types.NetFn = 0x04
	netFnStorage types.NetFn = 0x0a

	cmdGetChassisStatus  uint8  = 0x01
	cmdGetSensorReading  uint8  = 0x2d
	cmdGetSDRRepoInfo    uint8  = 0x20
	cmdReserveSDRRepo    uint8  = 0x22
	cmdGetSDR            uint8  = 0x23
	cmdGetSELInfo        uint8  = 0x40
	cmdGetSELEntry       uint8  = 0x43
	lastRecordID         uint16 = 0xffff
	bmcSlaveAddress      uint8  = 0x20
	sdrPartialReadLength uint8  = 16
)

// SensorState is one sensor of interest as read in one poll.
type SensorState struct {
	SDR
	Reading Reading
	// Err says why the reading is missing: the BMC answered with an error
	// for this sensor, or the sensor cannot be read from here. Empty when
	// Reading is valid (which may still say Unavailable or
	// ScanningDisabled).
	Err string
}

// Known reports whether the reading can be interpreted.
func (s SensorState) Known() bool {
	return s.Err == "" && !s.Reading.Unavailable && !s.Reading.ScanningDisabled
}

// Why says why a sensor is not Known.
func (s SensorState) Why() string {
	switch {
	case s.Err != "":
		return s.Err
	case s.Reading.Unavailable:
		return "BMC reports the reading as not available"
	case s.Reading.ScanningDisabled:
		return "BMC does not scan this sensor"
	}
	return ""
}

// Event is a power, power-unit, fan or redundancy event from the SEL.
type Event struct {
	SELEntry
	// Sensor is the SDR name of the sensor, when known.
	Sensor string
	// Time is the event time: the BMC's timestamp when its clock is set,
	// else when spofwatch first saw the event.
	Time time.Time
	// BMCTimeUnset is true when Time is when we saw it, not the BMC's time.
	BMCTimeUnset bool
	Text         string
}

// State is what one poll read.
type State struct {
	Peer    string
	Sensors []SensorState
	// Chassis is nil when Get Chassis Status failed; ChassisErr says why.
	Chassis    *ChassisStatus
	ChassisErr string
	// Events are the most recent relevant SEL events, oldest first; the
	// last NewEvents of them were logged since the previous poll.
	Events    []Event
	NewEvents int
	SELErr    string
	// SDRRead is true when this poll re-read the SDR repository.
	SDRRead bool
	// Commands is how many IPMI requests this poll sent, CommandsTotal
	// since start.
	Commands      uint64
	CommandsTotal uint64
	Connects      uint64
	Duration      time.Duration
}

// Poll reads the sensors of interest, chassis status and new SEL events
// over the reused session. A transport failure ends the session and fails
// the poll; the next poll reconnects (with backoff). A sensor the BMC refuses
// to read is unknown on its own and does not fail the poll.
func (b *BMC) Poll(ctx context.Context) (*State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	before := b.commands.Load()
	reused := b.client != nil
	st, err := b.poll(ctx)
	var ce *CompletionError
	if errors.As(err, &ce) {
		// The BMC answered: the session is fine, the poll is not.
		return nil, fmt.Errorf("BMC %s: %w", b.peer, err)
	}
	if err != nil && reused && ctx.Err() == nil {
		// A session that worked last time and fails now most likely died
		// with a BMC reset: open a new one at once instead of losing a poll.
		b.log.Debug("ipmi session lost, reconnecting", "err", err)
		b.dropSession()
		b.nextAttempt = time.Time{}
		st, err = b.poll(ctx)
	}
	if err != nil {
		b.dropSession()
		if b.failures == 0 || !errors.Is(err, b.lastErr) {
			b.failed(err)
		}
		return nil, err
	}
	b.failures = 0
	b.lastErr = nil
	st.Peer = b.peer
	st.Duration = time.Since(start)
	st.CommandsTotal = b.commands.Load()
	st.Commands = st.CommandsTotal - before
	st.Connects = b.connects.Load()
	return st, nil
}

func (b *BMC) poll(ctx context.Context) (*State, error) {
	c, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	st := &State{}
	raw, err := b.command(ctx, c, netFnStorage, cmdGetSDRRepoInfo, 0, nil, "Get SDR Repository Info")
	if err != nil {
		return nil, err
	}
	info, err := ParseSDRRepoInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("BMC %s: %w", b.peer, err)
	}
	if b.sdrAt.IsZero() || !info.SameRepository(b.sdrInfo) || time.Since(b.sdrAt) > b.opts.SDRMaxAge {
		sdrs, err := b.readSDRs(ctx, c)
		if err != nil {
			return nil, err
		}
		b.sdrs, b.sdrInfo, b.sdrAt = sdrs, info, time.Now()
		st.SDRRead = true
		b.log.Debug("ipmi SDR repository read", "records", info.RecordCount, "sensors_of_interest", len(sdrs))
	}

	for _, s := range b.sdrs {
		ss := SensorState{SDR: s}
		if s.OwnerID != bmcSlaveAddress {
			ss.Err = fmt.Sprintf("owned by controller %#02x; bridged reads are not supported", s.OwnerID)
			st.Sensors = append(st.Sensors, ss)
			continue
		}
		if s.OwnerLUN != 0 && b.opts.Interface == InterfaceLanplus {
			// go-ipmi v0.9 addresses LAN requests to LUN 0 whatever the
			// command context says: reading would return another sensor.
			ss.Err = fmt.Sprintf("sensor on LUN %d is not readable over lanplus (go-ipmi addresses LUN 0)", s.OwnerLUN)
			st.Sensors = append(st.Sensors, ss)
			continue
		}
		raw, err := b.command(ctx, c, netFnSensor, cmdGetSensorReading, s.OwnerLUN, []byte{s.Number}, "Get Sensor Reading")
		var ce *CompletionError
		switch {
		case errors.As(err, &ce):
			ss.Err = ce.Error()
		case err != nil:
			return nil, err
		default:
			ss.Reading, err = ParseSensorReading(raw)
			if err != nil {
				ss.Err = err.Error()
			}
		}
		st.Sensors = append(st.Sensors, ss)
	}

	raw, err = b.command(ctx, c, netFnChassis, cmdGetChassisStatus, 0, nil, "Get Chassis Status")
	var ce *CompletionError
	switch {
	case errors.As(err, &ce):
		st.ChassisErr = ce.Error()
	case err != nil:
		return nil, err
	default:
		cs, perr := ParseChassisStatus(raw)
		if perr != nil {
			st.ChassisErr = perr.Error()
		} else {
			st.Chassis = &cs
		}
	}

	n, err := b.readSEL(ctx, c)
	if errors.As(err, &ce) {
		st.SELErr = ce.Error()
	} else if err != nil {
		return nil, err
	}
	st.NewEvents = n
	st.Events = append([]Event(nil), b.events...)
	return st, nil
}

// readSDRs walks the SDR repository and keeps the sensors of interest.
// Records that do not parse are skipped one by one.
func (b *BMC) readSDRs(ctx context.Context, c *client.Client) ([]SDR, error) {
	var out []SDR
	id := uint16(0)
	for range 4096 {
		next, rec, err := b.readSDR(ctx, c, id)
		if err != nil {
			return nil, err
		}
		if s, err := ParseSDR(rec); err == nil && s.OfInterest() {
			out = append(out, s)
		} else if err != nil && !errors.Is(err, ErrNotSensor) {
			b.log.Debug("ipmi SDR record skipped", "record", id, "err", err)
		}
		if next == lastRecordID || next == id {
			return out, nil
		}
		id = next
	}
	return out, nil
}

// readSDR reads one record whole, or in 16-byte pieces under a reservation
// when the BMC cannot return it in one response.
func (b *BMC) readSDR(ctx context.Context, c *client.Client, id uint16) (uint16, []byte, error) {
	req := func(res uint16, offset, n uint8) ([]byte, error) {
		d := make([]byte, 6)
		binary.LittleEndian.PutUint16(d[0:2], res)
		binary.LittleEndian.PutUint16(d[2:4], id)
		d[4], d[5] = offset, n
		return b.command(ctx, c, netFnStorage, cmdGetSDR, 0, d, "Get SDR")
	}
	var ce *CompletionError
	if !b.sdrPartial {
		raw, err := req(0, 0, 0xff)
		if err == nil {
			if len(raw) < 2+5 {
				return 0, nil, fmt.Errorf("BMC %s: Get SDR %#04x: short response of %d bytes", b.peer, id, len(raw))
			}
			rec := raw[2:]
			if total := 5 + int(rec[4]); len(rec) > total {
				rec = rec[:total] // some BMCs pad
			}
			return binary.LittleEndian.Uint16(raw[0:2]), rec, nil
		}
		if !errors.As(err, &ce) || (ce.Code != 0xca && ce.Code != 0xc7 && ce.Code != 0xc8 && ce.Code != 0xff) {
			return 0, nil, fmt.Errorf("BMC %s: read SDR %#04x: %w", b.peer, id, err)
		}
		// This BMC cannot return whole records: read the rest in pieces.
		b.sdrPartial = true
	}
	// Partial reads (section 33.12) need a reservation.
	rr, err := b.command(ctx, c, netFnStorage, cmdReserveSDRRepo, 0, nil, "Reserve SDR Repository")
	if err != nil {
		return 0, nil, fmt.Errorf("BMC %s: read SDR %#04x: %w", b.peer, id, err)
	}
	if len(rr) < 2 {
		return 0, nil, fmt.Errorf("BMC %s: short SDR reservation", b.peer)
	}
	res := binary.LittleEndian.Uint16(rr[0:2])
	head, err := req(res, 0, 5)
	if err != nil {
		return 0, nil, fmt.Errorf("BMC %s: read SDR %#04x header: %w", b.peer, id, err)
	}
	if len(head) < 2+5 {
		return 0, nil, fmt.Errorf("BMC %s: short SDR %#04x header", b.peer, id)
	}
	next := binary.LittleEndian.Uint16(head[0:2])
	rec := append([]byte(nil), head[2:7]...)
	total := 5 + int(rec[4])
	// The rest in one piece when the BMC allows it, else in the largest
	// pieces it accepted before (32, then 16 bytes: IPMI messages on the
	// system interface are small).
	if b.sdrChunk == 0 {
		b.sdrChunk = 255
	}
	for len(rec) < total {
		n := min(b.sdrChunk, uint8(total-len(rec)))
		part, err := req(res, uint8(len(rec)), n)
		if errors.As(err, &ce) && ce.Code == 0xca && n > sdrPartialReadLength {
			b.sdrChunk = max(sdrPartialReadLength, min(n-1, 2*sdrPartialReadLength))
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("BMC %s: read SDR %#04x at %d: %w", b.peer, id, len(rec), err)
		}
		if len(part) <= 2 {
			return 0, nil, fmt.Errorf("BMC %s: empty SDR %#04x piece", b.peer, id)
		}
		rec = append(rec, part[2:]...)
	}
	return next, rec[:total], nil
}

// readSEL reads SEL entries logged since the previous poll and keeps the
// relevant ones. The first poll only takes a baseline: older events are
// history the operator has already seen elsewhere.
func (b *BMC) readSEL(ctx context.Context, c *client.Client) (int, error) {
	raw, err := b.command(ctx, c, netFnStorage, cmdGetSELInfo, 0, nil, "Get SEL Info")
	if err != nil {
		return 0, err
	}
	info, err := ParseSELInfo(raw)
	if err != nil {
		return 0, fmt.Errorf("BMC %s: %w", b.peer, err)
	}
	entry := func(id uint16) (SELEntry, error) {
		d := []byte{0, 0, 0, 0, 0, 0xff}
		binary.LittleEndian.PutUint16(d[2:4], id)
		raw, err := b.command(ctx, c, netFnStorage, cmdGetSELEntry, 0, d, "Get SEL Entry")
		if err != nil {
			return SELEntry{}, err
		}
		return ParseSELEntry(raw)
	}
	if !b.selKnown {
		b.selKnown, b.selInfo = true, info
		if info.Entries > 0 {
			e, err := entry(lastRecordID)
			if err != nil {
				return 0, err
			}
			b.selLastID, b.selHave = e.RecordID, true
		}
		return 0, nil
	}
	if info == b.selInfo {
		return 0, nil
	}
	cleared := info.LastErase != b.selInfo.LastErase || info.Entries < b.selInfo.Entries
	b.selInfo = info
	var next uint16
	switch {
	case cleared || !b.selHave:
		next = 0 // first entry
	default:
		e, err := entry(b.selLastID)
		var ce *CompletionError
		if errors.As(err, &ce) && ce.Code == 0xcb {
			next = 0 // our last entry is gone: the SEL was cleared
		} else if err != nil {
			return 0, err
		} else {
			next = e.NextRecordID
		}
	}
	added := 0
	for i := 0; i < b.opts.SELMaxEntries && next != lastRecordID; i++ {
		e, err := entry(next)
		if err != nil {
			var ce *CompletionError
			if errors.As(err, &ce) && ce.Code == 0xcb && info.Entries == 0 {
				break
			}
			return added, err
		}
		b.selLastID, b.selHave = e.RecordID, true
		if e.NextRecordID == next {
			break
		}
		next = e.NextRecordID
		if !e.Relevant() {
			continue
		}
		ev := Event{SELEntry: e, Text: e.Describe(), Time: e.Time()}
		if !e.TimeKnown() {
			ev.Time, ev.BMCTimeUnset = time.Now().UTC().Truncate(time.Second), true
		}
		for _, s := range b.sdrs {
			if s.Number == e.SensorNumber && uint8(e.GeneratorID) == s.OwnerID {
				ev.Sensor = s.Name
				break
			}
		}
		b.events = append(b.events, ev)
		added++
	}
	if over := len(b.events) - b.opts.Events; over > 0 {
		b.events = append([]Event(nil), b.events[over:]...)
	}
	return min(added, len(b.events)), nil
}
