package vm

import (
	. "github.com/spofwatch/spofwatch/test/vm/scenario"
)

// Disk health (issue 14): a RAID1 of one NVMe namespace (QEMU nvme,
// serial health1, id nvmehealth) and one virtio disk (vdr). QEMU's
// smart_critical_warning property sets byte 0 of the SMART / Health log
// page, which spofwatch reads natively (Get Log Page 02h).
//
// The NVMe names depend on probe order and on other NVMe devices of the
// machine (native multipath numbers heads by subsystem), so the setup
// finds the namespace by its controller's serial and writes the names to
// /tmp/nvh (namespace) and /tmp/nvhc (controller); expectations name the
// NVMe member by pattern.
const (
	nvmeHealthQOM = "/machine/peripheral/nvmehealth"
	// nvhFind waits up to 20 s for the namespace of serial health1 (the
	// controller probes asynchronously after insmod) and records its
	// names. Hidden per-path devices (nvmeXcYnZ) are skipped: the head is
	// the device md uses.
	nvhFind = `i=0; while :; do
  for b in /sys/block/nvme*; do
    n=${b##*/}; case $n in *c*) continue;; esac
    [ -r $b/device/serial ] || continue
    read -r s < $b/device/serial
    if [ "$s" = health1 ]; then echo $n > /tmp/nvh; fi
  done
  for c in /sys/class/nvme/nvme*; do
    read -r s < $c/serial
    if [ "$s" = health1 ]; then echo ${c##*/} > /tmp/nvhc; fi
  done
  [ -s /tmp/nvh ] && [ -s /tmp/nvhc ] && break
  i=$((i+1)); [ $i -lt 100 ] || { echo "no NVMe namespace with serial health1"; ls /sys/block /sys/class/nvme; exit 1; }
  sleep 0.2
done; echo "namespace $(cat /tmp/nvh) controller $(cat /tmp/nvhc)"`
	nvhDegraded = `nvme[0-9]+n[0-9]+ is degraded: disk nvme[0-9]+n[0-9]+ reports degraded health: critical warning 0x01: available spare below threshold`
)

func qomSetCriticalWarning(v string) string {
	return `qmp qom-set {"path":"` + nvmeHealthQOM + `","property":"smart_critical_warning","value":` + v + `}`
}

var diskhealthScenarios = []Scenario{
	{
		Name:  "diskhealth/nvme-critical-warning",
		Needs: []string{"md", "diskhealth"},
		Steps: []Step{
			{Name: "raid1 of nvme and virtio, healthy", Sh: []string{nvhFind,
				mdCreate("md20", 1, 2, "/dev/$(cat /tmp/nvh) /dev/vdr", "")},
				Wait: []FileCond{active("md20", "raid1")},
				Check: &Check{Expect: []Expect{{Group: "storage/md/md20", State: "redundant", Working: N(2), Total: N(2),
					Members: map[string]string{"vdr": "ok"}, NoFindings: []string{"*"}}}}},
			{Name: "health read in the guest (raw log page and cost per read)", Sh: []string{
				"SPOFWATCH_NVME_DEVICE=/dev/$(cat /tmp/nvhc) SPOFWATCH_NVME_DISK=$(cat /tmp/nvh) " + guestDiskhealthTest +
					" -test.run '^TestNVMeDevice$' -test.v",
				"SPOFWATCH_NVME_DEVICE=/dev/$(cat /tmp/nvhc) SPOFWATCH_NVME_DISK=$(cat /tmp/nvh) " + guestDiskhealthTest +
					" -test.run '^$' -test.bench 'NVMeDevice|NVMeReader' -test.benchtime 300x -test.benchmem"}},
			{Name: "critical warning: the nvme member is degraded", Host: []string{qomSetCriticalWarning("1")},
				Check: &Check{Expect: []Expect{{Group: "storage/md/md20", Working: N(2), Total: N(2),
					Members:    map[string]string{"vdr": "ok"},
					Findings:   []FindingExpect{{Code: "member_degraded", Summary: nvhDegraded}},
					NoFindings: []string{"redundancy_lost", "collector_unavailable"}}}}},
			{Name: "raw log page with the warning", Sh: []string{
				"SPOFWATCH_NVME_DEVICE=/dev/$(cat /tmp/nvhc) " + guestDiskhealthTest + " -test.run '^TestNVMeDevice$' -test.v"}},
			{Name: "warning cleared: back to ok", Host: []string{qomSetCriticalWarning("0")},
				Check: &Check{Expect: []Expect{{Group: "storage/md/md20", State: "redundant", Working: N(2), Total: N(2),
					Members: map[string]string{"vdr": "ok"}, NoFindings: []string{"*"}}}}},
		},
	},
}
