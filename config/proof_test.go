package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

func TestProofSection(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name, yaml string
		group      spof.Group
		want       time.Duration
	}{
		{"default", "", spof.Group{ID: "storage/md/md0", Kind: spof.KindStorage}, spof.DefaultProofMaxAge},
		{"max_age", "proof:\n  max_age: 30d\n", spof.Group{ID: "storage/md/md0", Kind: spof.KindStorage}, 30 * day},
		{"kind", "proof:\n  max_age: 30d\n  kinds:\n    ups: 180d\n", spof.Group{ID: "ups/nut/ups-a", Kind: spof.KindUPS}, 180 * day},
		{"kind of another", "proof:\n  max_age: 30d\n  kinds:\n    ups: 180d\n", spof.Group{ID: "storage/md/md0", Kind: spof.KindStorage}, 30 * day},
		{"group beats kind", "proof:\n  kinds:\n    storage: 180d\n  groups:\n    - group: storage/zfs/tank/*\n      max_age: 35d\n", spof.Group{ID: "storage/zfs/tank/mirror-0", Kind: spof.KindStorage}, 35 * day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseAt("spofwatch.yml", []byte(tc.yaml), acceptLoadTime)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.ProofPolicy().MaxAgeFor(tc.group); got != tc.want {
				t.Errorf("max age for %s = %v, want %v", tc.group.ID, got, tc.want)
			}
		})
	}
}

// Every bad entry is an error at its line, all of them reported.
func TestProofErrorsHaveLines(t *testing.T) {
	y := `proof:
  max_age: -1d
  kinds:
    storage: 0s
    disks: 30d
  groups:
    - group: storage/md/[
      max_age: 7d
    - group: storage/md/md1
    - max_age: 7d
    - group: ups/*
      max_age: soon
`
	_, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"spofwatch.yml:2",
		`spofwatch.yml:4: proof.kinds.storage: max age must be positive`,
		`spofwatch.yml:5: proof.kinds.disks: unknown kind "disks"`,
		`spofwatch.yml:7: proof.groups.0.group: bad group glob "storage/md/["`,
		`spofwatch.yml:9: proof.groups.1: max_age is required and must be positive`,
		`spofwatch.yml:10: proof.groups.2: group is required`,
		`spofwatch.yml:12: "soon" is not a duration`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
