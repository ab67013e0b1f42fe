package bonding

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseProc parses /proc/net/bonding/<name> as written by the kernel's
// bond_procfs.c. It is tolerant per line: unknown lines are ignored (the
// file gained fields over the years), a known field that does not parse is
// left Unknown and named in Problems. Fields shown only with CAP_NET_ADMIN
// (active aggregator info, LACP PDU details) are simply left unknown when
// absent. It fails only on a read error or when the text holds no bonding
// field at all.
func ParseProc(name string, r io.Reader) (Bond, error) {
	b := unknownBond(name)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)

	var (
		slave    *Slave // nil while in the bond's own section
		lacpPDU  string // "actor" or "partner" inside a "details ... lacp pdu:" block
		inAggr   bool   // inside the bond's "Active Aggregator Info:" block
		found    bool
		lineNo   int
		problemf = func(format string, args ...any) {
			b.Problems = append(b.Problems, fmt.Sprintf("line %d: ", lineNo)+fmt.Sprintf(format, args...))
		}
	)
	atoi := func(key, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problemf("%s: not a number: %q", key, v)
			return Unknown
		}
		return n
	}

	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		lower := strings.ToLower(line)
		switch {
		case strings.HasPrefix(lower, "details actor lacp pdu"):
			lacpPDU = "actor"
			continue
		case strings.HasPrefix(lower, "details partner lacp pdu"):
			lacpPDU = "partner"
			continue
		case line == "Active Aggregator Info:":
			inAggr = slave == nil
			found = true
			continue
		case strings.HasPrefix(line, "bond ") && strings.HasSuffix(line, " has no active aggregator"):
			b.ActiveAggregator, b.NumPorts = 0, 0
			found = true
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		// Indented PDU fields belong to the current LACP block; any
		// unindented line ends it.
		indented := raw != strings.TrimLeft(raw, " \t")
		if !indented {
			lacpPDU = ""
			if key != "Aggregator ID" && key != "Number of ports" && key != "Actor Key" && key != "Partner Key" && key != "Partner Mac Address" {
				inAggr = false
			}
		}

		if key == "Slave Interface" {
			if value == "" {
				problemf("Slave Interface without a name")
				slave = nil
				continue
			}
			b.Slaves = append(b.Slaves, unknownSlave(value))
			slave = &b.Slaves[len(b.Slaves)-1]
			inAggr, lacpPDU, found = false, "", true
			continue
		}

		if slave != nil && lacpPDU != "" {
			switch key {
			case "port state":
				n := atoi(lacpPDU+" port state", value)
				if lacpPDU == "actor" {
					slave.ActorPortState = n
				} else {
					slave.PartnerPortState = n
				}
			case "system mac address":
				if lacpPDU == "partner" {
					slave.PartnerMAC = strings.ToLower(value)
				}
			}
			continue
		}

		if slave != nil {
			switch key {
			case "MII Status":
				slave.MIIStatus = value
			case "Link Failure Count":
				n, err := strconv.ParseInt(value, 10, 64)
				if err != nil || n < 0 {
					problemf("%s: Link Failure Count: not a number: %q", slave.Name, value)
					n = Unknown
				}
				slave.LinkFailureCount = n
			case "Permanent HW addr":
				slave.PermHWAddr = strings.ToLower(value)
			case "Aggregator ID":
				if value == "N/A" {
					slave.AggregatorID = 0
				} else {
					slave.AggregatorID = atoi(slave.Name+" Aggregator ID", value)
				}
			}
			continue
		}

		if inAggr {
			switch key {
			case "Aggregator ID":
				b.ActiveAggregator = atoi("active Aggregator ID", value)
			case "Number of ports":
				b.NumPorts = atoi("Number of ports", value)
			case "Partner Mac Address":
				b.PartnerMAC = strings.ToLower(value)
			}
			continue
		}

		switch key {
		case "Bonding Mode":
			found = true
			b.Mode = procMode(value)
			if b.Mode == "" {
				problemf("unknown bonding mode %q", value)
			}
		case "Primary Slave":
			b.Primary = noneToEmpty(firstField(value))
		case "Currently Active Slave":
			b.ActiveSlave = noneToEmpty(value)
		case "MII Status":
			found = true
			b.MIIStatus = value
		case "MII Polling Interval (ms)":
			b.MIIMon = atoi(key, value)
		case "Up Delay (ms)":
			b.UpDelay = atoi(key, value)
		case "Down Delay (ms)":
			b.DownDelay = atoi(key, value)
		case "ARP Polling Interval (ms)":
			b.ARPInterval = atoi(key, value)
		case "ARP IP target/s (n.n.n.n form)":
			b.ARPIPTargets = nil
			for _, t := range strings.Split(value, ",") {
				if t = strings.TrimSpace(t); t != "" {
					b.ARPIPTargets = append(b.ARPIPTargets, t)
				}
			}
		case "LACP rate":
			b.LACPRate = value
		case "Min links":
			b.MinLinks = atoi(key, value)
		}
	}
	if err := sc.Err(); err != nil {
		return b, fmt.Errorf("read bonding status of %s: %w", name, err)
	}
	if !found {
		return b, errNoBondingFields
	}
	b.SlavesKnown = true
	// The ARP lines are only printed when the ARP monitor is on: a bond
	// file that was read to the end without them has arp_interval 0.
	if b.ARPInterval == Unknown && b.MIIMon != Unknown {
		b.ARPInterval = 0
	}
	return b, nil
}

var errNoBondingFields = errors.New("no bonding fields found")

func procMode(v string) Mode {
	for long, m := range procModeNames {
		if v == long || strings.HasPrefix(v, long+" (") {
			return m
		}
	}
	return ""
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func noneToEmpty(s string) string {
	if s == "None" {
		return ""
	}
	return s
}
