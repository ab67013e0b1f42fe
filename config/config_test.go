package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IPMI.Password != "s3cret" || cfg.UPS[0].Password != "s3cret" {
		t.Errorf("secrets not read from password_file (trailing newline must be trimmed): %q %q", cfg.IPMI.Password, cfg.UPS[0].Password)
	}
	if cfg.HostLabels["rack"] != "r12" || cfg.PowerFeeds["PSU2 Status"] != "ups-b" || cfg.UPS[0].MaxLoad != 80 {
		t.Errorf("values: %+v", cfg)
	}
	if iv, to := cfg.Schedule("md", 30*time.Second, 10*time.Second); iv != time.Minute || to != 5*time.Second {
		t.Errorf("md schedule = %s/%s", iv, to)
	}
	if iv, to := cfg.Schedule("ipmi", 10*time.Second, 10*time.Second); iv != 30*time.Second || to != 5*time.Second {
		t.Errorf("ipmi schedule = %s/%s", iv, to)
	}
	if time.Duration(cfg.UPS[0].MinRuntime) != 5*time.Minute {
		t.Errorf("min_runtime = %s", cfg.UPS[0].MinRuntime)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Parse("empty.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RAID.ZpoolPath != "zpool" || cfg.RAID.StorcliPath != "storcli64" {
		t.Errorf("defaults = %+v", cfg.RAID)
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	unreadable := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "ipmi:\n  interface: open\n  pasword_file: /x\n", []string{`bad.yml:3: unknown key "pasword_file" in ipmi`}},
		{"unknown top-level key", "host_label:\n  a: b\n", []string{`bad.yml:1: unknown key "host_label" in the top level`}},
		{"wrong type", "ups:\n  - name: a\n    target: a@h\n    max_load: lots\n", []string{"bad.yml:4: wrong type: cannot unmarshal !!str `lots` into float64"}},
		{"wrong duration", "collectors:\n  md:\n    interval: soon\n", []string{`bad.yml:3: "soon" is not a duration`}},
		{"missing password file", "ipmi:\n  interface: lanplus\n  host: h\n  password_file: /nonexistent/ipmi.pw\n", []string{"bad.yml:4: ipmi.password_file: cannot read secret file /nonexistent/ipmi.pw: no such file or directory"}},
		{"unreadable password file", "ups:\n  - name: a\n    target: a@h\n    password_file: " + unreadable + "\n", []string{"bad.yml:4: ups.0.password_file: cannot read secret file " + unreadable}},
		{"several problems at once", "ipmi:\n  interface: serial\nups:\n  - target: a@h:99999\n", []string{
			`bad.yml:2: ipmi.interface: unknown interface "serial"`, "bad.yml:4: ups.0: name is required", `bad.yml:4: ups.0.target: target "a@h:99999": bad port`}},
		{"reserved host label", "host_labels:\n  instance: x\n", []string{`bad.yml:2: host_labels.instance: "instance" is set by spofwatch itself`}},
		{"unknown collector", "collectors:\n  raid:\n    interval: 1m\n", []string{`bad.yml:2: collectors.raid: unknown collector "raid"`}},
		{"lanplus needs a host", "ipmi:\n  interface: lanplus\n", []string{"bad.yml:1: ipmi.host: interface lanplus needs a host"}},
		{"broken YAML", "ipmi: [\n", []string{"bad.yml:1: did not find expected node content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unreadable password file" && os.Geteuid() == 0 {
				// root reads mode-0 files; a directory is unreadable as a file for everyone
				tt.yaml = strings.Replace(tt.yaml, unreadable, t.TempDir(), 1)
				tt.want = []string{"bad.yml:4: ups.0.password_file: cannot read secret file "}
			}
			_, err := Parse("bad.yml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/spofwatch.yml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/spofwatch.yml: cannot read config") {
		t.Errorf("err = %v", err)
	}
}

// The UPS target rule is ups.ParseTarget's (the collector's), plus a port
// range check; config has no parser of its own.
func TestUPSTargetRule(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"ups-a", true},
		{"ups-a@nut1", true},
		{"ups-a@nut1:13493", true},
		{"ups-a@[::1]:3493", true},
		{"@nut1", false},
		{"a@h:0", false},
		{"a@h:99999", false},
		{"a@h:", false},
		{`a"b@h`, false}, // upsd does not allow the quote; the old parser did
	}
	for _, tt := range tests {
		y := fmt.Sprintf("ups:\n  - name: a\n    target: '%s'\n", tt.target)
		_, err := Parse("t.yml", []byte(y))
		if (err == nil) != tt.ok {
			t.Errorf("target %q: err = %v, want ok=%v", tt.target, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "t.yml:3: ups.0.target: ") {
			t.Errorf("target %q: error lacks its line: %v", tt.target, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{"testdata/full.yml"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("ipmi: [\n"))
	f.Add([]byte("alerting:\n  receivers:\n    - &b {name: a, type: webhook, url: 'http://x/'}\n    - {<<: *b, name: c, tmeout: 1s}\n  for: {warning: soon}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse("fuzz.yml", b)
		// Parity with yaml.v3's own strict decoding: whatever it refuses
		// (unknown keys, wrong types), Parse refuses too.
		var c Config
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if derr := dec.Decode(&c); derr != nil && !errors.Is(derr, io.EOF) && err == nil {
			t.Errorf("yaml.v3 refuses what Parse accepts: %v", derr)
		}
	})
}
