package bonding

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readProcFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "proc", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// slaveView is the part of a slave the parser must get right.
type slaveView struct {
	Name           string
	MII            string
	Failures       int64
	Agg            int
	Actor, Partner int
	PartnerMAC     string
}

func viewSlaves(ss []Slave) []slaveView {
	var out []slaveView
	for _, s := range ss {
		out = append(out, slaveView{s.Name, s.MIIStatus, s.LinkFailureCount, s.AggregatorID, s.ActorPortState, s.PartnerPortState, s.PartnerMAC})
	}
	return out
}

func TestParseProc(t *testing.T) {
	U := Unknown
	tests := []struct {
		file string
		// bond level
		mode                            Mode
		active, primary, mii            string
		miimon, arp, up, down, minLinks int
		targets                         []string
		activeAgg, numPorts             int
		partnerMAC                      string
		slaves                          []slaveView
	}{
		{
			file: "magpie-8023ad.txt", mode: Mode8023AD, mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: 0, activeAgg: 1, numPorts: 2, partnerMAC: "02:01:00:00:01:01",
			slaves: []slaveView{
				{"eno3", "up", 0, 1, 63, 63, "02:01:00:00:01:01"},
				{"eno1", "up", 0, 1, 63, 63, "02:01:00:00:01:01"},
			},
		},
		{
			file: "magpie-split-aggregator.txt", mode: Mode8023AD, mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: 0, activeAgg: 2, numPorts: 1, partnerMAC: "00:23:04:ee:be:66",
			slaves: []slaveView{
				{"enp197s0f2", "up", 0, 1, 7, 13, "00:23:04:ee:be:66"},
				{"enp197s0f0", "up", 0, 2, 63, 63, "00:23:04:ee:be:66"},
			},
		},
		{
			// Without CAP_NET_ADMIN: no active aggregator block, no PDU details.
			file: "unprivileged-8023ad.txt", mode: Mode8023AD, mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: 0, activeAgg: U, numPorts: U,
			slaves: []slaveView{
				{"eno3", "up", 0, 1, U, U, ""},
				{"eno1", "up", 0, 1, U, U, ""},
			},
		},
		{
			file: "telegraf-8023ad-no-active-aggregator.txt", mode: Mode8023AD, mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: U, activeAgg: 0, numPorts: 0,
			slaves: []slaveView{
				{"eth1", "up", 0, 0, U, U, ""},
				{"eth2", "up", 3, 0, U, U, ""},
			},
		},
		{
			file: "telegraf-active-backup.txt", mode: ModeActiveBackup, active: "eth2", primary: "eth2", mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: U, activeAgg: U, numPorts: U,
			slaves: []slaveView{
				{"eth3", "down", 2, U, U, U, ""},
				{"eth2", "up", 0, U, U, U, ""},
			},
		},
		{
			file: "bonding-rst-round-robin.txt", mode: ModeBalanceRR, active: "eth0", mii: "up",
			miimon: 1000, arp: 0, up: 0, down: 0, minLinks: U, activeAgg: U, numPorts: U,
			slaves: []slaveView{
				{"eth1", "up", 1, U, U, U, ""},
				{"eth0", "up", 1, U, U, U, ""},
			},
		},
		{
			file: "arp-monitor-constructed.txt", mode: ModeActiveBackup, active: "ens1f1", mii: "up",
			miimon: 0, arp: 1000, up: 0, down: 0, minLinks: U, targets: []string{"192.0.2.1", "192.0.2.254"},
			activeAgg: U, numPorts: U,
			slaves: []slaveView{
				{"ens1f0", "down", 4, U, U, U, ""},
				{"ens1f1", "going back", 0, U, U, U, ""},
			},
		},
		{
			// Real kernel 6.1 (QEMU lab), read as root, after QMP set_link off.
			file: "qemu-6.1-active-backup-failover.txt", mode: ModeActiveBackup, active: "eth1", primary: "eth0", mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: U, activeAgg: U, numPorts: U,
			slaves: []slaveView{
				{"eth0", "down", 1, U, U, U, ""},
				{"eth1", "up", 0, U, U, U, ""},
			},
		},
		{
			file: "qemu-6.1-8023ad-link-down.txt", mode: Mode8023AD, mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: 0, activeAgg: 1, numPorts: 1, partnerMAC: "52:54:00:00:00:03",
			slaves: []slaveView{
				{"eth0", "up", 0, 1, 63, 63, "52:54:00:00:00:03"},
				{"eth1", "down", 1, 1, 15, 55, "52:54:00:00:00:03"},
			},
		},
		{
			file: "lacp-not-negotiated-constructed.txt", mode: Mode8023AD, mii: "up",
			miimon: 100, arp: 0, up: 0, down: 0, minLinks: 0, activeAgg: 1, numPorts: 1, partnerMAC: "00:00:00:00:00:00",
			slaves: []slaveView{
				{"enp145s0f0", "up", 0, 1, 69, 1, "00:00:00:00:00:00"},
				{"enp145s0f1", "up", 0, 2, 69, 1, "00:00:00:00:00:00"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := ParseProc("bond0", bytes.NewReader(readProcFixture(t, tt.file)))
			if err != nil {
				t.Fatalf("ParseProc: %v", err)
			}
			if len(b.Problems) != 0 {
				t.Errorf("problems on a clean fixture: %q", b.Problems)
			}
			got := []any{b.Mode, b.ActiveSlave, b.Primary, b.MIIStatus, b.MIIMon, b.ARPInterval, b.UpDelay, b.DownDelay, b.MinLinks, b.ActiveAggregator, b.NumPorts, b.PartnerMAC}
			want := []any{tt.mode, tt.active, tt.primary, tt.mii, tt.miimon, tt.arp, tt.up, tt.down, tt.minLinks, tt.activeAgg, tt.numPorts, tt.partnerMAC}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("bond fields\n got %v\nwant %v", got, want)
			}
			if !reflect.DeepEqual(b.ARPIPTargets, tt.targets) {
				t.Errorf("ARP targets = %q, want %q", b.ARPIPTargets, tt.targets)
			}
			if gs := viewSlaves(b.Slaves); !reflect.DeepEqual(gs, tt.slaves) {
				t.Errorf("slaves\n got %+v\nwant %+v", gs, tt.slaves)
			}
		})
	}
}

