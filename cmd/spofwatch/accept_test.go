package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// acceptThisHost accepts the two single points of this one-disk, one-NIC
// machine (CI's kind too), until 30 days from now.
func acceptThisHost() string {
	until := time.Now().AddDate(0, 0, 30).Format(time.DateOnly)
	return fmt.Sprintf(`accept:
  - code: no_redundancy
    group: storage/mount/root
    reason: "stateless worker, rebuilt from image"
    until: %s
    by: ops-team
  - code: no_redundancy
    group: network/uplink/default
    reason: lab box with one NIC
    until: %s
`, until, until)
}

type checkDoc struct {
	Findings []struct {
		Code, Severity, Group string
		Accepted              *struct{ Reason, Until, By string } `json:"accepted"`
	} `json:"findings"`
}

func noRedundancy(t *testing.T, out string) map[string]*struct{ Reason, Until, By string } {
	t.Helper()
	var doc checkDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("check JSON: %v\n%s", err, out)
	}
	got := map[string]*struct{ Reason, Until, By string }{}
	for _, f := range doc.Findings {
		if f.Code == "no_redundancy" {
			got[f.Group] = f.Accepted
		}
	}
	return got
}

// TestAcceptancesOnThisHost: this one-disk, one-NIC host warns (exit 1);
// with the two single points accepted it is OK (exit 0), and both findings
// are still in the JSON, marked accepted.
func TestAcceptancesOnThisHost(t *testing.T) {
	out, stderr, code := execCheck(t, "--format=json", "--config.file="+writeConfig(t, t.TempDir(), "{}\n"))
	before := noRedundancy(t, out)
	if code != 1 || len(before) != 2 || before["storage/mount/root"] != nil || before["network/uplink/default"] != nil {
		t.Fatalf("precondition: this test runs on a one-disk, one-NIC host like CI's; check gave exit %d and no_redundancy on %v\n%s", code, before, stderr)
	}
	out, stderr, code = execCheck(t, "--format=json", "--config.file="+writeConfig(t, t.TempDir(), acceptThisHost()))
	if code != 0 {
		t.Errorf("check exit %d with both single points accepted, want 0\n%s", code, stderr)
	}
	after := noRedundancy(t, out)
	for _, g := range []string{"storage/mount/root", "network/uplink/default"} {
		a, present := after[g]
		if !present {
			t.Errorf("the accepted finding on %s left the JSON", g)
			continue
		}
		if a == nil || a.Reason == "" || a.Until == "" {
			t.Errorf("%s: accepted = %+v", g, a)
		}
	}
	if a := after["storage/mount/root"]; a != nil && a.By != "ops-team" {
		t.Errorf("accepted.by = %q", a.By)
	}
	text, _, code := execCheck(t, "--config.file="+writeConfig(t, t.TempDir(), acceptThisHost()))
	if code != 0 || !strings.Contains(text, "ACCEPTED") || !strings.Contains(text, "stateless worker, rebuilt from image") {
		t.Errorf("check text (exit %d) does not show the acceptance with its reason:\n%s", code, text)
	}
}

type hookLog struct {
	mu   sync.Mutex
	msgs []string // "status alertname group"
}

func (h *hookLog) add(status, alert, group string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, status+" "+alert+" "+group)
}

func (h *hookLog) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if m == s {
			return true
		}
	}
	return false
}

func (h *hookLog) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func hookServer(t *testing.T) (*httptest.Server, *hookLog) {
	log := &hookLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Alerts []struct {
				Status string
				Labels map[string]string
			}
		}
		json.NewDecoder(r.Body).Decode(&p)
		for _, a := range p.Alerts {
			log.add(a.Status, a.Labels["alertname"], a.Labels["group"])
		}
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

// TestAcceptanceResolvesAlertThroughSIGHUP: the two warnings fire at a real
// webhook receiver; adding their acceptances and sending SIGHUP resolves
// them. A daemon that starts with them accepted sends no alert for them,
// while the info-level virtual_machine alert (min_severity: info) shows the
// engine did run.
func TestAcceptanceResolvesAlertThroughSIGHUP(t *testing.T) {
	srv, hooks := hookServer(t)
	dir := t.TempDir()
	alerting := fmt.Sprintf(`alerting:
  outbox_dir: %s/outbox
  min_severity: info
  for: {warning: 0s, info: 0s}
  keep_firing_for: 0s
  receivers:
    - {name: ops, type: webhook, url: %q}
`, dir, srv.URL)
	cfg := writeConfig(t, dir, alerting)
	d := startDaemon(t, "--config.file="+cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.log.String())
			t.Log(d.get(t, "/api/v1/alerts"))
			t.Log(d.get(t, "/api/v1/findings"))
			t.Log(d.get(t, "/-/ready"))
			hooks.mu.Lock()
			t.Log(hooks.msgs)
			hooks.mu.Unlock()
		}
	})
	for _, g := range []string{"storage/mount/root", "network/uplink/default"} {
		waitFor(t, 20*time.Second, func() bool { return hooks.has("firing SpofNoRedundancy " + g) }, "firing alert for "+g)
	}
	writeConfig(t, dir, alerting+acceptThisHost())
	d.cmd.Process.Signal(syscall.SIGHUP)
	for _, g := range []string{"storage/mount/root", "network/uplink/default"} {
		waitFor(t, 20*time.Second, func() bool { return hooks.has("resolved SpofNoRedundancy " + g) }, "resolved alert for "+g+" after SIGHUP")
	}
	if n := hooks.count("firing SpofNoRedundancy"); n != 2 {
		t.Errorf("%d firing notifications for no_redundancy, want the 2 before the acceptance", n)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()

	srv2, fresh := hookServer(t)
	dir2 := t.TempDir()
	fresh2 := strings.NewReplacer(srv.URL, srv2.URL, dir+"/outbox", dir2+"/outbox").Replace(alerting)
	startDaemon(t, "--config.file="+writeConfig(t, dir2, fresh2+acceptThisHost()))
	waitFor(t, 20*time.Second, func() bool { return fresh.has("firing SpofVirtualMachine ") }, "the engine's info alert (positive control)")
	if n := fresh.count("firing SpofNoRedundancy"); n != 0 {
		t.Errorf("accepted findings sent %d alerts", n)
	}
}
