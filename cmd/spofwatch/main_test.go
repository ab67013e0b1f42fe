package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/spofwatch/spofwatch/internal/ttar"
	"github.com/spofwatch/spofwatch/ipmi/ipmisim"
	"github.com/spofwatch/spofwatch/report"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

var binary string

// TestMain builds the real binary once; the tests run it as an operator
// would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spofwatch-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "spofwatch")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture unpacks a mounts fixture tree and returns the flags that point
// the agent at it.
func fixture(t *testing.T, name string) []string {
	t.Helper()
	root := ttar.Extract(t, filepath.Join("..", "..", "collectors", "testdata", "mounts", name+".ttar"))
	return []string{"--path.procfs=" + filepath.Join(root, "proc"), "--path.sysfs=" + filepath.Join(root, "sys"),
		"--no-collector.uplink", "--config.file=" + filepath.Join(os.DevNull)}
}

func execCheck(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"check"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCheckExitCodes(t *testing.T) {
	tests := []struct {
		fixture string
		code    int
		text    string
	}{
		{"lvm-on-md-raid1", report.ExitOK, "storage/mount/root  redundant"},
		{"nvme-single", report.ExitWarning, "storage/mount/root      no_redundancy"},
		{"md-raid1-failed-leg", report.ExitCritical, "sdb1 (failed)"},
		{"md-inactive", report.ExitCritical, "down"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			out, errOut, code := execCheck(t, fixture(t, tt.fixture)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.text) {
				t.Errorf("text output lacks %q:\n%s", tt.text, out)
			}
			nagios, _, ncode := execCheck(t, append(fixture(t, tt.fixture), "--format=nagios")...)
			if ncode != tt.code || !strings.HasPrefix(nagios, "SPOFWATCH ") || !strings.Contains(nagios, "'storage/mount/root'=") {
				t.Errorf("nagios exit %d output %q", ncode, nagios)
			}
		})
	}
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "spofwatch.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var badConfigs = []struct{ name, body, want string }{
	{"unknown key", "host_labels:\n  rack: r1\nipmi:\n  interface: open\n  pasword_file: /x\n", `spofwatch.yml:5: unknown key "pasword_file" in ipmi`},
	{"wrong type", "ipmi:\n  port: six-two-three\n", "spofwatch.yml:2: wrong type: cannot unmarshal !!str `six-two...` into int"},
	{"unreadable password_file", "ups:\n  - name: a\n    target: a@localhost\n    password_file: /nonexistent/ups.pw\n", "spofwatch.yml:4: ups.0.password_file: cannot read secret file /nonexistent/ups.pw"},
	// Files the alert engine reads are checked by the same path as the
	// rest, with their line: check used to pass these and the daemon
	// refused them without one.
	{"missing secret_file", webhookConfig("      secret_file: /nonexistent/hook.secret\n"), "spofwatch.yml:6: alerting.receivers.0.secret_file: cannot read secret file /nonexistent/hook.secret: no such file or directory"},
	{"missing bearer_token_file", webhookConfig("      bearer_token_file: /nonexistent/hook.token\n"), "spofwatch.yml:6: alerting.receivers.0.bearer_token_file: cannot read secret file /nonexistent/hook.token"},
	{"missing basic_auth password_file", webhookConfig("      basic_auth:\n        username: spof\n        password_file: /nonexistent/hook.pw\n"), "spofwatch.yml:8: alerting.receivers.0.basic_auth.password_file: cannot read secret file /nonexistent/hook.pw"},
	{"missing tls.ca_file", webhookConfig("      tls:\n        ca_file: /nonexistent/ca.pem\n"), "spofwatch.yml:7: alerting.receivers.0.tls.ca_file: cannot read CA file /nonexistent/ca.pem"},
	// Header values with CR/LF or names with a space make every send fail.
	{"header value with CRLF", webhookConfig("      headers:\n        X-Team: \"ops\\r\\nX-Evil: 1\"\n"), `spofwatch.yml:7: alerting.receivers.0.headers.X-Team: receiver "ops": header X-Team: value has a control character`},
	{"header name with a space", webhookConfig("      headers:\n        \"X Team\": ops\n"), `spofwatch.yml:7: alerting.receivers.0.headers.X Team: receiver "ops": header name "X Team"`},
	{"alerting duration", "alerting:\n  repeat_interval: often\n", `spofwatch.yml:2: "often" is not a duration`},
}