func TestParseProcTolerant(t *testing.T) {
	tests := []struct {
		name, in     string
		wantErr      bool
		wantProblems int
		check        func(t *testing.T, b Bond)
	}{
		{name: "empty", in: "", wantErr: true},
		{name: "not bonding", in: "hello: world\n", wantErr: true},
		{
			name:         "bad numbers kept per field",
			in:           "Bonding Mode: fault-tolerance (active-backup)\nMII Polling Interval (ms): lots\nUp Delay (ms): 200\n\nSlave Interface: eth0\nMII Status: up\nLink Failure Count: -3\n\nSlave Interface: eth1\nMII Status: down\nLink Failure Count: 7\n",
			wantProblems: 2,
			check: func(t *testing.T, b Bond) {
				if b.MIIMon != Unknown || b.UpDelay != 200 {
					t.Errorf("miimon=%d updelay=%d, want unknown and 200", b.MIIMon, b.UpDelay)
				}
				if len(b.Slaves) != 2 || b.Slaves[0].LinkFailureCount != Unknown || b.Slaves[1].LinkFailureCount != 7 {
					t.Errorf("slaves = %+v", b.Slaves)
				}
			},
		},
		{
			name: "unknown mode",
			in:   "Bonding Mode: quantum entanglement\nMII Status: up\n", wantProblems: 1,
			check: func(t *testing.T, b Bond) {
				if b.Mode != "" {
					t.Errorf("mode = %q, want empty", b.Mode)
				}
			},
		},
		{
			name: "slave without name is skipped",
			in:   "Bonding Mode: load balancing (xor)\n\nSlave Interface:\nMII Status: up\n\nSlave Interface: eth1\nMII Status: up\n", wantProblems: 1,
			check: func(t *testing.T, b Bond) {
				if len(b.Slaves) != 1 || b.Slaves[0].Name != "eth1" {
					t.Errorf("slaves = %+v", b.Slaves)
				}
				if b.MIIStatus != "up" {
					t.Errorf("the nameless slave's MII line leaked into the bond: %q", b.MIIStatus)
				}
			},
		},
		{
			name: "windows line ends and fail_over_mac suffix",
			in:   "Bonding Mode: fault-tolerance (active-backup) (fail_over_mac follow)\r\nCurrently Active Slave: None\r\nMII Status: down\r\n",
			check: func(t *testing.T, b Bond) {
				if b.Mode != ModeActiveBackup || b.ActiveSlave != "" || b.MIIStatus != "down" {
					t.Errorf("got mode=%q active=%q mii=%q", b.Mode, b.ActiveSlave, b.MIIStatus)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseProc("bond0", strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(b.Problems) != tt.wantProblems {
				t.Errorf("problems = %q, want %d", b.Problems, tt.wantProblems)
			}
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

func FuzzParseProc(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "proc"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(readProcFixture(f, e.Name()))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseProc("bond0", bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, s := range b.Slaves {
			if s.Name == "" {
				t.Fatalf("slave without a name: %+v", s)
			}
		}
		for _, v := range []int{b.MIIMon, b.ARPInterval, b.UpDelay, b.DownDelay, b.MinLinks, b.ActiveAggregator, b.NumPorts} {
			if v < Unknown {
				t.Fatalf("numeric field below Unknown: %d", v)
			}
		}
	})
}

func BenchmarkParseProc(b *testing.B) {
	data := readProcFixture(b, "magpie-8023ad.txt")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseProc("bondM", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
