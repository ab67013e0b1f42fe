#!/bin/busybox sh
# PID 1 of the VM harness guest: mount the kernel filesystems, load the
# modules, name the NICs after their QEMU netdev, then hand over to vmguest
# (which talks to the host over virtio-serial) and power off. Everything
# printed here goes to the serial console log on the host.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run/mdadm /tmp
up() { cut -d' ' -f1 /proc/uptime; }
echo "@@MARK init-start $(up)"
while read -r m params; do
  insmod "$m" $params || echo "@@INSMOD-FAILED $m"
  echo "@@INSMOD ${m##*/} $(up)"
done < /etc/vm/modules
echo "@@MARK modules-loaded $(up)"
while read -r mac name; do
  # read, not cat: every fork costs under TCG
  for a in /sys/class/net/*/address; do
    read -r have < "$a"
    if [ "$have" = "$mac" ]; then
      dev=${a%/address}; dev=${dev##*/}
      [ "$dev" = "$name" ] || ip link set "$dev" name "$name" || echo "@@RENAME-FAILED $dev $name"
    fi
  done
done < /etc/vm/nics
ip link set lo up
echo "@@MARK nics-named $(up)"
/bin/vmguest /etc/vm/plan.json
echo "@@VMGUEST-EXIT rc=$? t=$(up)"
sync
poweroff -f
