package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDrillSection(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "ups-drill.password")
	if err := os.WriteFile(secret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := `drill:
  timeout: 5m
  md:
    allow_mismatch: ["md9", "swap*"]
  bonds:
    - bond: "bond0"
      targets: ["10.9.0.1", "2001:db8::1", "::ffff:10.9.0.2"]
      scheduled: true
      probe_timeout: 1s
    - bond: "bond*"
  ups:
    username: spofwatch-drill
    password_file: ` + secret + "\n"
	cfg, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Drill
	if got := d.TimeoutOr(time.Hour); got != 5*time.Minute {
		t.Errorf("timeout = %v", got)
	}
	for _, tc := range []struct {
		bond      string
		targets   []netip.Addr
		scheduled bool
		probe     time.Duration
	}{
		{"bond0", []netip.Addr{netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.9.0.2")}, true, time.Second},
		{"bond1", nil, false, DefaultDrillProbeTimeout},
		{"eth0", nil, false, DefaultDrillProbeTimeout},
	} {
		targets, scheduled, probe := d.BondFor(tc.bond)
		if !slices.Equal(targets, tc.targets) || scheduled != tc.scheduled || probe != tc.probe {
			t.Errorf("BondFor(%s) = %v %v %v, want %v %v %v", tc.bond, targets, scheduled, probe, tc.targets, tc.scheduled, tc.probe)
		}
	}
	for array, want := range map[string]bool{"md9": true, "swap1": true, "md0": false} {
		if got := d.MismatchAllowed(array); got != want {
			t.Errorf("MismatchAllowed(%s) = %v", array, got)
		}
	}
	if u, p := d.UPSCredentials(); u != "spofwatch-drill" || p != "pw" {
		t.Errorf("UPS credentials = %q %q", u, p)
	}
	// Without a section: the defaults.
	def, err := parseAt("spofwatch.yml", nil, acceptLoadTime)
	if err != nil {
		t.Fatal(err)
	}
	if got := def.Drill.TimeoutOr(2 * time.Minute); got != 2*time.Minute {
		t.Errorf("default timeout = %v", got)
	}
}

// Every bad drill entry is an error at its own line.
func TestDrillErrorsHaveLines(t *testing.T) {
	dir := t.TempDir()
	y := `drill:
  timeout: -2m
  md:
    allow_mismatch: ["md[", ""]
  bonds:
    - bond: "bond["
      targets: ["10.9.0.300", "gateway", "fe80::1%eth0"]
      probe_timeout: never
    - targets: ["10.9.0.1"]
  ups:
    username: drill
    password_file: ` + filepath.Join(dir, "missing") + `
  bogus: 1
`
	_, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`spofwatch.yml:2: "-2m" is not a duration`,
		`spofwatch.yml:4: drill.md.allow_mismatch.0: bad array glob "md["`,
		`spofwatch.yml:4: drill.md.allow_mismatch.1: bad array glob ""`,
		`spofwatch.yml:6: drill.bonds.0.bond: bad bond glob "bond["`,
		`spofwatch.yml:7: drill.bonds.0.targets.0: "10.9.0.300" is not an IP address`,
		`spofwatch.yml:7: drill.bonds.0.targets.1: "gateway" is not an IP address`,
		`spofwatch.yml:7: drill.bonds.0.targets.2: "fe80::1%eth0" is not an IP address`,
		`spofwatch.yml:8: "never" is not a duration`,
		`spofwatch.yml:9: drill.bonds.1: bond is required`,
		`spofwatch.yml:12: drill.ups.password_file:`,
		`spofwatch.yml:13: unknown key "bogus" in drill`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestDrillUPSPasswordNeedsUser(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(secret, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parseAt("spofwatch.yml", []byte("drill:\n  ups:\n    password_file: "+secret+"\n"), acceptLoadTime)
	if err == nil || !strings.Contains(err.Error(), "spofwatch.yml:3: drill.ups.password_file: is set but username is not") {
		t.Errorf("err = %v", err)
	}
}
