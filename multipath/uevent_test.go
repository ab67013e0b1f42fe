package multipath_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/multipath"
)

// Messages as the kernel sends them (lib/kobject_uevent.c: "action@devpath"
// then NUL-separated KEY=value; dm-uevent.c adds DM_ACTION/DM_PATH).
func TestParseUevent(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		relevant bool
		wantErr  bool
	}{
		{"dm path failed", "change@/devices/virtual/block/dm-0\x00ACTION=change\x00DEVPATH=/devices/virtual/block/dm-0\x00SUBSYSTEM=block\x00DM_TARGET=multipath\x00DM_ACTION=PATH_FAILED\x00DM_PATH=8:48\x00DEVNAME=dm-0\x00DEVTYPE=disk\x00SEQNUM=2313", true, false},
		{"nvme controller removed", "remove@/devices/pci0000:00/0000:00:1f.0/nvme/nvme2\x00ACTION=remove\x00SUBSYSTEM=nvme\x00DEVNAME=nvme2\x00SEQNUM=2000", true, false},
		{"scsi device offline", "change@/devices/pci0000:00/0000:00:0f.0/virtio11/host1/target1:0:0/1:0:0:0\x00ACTION=change\x00SUBSYSTEM=scsi\x00SDEV_MEDIA_CHANGE=1", true, false},
		{"a NIC", "change@/devices/virtual/net/bond0\x00ACTION=change\x00SUBSYSTEM=net\x00INTERFACE=bond0", false, false},
		{"a loop device", "change@/devices/virtual/block/loop0\x00SUBSYSTEM=block\x00DEVNAME=loop0", false, false},
		{"udev's rebroadcast", "libudev\x00\xfe\xed\xca\xfe", false, true},
		{"no header", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := multipath.ParseUevent([]byte(tc.msg))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && multipath.PathRelevant(u) != tc.relevant {
				t.Errorf("relevant %v, want %v (%+v)", !tc.relevant, tc.relevant, u)
			}
		})
	}
	u, _ := multipath.ParseUevent([]byte(tests[0].msg))
	if u.Action != "change" || u.DevPath != "/devices/virtual/block/dm-0" || u.Env["DM_PATH"] != "8:48" {
		t.Errorf("parsed %+v", u)
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte("change@/devices/virtual/block/dm-0\x00SUBSYSTEM=block\x00DM_ACTION=PATH_FAILED"))
	f.Add([]byte("libudev\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		u, err := multipath.ParseUevent(msg)
		if err != nil {
			return
		}
		if u.Action == "" || !strings.HasPrefix(u.DevPath, "/") || len(u.Env) > 64 {
			t.Fatalf("accepted %+v", u)
		}
		_ = multipath.PathRelevant(u)
	})
}

// The watcher joins the kernel's uevent group (any user may) and returns
// nil when its context ends, without a periodic wake-up.
func TestWatchUeventsStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- multipath.WatchUevents(ctx, multipath.PathRelevant, func() {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Skipf("no uevent socket here: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchUevents did not return after its context ended")
	}
}
