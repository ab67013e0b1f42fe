package sysdev

import "fmt"

// PCIAddr is a PCI function address as sysfs names its directory:
// domain:bus:device.function, "0000:3b:00.1".
type PCIAddr struct {
	Domain   uint16
	Bus      uint8
	Device   uint8
	Function uint8
}

// ParsePCIAddr parses a sysfs PCI function name. It accepts exactly the
// kernel's spelling (pci_name(): "%04x:%02x:%02x.%d", lower-case hex), so
// String gives back the same text.
func ParsePCIAddr(s string) (PCIAddr, bool) { return pciAddr(s) }

// String is the address as sysfs spells it.
func (a PCIAddr) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%d", a.Domain, a.Bus, a.Device, a.Function)
}

// Card is domain:bus:device without the function: the ports of one
// multi-port card are functions of one device and share it.
func (a PCIAddr) Card() string {
	return fmt.Sprintf("%04x:%02x:%02x", a.Domain, a.Bus, a.Device)
}

// pciAddr is the one parser of PCI function names. Domains wider than four
// digits (Intel VMD's 10000:...) are not matched: the VMD controller above
// them is then the one named, as before.
func pciAddr(s string) (PCIAddr, bool) {
	// 0000:3b:00.1 is 12 bytes: 4 hex, ':', 2 hex, ':', 2 hex, '.', 0-7.
	if len(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.' {
		return PCIAddr{}, false
	}
	dom, ok1 := hexField(s[0:4])
	bus, ok2 := hexField(s[5:7])
	dev, ok3 := hexField(s[8:10])
	fn := s[11]
	if !ok1 || !ok2 || !ok3 || fn < '0' || fn > '7' {
		return PCIAddr{}, false
	}
	return PCIAddr{Domain: uint16(dom), Bus: uint8(bus), Device: uint8(dev), Function: fn - '0'}, true
}

// hexField parses lower-case hex digits only (sysfs never writes upper case).
func hexField(s string) (uint32, bool) {
	var v uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
