package config

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The config file is read through a bounded reader: /dev/zero and an
// oversized file are refused with the file and the limit named, instead of
// exhausting memory.
func TestConfigFileSizeBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yml")
	body := "host_labels:\n  rack: r1\n" + "# " + strings.Repeat("x", MaxFileSize) + "\n"
	if err := os.WriteFile(big, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/zero", big} {
		_, err := Load(path)
		want := path + ": cannot read config: larger than the 1048576 bytes allowed"
		if err == nil || err.Error() != want {
			t.Errorf("Load(%s) = %v, want %q", path, err, want)
		}
	}
	if _, err := Parse("big.yml", []byte(body)); err == nil || !strings.Contains(err.Error(), "larger than the 1048576 bytes allowed") {
		t.Errorf("Parse of %d bytes: %v", len(body), err)
	}
}

// A mapping with more keys than any real section is refused with its line
// before yaml.v3's quadratic duplicate-key check runs (a 100k-key map took
// 31 s before).
func TestHugeMappingRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("raid:\n  zpool_path: zpool\nhost_labels:\n")
	n := 0
	for ; b.Len() < MaxFileSize-32; n++ {
		fmt.Fprintf(&b, " %x: 0\n", n)
	}
	if n < 100_000 {
		t.Fatalf("only %d keys fit the size cap", n)
	}
	_, err := Parse("big.yml", []byte(b.String()))
	want := fmt.Sprintf("big.yml:4: mapping has %d entries, more than the %d allowed", n, maxMappingEntries)
	if err == nil || err.Error() != want {
		t.Errorf("err = %.300v, want %q", err, want)
	}
	// Just under the bound still loads.
	b.Reset()
	b.WriteString("power_feeds:\n")
	for i := range maxMappingEntries {
		fmt.Fprintf(&b, "  PSU%d Status: ups-a\n", i)
	}
	cfg, err := Parse("ok.yml", []byte(b.String()))
	if err != nil || len(cfg.PowerFeeds) != maxMappingEntries {
		t.Errorf("err = %v, %d feeds", err, len(cfg.PowerFeeds))
	}
}

// Huge maps within the size cap stay cheap; see TestHugeMappingRefused.
func BenchmarkParseHugeMapping(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("host_labels:\n")
	for i := 0; sb.Len() < MaxFileSize-32; i++ {
		fmt.Fprintf(&sb, " %x: 0\n", i)
	}
	doc := []byte(sb.String())
	for b.Loop() {
		if _, err := Parse("big.yml", doc); err == nil {
			b.Fatal("accepted")
		}
	}
}

// A file that is not a spofwatch config at all yields a bounded report.
func TestErrorCountBounded(t *testing.T) {
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "key%d: 1\n", i)
	}
	_, err := Parse("x.yml", []byte(b.String()))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[len(lines)-1] != "x.yml: 150 more errors not shown" || !strings.HasPrefix(lines[0], "x.yml:1: ") {
		t.Errorf("%d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

func TestCheckHostLabelName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for valid
	}{
		{"rack", ""},
		{"_site", ""},
		{"job", "is set by spofwatch itself"},
		{"instance", "is set by spofwatch itself"},
		{"alertname", "is set by spofwatch itself"},
		{"severity", "is set by spofwatch itself"},
		{"group", "is set by spofwatch itself"},
		{"member", "is set by spofwatch itself"},
		{"__meta", "not a valid Prometheus label name"},
		{"1rack", "not a valid Prometheus label name"},
		{"rack-id", "not a valid Prometheus label name"},
		{"", "not a valid Prometheus label name"},
	}
	for _, tt := range tests {
		err := CheckHostLabelName(tt.name)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckHostLabelName(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// config is below alerting: it must not import it (alerting imports config
// for its schema).
func TestConfigDoesNotImportAlerting(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "github.com/spofwatch/spofwatch/alerting") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

// Anchors, aliases and merge keys are walked like the keys they stand for.
func TestAliasesAndMergeKeys(t *testing.T) {
	y := `alerting:
  receivers:
    - &base {name: a, type: webhook, url: "http://x/", timeout: 5s}
    - <<: *base
      name: b
    - <<: *base
      name: c
      tmeout: 5s
  for: {warning: &d nope, info: *d}
`
	_, err := Parse("m.yml", []byte(y))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`m.yml:8: unknown key "tmeout" in alerting.receivers[]`, `m.yml:9: "nope" is not a duration`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	cfg, err := Parse("m.yml", []byte(strings.NewReplacer("      tmeout: 5s\n", "", "nope", "2m").Replace(y)))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Alerting.Receivers; len(r) != 3 || r[2].Name != "c" || r[2].URL != "http://x/" || r[2].EffectiveTimeout().Seconds() != 5 {
		t.Errorf("merged receivers %+v", r)
	}
}