// webhookConfig is a config with one webhook receiver; extra lines are
// appended to it from line 6 on.
func webhookConfig(extra string) string {
	return "alerting:\n  receivers:\n    - name: ops\n      type: webhook\n      url: http://127.0.0.1:1/hook\n" + extra
}

// Every error of a file is reported, each on its own line, in line order:
// not only the first, not all at the alerting: line.
func TestConfigErrorsAllReported(t *testing.T) {
	body := "alerting:\n  repeat_interval: often\n  receivers:\n    - name: ops\n      type: webhook\n      url: http://127.0.0.1:1/hook\n      secret_file: /nonexistent/hook.secret\nhost_labels:\n  job: x\n"
	cfg := writeConfig(t, t.TempDir(), body)
	_, errOut, code := execCheck(t, "--config.file="+cfg)
	if code != report.ExitUnknown {
		t.Errorf("exit %d, want 3", code)
	}
	var at []int
	for _, w := range []string{`:2: "often" is not a duration`, ":7: alerting.receivers.0.secret_file: ", `:9: host_labels.job: "job" is set by spofwatch itself`} {
		i := strings.Index(errOut, cfg+w)
		if i < 0 {
			t.Errorf("stderr lacks %q:\n%s", cfg+w, errOut)
		}
		at = append(at, i)
	}
	if !slices.IsSorted(at) {
		t.Errorf("errors not in line order:\n%s", errOut)
	}
}

// A secret file others may read is a warning, logged once per load, with
// the line that names it; it does not stop the agent.
func TestSecretReadableByOthersWarnsOnce(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "hook.token")
	if err := os.WriteFile(tok, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tok, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, webhookConfig("      bearer_token_file: "+tok+"\n"))
	out, errOut, code := execCheck(t, append(fixture(t, "nvme-single")[:3], "--config.file="+cfg)...)
	if code != report.ExitWarning {
		t.Errorf("exit %d, want 1 (the fixture's verdict)\n%s%s", code, out, errOut)
	}
	want := cfg + ":6: alerting.receivers.0.bearer_token_file: secret file " + tok + " is readable by every user (mode 0644)"
	if n := strings.Count(errOut, want); n != 1 {
		t.Errorf("warning %q logged %d times:\n%s", want, n, errOut)
	}
}

// A config path that never ends is refused after 1 MiB, by check and by
// the daemon alike.
func TestConfigTooLarge(t *testing.T) {
	want := "/dev/zero: cannot read config: larger than the 1048576 bytes allowed"
	_, errOut, code := execCheck(t, "--config.file=/dev/zero")
	if code != report.ExitUnknown || !strings.Contains(errOut, want) {
		t.Errorf("check: exit %d, stderr %q", code, errOut)
	}
	out, err := exec.Command(binary, "--config.file=/dev/zero", "--web.listen-address=127.0.0.1:"+freePort(t)).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), want) {
		t.Errorf("daemon: %v\n%s", err, out)
	}
}

func TestConfigErrorsCheckExits3(t *testing.T) {
	for _, tt := range badConfigs {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, t.TempDir(), tt.body)
			_, errOut, code := execCheck(t, "--config.file="+cfg)
			if code != report.ExitUnknown {
				t.Errorf("exit %d, want 3", code)
			}
			if !strings.Contains(errOut, cfg[:len(cfg)-len("spofwatch.yml")]+tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errOut)
			}
		})
	}
}

