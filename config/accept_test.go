package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

var acceptLoadTime = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func TestAcceptSection(t *testing.T) {
	y := `accept:
  - code: no_redundancy
    group: storage/mount/root
    reason: "stateless worker, rebuilt from image"
    until: 2027-06-30
    by: ops-team
  - code: shared_failure_domain
    group: network/bond/*
    member: nic_card=*
    reason: second card on order
    until: 2027-01-15T00:00:00Z
`
	cfg, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime)
	if err != nil {
		t.Fatal(err)
	}
	accs := cfg.Acceptances()
	if len(accs) != 2 {
		t.Fatalf("acceptances = %+v", accs)
	}
	want := spof.Acceptance{ID: "no_redundancy:storage/mount/root", Code: spof.CodeNoRedundancy, Group: "storage/mount/root", Reason: "stateless worker, rebuilt from image", By: "ops-team", Until: time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)}
	if accs[0] != want {
		t.Errorf("acceptance = %+v\nwant         %+v", accs[0], want)
	}
	if accs[1].ID != "shared_failure_domain:network/bond/*:nic_card=*" || !accs[1].Until.Equal(time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("second acceptance = %+v", accs[1])
	}
}

// Every guard-rail violation is an error at its entry's line, all of them
// reported.
func TestAcceptErrorsHaveLines(t *testing.T) {
	y := `accept:
  - code: no_redundancy
    group: storage/mount/root
    until: 2027-06-30
  - code: no_redundancy
    group: "*"
    reason: everything
    until: 2027-06-30
  - code: redundancy_lost
    group: power/ipmi/*
    reason: psu on order
    until: 2027-01-01
  - code: collector_unavailable
    group: collector/ipmi
    reason: no bmc
    until: 2027-01-01
  - code: no_redundancy
    group: storage/mount/boot
    reason: r
    until: 2026-01-01
  - code: no_redundancy
    group: storage/mount/var
    reason: r
    until: 2031-01-01
  - code: no_redundancy
    group: storage/mount/[
    reason: r
    until: someday
`
	_, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"spofwatch.yml:2: accept.0: reason is required",
		"spofwatch.yml:5: accept.1: group \"*\" must start with a literal kind",
		"spofwatch.yml:9: accept.2: code redundancy_lost is critical: name the group exactly",
		"spofwatch.yml:13: accept.3: code collector_unavailable cannot be accepted",
		"spofwatch.yml:21: accept.5: until 2031-01-01 is more than 365 days ahead",
		"spofwatch.yml:28: \"someday\" is not a date",
		"spofwatch.yml:25: accept.6: bad group glob",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "accept.6: until is required") {
		t.Errorf("a bad date is reported twice:\n%v", err)
	}
}

// An acceptance that has run out is a warning with its line, never an
// error: the agent must keep starting (and reloading) after the date, so
// that the finding comes back.
func TestExpiredAcceptanceWarnsAndStays(t *testing.T) {
	y := "accept:\n  - {code: no_redundancy, group: storage/mount/boot, reason: r, until: 2026-01-01}\n"
	cfg, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime)
	if err != nil {
		t.Fatalf("an expired acceptance refused the config: %v", err)
	}
	if len(cfg.Acceptances()) != 1 {
		t.Errorf("the expired entry was dropped")
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "spofwatch.yml:2: accept.0: acceptance of no_redundancy on storage/mount/boot expired on 2026-01-01") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestAcceptMaxAhead(t *testing.T) {
	y := "accept_max_ahead: 2000d\naccept:\n  - {code: no_redundancy, group: storage/mount/root, reason: r, until: 2031-01-01}\n"
	if _, err := parseAt("spofwatch.yml", []byte(y), acceptLoadTime); err != nil {
		t.Errorf("a longer configured maximum is refused: %v", err)
	}
}
