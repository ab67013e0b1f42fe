package sysdev

import (
	"regexp"
	"testing"
)

func TestParsePCIAddr(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		card string
		want PCIAddr
	}{
		{"0000:3b:00.1", true, "0000:3b:00", PCIAddr{0, 0x3b, 0, 1}},
		{"0000:00:1f.2", true, "0000:00:1f", PCIAddr{0, 0, 0x1f, 2}},
		{"ffff:ff:ff.7", true, "ffff:ff:ff", PCIAddr{0xffff, 0xff, 0xff, 7}},
		{"0000:3b:00.8", false, "", PCIAddr{}},  // function is 0-7
		{"0000:3B:00.0", false, "", PCIAddr{}},  // sysfs writes lower case
		{"10000:e1:00.0", false, "", PCIAddr{}}, // VMD domain: not matched, as before
		{"pci0000:00", false, "", PCIAddr{}},    // a root bus
		{"0000:3b:00", false, "", PCIAddr{}},
		{"0000-3b:00.0", false, "", PCIAddr{}},
		{"0000:3b:0g.0", false, "", PCIAddr{}},
		{"", false, "", PCIAddr{}},
	}
	for _, tt := range tests {
		got, ok := ParsePCIAddr(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParsePCIAddr(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			continue
		}
		if ok && (got.String() != tt.in || got.Card() != tt.card) {
			t.Errorf("%q: String %q Card %q", tt.in, got.String(), got.Card())
		}
	}
}

// FuzzPCIAddr holds the parser to the regular expression raid and bonding
// matched with before (so no controller or nic_card string changes), and
// to giving back exactly the text it accepted.
func FuzzPCIAddr(f *testing.F) {
	for _, s := range []string{"0000:3b:00.1", "0000:00:1f.7", "0000:3b:00.8", "10000:e1:00.0", "0000:3B:00.0", "pci0000:00", "0000:3b:00"} {
		f.Add(s)
	}
	before := regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := pciAddr(s)
		if ok != before.MatchString(s) {
			t.Fatalf("pciAddr(%q) ok=%v, old expression says %v", s, ok, !ok)
		}
		if ok && (a.String() != s || a.Card() != s[:10]) {
			t.Fatalf("pciAddr(%q) = %q card %q", s, a.String(), a.Card())
		}
	})
}
