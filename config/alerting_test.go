package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// writeFile writes a file with a mode set after the umask.
func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSignedPEM makes a CA certificate for tls.ca_file.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

var reErrLine = regexp.MustCompile(`(?m)^a\.yml:(\d+): `)

// Each problem of the alerting section gets its own line, and all of them
// are reported, in line order.
func TestAlertingErrorsEachOnTheirLine(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, filepath.Join(dir, "empty.secret"), "\n", 0o600)
	notPEM := writeFile(t, filepath.Join(dir, "ca.pem"), "not a certificate\n", 0o644)
	y := `alerting:
  min_severity: major
  for: {warning: soon, critical: 0s}
  for_code:
    psu_on_fire: 1m
  repeat_interval: often
  external_url: /relative
  receivers:
    - name: ops
      type: webhook
      url: "https://hooks.example/spof"
      timeout: quick
      secret_file: /nonexistent/hook.secret
      bearer_token_file: ` + empty + `
      headers:
        "X Team": storage
        X-Inject: "a\r\nInjected: 1"
        X-Fine: ok
      tls: {ca_file: ` + notPEM + `}
    - name: legacy
      type: webhook
      url: "ftp://hooks.example/legacy"
      basic_auth: {username: spof, password_file: /nonexistent/legacy.pw}
    - name: am
      type: alertmanager
      urls: ["http://am1:9093", "am2:9093"]
      resend_interval: 1 minute
      tls: {ca_file: /nonexistent/ca.pem}
    - name: ops
      type: email
`
	_, err := Parse("a.yml", []byte(y))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []struct {
		line int
		text string
	}{
		{2, `alerting.min_severity: `},
		{3, `"soon" is not a duration`},
		{5, `alerting.for_code.psu_on_fire: unknown finding code "psu_on_fire"`},
		{6, `"often" is not a duration`},
		{7, `alerting.external_url: "/relative": want an absolute http or https URL`},
		{12, `"quick" is not a duration`},
		{13, `alerting.receivers.0.secret_file: cannot read secret file /nonexistent/hook.secret: no such file or directory`},
		{14, `alerting.receivers.0.bearer_token_file: secret file ` + empty + ` is empty`},
		{16, `alerting.receivers.0.headers.X Team: receiver "ops": header name "X Team": character ' ' is not allowed`},
		{17, `alerting.receivers.0.headers.X-Inject: receiver "ops": header X-Inject: value has a control character ('\r') at byte 1`},
		{19, `alerting.receivers.0.tls.ca_file: CA file ` + notPEM + `: no PEM certificate found`},
		{22, `alerting.receivers.1.url: receiver "legacy": "ftp://hooks.example/legacy": want an absolute http or https URL`},
		{23, `alerting.receivers.1.basic_auth.password_file: cannot read secret file /nonexistent/legacy.pw`},
		{26, `alerting.receivers.2.urls.1: receiver "am": "am2:9093": want an absolute http or https URL`},
		{27, `"1 minute" is not a duration`},
		{28, `alerting.receivers.2.tls.ca_file: cannot read CA file /nonexistent/ca.pem`},
		{29, `alerting.receivers.3.name: duplicate name "ops"`},
		{30, `alerting.receivers.3.type: receiver "ops": type must be webhook or alertmanager, not "email"`},
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, "a.yml:"+strconv.Itoa(w.line)+": "+w.text) {
			t.Errorf("error lacks\na.yml:%d: %s", w.line, w.text)
		}
	}
	if t.Failed() {
		t.Logf("error:\n%s", msg)
	}
	// Every line is reported once per problem, in order, none at the
	// alerting: line itself.
	var lines []int
	for _, m := range reErrLine.FindAllStringSubmatch(msg, -1) {
		n, _ := strconv.Atoi(m[1])
		lines = append(lines, n)
	}
	if !slices.IsSorted(lines) || slices.Contains(lines, 1) || len(lines) != len(want) {
		t.Errorf("error lines %v: want %d errors, sorted, none at line 1\n%s", lines, len(want), msg)
	}
}

// Validate (the engine's check, no files) reports every problem too, by
// key path.
func TestAlertingValidateReportsAll(t *testing.T) {
	c := Alerting{MinSeverity: "major", Receivers: []Receiver{{Name: "a", Type: "webhook"}, {Name: "b", Type: "email"}}}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"alerting.min_severity: ", `alerting.receivers.0: receiver "a": url is required`, `alerting.receivers.1.type: `} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestAlertingFilesAccepted(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, filepath.Join(dir, "token"), "t0ken \r\n", 0o600)
	ca := writeFile(t, filepath.Join(dir, "ca.pem"), selfSignedPEM(t), 0o644)
	y := "alerting:\n  receivers:\n    - name: ops\n      type: webhook\n      url: https://h/\n      bearer_token_file: " + tok + "\n      headers: {X-Team: \"storage\\tteam\"}\n      tls: {ca_file: " + ca + "}\n"
	cfg, err := Parse("a.yml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings for a 0600 secret: %v", cfg.Warnings)
	}
}

func TestSecretFileRules(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		mode          os.FileMode
		password      string // "" when an error is wanted
		err, warning  string
	}{
		{"trailing whitespace trimmed", "s3cret \t\r\n", 0o600, "s3cret", "", ""},
		{"empty refused", "", 0o600, "", "bad.yml:4: ups.0.password_file: secret file %s is empty", ""},
		{"blank refused", " \n\n", 0o600, "", "bad.yml:4: ups.0.password_file: secret file %s is empty", ""},
		{"too large refused", strings.Repeat("x", 64<<10+1), 0o600, "", "bad.yml:4: ups.0.password_file: cannot read secret file %s: file too large: more than 65536 bytes", ""},
		{"readable by others warned", "s3cret\n", 0o644, "s3cret", "", "bad.yml:4: ups.0.password_file: secret file %s is readable by every user (mode 0644); chmod o-r it"},
		// root:spofwatch 0640 is how the package sets it up: no warning.
		{"readable by group not warned", "s3cret\n", 0o640, "s3cret", "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(dir, strconv.Itoa(i)), tt.content, tt.mode)
			cfg, err := Parse("bad.yml", []byte("ups:\n  - name: a\n    target: a@h\n    password_file: "+p+"\n"))
			if tt.err != "" {
				if want := strings.ReplaceAll(tt.err, "%s", p); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.UPS[0].Password != tt.password {
				t.Errorf("password %q, want %q", cfg.UPS[0].Password, tt.password)
			}
			want := strings.ReplaceAll(tt.warning, "%s", p)
			if tt.warning == "" && len(cfg.Warnings) != 0 || tt.warning != "" && (len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], want)) {
				t.Errorf("warnings %q, want %q", cfg.Warnings, want)
			}
		})
	}
}

func TestDefaultFor(t *testing.T) {
	for sev, want := range map[spof.Severity]time.Duration{spof.SeverityCritical: 0, spof.SeverityWarning: time.Minute, spof.SeverityInfo: time.Minute} {
		if got := DefaultFor(sev); got != want {
			t.Errorf("DefaultFor(%v) = %s, want %s", sev, got, want)
		}
		var c Alerting
		if got := c.PendingFor("redundancy_lost", sev); got != want {
			t.Errorf("PendingFor with no for: %s, want %s", got, want)
		}
	}
}
