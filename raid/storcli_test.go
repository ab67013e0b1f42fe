package raid

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestParseStorcliFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		ctrls   int
		vds     []string // "c0 dg/vd type state"
		drives  []string // states of the first controller's drives
		spares  int
		packsOK []bool
		model   string
	}{
		{file: "hpe-mr216i-raid1-optimal.json", ctrls: 1, vds: []string{"0/239 RAID1 Optl"}, drives: []string{"Onln", "Onln"}, model: "HPE MR216i-a Gen10+"},
		{file: "hpe-mr216i-raid1-offline.json", ctrls: 1, vds: []string{"0/239 RAID1 Dgrd"}, drives: []string{"Onln", "Offln"}, model: "HPE MR216i-a Gen10+"},
		{file: "hpe-mr216i-raid1-rebuild.json", ctrls: 1, vds: []string{"0/239 RAID1 Dgrd"}, drives: []string{"Onln", "Rbld"}, model: "HPE MR216i-a Gen10+"},
		// The DHS row of TOPOLOGY is a DRIVE row of DG 0 outside any array.
		{file: "lsi-9260-raid1-dhs-bbu-optimal.json", ctrls: 1, vds: []string{"0/0 RAID1 Optl"}, drives: []string{"Onln", "Onln", "DHS"}, spares: 1, packsOK: []bool{true}, model: "LSI MegaRAID SAS 9260-4i"},
		{file: "lsi-9260-raid1-dhs-bbu-failed.json", ctrls: 1, vds: []string{"0/0 RAID1 Optl"}, drives: []string{"Onln", "Onln", "DHS"}, spares: 1, packsOK: []bool{false}, model: "LSI MegaRAID SAS 9260-4i"},
		{file: "nytro-two-controllers.json", ctrls: 2, vds: []string{"0/1 NytroCache1 Optl", "1/0 RAID1 Optl"}, drives: []string{"Onln", "Onln", "Onln", "Onln"}, model: "Nytro MegaRAID8100-4i"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/storcli", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			ctrls, err := ParseStorcli(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(ctrls) != tc.ctrls {
				t.Fatalf("%d controllers", len(ctrls))
			}
			c := ctrls[0]
			if c.Model != tc.model || c.Err != "" || len(c.Problems) != 0 {
				t.Errorf("model %q err %q problems %v", c.Model, c.Err, c.Problems)
			}
			var vds []string
			for _, vd := range c.VDs {
				vds = append(vds, fmt.Sprintf("%d/%d %s %s", vd.DG, vd.VD, vd.Type, vd.State))
			}
			if len(vds) != len(tc.vds) {
				t.Fatalf("vds %v, want %v", vds, tc.vds)
			}
			for i := range vds {
				if vds[i] != tc.vds[i] {
					t.Errorf("vd %d: %s, want %s", i, vds[i], tc.vds[i])
				}
			}
			var states []string
			for _, d := range c.Drives {
				states = append(states, d.State)
			}
			if len(states) != len(tc.drives) {
				t.Fatalf("drives %v, want %v", states, tc.drives)
			}
			for i := range states {
				if states[i] != tc.drives[i] {
					t.Errorf("drive %d: %s, want %s", i, states[i], tc.drives[i])
				}
			}
			if len(c.Spares) != tc.spares {
				t.Errorf("%d spares", len(c.Spares))
			}
			if len(c.EnergyPacks) != len(tc.packsOK) {
				t.Fatalf("energy packs %+v", c.EnergyPacks)
			}
			for i, ok := range tc.packsOK {
				if c.EnergyPacks[i].Optimal() != ok {
					t.Errorf("pack %+v optimal, want %v", c.EnergyPacks[i], ok)
				}
			}
		})
	}
	// Controller 1 of the Nytro sample: numeric DG/VD, slots " :4".
	b, _ := os.ReadFile("testdata/storcli/nytro-two-controllers.json")
	ctrls, _ := ParseStorcli(b)
	c1 := ctrls[1]
	if len(c1.VDs) != 1 || c1.VDs[0].DG != 0 || c1.VDs[0].Type != "RAID0" || len(c1.Drives) != 4 || c1.Drives[0].Name() != ":4" {
		t.Errorf("controller 1: %+v", c1)
	}
	if ctrls[0].ArrayTypes[0] != "RAID1" {
		t.Errorf("array types %v", ctrls[0].ArrayTypes)
	}
}

func TestParseStorcliFailures(t *testing.T) {
	if _, err := ParseStorcli([]byte("CLI Version = 007.2807\nController = 0\n")); err == nil {
		t.Error("text output accepted")
	}
	ctrls, err := ParseStorcli([]byte(`{"Controllers":[{"Command Status":{"Controller":3,"Status":"Failure","Description":"Controller 3 not found"}}]}`))
	if err != nil || len(ctrls) != 1 || ctrls[0].ID != 3 || ctrls[0].Err == "" {
		t.Errorf("%+v %v", ctrls, err)
	}
}

func TestRequiredDrives(t *testing.T) {
	for _, tc := range []struct {
		typ       string
		n, req    int
		redundant bool
	}{
		{"RAID0", 4, 4, false}, {"RAID1", 2, 1, true}, {"RAID1", 1, 1, false}, {"RAID5", 4, 3, true},
		{"RAID6", 6, 4, true}, {"RAID10", 4, 3, true}, {"RAID50", 6, 5, true}, {"RAID60", 8, 6, true},
		{"NytroCache1", 2, 2, false},
	} {
		req, red := RequiredDrives(tc.typ, tc.n)
		if req != tc.req || red != tc.redundant {
			t.Errorf("%s/%d: %d %v", tc.typ, tc.n, req, red)
		}
	}
}

func FuzzParseStorcli(f *testing.F) {
	files, _ := filepath.Glob("testdata/storcli/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctrls, err := ParseStorcli(data)
		if err != nil {
			return
		}
		for _, c := range ctrls {
			for _, vd := range c.VDs {
				n := 0
				for _, d := range c.Drives {
					if d.DG == vd.DG {
						n++
					}
				}
				if req, _ := RequiredDrives(vd.Type, n); req < 1 {
					t.Fatalf("required %d", req)
				}
			}
			for _, d := range c.Drives {
				_ = d.Name()
			}
		}
	})
}