func TestConfigErrorsDaemonRefusesToStart(t *testing.T) {
	for _, tt := range badConfigs {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, t.TempDir(), tt.body)
			cmd := exec.Command(binary, "--config.file="+cfg, "--web.listen-address=127.0.0.1:"+freePort(t))
			out, err := cmd.CombinedOutput() // must exit by itself
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitConfig {
				t.Fatalf("daemon did not refuse with exit status %d (the unit's RestartPreventExitStatus): %v\n%s", ExitConfig, err, out)
			}
			if !strings.Contains(string(out), "refusing to start") || !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks the reason %q:\n%s", tt.want, out)
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// daemon starts the agent and waits until it is ready.
type daemon struct {
	cmd  *exec.Cmd
	base string
	log  *syncBuffer
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	port := freePort(t)
	d := &daemon{base: "http://127.0.0.1:" + port, log: &syncBuffer{mu: make(chan struct{}, 1)}}
	pre := []string{"--web.listen-address=127.0.0.1:" + port}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--path.state=") }) {
		pre = append(pre, "--path.state="+t.TempDir()) // never the machine's /var/lib/spofwatch
	}
	d.cmd = exec.Command(binary, append(pre, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
	})
	waitFor(t, 10*time.Second, func() bool {
		resp, err := http.Get(d.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "daemon ready: "+d.log.String())
	return d
}

func (d *daemon) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(d.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls a condition; it bounds waiting, it does not assert speed.
func waitFor(t *testing.T, limit time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// normalise drops what differs between two runs by nature: durations,
// timestamps and finding ages.
func normalise(t *testing.T, b []byte) report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	for i := range r.Findings {
		r.Findings[i].Since = ""
	}
	for i := range r.Groups { // a timestamp, like since
		r.Groups[i].StateSince = ""
	}
	for i := range r.Collectors {
		r.Collectors[i].DurationSeconds, r.Collectors[i].LastSuccess = 0, nil
	}
	return r
}

func TestAPIAgreesWithCheck(t *testing.T) {
	args := fixture(t, "md-raid1-one-disk")
	d := startDaemon(t, args...)
	api := normalise(t, []byte(d.get(t, "/api/v1/findings")))
	out, _, _ := execCheck(t, append(args, "--format=json")...)
	check := normalise(t, []byte(out))
	a, _ := json.Marshal(api)
	c, _ := json.Marshal(check)
	if !bytes.Equal(a, c) {
		t.Errorf("API and check disagree:\napi   %s\ncheck %s", a, c)
	}
	ids := map[string]string{}
	for _, g := range check.Groups {
		ids[g.ID] = g.State
	}
	// The md collector and the mounts collector see the same array.
	if ids["storage/mount/root"] != "redundant" || ids["storage/md/md0"] != "redundant" {
		t.Errorf("groups = %+v", check.Groups)
	}
	// The JSON keys other tooling relies on, exactly.
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"host", "groups", "findings", "collectors"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("top-level key %q missing", k)
		}
	}
	g := raw["groups"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "kind", "state", "members_total", "members_working", "members_required", "members"} {
		if _, ok := g[k]; !ok {
			t.Errorf("group key %q missing", k)
		}
	}
	f := raw["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"code", "severity", "group", "member", "summary", "since"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding key %q missing", k)
		}
	}
}

func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "host_labels:\n  rack: r1\n")
	d := startDaemon(t, append(fixture(t, "nvme-single")[:3], "--config.file="+cfg)...)
	if m := d.get(t, "/metrics"); !strings.Contains(m, `spofwatch_host_info{rack="r1"} 1`) {
		t.Fatalf("host_info missing:\n%s", m)
	}

	writeConfig(t, dir, "host_labels:\n  rack: r2\nbogus: 1\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(d.log.String(), "config reload rejected") }, "rejection log line")
	logged := d.log.String()
	if !strings.Contains(logged, `spofwatch.yml:3: unknown key \"bogus\"`) {
		t.Errorf("rejection does not name file and line:\n%s", logged)
	}
	if m := d.get(t, "/metrics"); !strings.Contains(m, `spofwatch_host_info{rack="r1"} 1`) {
		t.Errorf("old config not in force after a bad reload:\n%s", m)
	}

	writeConfig(t, dir, "host_labels:\n  rack: r2\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(d.get(t, "/metrics"), `spofwatch_host_info{rack="r2"} 1`)
	}, "new host label after a good reload")
	if r := d.get(t, "/-/healthy"); !strings.Contains(r, "Healthy") {
		t.Errorf("healthy = %q", r)
	}
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	d := startDaemon(t, fixture(t, "nvme-single")...)
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, d.log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	if !strings.Contains(d.log.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", d.log.String())
	}
}

