package vm

import . "github.com/spofwatch/spofwatch/test/vm/scenario"

// Bond drill scenarios (issue 13). The gateway is a real host: NICs gw0
// (hub 8, 10.9.0.1) and gw1 (hub 9, 10.9.1.1) moved into a network
// namespace. bond5 (db0, db1, both on hub 8) reaches it on either slave;
// bond6's backup dc1 sits alone on hub 10 and cannot. `spofwatch drill
// run` drills them; `check` then judges what the audit log says. The
// scenarios run in order: the first sets up the namespace and both bonds.

// gwns runs a command in the gateway's network namespace.
const gwns = "nsenter -t $(cat /tmp/gwns.pid) -n "

// drillRun runs `spofwatch drill run` in the foreground, prints its JSON
// (with the per-slave timings) into the step log, and requires the given
// exit code.
func drillRun(args, out string, exit string) string {
	return guestSpofwatch + " drill run " + args + " --format json >" + out + ".json 2>" + out + ".err; rc=$?; cat " + out + ".err " + out + ".json; [ $rc -eq " + exit + " ]"
}

// longProbeConfig gives bond6 a 60 s probe, so a drill is still on dc1
// when the SIGTERM arrives.
const longProbeConfig = `printf 'drill:\n  bonds:\n    - bond: bond6\n      probe_timeout: 60s\n' > /tmp/drill-long.yml`

var drillBondScenarios = []Scenario{
	{
		Name: "drill-bond/passing",
		Steps: []Step{
			{Name: "gateway namespace", Sh: []string{
				// busybox unshare execs sleep: its pid holds the namespace.
				"unshare -n sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > /tmp/gwns.pid",
				`p=$(cat /tmp/gwns.pid); n=0; while [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do n=$((n+1)); [ $n -lt 250 ] || exit 1; usleep 20000; done`,
				"ip link set gw0 netns $(cat /tmp/gwns.pid)",
				"ip link set gw1 netns $(cat /tmp/gwns.pid)",
				"! test -e /sys/class/net/gw0",
				gwns + "ip addr add 10.9.0.1/24 dev gw0",
				gwns + "ip link set gw0 up",
				gwns + "ip addr add 10.9.1.1/24 dev gw1",
				gwns + "ip link set gw1 up",
			}},
			{Name: "bond5 and bond6 with their gateways", Sh: append(append(
				append(bondCreate("bond5", "active-backup", "100", "db0", "db1"),
					"echo db0 > /sys/class/net/bond5/bonding/primary",
					"ip addr add 10.9.0.2/24 dev bond5",
					"ip route add default via 10.9.0.1 dev bond5"),
				bondCreate("bond6", "active-backup", "100", "dc0", "dc1")...),
				"echo dc0 > /sys/class/net/bond6/bonding/primary",
				"ip addr add 10.9.1.2/24 dev bond6",
				"ip route add default via 10.9.1.1 dev bond6 metric 100"),
				Wait: []FileCond{slaveMII("db0", "up"), slaveMII("db1", "up"), activeSlave("bond5", "db0"),
					slaveMII("dc0", "up"), slaveMII("dc1", "up"), activeSlave("bond6", "dc0")}},
			{Name: "list and plan change nothing", Sh: []string{
				guestSpofwatch + " drill list | grep 'network/bond/bond5.*bond-failover'",
				guestSpofwatch + " drill run network/bond/bond5 --dry-run | grep 'would\\|Plan'"},
				Wait: []FileCond{activeSlave("bond5", "db0")}},
			{Name: "drill passes, three rounds", TimeoutSeconds: 60, Sh: []string{
				"for i in 1 2 3; do " + drillRun("network/bond/bond5", "/tmp/db-pass", "0") +
					` || exit 1; grep -q '"result":"passed"' /tmp/db-pass.json || exit 1; [ "$(cat /sys/class/net/bond5/bonding/active_slave)" = db0 ] || exit 1; done`,
			},
				Wait: []FileCond{activeSlave("bond5", "db0"), {Path: "/tmp/db-pass.json", Contains: `"result":"passed"`},
					{Path: "/tmp/db-pass.json", Contains: "ARP reply from 10.9.0.1"}},
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond5", State: "redundant", Working: N(2), LastProven: "passed",
					NoFindings: []string{"drill_failed", "redundancy_lost"}}}}},
		},
	},
	{
		Name: "drill-bond/backup-isolated",
		Steps: []Step{
			{Name: "drill fails and names dc1, two rounds", TimeoutSeconds: 60, Sh: []string{
				"for i in 1 2; do " + drillRun("network/bond/bond6", "/tmp/dc-fail", "1") +
					` || exit 1; [ "$(cat /sys/class/net/bond6/bonding/active_slave)" = dc0 ] || exit 1; done`,
			},
				Wait: []FileCond{activeSlave("bond6", "dc0"),
					{Path: "/tmp/dc-fail.json", Contains: `"result":"failed"`},
					{Path: "/tmp/dc-fail.json", Contains: `"failed_members":{"dc1":"cannot reach gateway 10.9.1.1 (ARP, 2 probes in 3s)"}`},
					{Path: "/tmp/dc-fail.json", Contains: "restored dc0 in"},
					{Path: "/tmp/dc-fail.json", Contains: "aborted", Not: true}},
				// The hidden single point: dc1 is failed until a passing
				// drill, so the bond has lost its redundancy.
				Check: &Check{Expect: []Expect{{Group: "network/bond/bond6", State: "redundancy_lost", Working: N(1), LastProven: "failed",
					Members:  map[string]string{"dc0": "ok", "dc1": "failed"},
					Findings: []FindingExpect{{Code: "drill_failed", Summary: "bond-failover"}, {Code: "redundancy_lost", Summary: "dc1"}}}}}},
			{Name: "check exits 2", Sh: []string{guestSpofwatch + " check >/dev/null; [ $? -eq 2 ]"}},
		},
	},
	{
		Name: "drill-bond/sigterm",
		Steps: []Step{
			{Name: "long drill on the isolated backup", TimeoutSeconds: 60, Sh: []string{
				longProbeConfig,
				// Not refused: dc1 is failed only by the earlier drill's
				// verdict; readiness is judged on the kernel's view.
				guestSpofwatch + " drill run network/bond/bond6 --config.file=/tmp/drill-long.yml --format json </dev/null >/tmp/dc-term.json 2>/tmp/dc-term.err & echo $! > /tmp/dc-term.pid",
			},
				Wait: []FileCond{activeSlave("bond6", "dc1")}},
			{Name: "SIGTERM while dc1 is active restores dc0", TimeoutSeconds: 30, Sh: []string{
				"sleep 1", "kill -TERM $(cat /tmp/dc-term.pid)",
			},
				Wait: []FileCond{activeSlave("bond6", "dc0"),
					{Path: "/tmp/dc-term.json", Contains: `"result":"failed"`},
					{Path: "/tmp/dc-term.json", Contains: "interrupted"},
					{Path: "/tmp/dc-term.json", Contains: "restored dc0 in"},
					{Path: "/tmp/dc-term.json", Contains: "failed_members", Not: true}}},
			{Name: "figures", Sh: []string{"cat /tmp/dc-term.err /tmp/dc-term.json"}},
		},
	},
}
