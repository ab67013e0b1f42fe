package vm

import . "github.com/spofwatch/spofwatch/test/vm/scenario"

// Path redundancy scenarios (issue 14): NVMe native multipath over two
// controllers of one subsystem, and dm-multipath over two virtio-scsi
// HBAs. The devices are in multipathExtra; the guest finds them by what
// QEMU was told (the subsystem NQN, the LUN sizes), never by instance
// numbers, which depend on probe order.

// multipathImages are the backing images of the multipath devices.
var multipathImages = map[string]Disk{
	"mp-ns.img":   {SizeMiB: 16},
	"mp-lun1.img": {SizeMiB: 16}, // 32768 sectors: LUN1, one path per HBA
	"mp-lun2.img": {SizeMiB: 24}, // 49152 sectors: LUN2, both paths on scsi0
}

// multipathExtra: an NVMe subsystem with two controllers sharing
// namespace 1, and two virtio-scsi HBAs with LUN1 on each and LUN2 twice
// on the first (same image, same serial, share-rw: one LUN, two paths).
var multipathExtra = []string{
	"-device", "nvme-subsys,id=subsys0,nqn=subsys0",
	"-device", "nvme,serial=mpath,id=ctrl0,subsys=subsys0",
	"-device", "nvme,serial=mpath,id=ctrl1,subsys=subsys0",
	"-drive", "file={dir}/mp-ns.img,if=none,id=nvm,format=raw",
	"-device", "nvme-ns,drive=nvm,nsid=1,shared=on",
	"-device", "virtio-scsi-pci,id=scsi0",
	"-device", "virtio-scsi-pci,id=scsi1",
	"-drive", "file={dir}/mp-lun1.img,if=none,id=sc0,format=raw,file.locking=off",
	"-drive", "file={dir}/mp-lun1.img,if=none,id=sc1,format=raw,file.locking=off",
	"-device", "scsi-hd,drive=sc0,bus=scsi0.0,scsi-id=0,serial=LUN1,share-rw=on",
	"-device", "scsi-hd,drive=sc1,bus=scsi1.0,scsi-id=0,serial=LUN1,share-rw=on",
	"-drive", "file={dir}/mp-lun2.img,if=none,id=sc2,format=raw,file.locking=off",
	"-drive", "file={dir}/mp-lun2.img,if=none,id=sc3,format=raw,file.locking=off",
	"-device", "scsi-hd,drive=sc2,bus=scsi0.0,scsi-id=1,serial=LUN2,share-rw=on",
	"-device", "scsi-hd,drive=sc3,bus=scsi0.0,scsi-id=2,serial=LUN2,share-rw=on",
}

// mpShell defines the guest helpers: nvsub (the subsystem QEMU named
// subsys0), nvctrls (its controller count), waitctrls N, lun SECTORS (the
// major:minor of every sd device of that size).
const mpShell = `cat > /tmp/mp.sh <<'EOF'
nvsub() { for s in /sys/class/nvme-subsystem/nvme-subsys*; do read -r q < "$s/subsysnqn"; case "$q" in *:subsys0) echo "$s"; return 0;; esac; done; return 1; }
nvctrls() { k=0; s=$(nvsub) || { echo 0; return; }; for c in "$s"/nvme*; do case "${c##*/}" in nvme*n*) ;; nvme*) k=$((k+1));; esac; done; echo $k; }
waitctrls() { i=0; while [ "$(nvctrls)" != "$1" ]; do i=$((i+1)); [ $i -gt 300 ] && { echo "controllers of subsys0: $(nvctrls), want $1"; return 1; }; usleep 100000; done; ls "$(nvsub)"; }
lun() { for d in /sys/block/sd*; do case "$(readlink -f "$d")" in */ata[0-9]*) continue;; esac; read -r s < "$d/size"; [ "$s" = "$1" ] && { read -r n < "$d/dev"; printf '%s ' "$n"; }; done; }
EOF`

const (
	mpSrc       = ". /tmp/mp.sh; "
	nvmeHead    = `storage/path/nvme[0-9]+n1`
	mpathaTable = `set -- $(lun 32768); [ $# = 2 ] || { echo "LUN1 paths: $*"; exit 1; }; echo "0 32768 multipath 0 0 1 1 round-robin 0 2 1 $1 1000 $2 1000" | dmsetup create --uuid mpath-LUN1 mpatha`
	mpathbTable = `set -- $(lun 49152); [ $# = 2 ] || { echo "LUN2 paths: $*"; exit 1; }; echo "0 49152 multipath 0 0 1 1 round-robin 0 2 1 $1 1000 $2 1000" | dmsetup create --uuid mpath-LUN2 mpathb`
	failPath    = `set -- $(lun 32768); dmsetup message mpatha 0 fail_path $2`
	reinstate   = `set -- $(lun 32768); dmsetup message mpatha 0 reinstate_path $2`
	ctrl1Del    = `qmp device_del {"id":"ctrl1"}`
	ctrl1Add    = `qmp device_add {"driver":"nvme","id":"ctrl1","serial":"mpath","subsys":"subsys0"}`
)

