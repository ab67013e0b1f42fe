package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/spof"
)

// alertmanagerProc is a real Alertmanager (Debian prometheus-alertmanager)
// on a free loopback port with private storage and clustering off.
type alertmanagerProc struct {
	t       testing.TB
	bin     string
	dir     string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
}

func alertmanagerBinary(t testing.TB) string {
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Alertmanager not found (Debian package prometheus-alertmanager; scripts/apt-packages.txt)")
	return ""
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startAlertmanager(t testing.TB, hookURL string) *alertmanagerProc {
	t.Helper()
	am := &alertmanagerProc{t: t, bin: alertmanagerBinary(t), dir: t.TempDir(), addr: freeAddr(t)}
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, group, member]
  group_wait: 50ms
  group_interval: 300ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
`, hookURL)
	writeFile(t, filepath.Join(am.dir, "alertmanager.yml"), cfg)
	am.start()
	t.Cleanup(am.stop)
	return am
}

func (am *alertmanagerProc) url() string { return "http://" + am.addr }

func (am *alertmanagerProc) start() {
	am.t.Helper()
	f, err := os.OpenFile(filepath.Join(am.dir, "alertmanager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		am.t.Fatal(err)
	}
	am.logFile = f
	am.cmd = exec.Command(am.bin,
		"--config.file="+filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address="+am.addr,
		"--cluster.listen-address=",
		"--log.level=debug",
	)
	am.cmd.Stdout, am.cmd.Stderr = f, f
	if err := am.cmd.Start(); err != nil {
		am.t.Fatalf("start %s: %v", am.bin, err)
	}
	am.exited = make(chan struct{})
	go func() { am.cmd.Wait(); close(am.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(am.url() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-am.exited:
			log, _ := os.ReadFile(f.Name())
			am.t.Fatalf("alertmanager exited during start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(f.Name())
			am.t.Fatalf("alertmanager on %s not ready: %v\n%s", am.addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (am *alertmanagerProc) stop() {
	if am.cmd == nil || am.cmd.Process == nil {
		return
	}
	am.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-am.exited:
	case <-time.After(10 * time.Second):
		am.cmd.Process.Kill()
		<-am.exited
	}
	am.cmd = nil
	am.logFile.Close()
}

// gettableAlert is the part of Alertmanager's GET /api/v2/alerts we check.
type gettableAlert struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func (am *alertmanagerProc) alerts() ([]gettableAlert, error) {
	resp, err := http.Get(am.url() + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var as []gettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		return nil, err
	}
	return as, nil
}

// waitAlert polls AM until the alert with fingerprint fp is present
// (want) or absent (!want), and returns how long that took.
func (am *alertmanagerProc) waitAlert(fp string, want bool, deadline time.Duration) (gettableAlert, time.Duration) {
	am.t.Helper()
	start := time.Now()
	for {
		as, err := am.alerts()
		if err == nil {
			var found *gettableAlert
			for i := range as {
				if as[i].Fingerprint == fp {
					found = &as[i]
				}
			}
			if (found != nil) == want {
				if found == nil {
					return gettableAlert{}, time.Since(start)
				}
				return *found, time.Since(start)
			}
		}
		if time.Since(start) > deadline {
			am.t.Fatalf("alertmanager %s: alert %s present=%v not reached in %s (last error %v, alerts %+v)", am.addr, fp, want, deadline, err, as)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAlertmanagerPush runs against two real Alertmanager instances (an HA
// pair without gossip): a finding fires, the alert shows in both APIs and
// Alertmanager's own webhook reaches our listener; one instance restarts
// and has the alert back within resend_interval; the finding clears and the
// resolved notification reaches the listener.
func TestAlertmanagerPush(t *testing.T) {
	const resend = 2 * time.Second
	hook := newHookReceiver(t)
	am1 := startAlertmanager(t, hook.url())
	am2 := startAlertmanager(t, hook.url())

	cfg := Config{
		OutboxDir:     t.TempDir(),
		KeepFiringFor: dur(0),
		ExternalURL:   "http://host1:9899/",
		RunbookURL:    "https://runbooks.example/spof/",
		Receivers:     []Receiver{{Name: "am", Type: TypeAlertmanager, URLs: []string{am1.url(), am2.url()}, ResendInterval: model.Duration(resend)}},
	}
	e := mustNew(t, cfg, fastOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	f := finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")
	e.Observe(result(f), time.Now())
	fp := fingerprint(e.labelsFor(f))
	for _, am := range []*alertmanagerProc{am1, am2} {
		a, took := am.waitAlert(fp, true, 10*time.Second)
		t.Logf("alert in %s after %s", am.addr, took)
		if a.Labels["alertname"] != "SpofRedundancyLost" || a.Labels["instance"] != "host1" || a.Annotations["runbook_url"] != "https://runbooks.example/spof/redundancy_lost" {
			t.Fatalf("alert in alertmanager %+v", a)
		}
		if d := time.Until(a.EndsAt); d < 3*resend || d > 4*resend+time.Second {
			t.Errorf("endsAt %s is %s away, want about 4 x resend_interval", a.EndsAt, d)
		}
	}
	msgs := hook.waitFor(1, 15*time.Second)
	if msgs[0].Status != notify.StatusFiring || msgs[0].Alerts[0].Fingerprint != fp {
		t.Fatalf("alertmanager webhook %+v", msgs[0])
	}
	// Our webhook payload has exactly the keys of the real Alertmanager's.
	hook.mu.Lock()
	amBody := hook.raws[0]
	hook.mu.Unlock()
	ours, _ := json.Marshal(notify.NewWebhookMessage("ops", "http://x/", map[string]string{"instance": "host1"}, []notify.Alert{e.webhookAlert(&Alert{Labels: map[string]string{"a": "b"}}, "firing")}))
	if a, b := jsonKeys(t, amBody), jsonKeys(t, ours); a != b {
		t.Errorf("payload keys differ:\nalertmanager %s\nspofwatch    %s", a, b)
	}

	// Restart am1: it forgets pushed alerts; the resend brings it back.
	am1.stop()
	am1.start()
	_, took := am1.waitAlert(fp, true, 3*resend)
	t.Logf("alert back in restarted alertmanager %s after it was ready (resend_interval %s)", took, resend)
	if took > resend+time.Second { // one resend_interval plus slack for a loaded 2-CPU runner
		t.Errorf("alert back after %s, want within resend_interval %s", took, resend)
	}

	// Clear: resolved in both, and Alertmanager sends the resolve on.
	e.Observe(result(), time.Now())
	for _, am := range []*alertmanagerProc{am1, am2} {
		am.waitAlert(fp, false, 10*time.Second)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resolved := false
		for _, m := range hook.messages() {
			if m.Status == notify.StatusResolved && len(m.Alerts) == 1 && m.Alerts[0].Fingerprint == fp {
				resolved = true
			}
		}
		if resolved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no resolved webhook from alertmanager; got %+v", hook.messages())
		}
		select {
		case <-hook.notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The resolve was pushed more than once, then forgotten.
	deadline = time.Now().Add(4 * resend)
	for len(e.Alerts()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("resolved alert still held: %+v", e.Alerts())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for e.outbox.Stats().Entries != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d entries", e.outbox.Stats().Entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsonKeys lists a webhook body's top-level keys and its first alert's keys.
func jsonKeys(t *testing.T, b []byte) string {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	var alerts []map[string]json.RawMessage
	json.Unmarshal(top["alerts"], &alerts)
	keys := slices.Sorted(maps.Keys(top))
	if len(alerts) > 0 {
		keys = append(keys, "alerts[]:")
		keys = append(keys, slices.Sorted(maps.Keys(alerts[0]))...)
	}
	return strings.Join(keys, " ")
}
