package drill

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readHex reads a testdata/arp/*.hex fixture: hex digits, whitespace and
// # comment lines.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "arp", name))
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		digits.WriteString(strings.Join(strings.Fields(l), ""))
	}
	out, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func mac(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecodeARP(t *testing.T) {
	gw, bond := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	tests := []struct {
		file      string
		wantErr   bool
		op        uint16
		senderMAC string
		senderIP  netip.Addr
		targetIP  netip.Addr
		answers   bool
	}{
		{file: "reply-padded.hex", op: arpOpReply, senderMAC: "52:54:00:00:01:0d", senderIP: gw, targetIP: bond, answers: true},
		{file: "request.hex", op: arpOpRequest, senderMAC: "52:54:00:00:01:0a", senderIP: bond, targetIP: gw},
		{file: "infiniband.hex", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := decodeARP(readHex(t, tt.file))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Op != tt.op || p.SenderMAC.String() != tt.senderMAC || p.SenderIP != tt.senderIP || p.TargetIP != tt.targetIP {
				t.Errorf("got %+v", p)
			}
			if got := p.answers(bond, gw); got != tt.answers {
				t.Errorf("answers(%s, %s) = %v, want %v", bond, gw, got, tt.answers)
			}
		})
	}
}

func TestDecodeARPShort(t *testing.T) {
	full := readHex(t, "request.hex")
	for n := 0; n < arpLen; n++ {
		if _, err := decodeARP(full[:n]); err == nil {
			t.Errorf("%d bytes decoded without error", n)
		}
	}
}

func TestAnswersOnlyTheReplyToUs(t *testing.T) {
	gw, bond, other := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("10.9.0.3")
	tests := []struct {
		name string
		p    arpPacket
		want bool
	}{
		{"reply from the target to us", arpPacket{Op: arpOpReply, SenderIP: gw, TargetIP: bond}, true},
		{"reply from the target to another host", arpPacket{Op: arpOpReply, SenderIP: gw, TargetIP: other}, false},
		{"reply from another host", arpPacket{Op: arpOpReply, SenderIP: other, TargetIP: bond}, false},
		{"request from the target", arpPacket{Op: arpOpRequest, SenderIP: gw, TargetIP: bond}, false},
		{"gratuitous ARP of the target", arpPacket{Op: arpOpReply, SenderIP: gw, TargetIP: gw}, false},
	}
	for _, tt := range tests {
		if got := tt.p.answers(bond, gw); got != tt.want {
			t.Errorf("%s: answers = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEncodeARPMatchesFixture(t *testing.T) {
	b, err := encodeARP(arpPacket{Op: arpOpRequest, SenderMAC: mac(t, "52:54:00:00:01:0a"), SenderIP: netip.MustParseAddr("10.9.0.2"),
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: netip.MustParseAddr("10.9.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if want := readHex(t, "request.hex"); !bytes.Equal(b, want) {
		t.Errorf("encoded\n%x\nwant\n%x", b, want)
	}
}

func TestEncodeARPRejects(t *testing.T) {
	m := mac(t, "52:54:00:00:01:0a")
	v4, v6 := netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("2001:db8::1")
	for _, p := range []arpPacket{
		{SenderMAC: m[:5], TargetMAC: m, SenderIP: v4, TargetIP: v4},
		{SenderMAC: m, TargetMAC: m, SenderIP: v6, TargetIP: v4},
		{SenderMAC: m, TargetMAC: m, SenderIP: v4},
	} {
		if _, err := encodeARP(p); err == nil {
			t.Errorf("encodeARP(%+v): no error", p)
		}
	}
}

func FuzzDecodeARP(f *testing.F) {
	for _, n := range []string{"reply-padded.hex", "request.hex", "infiniband.hex"} {
		f.Add(readHex(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeARP(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same first 28 bytes.
		again, err := encodeARP(p)
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", p, err)
		}
		if !bytes.Equal(again, b[:arpLen]) {
			t.Fatalf("round trip:\n%x\n%x", again, b[:arpLen])
		}
	})
}
