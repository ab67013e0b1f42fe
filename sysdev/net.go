package sysdev

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// NIC is the hardware a network interface sits on.
type NIC struct {
	// Device is what the interface's "device" link leads to: its PCI
	// function (0000:3b:00.0) or USB interface (2-1:1.0); "" for a virtual
	// interface (veth, bridge, a nested bond).
	Device string
	// VirtualFunction is set for an SR-IOV VF, whose card is its PF's.
	VirtualFunction bool
	// Card is the failure domain: PCI domain:bus:device (0000:3b:00), so
	// the ports of one card share it, or "usb:<device>" for a USB NIC
	// (usb:2-1), so the ports of one USB adapter do; "" when none.
	Card string
}

// NIC resolves the card of the network device whose sysfs directory is
// netDevDir, relative to the root (class/net/eth0, or a bond's
// lower_eth0). A device without a "device" link is virtual: no card, no
// error.
func (s Sys) NIC(netDevDir string) (NIC, error) { return nicCard(s, netDevDir) }

// nicCard is the one resolver of NIC cards. Ports of one card are functions
// of one PCI device (same domain:bus:device); a virtual function is charged
// to its physical function (device/physfn); a USB NIC's card is the USB
// device below the bus (a dual-port USB adapter), not the host controller
// the bus hangs off. Only the part of the path below the root is looked at.
func nicCard(s Sys, netDevDir string) (NIC, error) {
	link := strings.TrimSuffix(netDevDir, "/") + "/device"
	p, err := s.resolve(link)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return NIC{}, nil
		}
		return NIC{}, fmt.Errorf("resolve %s: %w", s.Path(link), err)
	}
	var n NIC
	if pf, err := s.resolve(p + "/physfn"); err == nil {
		p, n.VirtualFunction = pf, true
	}
	parts := strings.Split(p, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if isUSBBus(parts[i]) {
			n.Device = parts[len(parts)-1]
			if i+1 < len(parts) {
				n.Card = "usb:" + parts[i+1]
			}
			return n, nil
		}
		if a, ok := pciAddr(parts[i]); ok {
			n.Device, n.Card = parts[i], a.Card()
			return n, nil
		}
	}
	n.Device = path.Base(p)
	return n, nil
}

// isUSBBus matches a USB bus directory (usb1, usb2): the root hub.
func isUSBBus(s string) bool {
	rest, ok := strings.CutPrefix(s, "usb")
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return false
		}
	}
	return true
}
