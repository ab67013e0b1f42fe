#!/bin/sh
# Rebuilds the bonding fixture trees in this directory. Each tree is a
# sysfs + procfs root (<case>/sys, <case>/proc) laid out as the kernel lays
# them out: /sys/class/net/<if> symlinks into /sys/devices, bond attributes
# in <bond>/bonding/, slave attributes in <slave>/bonding_slave/, the
# bond's lower_<if> links, the NIC's device link to its PCI function, and a
# VF's physfn link. File contents follow drivers/net/bonding/bond_sysfs.c,
# bond_sysfs_slave.c and bond_procfs.c; see PROVENANCE.md for each case.
# Run from anywhere: sh collectors/testdata/bonding/make-trees.sh
set -eu
cd "$(dirname "$0")"
OUT=$(pwd)
PROCSAMPLES=$OUT/../../../bonding/testdata/proc
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# w FILE [VALUE]: a sysfs attribute; no VALUE writes an empty file, as the
# kernel does for hidden (CAP_NET_ADMIN) or unset attributes.
w() {
	mkdir -p "$(dirname "$1")"
	if [ $# -ge 2 ] && [ -n "$2" ]; then printf '%s\n' "$2" >"$1"; else : >"$1"; fi
}

# ttar CASEDIR: pack a tree in the ttar text format of prometheus/procfs
# (Directory/Path/Lines/Mode/SymlinkTo records), so the repository holds no
# file names with ':' (invalid in Go module zips) and no symlinks.
ttar() {
	(
		cd "$1"
		echo "# bonding fixture tree, made by make-trees.sh; see PROVENANCE.md"
		find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | while read -r p; do
			echo "# ttar - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -"
			if [ -L "$p" ]; then
				printf 'Path: %s\nSymlinkTo: %s\n' "$p" "$(readlink "$p")"
			elif [ -d "$p" ]; then
				printf 'Directory: %s\nMode: 755\n' "$p"
			else
				printf 'Path: %s\nLines: %s\n' "$p" "$(wc -l <"$p" | tr -d ' ')"
				cat "$p"
				printf 'Mode: 644\n'
			fi
		done
	) >"$OUT/$(basename "$1").ttar"
}

new() {
	[ -n "${T:-}" ] && ttar "$T"
	T=$WORK/$1
	rm -rf "$T"
	mkdir -p "$T/sys/class/net" "$T/proc/net/bonding"
	MASTERS=""
}

# bond NAME ATTR=VALUE...: a bonding master with its bonding/ attributes.
bond() {
	b=$1
	shift
	d=$T/sys/devices/virtual/net/$b
	mkdir -p "$d/bonding"
	ln -s "../../devices/virtual/net/$b" "$T/sys/class/net/$b"
	w "$d/operstate" up
	for kv in "$@"; do w "$d/bonding/${kv%%=*}" "${kv#*=}"; done
	MASTERS="${MASTERS:+$MASTERS }$b"
	w "$T/sys/class/net/bonding_masters" "$MASTERS"
}

# nic NAME PCIPATH BOND ATTR=VALUE...: a NIC on the PCI function at the end
# of PCIPATH (below /sys/devices), enslaved to BOND.
nic() {
	n=$1 p=$2 b=$3
	shift 3
	d=$T/sys/devices/$p/net/$n
	mkdir -p "$d/bonding_slave"
	ln -s "../../devices/$p/net/$n" "$T/sys/class/net/$n"
	ln -s "../../../$(basename "$p")" "$d/device"
	ln -s "../../../$p/net/$n" "$T/sys/devices/virtual/net/$b/lower_$n"
	w "$d/operstate" up
	w "$d/carrier" 1
	for kv in "$@"; do w "$d/bonding_slave/${kv%%=*}" "${kv#*=}"; done
}

# vf PCIPATH PFBDF: make the PCI function a virtual function of PFBDF.
vf() {
	mkdir -p "$T/sys/devices/$(dirname "$1")/$2"
	ln -s "../$2" "$T/sys/devices/$1/physfn"
}

AB="mode=active-backup 1"
SLAVE_AB="queue_id=0 ad_aggregator_id=N/A ad_actor_oper_port_state=N/A ad_partner_oper_port_state=N/A"

ab_bond() { # ab_bond CASE NAME MIIMON ARP_INTERVAL TARGETS PRIMARY ACTIVE SLAVES...
	c=$1 b=$2 mii=$3 arp=$4 tg=$5 pri=$6 act=$7
	shift 7
	bond "$b" "$AB" "miimon=$mii" "arp_interval=$arp" "arp_ip_target=$tg" "updelay=0" "downdelay=0" \
		"primary=$pri" "active_slave=$act" "mii_status=up" "min_links=0" "slaves=$*" \
		"ad_aggregator=" "ad_num_ports=" "ad_partner_mac=" "lacp_rate=slow 0"
}

P1=pci0000:3a/0000:3a:00.0/0000:3b:00.0
P2=pci0000:3a/0000:3a:00.0/0000:3b:00.1
Q1=pci0000:5d/0000:5d:02.0/0000:5e:00.0

# --- active-backup: healthy, ports on two cards
new active-backup
ab_bond active-backup bond0 100 0 "" eno1 eno1 eno1 ens2f0
nic eno1 $P1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:30 $SLAVE_AB
nic ens2f0 $Q1 bond0 state=backup mii_status=up link_failure_count=0 perm_hwaddr=b4:96:91:6d:20:fc $SLAVE_AB

# --- active-backup-failover: the primary's link died, the bond runs on the backup
new active-backup-failover
ab_bond x bond0 100 0 "" eno1 ens2f0 eno1 ens2f0
nic eno1 $P1 bond0 state=backup mii_status=down link_failure_count=1 perm_hwaddr=3c:ec:ef:19:eb:30 $SLAVE_AB
nic ens2f0 $Q1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=b4:96:91:6d:20:fc $SLAVE_AB

# --- one-card: both slaves are functions of one PCI device (dual-port card)
new one-card
ab_bond x bond0 100 0 "" "" eno1 eno1 eno2
nic eno1 $P1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:30 $SLAVE_AB
nic eno2 $P2 bond0 state=backup mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:31 $SLAVE_AB

# --- vfs-one-port: two SR-IOV VFs of one physical port; their own BDFs
# differ in the device number, only physfn shows they share a port
new vfs-one-port
V1=pci0000:3a/0000:3a:00.0/0000:3b:02.0
V2=pci0000:3a/0000:3a:00.0/0000:3b:0a.0
ab_bond x bond0 100 0 "" "" enp59s2 enp59s2 enp59s10
nic enp59s2 $V1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=52:54:00:12:00:01 $SLAVE_AB
nic enp59s10 $V2 bond0 state=backup mii_status=up link_failure_count=0 perm_hwaddr=52:54:00:12:00:02 $SLAVE_AB
vf $V1 0000:3b:00.0
vf $V2 0000:3b:00.0

# --- miimon0: no link monitoring at all
new miimon0
ab_bond x bond0 0 0 "" "" eno1 eno1 ens2f0
nic eno1 $P1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:30 $SLAVE_AB
nic ens2f0 $Q1 bond0 state=backup mii_status=up link_failure_count=0 perm_hwaddr=b4:96:91:6d:20:fc $SLAVE_AB

# --- arp-no-target: ARP monitor on, nothing to probe
new arp-no-target
ab_bond x bond0 0 1000 "" "" eno1 eno1 ens2f0
nic eno1 $P1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:30 $SLAVE_AB
nic ens2f0 $Q1 bond0 state=backup mii_status=up link_failure_count=0 perm_hwaddr=b4:96:91:6d:20:fc $SLAVE_AB

# --- single-slave
new single-slave
ab_bond x bond0 100 0 "" "" eno1 eno1
nic eno1 $P1 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:30 $SLAVE_AB

# --- split-aggregator: the real /proc sample of charm-magpie's README, with
# the matching sysfs view (enp197s0f2 in aggregator 1, active is 2)
new split-aggregator
C0=pci0000:c0/0000:c0:03.1/0000:c5:00.0
C2=pci0000:c0/0000:c0:03.1/0000:c5:00.2
bond bondm "mode=802.3ad 4" miimon=100 arp_interval=0 arp_ip_target= updelay=0 downdelay=0 primary= active_slave= \
	mii_status=up min_links=0 "slaves=enp197s0f2 enp197s0f0" ad_aggregator=2 ad_num_ports=1 \
	ad_partner_mac=00:23:04:ee:be:66 ad_actor_key=9 ad_partner_key=32784 "lacp_rate=fast 1"
nic enp197s0f2 $C2 bondm state=backup mii_status=up link_failure_count=0 perm_hwaddr=b4:96:91:6d:20:fe queue_id=0 \
	ad_aggregator_id=1 ad_actor_oper_port_state=7 ad_partner_oper_port_state=13
nic enp197s0f0 $C0 bondm state=active mii_status=up link_failure_count=0 perm_hwaddr=b4:96:91:6d:20:fc queue_id=0 \
	ad_aggregator_id=2 ad_actor_oper_port_state=63 ad_partner_oper_port_state=63
cp $PROCSAMPLES/magpie-split-aggregator.txt $T/proc/net/bonding/bondm

# --- unprivileged-8023ad: a healthy LACP bond read without CAP_NET_ADMIN:
# ad_partner_mac/ad_actor_key/ad_partner_key read empty, /proc lacks the
# active aggregator block and the PDU details
new unprivileged-8023ad
E1=pci0000:00/0000:00:1c.0/0000:3d:00.0
E3=pci0000:00/0000:00:1c.4/0000:3e:00.0
bond bondM "mode=802.3ad 4" miimon=100 arp_interval=0 arp_ip_target= updelay=0 downdelay=0 primary= active_slave= \
	mii_status=up min_links=0 "slaves=eno3 eno1" ad_aggregator=1 ad_num_ports=2 \
	ad_partner_mac= ad_actor_key= ad_partner_key= "lacp_rate=fast 1"
nic eno3 $E3 bondM state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:30 queue_id=0 \
	ad_aggregator_id=1 ad_actor_oper_port_state=63 ad_partner_oper_port_state=63
nic eno1 $E1 bondM state=active mii_status=up link_failure_count=0 perm_hwaddr=3c:ec:ef:19:eb:2e queue_id=0 \
	ad_aggregator_id=1 ad_actor_oper_port_state=63 ad_partner_oper_port_state=63
cp $PROCSAMPLES/unprivileged-8023ad.txt $T/proc/net/bonding/bondM

# --- lacp-not-negotiated: switch ports without LACP; each port ends in its
# own aggregator, DEFAULTED set, partner MAC all zeros
new lacp-not-negotiated
F0=pci0000:90/0000:90:01.0/0000:91:00.0
F1=pci0000:90/0000:90:01.0/0000:91:00.1
bond bond0 "mode=802.3ad 4" miimon=100 arp_interval=0 arp_ip_target= updelay=0 downdelay=0 primary= active_slave= \
	mii_status=up min_links=0 "slaves=enp145s0f0 enp145s0f1" ad_aggregator=1 ad_num_ports=1 \
	ad_partner_mac=00:00:00:00:00:00 ad_actor_key=23 ad_partner_key=1 "lacp_rate=slow 0"
nic enp145s0f0 $F0 bond0 state=active mii_status=up link_failure_count=0 perm_hwaddr=f4:1d:6b:6f:3b:97 queue_id=0 \
	ad_aggregator_id=1 ad_actor_oper_port_state=69 ad_partner_oper_port_state=1
nic enp145s0f1 $F1 bond0 state=backup mii_status=up link_failure_count=0 perm_hwaddr=f4:1d:6b:6f:3b:98 queue_id=0 \
	ad_aggregator_id=2 ad_actor_oper_port_state=69 ad_partner_oper_port_state=1
cp $PROCSAMPLES/lacp-not-negotiated-constructed.txt $T/proc/net/bonding/bond0

# --- lacp-partner-expired: real kernel 6.1 under QEMU (the lab of this
# repository's VM harness): bond2's eth3 still has carrier and sits in the
# active aggregator, but its partner port (eth1 of bond1, link set off by
# QMP set_link) stopped sending LACPDUs: actor state 143 (expired, not
# distributing), partner state 55. Values read by spofwatch's reader in the
# guest.
new lacp-partner-expired
G2=pci0000:00/0000:00:04.0/virtio2
G3=pci0000:00/0000:00:05.0/virtio3
bond bond2 "mode=802.3ad 4" miimon=100 arp_interval=0 arp_ip_target= updelay=0 downdelay=0 primary= active_slave= \
	mii_status=up min_links=0 "slaves=eth2 eth3" ad_aggregator=1 ad_num_ports=2 \
	ad_partner_mac=52:54:00:00:00:01 ad_actor_key=9 ad_partner_key=9 "lacp_rate=fast 1"
nic eth2 $G2 bond2 state=active mii_status=up link_failure_count=0 perm_hwaddr=52:54:00:00:00:03 queue_id=0 \
	ad_aggregator_id=1 ad_actor_oper_port_state=63 ad_partner_oper_port_state=63
nic eth3 $G3 bond2 state=backup mii_status=up link_failure_count=0 perm_hwaddr=52:54:00:00:00:04 queue_id=0 \
	ad_aggregator_id=1 ad_actor_oper_port_state=143 ad_partner_oper_port_state=55

# --- old-naming: node_exporter's fixture (collector/fixtures/sys.ttar):
# bonds with only bonding/slaves, slaves reached through slave_<if>
# directories, no mode or monitor attributes, no /proc
new old-naming
for b in bond0 dmz int; do mkdir -p "$T/sys/class/net/$b/bonding"; done
w "$T/sys/class/net/bonding_masters" "bond0 dmz int"
w "$T/sys/class/net/bond0/bonding/slaves"
w "$T/sys/class/net/dmz/bonding/slaves" "eth0 eth4"
w "$T/sys/class/net/int/bonding/slaves" "eth5 eth1"
for s in dmz:eth0:up dmz:eth4:up int:eth1:down int:eth5:up; do
	b=${s%%:*} r=${s#*:} n=${r%%:*} st=${r#*:}
	w "$T/sys/class/net/$b/slave_$n/bonding_slave/mii_status" "$st"
	w "$T/sys/class/net/$b/slave_$n/operstate" "$st"
done

ttar "$T"
