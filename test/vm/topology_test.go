package vm

import "fmt"

// The one guest every scenario runs in. Scenarios own their disks and NICs
// so they do not disturb each other; add new ones at the end.
//
//	disk  guest  used by
//	 0-1  vda-b  md0 raid1 (fail, rebuild)
//	 2-4  vdc-e  md1 raid5 of 3
//	 5-8  vdf-i  md2 raid6 of 4
//	 9    vdj    md3 raid1 over vdj1+vdj2 (one disk)
//	10-11 vdk-l  md4 raid0
//	12-13 vdm-n  md5 raid1 left inactive
//	14-15 vdo-p  md6 raid1 with bitmap (latency)
//	16    vdq    md8 raid1 over vdq1+vdq2 (drill)
//	17    vdr    md20 raid1 with the health NVMe (diskhealth)
var testDisks = func() []Disk {
	d := make([]Disk, 16)
	for i := range d {
		d[i] = Disk{SizeMiB: 32}
	}
	d[9] = Disk{SizeMiB: 64, Partitions: []int{24, 24}}
	// vdq: the drill scenarios' raid1 over two partitions (one PCI slot;
	// the pc machine has few left). Appended so no earlier name shifts.
	d = append(d, Disk{SizeMiB: 64, Partitions: []int{24, 24}})
	// vdr: the disk health raid1's virtio leg.
	d = append(d, Disk{SizeMiB: 32})
	return d
}()

// Extra devices beside the virtio disks (Machine.Images and Extra), in
// this order: the disk health NVMe (controller nvmehealth, serial health1,
// its smart_critical_warning set over QMP). Add new ones at the end.
var testImages = map[string]Disk{"nvme-health.img": {SizeMiB: 32}}

var testExtra = []string{
	"-drive", "file={dir}/nvme-health.img,if=none,id=nvh,format=raw",
	"-device", "nvme,serial=health1,id=nvmehealth,drive=nvh",
}

// NICs: the guest names each after its QEMU netdev (the set_link name).
// Hubs wire NICs together; la*/lb* are two 802.3ad bonds cabled to each
// other (la0-lb0 on hub 5, la1-lb1 on hub 6).
// Hubs 8-10: the bond drill scenarios (scenarios_drillbond_test.go).
var testNICs = func() []NIC {
	spec := []struct {
		id  string
		hub int
	}{
		{"ab0", 1}, {"ab1", 2}, // bond0 active-backup (+ link latency)
		{"nm0", 3}, {"nm1", 4}, // bond1 without link monitoring
		{"la0", 5}, {"la1", 6}, // bond2 802.3ad
		{"lb0", 5}, {"lb1", 6}, // bond3 802.3ad, partner of bond2
		{"ss0", 7}, // bond4 single slave
		// Bond drills: bond5 (db0, db1) and the gateway gw0 on hub 8;
		// bond6's dc0 and the gateway gw1 on hub 9, its dc1 alone on hub
		// 10. gw0 and gw1 live in a network namespace.
		{"db0", 8}, {"db1", 8}, {"gw0", 8},
		{"dc0", 9}, {"dc1", 10}, {"gw1", 9},
	}
	n := make([]NIC, len(spec))
	for i, s := range spec {
		n[i] = NIC{ID: s.id, Hub: s.hub, MAC: fmt.Sprintf("52:54:00:00:01:%02x", i+1)}
	}
	return n
}()
