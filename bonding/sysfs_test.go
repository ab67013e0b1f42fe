package bonding

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/internal/ttar"
)

// The fixture trees are shared with the collector tests; see
// collectors/testdata/bonding/PROVENANCE.md.
func tree(t *testing.T, name string) FS {
	t.Helper()
	dir := ttar.Extract(t, filepath.Join("..", "collectors", "testdata", "bonding", name+".ttar"))
	return NewFS(filepath.Join(dir, "sys"), filepath.Join(dir, "proc"))
}

type slaveSummary struct {
	Name, MII, State string
	Failures         int64
	Agg              int
	Device, Card     string
	VF               bool
}

func summarize(ss []Slave) []slaveSummary {
	var out []slaveSummary
	for _, s := range ss {
		out = append(out, slaveSummary{s.Name, s.MIIStatus, s.State, s.LinkFailureCount, s.AggregatorID, s.Device, s.Card, s.VirtualFunction})
	}
	return out
}

func TestReadBondTrees(t *testing.T) {
	U := Unknown
	tests := []struct {
		tree, bond          string
		mode                Mode
		active, primary     string
		miimon, arp         int
		activeAgg, numPorts int
		partnerMAC          string
		slaves              []slaveSummary
		problem             string // substring expected among Problems
	}{
		{
			tree: "active-backup", bond: "bond0", mode: ModeActiveBackup, active: "eno1", primary: "eno1",
			miimon: 100, arp: 0, activeAgg: U, numPorts: U,
			slaves: []slaveSummary{
				{"eno1", "up", "active", 0, 0, "0000:3b:00.0", "0000:3b:00", false},
				{"ens2f0", "up", "backup", 0, 0, "0000:5e:00.0", "0000:5e:00", false},
			},
		},
		{
			tree: "active-backup-failover", bond: "bond0", mode: ModeActiveBackup, active: "ens2f0", primary: "eno1",
			miimon: 100, arp: 0, activeAgg: U, numPorts: U,
			slaves: []slaveSummary{
				{"eno1", "down", "backup", 1, 0, "0000:3b:00.0", "0000:3b:00", false},
				{"ens2f0", "up", "active", 0, 0, "0000:5e:00.0", "0000:5e:00", false},
			},
		},
		{
			tree: "one-card", bond: "bond0", mode: ModeActiveBackup, active: "eno1",
			miimon: 100, arp: 0, activeAgg: U, numPorts: U,
			slaves: []slaveSummary{
				{"eno1", "up", "active", 0, 0, "0000:3b:00.0", "0000:3b:00", false},
				{"eno2", "up", "backup", 0, 0, "0000:3b:00.1", "0000:3b:00", false},
			},
		},
		{
			tree: "vfs-one-port", bond: "bond0", mode: ModeActiveBackup, active: "enp59s2",
			miimon: 100, arp: 0, activeAgg: U, numPorts: U,
			slaves: []slaveSummary{
				{"enp59s2", "up", "active", 0, 0, "0000:3b:00.0", "0000:3b:00", true},
				{"enp59s10", "up", "backup", 0, 0, "0000:3b:00.0", "0000:3b:00", true},
			},
		},
		{
			tree: "split-aggregator", bond: "bondm", mode: Mode8023AD,
			miimon: 100, arp: 0, activeAgg: 2, numPorts: 1, partnerMAC: "00:23:04:ee:be:66",
			slaves: []slaveSummary{
				{"enp197s0f2", "up", "backup", 0, 1, "0000:c5:00.2", "0000:c5:00", false},
				{"enp197s0f0", "up", "active", 0, 2, "0000:c5:00.0", "0000:c5:00", false},
			},
		},
		{
			tree: "unprivileged-8023ad", bond: "bondM", mode: Mode8023AD,
			miimon: 100, arp: 0, activeAgg: 1, numPorts: 2,
			slaves: []slaveSummary{
				{"eno3", "up", "active", 0, 1, "0000:3e:00.0", "0000:3e:00", false},
				{"eno1", "up", "active", 0, 1, "0000:3d:00.0", "0000:3d:00", false},
			},
			problem: "ad_partner_mac: hidden",
		},
		{
			// Old kernels: no mode or monitor attributes, slaves only
			// reachable as <bond>/slave_<if>, no /proc file.
			tree: "old-naming", bond: "int", miimon: U, arp: U, activeAgg: U, numPorts: U,
			slaves: []slaveSummary{
				{"eth5", "up", "", Unknown, U, "", "", false},
				{"eth1", "down", "", Unknown, U, "", "", false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			b, err := tree(t, tt.tree).Bond(tt.bond)
			if err != nil {
				t.Fatalf("Bond: %v", err)
			}
			got := []any{b.Mode, b.ActiveSlave, b.Primary, b.MIIMon, b.ARPInterval, b.ActiveAggregator, b.NumPorts, b.PartnerMAC}
			want := []any{tt.mode, tt.active, tt.primary, tt.miimon, tt.arp, tt.activeAgg, tt.numPorts, tt.partnerMAC}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("bond fields\n got %v\nwant %v", got, want)
			}
			// Aggregator IDs outside 802.3ad read N/A in sysfs: 0.
			if gs := summarize(b.Slaves); !reflect.DeepEqual(gs, tt.slaves) {
				t.Errorf("slaves\n got %+v\nwant %+v", gs, tt.slaves)
			}
			joined := strings.Join(b.Problems, "\n")
			if tt.problem == "" && joined != "" {
				t.Errorf("unexpected problems: %s", joined)
			}
			if tt.problem != "" && !strings.Contains(joined, tt.problem) {
				t.Errorf("problems %q lack %q", joined, tt.problem)
			}
		})
	}
}

func TestBondNames(t *testing.T) {
	fs := tree(t, "old-naming")
	names, err := fs.BondNames()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bond0", "dmz", "int"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	bonds, err := fs.Bonds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(bonds) != 3 || len(bonds[0].Slaves) != 0 || len(bonds[1].Slaves) != 2 {
		t.Errorf("bonds = %+v", bonds)
	}

	empty := t.TempDir()
	if _, err := NewFS(filepath.Join(empty, "sys"), filepath.Join(empty, "proc")).BondNames(); !errors.Is(err, ErrNoBonding) {
		t.Errorf("empty host: err = %v, want ErrNoBonding", err)
	}
}

// A bond listed nowhere but /proc (no sysfs) is still read, from /proc.
func TestBondFromProcOnly(t *testing.T) {
	dir := t.TempDir()
	procDir := filepath.Join(dir, "proc", "net", "bonding")
	if err := os.MkdirAll(procDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "proc", "telegraf-active-backup.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(procDir, "bond7"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	fs := NewFS(filepath.Join(dir, "sys"), filepath.Join(dir, "proc"))
	bonds, err := fs.Bonds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(bonds) != 1 || bonds[0].Name != "bond7" || bonds[0].Mode != ModeActiveBackup || bonds[0].ActiveSlave != "eth2" || len(bonds[0].Slaves) != 2 {
		t.Fatalf("bonds = %+v", bonds)
	}
	if _, err := fs.Bond("nope"); err == nil {
		t.Error("reading a bond that exists nowhere succeeded")
	}
	if _, err := fs.Bond("../etc"); err == nil {
		t.Error("a bond name with a slash was accepted")
	}
}
