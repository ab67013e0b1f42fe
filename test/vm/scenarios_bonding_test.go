package vm

import . "github.com/spofwatch/spofwatch/test/vm/scenario"

// Bonding scenarios (issue 4). Faults are QMP set_link on the host.

// bondCreate creates a bond through sysfs and enslaves the NICs (they must
// be down to be enslaved).
func bondCreate(bond, mode, miimon string, slaves ...string) []string {
	b := "/sys/class/net/" + bond + "/bonding/"
	c := []string{
		"echo +" + bond + " > /sys/class/net/bonding_masters",
		"echo " + mode + " > " + b + "mode",
		"echo " + miimon + " > " + b + "miimon",
	}
	if mode == "802.3ad" {
		c = append(c, "echo fast > "+b+"lacp_rate")
	}
	for _, s := range slaves {
		c = append(c, "ip link set "+s+" down", "echo +"+s+" > "+b+"slaves")
	}
	return append(c, "ip link set "+bond+" up")
}

func slaveMII(slave, state string) FileCond {
	return FileCond{Path: "/sys/class/net/" + slave + "/bonding_slave/mii_status", Contains: state}
}

func activeSlave(bond, slave string) FileCond {
	return FileCond{Path: "/sys/class/net/" + bond + "/bonding/active_slave", Contains: slave}
}

var bondingScenarios = []Scenario{
	{
		Name:  "bonding/active-backup",
		Needs: []string{"bonding"},
		Steps: []Step{
			{Name: "healthy", Sh: append(bondCreate("bond0", "active-backup", "100", "ab0", "ab1"), "echo ab0 > /sys/class/net/bond0/bonding/primary"),
				Wait:  []FileCond{slaveMII("ab0", "up"), slaveMII("ab1", "up"), activeSlave("bond0", "ab0")},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond0", State: "redundant", Working: N(2), Required: N(1), NoFindings: []string{"*"}}}}},
			{Name: "active slave link off", Host: []string{"set_link ab0 off"},
				Wait: []FileCond{slaveMII("ab0", "down"), activeSlave("bond0", "ab1")},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond0", State: "redundancy_lost", Working: N(1),
					Members: map[string]string{"ab0": "failed", "ab1": "ok"},
					// The failover: ab1 now carries the traffic, not the
					// configured primary ab0 (an info notice on ab1).
					Findings: []FindingExpect{{Code: "redundancy_lost", Severity: "critical", Summary: "ab0"},
						{Code: "notice", Member: "ab1", Summary: "primary ab0"}}}}}},
			{Name: "link back on", Host: []string{"set_link ab0 on"},
				Wait:  []FileCond{slaveMII("ab0", "up"), activeSlave("bond0", "ab0")},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond0", State: "redundant", Working: N(2), NoFindings: []string{"redundancy_lost"}}}}},
		},
	},
	{
		// Right after active-backup, before the LACP bonds add netlink
		// traffic of their own.
		Name:  "bonding/link-detection-latency",
		Needs: []string{"bonding"},
		Steps: []Step{
			{Name: "daemon", Daemon: "start"},
			{Name: "set_link off to API finding", Latency: &Latency{
				Name: "bond", Rounds: 7, TargetP50Millis: 500, PollMillis: 50,
				Fault:    Action{Host: []string{"set_link ab0 off"}, Wait: []FileCond{slaveMII("ab0", "down")}},
				Changed:  []Expect{{Group: "network/bond/bond0", Findings: []FindingExpect{{Code: "redundancy_lost"}}}},
				Restore:  Action{Host: []string{"set_link ab0 on"}, Wait: []FileCond{slaveMII("ab0", "up"), activeSlave("bond0", "ab0")}},
				Restored: []Expect{{Group: "network/bond/bond0", State: "redundant"}},
			}},
		},
	},
	{
		Name:  "bonding/no-link-monitoring",
		Needs: []string{"bonding"},
		Steps: []Step{
			{Name: "miimon=0 and no ARP target", Sh: append(bondCreate("bond1", "active-backup", "0", "nm0", "nm1"), "echo 0 > /sys/class/net/bond1/bonding/arp_interval"),
				Wait:  []FileCond{{Path: "/sys/class/net/bond1/bonding/slaves", Contains: "nm1"}},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond1", Findings: []FindingExpect{{Code: "failure_undetectable"}}}}}},
		},
	},
	{
		Name:  "bonding/802.3ad",
		Needs: []string{"bonding"},
		Steps: []Step{
			{Name: "two LACP bonds cabled together", Sh: append(bondCreate("bond2", "802.3ad", "100", "la0", "la1"), bondCreate("bond3", "802.3ad", "100", "lb0", "lb1")...),
				TimeoutSeconds: 60,
				// LACP up: both ports in one aggregator, actor state 63
				// (activity, short timeout, aggregation, sync, collecting,
				// distributing).
				Wait: []FileCond{{Path: "/proc/net/bonding/bond2", Contains: "Number of ports: 2"},
					{Path: "/sys/class/net/la0/bonding_slave/ad_actor_oper_port_state", Contains: "63"},
					{Path: "/sys/class/net/la1/bonding_slave/ad_actor_oper_port_state", Contains: "63"}},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond2", State: "redundant", Working: N(2), Required: N(1)}}}},
			// The LACP drill proves each port from its negotiated state
			// (issue 13): non-disruptive, so nothing moves.
			{Name: "lacp-state drill passes", Sh: []string{
				guestSpofwatch + " drill run network/bond/bond2 --format json > /tmp/lacp.json; rc=$?; cat /tmp/lacp.json; [ $rc -eq 0 ]",
				`grep -q '"method":"lacp-state"' /tmp/lacp.json`, `grep -q '"result":"passed"' /tmp/lacp.json`},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond2", State: "redundant", LastProven: "passed"}}}},
			{Name: "one link down", Host: []string{"set_link la1 off"},
				Wait: []FileCond{slaveMII("la1", "down"), {Path: "/proc/net/bonding/bond2", Contains: "Number of ports: 1"}},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond2", State: "redundancy_lost", Working: N(1),
					Findings: []FindingExpect{{Code: "redundancy_lost"}}}}}},
			{Name: "drill refused on the degraded bond", Sh: []string{
				guestSpofwatch + " drill run network/bond/bond2 --format json > /tmp/lacp-refused.json; rc=$?; cat /tmp/lacp-refused.json; [ $rc -eq 2 ]",
				`grep -q '"result":"refused"' /tmp/lacp-refused.json`}},
		},
	},
	{
		Name:  "bonding/single-slave",
		Needs: []string{"bonding"},
		Steps: []Step{
			{Name: "one slave", Sh: bondCreate("bond4", "active-backup", "100", "ss0"),
				Wait: []FileCond{slaveMII("ss0", "up")},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond4", State: "no_redundancy",
					Findings: []FindingExpect{{Code: "no_redundancy"}}}}}},
		},
	},
}