var multipathScenarios = []Scenario{
	{
		Name:  "multipath/nvme",
		Needs: []string{"multipath"},
		Steps: []Step{
			{Name: "two controllers, one namespace", Sh: []string{mpShell, mpSrc + "waitctrls 2", "ls /sys/block"}, Daemon: "start",
				Check: &Check{API: true, Expect: []Expect{{GroupMatch: nvmeHead, State: "redundant", Working: N(2), Required: N(1), Total: N(2),
					NoFindings: []string{"*"}}}}},
			// The daemon saw both paths; the hot-unplugged one is missing,
			// not forgotten.
			{Name: "ctrl1 hot-unplugged", Host: []string{ctrl1Del},
				Check: &Check{API: true, Expect: []Expect{{GroupMatch: nvmeHead, State: "redundancy_lost", Working: N(1), Total: N(2),
					Findings: []FindingExpect{{Code: "redundancy_lost", Severity: "critical", Summary: `nvme[0-9]+ missing \(controller nvme[0-9]+ is gone from nvme-subsys[0-9]+\)`}}}}}},
			{Name: "ctrl1 plugged back", Sh: []string{mpSrc + "waitctrls 1"}, Host: []string{ctrl1Add},
				Check: &Check{API: true, Expect: []Expect{{GroupMatch: nvmeHead, State: "redundant", Working: N(2), NoFindings: []string{"redundancy_lost"}}}}},
			{Name: "device_del to API finding", Sh: []string{mpSrc + "waitctrls 2"}, Latency: &Latency{
				Name: "nvme-path", Rounds: 3, PollMillis: 20, TargetP50Millis: 2000,
				Fault:    Action{Host: []string{ctrl1Del}},
				Changed:  []Expect{{GroupMatch: nvmeHead, State: "redundancy_lost"}},
				Restore:  Action{Sh: []string{mpSrc + "waitctrls 1"}, Host: []string{ctrl1Add}},
				Restored: []Expect{{GroupMatch: nvmeHead, State: "redundant", Working: N(2)}},
			}},
		},
	},
	{
		Name:  "multipath/dm",
		Needs: []string{"multipath"},
		Steps: []Step{
			{Name: "LUN1 over two HBAs", Sh: []string{mpShell, mpSrc + mpathaTable, "dmsetup status; dmsetup status --target multipath; ls -l /sys/block/*/slaves/"},
				Check: &Check{Expect: []Expect{{Group: "storage/path/mpatha", State: "redundant", Working: N(2), Required: N(1), Total: N(2),
					NoFindings: []string{"*"}}}}},
			{Name: "fail_path", Sh: []string{mpSrc + failPath, "dmsetup status mpatha"},
				Check: &Check{Expect: []Expect{{Group: "storage/path/mpatha", State: "redundancy_lost", Working: N(1), Total: N(2),
					Findings: []FindingExpect{{Code: "redundancy_lost", Severity: "critical", Summary: `sd[a-z]+ failed \(failed in the multipath map`}}}}}},
			{Name: "reinstate_path", Sh: []string{mpSrc + reinstate},
				Check: &Check{Expect: []Expect{{Group: "storage/path/mpatha", State: "redundant", Working: N(2), NoFindings: []string{"*"}}}}},
			{Name: "LUN2 with both paths on one HBA", Sh: []string{mpSrc + mpathbTable},
				Check: &Check{Expect: []Expect{
					{Group: "storage/path/mpathb", State: "redundant", Working: N(2),
						Findings: []FindingExpect{{Code: "shared_failure_domain", Severity: "warning", Summary: `hba [0-9a-f:.]+ carries sd[a-z]+, sd[a-z]+`}}},
					{Group: "storage/path/mpatha", NoFindings: []string{"shared_failure_domain"}}}}},
			{Name: "daemon", Daemon: "start"},
			{Name: "fail_path to API finding", Latency: &Latency{
				Name: "dm-path", Rounds: 5, PollMillis: 20, TargetP50Millis: 1000,
				Fault:    Action{Sh: []string{mpSrc + failPath}},
				Changed:  []Expect{{Group: "storage/path/mpatha", State: "redundancy_lost"}},
				Restore:  Action{Sh: []string{mpSrc + reinstate}},
				Restored: []Expect{{Group: "storage/path/mpatha", State: "redundant"}},
			}},
		},
	},
}
