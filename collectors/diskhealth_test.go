package collectors

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/spofwatch/spofwatch/diskhealth"
	"github.com/spofwatch/spofwatch/spof"
)

// fakeDisks answers health reads from a table and counts them.
type fakeDisks struct {
	mu    sync.Mutex
	h     map[string]diskhealth.Health
	reads map[string]int
}

func (f *fakeDisks) read(_ context.Context, disk string) diskhealth.Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[disk]++
	h, ok := f.h[disk]
	if !ok {
		return diskhealth.Health{Disk: disk, Verdict: diskhealth.VerdictUnknown, Reason: disk + " is a virtio disk"}
	}
	h.Disk = disk
	return h
}

func u8(v uint8) *uint8 { return &v }

func mirror(id string, members ...spof.Member) spof.Group {
	return spof.Group{ID: id, Kind: spof.KindStorage, Function: id, Required: 1, Members: members}
}

func onDisk(name, disk string, st spof.MemberState) spof.Member {
	return spof.Member{Name: name, State: st, Domains: map[string]string{spof.DomainDisk: disk}}
}

func TestDiskHealthMark(t *testing.T) {
	warn := diskhealth.Health{Protocol: diskhealth.ProtocolNVMe, Verdict: diskhealth.VerdictDegraded, CriticalWarning: u8(1),
		Problems: []string{"critical warning 0x01: available spare below threshold"}}
	failing := diskhealth.Health{Protocol: diskhealth.ProtocolATA, Verdict: diskhealth.VerdictFailing,
		Problems: []string{"SMART overall-health FAILED"}}
	ok := diskhealth.Health{Protocol: diskhealth.ProtocolNVMe, Verdict: diskhealth.VerdictOK, CriticalWarning: u8(0)}
	tests := []struct {
		name     string
		disks    map[string]diskhealth.Health
		group    spof.Group
		states   map[string]spof.MemberState
		state    spof.GroupState
		findings []string // code member: summary substring
		attr     string
	}{
		{name: "healthy disks leave members ok",
			disks:  map[string]diskhealth.Health{"nvme0n1": ok, "nvme1n1": ok},
			group:  mirror("storage/md/md0", onDisk("nvme0n1p2", "nvme0n1", spof.MemberOK), onDisk("nvme1n1p2", "nvme1n1", spof.MemberOK)),
			states: map[string]spof.MemberState{"nvme0n1p2": spof.MemberOK, "nvme1n1p2": spof.MemberOK},
			state:  spof.StateRedundant, attr: "nvme0n1 ok, nvme1n1 ok"},
		{name: "a critical warning makes the member degraded",
			disks:  map[string]diskhealth.Health{"nvme0n1": warn, "nvme1n1": ok},
			group:  mirror("storage/md/md0", onDisk("nvme0n1p2", "nvme0n1", spof.MemberOK), onDisk("nvme1n1p2", "nvme1n1", spof.MemberOK)),
			states: map[string]spof.MemberState{"nvme0n1p2": spof.MemberDegraded, "nvme1n1p2": spof.MemberOK},
			findings: []string{"member_degraded nvme0n1p2: nvme0n1p2 is degraded: disk nvme0n1 reports degraded health: " +
				"critical warning 0x01: available spare below threshold"}},
		{name: "a failing SATA disk makes the member degraded, not failed",
			disks:    map[string]diskhealth.Health{"sda": failing},
			group:    mirror("storage/md/md1", onDisk("sda1", "sda", spof.MemberOK), onDisk("vdb1", "vdb", spof.MemberOK)),
			states:   map[string]spof.MemberState{"sda1": spof.MemberDegraded, "vdb1": spof.MemberOK},
			findings: []string{"member_degraded sda1: disk sda reports failing health: SMART overall-health FAILED"},
			attr:     "sda failing (SMART overall-health FAILED), vdb unknown (vdb is a virtio disk)"},
		{name: "unknown health changes nothing: the group verdict stands",
			disks:  map[string]diskhealth.Health{},
			group:  mirror("storage/md/md2", onDisk("vda", "vda", spof.MemberOK), onDisk("vdb", "vdb", spof.MemberFailed)),
			states: map[string]spof.MemberState{"vda": spof.MemberOK, "vdb": spof.MemberFailed},
			state:  spof.StateRedundancyLost, attr: "vda unknown (vda is a virtio disk), vdb unknown (vdb is a virtio disk)"},
		{name: "a failed member stays failed on a warning disk",
			disks:  map[string]diskhealth.Health{"nvme0n1": warn, "nvme1n1": ok},
			group:  mirror("storage/md/md3", onDisk("nvme0n1", "nvme0n1", spof.MemberFailed), onDisk("nvme1n1", "nvme1n1", spof.MemberOK)),
			states: map[string]spof.MemberState{"nvme0n1": spof.MemberFailed, "nvme1n1": spof.MemberOK},
			state:  spof.StateRedundancyLost},
		{name: "members without a disk domain are left alone",
			disks:  map[string]diskhealth.Health{"nvme0n1": warn},
			group:  mirror("storage/mount/root", spof.Member{Name: "md0", State: spof.MemberOK}),
			states: map[string]spof.MemberState{"md0": spof.MemberOK}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDisks{h: tc.disks, reads: map[string]int{}}
			dh := NewDiskHealth(DiskHealthOptions{Read: f.read})
			groups := []spof.Group{tc.group}
			dh.Mark(context.Background(), groups)
			g := groups[0]
			for _, m := range g.Members {
				if want := tc.states[m.Name]; m.State != want {
					t.Errorf("member %s %s, want %s (detail %q)", m.Name, m.State, want, m.Detail)
				}
			}
			if tc.attr != "" {
				got := ""
				for _, a := range g.Attributes {
					if a.Key == "disk_health" {
						got = a.Value
					}
				}
				if got != tc.attr {
					t.Errorf("disk_health attribute %q, want %q", got, tc.attr)
				}
			}
			out := spof.Evaluate(spof.Input{Groups: groups})
			if tc.state != "" && out.Groups[0].State != tc.state {
				t.Errorf("group state %s, want %s", out.Groups[0].State, tc.state)
			}
			for _, want := range tc.findings {
				code, rest, _ := strings.Cut(want, " ")
				member, summary, _ := strings.Cut(rest, ": ")
				found := false
				for _, fd := range out.Findings {
					if string(fd.Code) == code && fd.Member == member && strings.Contains(fd.Summary, summary) {
						found = true
					}
				}
				if !found {
					t.Errorf("no finding %s on %s with %q in %+v", code, member, summary, out.Findings)
				}
			}
			if len(tc.findings) == 0 {
				for _, fd := range out.Findings {
					if fd.Code == spof.CodeMemberDegraded {
						t.Errorf("unexpected %s: %s", fd.Code, fd.Summary)
					}
				}
			}
		})
	}
}

