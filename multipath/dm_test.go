package multipath_test

import (
	"errors"
	"testing"

	"github.com/spofwatch/spofwatch/multipath"
	"github.com/spofwatch/spofwatch/multipath/multipathtest"
	"github.com/spofwatch/spofwatch/sysdev"
)

// dmTree is the test/vm layout: LUN1 on sda (HBA 0000:00:0e.0) and sdd
// (0000:00:0f.0) under mpatha, LUN2 on sdb and sdc, both on the first HBA,
// under a map made without --uuid, and an LVM volume beside them.
func dmTree(t *testing.T) *multipathtest.Tree {
	tr := multipathtest.New(t)
	tr.SCSIDisk("sda", "8:0", "0000:00:0e.0", "0", "0", "running")
	tr.SCSIDisk("sdb", "8:16", "0000:00:0e.0", "0", "1", "running")
	tr.SCSIDisk("sdc", "8:32", "0000:00:0e.0", "0", "2", "offline")
	tr.SCSIDisk("sdd", "8:48", "0000:00:0f.0", "1", "0", "running")
	tr.DMMap("0", "mpatha", "mpath-LUN1", "sda", "sdd")
	tr.DMMap("1", "mpathb", "", "sdb", "sdc")
	tr.DMMap("2", "vg-root", "LVM-abc", "sdb")
	return tr
}

func TestBuildDM(t *testing.T) {
	sys := sysdev.New(dmTree(t).Root)
	devs, err := multipath.ListDM(sys)
	if err != nil || len(devs) != 3 {
		t.Fatalf("ListDM: %+v %v", devs, err)
	}
	status := map[string]multipath.DMStatus{}
	for name, params := range map[string]string{
		"mpatha": "2 1 0 0 1 1 E 0 2 0 8:0 A 0 8:48 F 1",
		"mpathb": "2 1 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0",
	} {
		st, err := multipath.ParseDMStatus(params)
		if err != nil {
			t.Fatal(err)
		}
		status[name] = st
	}

	maps := multipath.BuildDM(sys, devs, status, nil)
	if len(maps) != 2 || maps[0].Name != "mpatha" || maps[1].Name != "mpathb" {
		t.Fatalf("maps %+v: want mpatha (by uuid) and mpathb (by its multipath target), not the LVM volume", maps)
	}
	want := map[string]multipath.DMPath{
		"sda": {Device: "sda", DevNo: "8:0", Group: 1, GroupState: "E", InStatus: true, Active: true, DeviceState: "running", HBA: "0000:00:0e.0"},
		"sdd": {Device: "sdd", DevNo: "8:48", Group: 1, GroupState: "E", InStatus: true, FailCount: 1, DeviceState: "running", HBA: "0000:00:0f.0"},
		"sdb": {Device: "sdb", DevNo: "8:16", Group: 1, GroupState: "A", InStatus: true, Active: true, DeviceState: "running", HBA: "0000:00:0e.0"},
		"sdc": {Device: "sdc", DevNo: "8:32", Group: 1, GroupState: "A", InStatus: true, Active: true, DeviceState: "offline", HBA: "0000:00:0e.0"},
	}
	for _, m := range maps {
		for _, p := range m.Paths {
			if p != want[p.Device] {
				t.Errorf("%s path:\n got %+v\nwant %+v", m.Name, p, want[p.Device])
			}
		}
	}

	// Without dmsetup (or CAP_SYS_ADMIN): only the map with an mpath uuid
	// is known, its paths from slaves/, their state in the map unknown.
	noStatus := multipath.BuildDM(sys, devs, nil, errors.New("dmsetup: permission denied"))
	if len(noStatus) != 1 || noStatus[0].Name != "mpatha" || noStatus[0].StatusErr == "" {
		t.Fatalf("without status: %+v", noStatus)
	}
	for _, p := range noStatus[0].Paths {
		if p.InStatus || p.HBA == "" || p.DeviceState != "running" {
			t.Errorf("without status, path %+v: want its device state and HBA, not a map state", p)
		}
	}
}