// TestMetricsPassPromtool feeds a live scrape to the real promtool, which
// must print nothing.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool missing (Debian package prometheus; make test installs it): %v", err)
	}
	d := startDaemon(t, fixture(t, "md-raid1-failed-leg")...)
	metrics := d.get(t, "/metrics")
	for _, want := range []string{"spofwatch_group_state{", "spofwatch_finding{code=\"redundancy_lost\"", "spofwatch_build_info{", "spofwatch_collector_up{collector=\"mounts\"} 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestTextfileOutput checks the node_exporter textfile is written after an
// evaluation, holds only spofwatch metrics and passes promtool.
func TestTextfileOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spofwatch.prom")
	startDaemon(t, append(fixture(t, "nvme-single"), "--collector.textfile.output="+path)...)
	var b []byte
	waitFor(t, 10*time.Second, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && strings.Contains(string(b), "spofwatch_group_state")
	}, "textfile written")
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "spofwatch_") {
			t.Errorf("textfile carries a non-spofwatch metric (node_exporter would reject it): %s", line)
		}
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(string(b))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("promtool on the textfile: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the output: %v", entries)
	}
}

// TestDaemonSendsWebhook proves the wiring from evaluation to a real HTTP
// receiver: a critical finding in the fixture reaches the webhook, and the
// status page and /api/v1/alerts show the delivery.
func TestDaemonSendsWebhook(t *testing.T) {
	got := make(chan map[string]any, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var payload map[string]any
		json.NewDecoder(r.Body).Decode(&payload)
		got <- payload
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`host_labels: {rack: r9}
alerting:
  outbox_dir: %s/outbox
  receivers:
    - {name: ops, type: webhook, url: %q}
`, dir, srv.URL))
	d := startDaemon(t, append(fixture(t, "md-raid1-failed-leg")[:3], "--config.file="+cfg)...)
	var payload map[string]any
	select {
	case payload = <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook arrived\n%s", d.log.String())
	}
	b, _ := json.Marshal(payload)
	for _, want := range []string{`"version":"4"`, `"alertname":"SpofRedundancyLost"`, `"rack":"r9"`, `"group":"storage/mount/root"`, `"status":"firing"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("webhook payload lacks %s: %s", want, b)
		}
	}
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(d.get(t, "/api/v1/alerts"), `"delivered"`) }, "delivery recorded in /api/v1/alerts")
	if page := d.get(t, "/"); !strings.Contains(page, "Recent notifications") || !strings.Contains(page, "SpofRedundancyLost") {
		t.Errorf("status page does not show the notification")
	}
	// The fixture's array raises redundancy_lost for the mount and for md0
	// alike, so one or two notifications may have gone out by now.
	sent := regexp.MustCompile(`(?m)^spofwatch_alerting_notifications_sent_total\{receiver="ops"\} ([0-9]+)$`).FindStringSubmatch(d.get(t, "/metrics"))
	if sent == nil || sent[1] == "0" {
		t.Errorf("sent counter missing or zero: %v", sent)
	}
}

// TestHelpAndVersionExit: --help, --help-man and --version print and stop;
// they must never go on to start the daemon.
func TestHelpAndVersionExit(t *testing.T) {
	for _, flag := range []string{"--help", "--help-man", "--version"} {
		cmd := exec.Command(binary, flag, "--web.listen-address=127.0.0.1:"+freePort(t))
		done := make(chan error, 1)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil || out.Len() == 0 {
				t.Errorf("%s: %v, output %q", flag, err, out.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not exit: the daemon started", flag)
		}
	}
}

// TestPowerFeedsEndToEnd runs the real binary against a real BMC
// (ipmi_sim) and a real upsd: with both PSUs mapped to ups-a in the
// config, the power group has a shared_failure_domain naming ups-a; mapped
// across ups-a and ups-b, it has none.
func TestPowerFeedsEndToEnd(t *testing.T) {
	sim := ipmisim.Start(t)
	nut := nuttest.StartT(t, nuttest.Config{FixtureDir: filepath.Join("..", "..", "ups", "testdata", "nut"), UPS: []string{"ups-a", "ups-b"}})
	dir := t.TempDir()
	pw := filepath.Join(dir, "ipmi.pw")
	if err := os.WriteFile(pw, []byte(ipmisim.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upsPW := filepath.Join(dir, "nut.pw")
	if err := os.WriteFile(upsPW, []byte("monpass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(feedB string) string {
		return writeConfig(t, dir, fmt.Sprintf(`ipmi:
  interface: lanplus
  host: %s
  port: %d
  username: %s
  password_file: %s
  cipher_suite: 3
ups:
  - {name: ups-a, target: "ups-a@%s", username: monuser, password_file: %s}
  - {name: ups-b, target: "ups-b@%s", username: monuser, password_file: %s}
power_feeds:
  "PSU1 Status": ups-a
  "PSU2 Status": %s
`, sim.Host, sim.Port, ipmisim.Username, pw, nut.Addr, upsPW, nut.Addr, upsPW, feedB))
	}
	args := append(fixture(t, "nvme-single")[:3], "--no-collector.md", "--no-collector.bonding")
	for _, tc := range []struct {
		feedB  string
		shared bool
	}{{"ups-a", true}, {"ups-b", false}} {
		out, errOut, _ := execCheck(t, append(args, "--format=json", "--config.file="+config(tc.feedB))...)
		var r report.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("json: %v\n%s\n%s", err, out, errOut)
		}
		var shared *report.Finding
		for i, f := range r.Findings {
			if f.Code == "shared_failure_domain" && f.Group == "power/ipmi/psu" {
				shared = &r.Findings[i]
			}
		}
		for _, c := range r.Collectors {
			if (c.Name == "ipmi" || c.Name == "ups") && !c.OK {
				t.Fatalf("collector %s failed: %s", c.Name, c.Error)
			}
		}
		switch {
		case tc.shared && (shared == nil || shared.Member != "feed=ups-a" || !strings.Contains(shared.Summary, "feed ups-a carries PSU1 Status, PSU2 Status")):
			t.Errorf("both PSUs on ups-a: shared finding %+v\nall: %+v", shared, r.Findings)
		case !tc.shared && shared != nil:
			t.Errorf("PSUs split across UPSes must not share a domain: %+v", shared)
		}
	}
}

// TestWebConfigBasicAuthAndTLS: exporter-toolkit's web config protects every
// endpoint, the page and API included, not only /metrics.
func TestWebConfigBasicAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t)
	os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600)
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  ops: %s\n",
		filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), hash)), 0o600)

	port := freePort(t)
	cmd := exec.Command(binary, append(fixture(t, "nvme-single")[:3], "--web.listen-address=127.0.0.1:"+port, "--web.config.file="+webCfg, "--path.state="+t.TempDir())...)
	log := &syncBuffer{mu: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, user, pass string) (int, error) {
		req, _ := http.NewRequest("GET", "https://127.0.0.1:"+port+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	waitFor(t, 10*time.Second, func() bool { _, err := get("/-/healthy", "", ""); return err == nil }, "TLS listener")
	for _, path := range []string{"/metrics", "/api/v1/findings", "/"} {
		if code, err := get(path, "", ""); err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d %v, want 401", path, code, err)
		}
		if code, err := get(path, "ops", "wrong"); err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password: %d %v, want 401", path, code, err)
		}
		if code, err := get(path, "ops", "s3cret"); err != nil || code != http.StatusOK {
			t.Errorf("%s with credentials: %d %v, want 200", path, code, err)
		}
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://127.0.0.1:" + port + "/metrics"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("plain HTTP must not be served when TLS is configured")
	}
	if strings.Contains(log.String(), "s3cret") {
		t.Error("the password reached the log")
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestSIGHUPDuringStartup sends SIGHUP while the daemon is still loading
// its configuration, repeatedly: the signal must not kill it (exit 129 by
// the default action) but be taken as a reload once it runs. The config
// file is a FIFO, so the test knows the daemon is inside the slow start:
// opening the FIFO for writing returns only once the daemon opened it.
func TestSIGHUPDuringStartup(t *testing.T) {
	for i := range 15 {
		dir := t.TempDir()
		fifo := filepath.Join(dir, "spofwatch.yml")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		log := &syncBuffer{mu: make(chan struct{}, 1)}
		cmd := exec.Command(binary, append(fixture(t, "nvme-single")[:3], "--web.listen-address=127.0.0.1:"+port, "--config.file="+fifo, "--path.state="+t.TempDir())...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })

		feed := func(body string) {
			t.Helper()
			opened := make(chan *os.File, 1)
			go func() {
				f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err == nil {
					opened <- f
				}
			}()
			select {
			case f := <-opened:
				f.WriteString(body)
				f.Close()
			case err := <-exited:
				t.Fatalf("try %d: daemon exited before reading its config: %v\n%s", i, err, log.String())
			case <-time.After(10 * time.Second):
				t.Fatalf("try %d: daemon never opened its config\n%s", i, log.String())
			}
		}
		feed("host_labels:\n  rack: r1\n")
		// The daemon has opened its config and is reading it: mid-start.
		cmd.Process.Signal(syscall.SIGHUP)
		// Once started, the SIGHUP is taken as a reload, which reads the
		// config again.
		for started := time.Now(); !strings.Contains(log.String(), "spofwatch started"); {
			if time.Since(started) > 10*time.Second {
				t.Fatalf("try %d: daemon never started\n%s", i, log.String())
			}
			select {
			case err := <-exited:
				t.Fatalf("try %d: SIGHUP during startup ended the daemon: %v (exit code %d)\n%s", i, err, cmd.ProcessState.ExitCode(), log.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		feed("host_labels:\n  rack: r2\n")
		waitFor(t, 10*time.Second, func() bool { return strings.Contains(log.String(), "configuration reloaded") }, "reload after the early SIGHUP: "+log.String())
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("try %d: exit after an early SIGHUP and a SIGTERM: %v (exit code %d)\n%s", i, err, cmd.ProcessState.ExitCode(), log.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("try %d: daemon did not stop on SIGTERM", i)
		}
	}
}

// TestUnwritableOutboxIsAFindingOnEveryOutput: with an outbox that cannot
// be written (its directory path runs through a regular file, which fails
// for root too), the agent still starts and delivers from memory, and says
// alerting_degraded on the API, /metrics and the page.
func TestUnwritableOutboxIsAFindingOnEveryOutput(t *testing.T) {
	got := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	defer srv.Close()
	dir := t.TempDir()
	block := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`alerting:
  outbox_dir: %s/outbox
  receivers:
    - {name: ops, type: webhook, url: %q}
`, block, srv.URL))
	d := startDaemon(t, append(fixture(t, "md-raid1-failed-leg")[:3], "--config.file="+cfg)...)
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook delivered from memory\n%s", d.log.String())
	}
	degraded := regexp.MustCompile(`"code":\s*"alerting_degraded"`)
	waitFor(t, 15*time.Second, func() bool { return degraded.MatchString(d.get(t, "/api/v1/findings")) }, "alerting_degraded in /api/v1/findings")
	if m := d.get(t, "/metrics"); !strings.Contains(m, `spofwatch_finding{code="alerting_degraded",group="",member="",severity="warning"} 1`) {
		t.Errorf("/metrics lacks the alerting_degraded finding")
	}
	if page := d.get(t, "/"); !strings.Contains(page, "alerting degraded: alert outbox") || !strings.Contains(page, "not a directory") {
		t.Errorf("the page does not say why alerting is degraded")
	}
}