// TestDiskHealthCache: md and mounts naming one disk in one cycle cost
// one read; a reading older than MaxAge is read again.
func TestDiskHealthCache(t *testing.T) {
	f := &fakeDisks{h: map[string]diskhealth.Health{"nvme0n1": {Verdict: diskhealth.VerdictOK}}, reads: map[string]int{}}
	now := time.Unix(1000, 0)
	dh := NewDiskHealth(DiskHealthOptions{Read: f.read, MaxAge: 20 * time.Second, Now: func() time.Time { return now }})
	md := []spof.Group{mirror("storage/md/md0", onDisk("nvme0n1p1", "nvme0n1", spof.MemberOK))}
	mount := []spof.Group{mirror("storage/mount/root", onDisk("nvme0n1p1", "nvme0n1", spof.MemberOK))}
	dh.Mark(context.Background(), md)
	dh.Mark(context.Background(), mount)
	if _, err := dh.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.reads["nvme0n1"]; n != 1 {
		t.Fatalf("%d reads in one cycle, want 1", n)
	}
	now = now.Add(21 * time.Second)
	dh.Mark(context.Background(), md)
	if n := f.reads["nvme0n1"]; n != 2 {
		t.Fatalf("%d reads after MaxAge, want 2", n)
	}
	// A disk no group names any more is forgotten with its metrics.
	now = now.Add(11 * time.Minute)
	res, _ := dh.Collect(context.Background())
	if len(res.Metrics) != 0 {
		t.Errorf("%d metrics for a forgotten disk", len(res.Metrics))
	}
}

func TestDiskHealthMetrics(t *testing.T) {
	temp := 49.85
	media := uint64(3)
	f := &fakeDisks{reads: map[string]int{}, h: map[string]diskhealth.Health{
		"nvme0n1": {Protocol: diskhealth.ProtocolNVMe, Model: "QEMU NVMe Ctrl", Serial: "health1", Verdict: diskhealth.VerdictDegraded,
			Problems: []string{"x"}, CriticalWarning: u8(1), AvailableSpare: u8(3), SpareThreshold: u8(10), PercentageUsed: u8(104),
			MediaErrors: &media, TemperatureCelsius: &temp},
	}}
	dh := NewDiskHealth(DiskHealthOptions{Read: f.read})
	dh.Mark(context.Background(), []spof.Group{mirror("g", onDisk("nvme0n1", "nvme0n1", spof.MemberOK), onDisk("vdb", "vdb", spof.MemberOK))})
	res, err := dh.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range res.Metrics {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		var labels []string
		for _, l := range pb.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		v := pb.GetGauge().GetValue() + pb.GetCounter().GetValue()
		got[name+"{"+strings.Join(labels, ",")+"}"] = v
	}
	want := map[string]float64{
		"spofwatch_disk_health_ok{disk=nvme0n1}":                                              0,
		"spofwatch_disk_health_state{disk=nvme0n1,state=degraded}":                            1,
		"spofwatch_disk_health_state{disk=nvme0n1,state=ok}":                                  0,
		"spofwatch_disk_health_state{disk=vdb,state=unknown}":                                 1,
		"spofwatch_disk_health_state{disk=vdb,state=ok}":                                      0,
		"spofwatch_disk_critical_warning{disk=nvme0n1}":                                       1,
		"spofwatch_disk_available_spare_ratio{disk=nvme0n1}":                                  0.03,
		"spofwatch_disk_available_spare_threshold_ratio{disk=nvme0n1}":                        0.10,
		"spofwatch_disk_percentage_used_ratio{disk=nvme0n1}":                                  1.04,
		"spofwatch_disk_media_errors_total{disk=nvme0n1}":                                     3,
		"spofwatch_disk_temperature_celsius{disk=nvme0n1}":                                    49.85,
		"spofwatch_disk_info{disk=nvme0n1,model=QEMU NVMe Ctrl,protocol=nvme,serial=health1}": 1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g < v-1e-9 || g > v+1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if _, ok := got["spofwatch_disk_health_ok{disk=vdb}"]; ok {
		t.Error("health_ok exported for a disk whose health is unknown: unknown is never ok (nor 0)")
	}
}
