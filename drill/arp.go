package drill

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// ARP for Ethernet and IPv4 (RFC 826): the payload of an ETH_P_ARP frame,
// without the Ethernet header (a SOCK_DGRAM packet socket adds and strips
// it).
const (
	arpLen        = 28
	arpHTypeEther = 1
	arpPTypeIPv4  = 0x0800
	arpOpRequest  = 1
	arpOpReply    = 2
)

// arpPacket is an Ethernet/IPv4 ARP message.
type arpPacket struct {
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

var errNotEtherIPv4 = errors.New("not an Ethernet/IPv4 ARP packet")

// encodeARP returns the 28-byte wire form of p. MACs must be 6 bytes and
// addresses IPv4.
func encodeARP(p arpPacket) ([]byte, error) {
	if len(p.SenderMAC) != 6 || len(p.TargetMAC) != 6 {
		return nil, fmt.Errorf("ARP: MAC addresses must be 6 bytes (have %d and %d)", len(p.SenderMAC), len(p.TargetMAC))
	}
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return nil, fmt.Errorf("ARP: addresses must be IPv4 (have %s and %s)", p.SenderIP, p.TargetIP)
	}
	b := make([]byte, arpLen)
	binary.BigEndian.PutUint16(b[0:], arpHTypeEther)
	binary.BigEndian.PutUint16(b[2:], arpPTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], p.Op)
	copy(b[8:14], p.SenderMAC)
	s := p.SenderIP.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], p.TargetMAC)
	t := p.TargetIP.As4()
	copy(b[24:28], t[:])
	return b, nil
}

// decodeARP parses an Ethernet/IPv4 ARP message. Trailing bytes (Ethernet
// padding to 46 bytes) are ignored; anything else is an error.
func decodeARP(b []byte) (arpPacket, error) {
	if len(b) < arpLen {
		return arpPacket{}, fmt.Errorf("ARP: %d bytes, want at least %d", len(b), arpLen)
	}
	if binary.BigEndian.Uint16(b[0:]) != arpHTypeEther || binary.BigEndian.Uint16(b[2:]) != arpPTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return arpPacket{}, errNotEtherIPv4
	}
	return arpPacket{
		Op:        binary.BigEndian.Uint16(b[6:]),
		SenderMAC: net.HardwareAddr(append([]byte(nil), b[8:14]...)),
		SenderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: net.HardwareAddr(append([]byte(nil), b[18:24]...)),
		TargetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// answers reports whether p is target's reply to a request from src. Only
// a reply proves the request went out and came back on the active path; a
// gratuitous ARP or a request from target proves one direction at most.
func (p arpPacket) answers(src, target netip.Addr) bool {
	return p.Op == arpOpReply && p.SenderIP == target && p.TargetIP == src
}

// arpResult is what one slave's probe of one target found.
type arpResult struct {
	// Sent is how many requests went out; Reply is set when an answer came.
	Sent  int
	Reply bool
	// RTT is from the first request to the answer.
	RTT time.Duration
	// Answered is when the answer arrived.
	Answered time.Time
}

// arpProber asks who-has target on an interface and waits for the answer:
// probes requests spread over timeout, success on the first answer.
type arpProber func(ctx context.Context, ifname string, src netip.Addr, target netip.Addr, probes int, timeout time.Duration) (arpResult, error)

// htons converts a 16-bit value to network byte order for the packet
// socket's protocol fields.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// probeARP is the real prober: an AF_PACKET socket bound to the interface,
// so the request leaves on whichever slave the bond has active and only
// answers the bond receives count.
func probeARP(ctx context.Context, ifname string, src netip.Addr, target netip.Addr, probes int, timeout time.Duration) (arpResult, error) {
	var res arpResult
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return res, fmt.Errorf("ARP on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return res, fmt.Errorf("ARP on %s: not an Ethernet interface (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	req, err := encodeARP(arpPacket{Op: arpOpRequest, SenderMAC: ifi.HardwareAddr, SenderIP: src,
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: target})
	if err != nil {
		return res, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return res, fmt.Errorf("ARP on %s: packet socket: %w", ifname, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		return res, fmt.Errorf("ARP on %s: bind: %w", ifname, err)
	}
	dst := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if probes < 1 {
		probes = 1
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	interval := timeout / time.Duration(probes)
	next := start
	buf := make([]byte, 1500)
	for {
		now := time.Now()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !now.Before(deadline) {
			return res, nil
		}
		if res.Sent < probes && !now.Before(next) {
			if err := unix.Sendto(fd, req, 0, dst); err != nil {
				return res, fmt.Errorf("ARP on %s: send: %w", ifname, err)
			}
			res.Sent++
			next = next.Add(interval)
		}
		// Wake for the next request, the deadline, or at least every
		// 100ms to notice ctx.
		wake := deadline
		if res.Sent < probes && next.Before(wake) {
			wake = next
		}
		if w := now.Add(100 * time.Millisecond); w.Before(wake) {
			wake = w
		}
		ms := int(time.Until(wake) / time.Millisecond)
		if ms < 1 {
			ms = 1
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return res, fmt.Errorf("ARP on %s: poll: %w", ifname, err)
		}
		if n <= 0 {
			continue
		}
		for {
			m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				break
			}
			if err != nil {
				return res, fmt.Errorf("ARP on %s: receive: %w", ifname, err)
			}
			p, err := decodeARP(buf[:m])
			if err != nil || !p.answers(src, target) {
				continue
			}
			res.Reply, res.Answered = true, time.Now()
			res.RTT = res.Answered.Sub(start)
			return res, nil
		}
	}
}
