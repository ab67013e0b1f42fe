#!/usr/bin/env bash
# Regenerates the foundation fixture trees (mounts and uplink) as ttar
# archives collectors/testdata/{mounts,uplink}/<case>.ttar (see PROVENANCE.md
# in each). Trees are archived because real sysfs paths hold ':' (PCI
# addresses, major:minor), which Go module zips reject.
# Layouts follow real sysfs: symlinks from /sys/class/block, /sys/dev/block
# and /sys/class/net into /sys/devices, exactly as the kernel makes them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# put FILE CONTENT: write one sysfs attribute (with the kernel's newline).
put() { mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" > "$1"; }
# link TARGET LINK: a relative symlink, as sysfs has.
link() { mkdir -p "$(dirname "$2")"; ln -srfn "$1" "$2"; }

# disk ROOT NAME DEVNO PCIPATH: a SCSI/SATA/virtio/NVMe disk under a PCI function.
disk() {
  local root=$1 name=$2 devno=$3 pci=$4
  local d="$root/sys/devices/$pci/block/$name"
  put "$d/dev" "$devno"; put "$d/size" "1953525168"
  link "$d" "$root/sys/class/block/$name"; link "$d" "$root/sys/dev/block/$devno"; link "$d" "$root/sys/block/$name"
  mkdir -p "$d/slaves" "$d/holders"
}
# part ROOT DISK PART N DEVNO: partition N of DISK.
part() {
  local root=$1 dsk=$2 p=$3 n=$4 devno=$5
  local dd; dd=$(readlink -f "$root/sys/class/block/$dsk")
  put "$dd/$p/partition" "$n"; put "$dd/$p/dev" "$devno"
  link "$dd/$p" "$root/sys/class/block/$p"; link "$dd/$p" "$root/sys/dev/block/$devno"
  mkdir -p "$dd/$p/holders"
}
# md ROOT NAME DEVNO LEVEL STATE MEMBER:SLOT:STATE...: an md array (Documentation/admin-guide/md.rst).
md() {
  local root=$1 name=$2 devno=$3 level=$4 astate=$5; shift 5
  local d="$root/sys/devices/virtual/block/$name"
  put "$d/dev" "$devno"
  link "$d" "$root/sys/class/block/$name"; link "$d" "$root/sys/dev/block/$devno"; link "$d" "$root/sys/block/$name"
  put "$d/md/level" "$level"; put "$d/md/raid_disks" "$#"; put "$d/md/array_state" "$astate"
  put "$d/md/sync_action" "idle"; put "$d/md/sync_completed" "none"; put "$d/md/layout" "0"
  for m in "$@"; do
    IFS=: read -r dev slot st <<<"$m"
    put "$d/md/dev-$dev/slot" "$slot"; put "$d/md/dev-$dev/state" "$st"
    link "$(readlink -f "$root/sys/class/block/$dev")" "$d/md/dev-$dev/block"
    link "$(readlink -f "$root/sys/class/block/$dev")" "$d/slaves/$dev"
  done
}
# dm ROOT NAME DEVNO DMNAME SLAVE...: a device-mapper (LVM) device.
dm() {
  local root=$1 name=$2 devno=$3 dmname=$4; shift 4
  local d="$root/sys/devices/virtual/block/$name"
  put "$d/dev" "$devno"; put "$d/dm/name" "$dmname"
  link "$d" "$root/sys/class/block/$name"; link "$d" "$root/sys/dev/block/$devno"; link "$d" "$root/sys/block/$name"
  mkdir -p "$d/slaves"
  for s in "$@"; do link "$(readlink -f "$root/sys/class/block/$s")" "$d/slaves/$s"; done
}
mountinfo() { put "$1/proc/1/mountinfo" "$2"; }

M="$work/mounts"; mkdir -p "$M"

# 1. root on LVM on md RAID1 of two disks (sda1 + sdb1, each disk on its own SATA port of one AHCI controller).
r="$M/lvm-on-md-raid1"
disk "$r" sda 8:0 pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0
disk "$r" sdb 8:16 pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0
part "$r" sda sda1 1 8:1; part "$r" sdb sdb1 1 8:17
md "$r" md0 9:0 raid1 clean sda1:0:in_sync sdb1:1:in_sync
dm "$r" dm-0 253:0 vg0-root md0
mountinfo "$r" "$(printf '%s\n' \
  '22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw,errors=remount-ro' \
  '23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw' \
  '24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw')"

# 2. root on md RAID1 whose members are two partitions of one disk.
r="$M/md-raid1-one-disk"
disk "$r" sda 8:0 pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0
part "$r" sda sda1 1 8:1; part "$r" sda sda2 2 8:2
md "$r" md0 9:0 raid1 clean sda1:0:in_sync sda2:1:in_sync
mountinfo "$r" '22 1 9:0 / / rw,relatime shared:1 - ext4 /dev/md0 rw'

# 3. root on one NVMe partition, /boot/efi on another partition of the same disk.
r="$M/nvme-single"
disk "$r" nvme0n1 259:0 pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0
part "$r" nvme0n1 nvme0n1p1 1 259:1; part "$r" nvme0n1 nvme0n1p2 2 259:2
mountinfo "$r" "$(printf '%s\n' \
  '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw' \
  '30 22 259:1 / /boot/efi rw,relatime shared:20 - vfat /dev/nvme0n1p1 rw,fmask=0077,dmask=0077')"

# 4. RAID1 with one leg failed (faulty, still in its slot): redundancy lost.
r="$M/md-raid1-failed-leg"
disk "$r" sda 8:0 pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0
disk "$r" sdb 8:16 pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0
part "$r" sda sda1 1 8:1; part "$r" sdb sdb1 1 8:17
md "$r" md0 9:0 raid1 clean sda1:0:in_sync sdb1:1:faulty
mountinfo "$r" '22 1 9:0 / / rw,relatime shared:1 - ext4 /dev/md0 rw'

# 5. root on an inactive array.
r="$M/md-inactive"
disk "$r" sda 8:0 pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0
part "$r" sda sda1 1 8:1
md "$r" md0 9:0 raid1 inactive sda1:none:spare
mountinfo "$r" '22 1 9:0 / / rw,relatime shared:1 - ext4 /dev/md0 rw'

# 6. root on LVM over md RAID1 (sda1+sdb1) AND a plain partition sdc1: sdc is a single point.
r="$M/lvm-md-plus-plain-disk"
disk "$r" sda 8:0 pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0
disk "$r" sdb 8:16 pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0
disk "$r" sdc 8:32 pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0
part "$r" sda sda1 1 8:1; part "$r" sdb sdb1 1 8:17; part "$r" sdc sdc1 1 8:33
md "$r" md0 9:0 raid1 clean sda1:0:in_sync sdb1:1:in_sync
dm "$r" dm-0 253:0 vg0-root md0 sdc1
mountinfo "$r" '22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw'

# nic ROOT NAME PCIFN [PARENT]: a physical NIC at a PCI function.
nic() {
  local root=$1 name=$2 pcipath=$3
  local d="$root/sys/devices/$pcipath/net/$name"
  put "$d/operstate" "up"; put "$d/carrier" "1"; put "$d/address" "52:54:00:12:34:5${#name}"
  link "$root/sys/devices/$pcipath" "$d/device"
  link "$d" "$root/sys/class/net/$name"
}
vnet() { local d="$1/sys/devices/virtual/net/$2"; put "$d/operstate" "up"; put "$d/carrier" "1"; link "$d" "$1/sys/class/net/$2"; }
bond() {
  local root=$1 name=$2; shift 2
  vnet "$root" "$name"
  local d="$root/sys/devices/virtual/net/$name"
  put "$d/bonding/slaves" "$*"; put "$d/bonding/mode" "active-backup 1"; put "$d/bonding/miimon" "100"
  put "$d/bonding/min_links" "0"; put "$d/bonding/active_slave" "$1"
  put "$root/sys/class/net/bonding_masters" "$name"
  for s in "$@"; do
    local sd; sd=$(readlink -f "$root/sys/class/net/$s")
    put "$sd/bonding_slave/mii_status" "up"; put "$sd/bonding_slave/state" "$([ "$s" = "$1" ] && echo active || echo backup)"
    link "$d" "$sd/master"; link "$sd" "$d/lower_$s"; link "$d" "$sd/upper_$name"
  done
}
route() { put "$1/proc/net/route" "$(printf 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n%s\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n%s\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0' "$2" "$2")"; }

U="$work/uplink"; mkdir -p "$U"

# 6. default route via bond0 over two ports of two different NIC cards.
r="$U/bond"
nic "$r" eno1 pci0000:00/0000:00:1c.0/0000:3b:00.0
nic "$r" ens2f0 pci0000:00/0000:00:1c.4/0000:5e:00.0
bond "$r" bond0 eno1 ens2f0
route "$r" bond0

# 7. default route via VLAN 100 on bond0; both slaves are ports of ONE dual-port card.
r="$U/vlan-on-bond"
nic "$r" ens1f0 pci0000:00/0000:00:1c.0/0000:3b:00.0
nic "$r" ens1f1 pci0000:00/0000:00:1c.0/0000:3b:00.1
bond "$r" bond0 ens1f0 ens1f1
vnet "$r" bond0.100
link "$r/sys/devices/virtual/net/bond0" "$r/sys/devices/virtual/net/bond0.100/lower_bond0"
route "$r" bond0.100

# 8. default route via bridge br0 whose only uplink port is eth0 (plus a guest's vnet0 tap).
r="$U/bridge-single-nic"
nic "$r" eth0 pci0000:00/0000:00:03.0/virtio2
vnet "$r" br0; vnet "$r" vnet0
put "$r/sys/devices/virtual/net/br0/bridge/stp_state" "0"
link "$(readlink -f "$r/sys/class/net/eth0")/brport" "$r/sys/devices/virtual/net/br0/brif/eth0"
mkdir -p "$r/sys/devices/virtual/net/vnet0/brport"
link "$r/sys/devices/virtual/net/vnet0/brport" "$r/sys/devices/virtual/net/br0/brif/vnet0"
route "$r" br0

# usbnic ROOT NAME USBPATH: a USB NIC (cdc_ether/r8152) at a USB interface:
# the net device sits below the interface, its device link leads to it.
usbnic() {
  local root=$1 name=$2 usbpath=$3
  local d="$root/sys/devices/$usbpath/net/$name"
  put "$d/operstate" "up"; put "$d/carrier" "1"
  link "$root/sys/devices/$usbpath" "$d/device"
  link "$d" "$root/sys/class/net/$name"
}

# 9. default route via bridge br0 over two USB NICs on two USB devices of
# one xHCI controller (0000:00:14.0): the cards are the USB devices.
r="$U/bridge-two-usb-nics"
usbnic "$r" enx00e04c680001 pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0
usbnic "$r" enx00e04c680002 pci0000:00/0000:00:14.0/usb2/2-2/2-2:1.0
vnet "$r" br0
put "$r/sys/devices/virtual/net/br0/bridge/stp_state" "1"
for p in enx00e04c680001 enx00e04c680002; do
  link "$(readlink -f "$r/sys/class/net/$p")/brport" "$r/sys/devices/virtual/net/br0/brif/$p"
done
route "$r" br0

for kind in mounts uplink; do
  rm -f "$here/$kind"/*.ttar
  for tree in "$work/$kind"/*/; do
    name=$(basename "$tree")
    (cd "$here/../.." && go run ./internal/ttar/cmd/ttar "$tree") > "$here/$kind/$name.ttar"
  done
done
