package alerting

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/spof"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// queued summarises what the outbox holds for the webhook receiver "ops":
// one string per message, "status:alertname/member,...".
func queued(e *Engine) []string {
	var out []string
	for _, en := range e.outbox.All() {
		if en.Receiver != "ops" {
			continue
		}
		var parts []string
		for _, a := range en.Alerts {
			parts = append(parts, a.Status+":"+a.Labels["alertname"]+"/"+a.Labels["member"])
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}

func webhookConfig(t testing.TB, url string) Config {
	return Config{
		OutboxDir:     t.TempDir(),
		RunbookURL:    "https://runbooks.example/spof/",
		ExternalURL:   "http://host1:9899/",
		KeepFiringFor: dur(0),
		Receivers:     []Receiver{{Name: "ops", Type: TypeWebhook, URL: url}},
	}
}

func TestStateMachine(t *testing.T) {
	lost := finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")
	degr := finding(spof.CodeRedundancyDegraded, "storage/md/md0", "sdb")
	info := finding(spof.CodeRebuildInProgress, "storage/md/md1", "sdc")
	type step struct {
		at       time.Duration
		findings []spof.Finding
		want     []string // messages queued by this step
	}
	tests := []struct {
		name  string
		mod   func(*Config)
		steps []step
	}{
		{
			name: "critical fires at once and resolves once",
			steps: []step{
				{0, []spof.Finding{lost}, []string{"firing:SpofRedundancyLost/PSU2"}},
				{time.Minute, []spof.Finding{lost}, nil},
				{2 * time.Minute, nil, []string{"resolved:SpofRedundancyLost/PSU2"}},
				{3 * time.Minute, nil, nil},
			},
		},
		{
			name: "warning waits for its 1m default, info never alerts",
			steps: []step{
				{0, []spof.Finding{degr, info}, nil},
				{30 * time.Second, []spof.Finding{degr, info}, nil},
				{60 * time.Second, []spof.Finding{degr, info}, []string{"firing:SpofRedundancyDegraded/sdb"}},
			},
		},
		{
			name: "pending that clears never notifies",
			steps: []step{
				{0, []spof.Finding{degr}, nil},
				{30 * time.Second, nil, nil},
				{40 * time.Second, []spof.Finding{degr}, nil},
				{90 * time.Second, []spof.Finding{degr}, nil},
				{100 * time.Second, []spof.Finding{degr}, []string{"firing:SpofRedundancyDegraded/sdb"}},
			},
		},
		{
			name: "per-code for overrides severity",
			mod: func(c *Config) {
				c.ForCode = map[string]model.Duration{"redundancy_lost": model.Duration(5 * time.Minute)}
			},
			steps: []step{
				{0, []spof.Finding{lost}, nil},
				{4 * time.Minute, []spof.Finding{lost}, nil},
				{5 * time.Minute, []spof.Finding{lost}, []string{"firing:SpofRedundancyLost/PSU2"}},
			},
		},
		{
			name: "min_severity critical drops warnings",
			mod:  func(c *Config) { c.MinSeverity = "critical"; c.For = map[string]model.Duration{"warning": 0} },
			steps: []step{
				{0, []spof.Finding{lost, degr}, []string{"firing:SpofRedundancyLost/PSU2"}},
			},
		},
		{
			name: "keep_firing_for damps flapping",
			mod:  func(c *Config) { c.KeepFiringFor = dur(2 * time.Minute) },
			steps: []step{
				{0, []spof.Finding{lost}, []string{"firing:SpofRedundancyLost/PSU2"}},
				{time.Minute, nil, nil},
				{2 * time.Minute, []spof.Finding{lost}, nil},
				{3 * time.Minute, nil, nil},
				{4 * time.Minute, nil, nil},
				{5 * time.Minute, nil, []string{"resolved:SpofRedundancyLost/PSU2"}},
			},
		},
		{
			name: "repeat_interval re-sends firing",
			mod:  func(c *Config) { c.RepeatInterval = model.Duration(time.Hour) },
			steps: []step{
				{0, []spof.Finding{lost}, []string{"firing:SpofRedundancyLost/PSU2"}},
				{59 * time.Minute, []spof.Finding{lost}, nil},
				{60 * time.Minute, []spof.Finding{lost}, []string{"firing:SpofRedundancyLost/PSU2"}},
				{61 * time.Minute, []spof.Finding{lost}, nil},
			},
		},
		{
			name: "a resolve and a new firing in one evaluation share one message",
			mod:  func(c *Config) { c.For = map[string]model.Duration{"warning": 0} },
			steps: []step{
				{0, []spof.Finding{lost}, []string{"firing:SpofRedundancyLost/PSU2"}},
				{time.Minute, []spof.Finding{degr}, []string{"resolved:SpofRedundancyLost/PSU2,firing:SpofRedundancyDegraded/sdb"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			e := mustNew(t, cfg, fastOptions(t))
			seen := 0
			for _, s := range tc.steps {
				e.Observe(result(s.findings...), t0.Add(s.at))
				q := queued(e)
				if got := q[seen:]; !slices.Equal(got, s.want) {
					t.Fatalf("at %s: queued %q, want %q", s.at, got, s.want)
				}
				seen = len(q)
			}
		})
	}
}

func TestAlertContent(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")), t0)
	en := e.outbox.All()
	if len(en) != 1 || len(en[0].Alerts) != 1 {
		t.Fatalf("entries %+v", en)
	}
	a := en[0].Alerts[0]
	wantLabels := map[string]string{"alertname": "SpofRedundancyLost", "severity": "critical", "instance": "host1", "group": "power/ipmi/psu", "member": "PSU2", "site": "lab"}
	if !mapsEqual(a.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", a.Labels, wantLabels)
	}
	if a.Fingerprint != model.LabelSet(toLabelSet(wantLabels)).Fingerprint().String() {
		t.Errorf("fingerprint %s is not the label fingerprint", a.Fingerprint)
	}
	if got := a.Annotations["runbook_url"]; got != "https://runbooks.example/spof/redundancy_lost" {
		t.Errorf("runbook_url %q", got)
	}
	d := a.Annotations["description"]
	for _, want := range []string{"PSU2 failed, PSU1 left", "AC lost", "What to do: "} {
		if !strings.Contains(d, want) {
			t.Errorf("description %q lacks %q", d, want)
		}
	}
	if a.GeneratorURL != "http://host1:9899/?group=power%2Fipmi%2Fpsu" || !a.StartsAt.Equal(t0) || !a.EndsAt.IsZero() {
		t.Errorf("generatorURL %q startsAt %s endsAt %s", a.GeneratorURL, a.StartsAt, a.EndsAt)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestMaxAlertsSplitsMessages(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	cfg.Receivers[0].MaxAlerts = 2
	e := mustNew(t, cfg, fastOptions(t))
	var fs []spof.Finding
	for _, m := range []string{"a", "b", "c", "d", "e"} {
		fs = append(fs, finding(spof.CodeGroupDown, "storage/md/md"+m, ""))
	}
	e.Observe(result(fs...), t0)
	var sizes []int
	for _, en := range e.outbox.All() {
		sizes = append(sizes, len(en.Alerts))
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("message sizes %v, want [2 2 1]", sizes)
	}
}

func TestRestartKeepsState(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	lost := finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")
	degr := finding(spof.CodeRedundancyDegraded, "storage/md/md0", "sdb")
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(lost, degr), t0)
	e.Observe(result(lost, degr), t0.Add(30*time.Second))
	if got := queued(e); !slices.Equal(got, []string{"firing:SpofRedundancyLost/PSU2"}) {
		t.Fatalf("before restart: %q", got)
	}

	// Restart: the same dir, a new engine. Nothing new for the firing
	// alert, the pending one keeps its clock, a resolve is not lost.
	e.Close() // a stopped process releases the outbox lock
	e2 := mustNew(t, cfg, fastOptions(t))
	e2.Observe(result(lost, degr), t0.Add(60*time.Second))
	want := []string{"firing:SpofRedundancyLost/PSU2", "firing:SpofRedundancyDegraded/sdb"}
	if got := queued(e2); !slices.Equal(got, want) {
		t.Fatalf("after restart: %q, want %q", got, want)
	}
	e2.Close()
	e3 := mustNew(t, cfg, fastOptions(t))
	e3.Observe(result(degr), t0.Add(90*time.Second))
	want = append(want, "resolved:SpofRedundancyLost/PSU2")
	if got := queued(e3); !slices.Equal(got, want) {
		t.Fatalf("after second restart: %q, want %q", got, want)
	}
}

func TestCorruptStateIsSetAside(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	writeFile(t, filepath.Join(cfg.OutboxDir, stateFile), `{"version":1,"alerts":[{"fingerp`)
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), t0)
	if got := queued(e); len(got) != 1 {
		t.Fatalf("queued %q", got)
	}
	m, _ := filepath.Glob(filepath.Join(cfg.OutboxDir, stateFile+".corrupt-*"))
	if len(m) != 1 {
		t.Fatalf("corrupt state not set aside: %v", m)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{Receivers: []Receiver{{Name: "a", Type: "webhook", URL: "http://x/"}, {Name: "b", Type: "alertmanager", URLs: []string{"http://am:9093"}}}}, ""},
		{"bad severity", Config{MinSeverity: "major"}, "min_severity"},
		{"bad for key", Config{For: map[string]model.Duration{"urgent": 0}}, "alerting.for"},
		{"unknown code", Config{ForCode: map[string]model.Duration{"psu_on_fire": 0}}, "unknown finding code"},
		{"dup receiver", Config{Receivers: []Receiver{{Name: "a", Type: "webhook", URL: "http://x/"}, {Name: "a", Type: "webhook", URL: "http://y/"}}}, "duplicate"},
		{"no url", Config{Receivers: []Receiver{{Name: "a", Type: "webhook"}}}, "url is required"},
		{"relative url", Config{Receivers: []Receiver{{Name: "a", Type: "webhook", URL: "/hook"}}}, "absolute"},
		{"am with secret", Config{Receivers: []Receiver{{Name: "a", Type: "alertmanager", URLs: []string{"http://am/"}, SecretFile: "/x"}}}, "belong to type webhook"},
		{"webhook with urls", Config{Receivers: []Receiver{{Name: "a", Type: "webhook", URL: "http://x/", URLs: []string{"http://y/"}}}}, "belong to type alertmanager"},
		{"bad type", Config{Receivers: []Receiver{{Name: "a", Type: "email"}}}, "type must be"},
		{"two auths", Config{Receivers: []Receiver{{Name: "a", Type: "webhook", URL: "http://x/", BearerTokenFile: "/t", BasicAuth: &BasicAuth{Username: "u", PasswordFile: "/p"}}}}, "exclusive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestNewNamesMissingSecretFile(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	missing := filepath.Join(t.TempDir(), "hook.secret")
	cfg.Receivers[0].SecretFile = missing
	_, err := New(cfg, fastOptions(t))
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("New() = %v, want an error naming %s", err, missing)
	}
	opts := fastOptions(t)
	opts.HostLabels = map[string]string{"instance": "x"}
	if _, err := New(webhookConfig(t, "http://127.0.0.1:1/"), opts); err == nil {
		t.Fatal("host label instance accepted")
	}
}

func TestHMACEndToEnd(t *testing.T) {
	h := newHookReceiver(t)
	h.secret = []byte("s3cret-key")
	cfg := webhookConfig(t, h.url())
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	writeFile(t, secretFile, "s3cret-key\n")
	cfg.Receivers[0].SecretFile = secretFile
	e := mustNew(t, cfg, fastOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")), time.Now())
	ms := h.waitFor(1, 10*time.Second)
	if ms[0].Status != "firing" || h.badSigs != 0 {
		t.Fatalf("message %+v, bad signatures %d", ms[0], h.badSigs)
	}

	// A receiver with another key rejects the message (401, not retried).
	h.mu.Lock()
	h.secret = []byte("other-key")
	h.mu.Unlock()
	e.Observe(result(), time.Now())
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		bad := h.badSigs
		h.mu.Unlock()
		if bad > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("receiver with the wrong key never rejected a message")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutboxFaultsThroughEngine(t *testing.T) {
	h := newHookReceiver(t)
	cfg := webhookConfig(t, h.url())
	// Queue two notifications without delivering them.
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")), t0)
	e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2"), finding(spof.CodeGroupDown, "storage/md/md0", "")), t0.Add(time.Minute))
	ens := e.outbox.All()
	if len(ens) != 2 {
		t.Fatalf("want 2 entries, got %d", len(ens))
	}
	// Truncate the first on disk and add garbage, as a crash of something
	// else or a bad disk would.
	dir := filepath.Join(cfg.OutboxDir, "queue")
	files, _ := filepath.Glob(filepath.Join(dir, "*.entry"))
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, files[0], string(b[:len(b)/2]))
	writeFile(t, filepath.Join(dir, "99999999999999999999.entry"), "not an entry")

	e.Close() // a stopped process releases the outbox lock
	e2 := mustNew(t, cfg, fastOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e2.Run(ctx)
	ms := h.waitFor(1, 10*time.Second)
	if len(ms[0].Alerts) != 1 || ms[0].Alerts[0].Labels["alertname"] != "SpofGroupDown" {
		t.Fatalf("delivered %+v, want the intact SpofGroupDown entry", ms[0])
	}
	q, _ := filepath.Glob(filepath.Join(cfg.OutboxDir, "quarantine", "*"))
	if len(q) != 2 {
		t.Fatalf("quarantine holds %v, want 2 files", q)
	}
	if got := testutil.ToFloat64(prometheusGauge(e2, "spofwatch_alerting_outbox_quarantined_total")); got != 2 {
		t.Fatalf("quarantined metric %v, want 2", got)
	}
	// The engine keeps working.
	e2.Observe(result(), t0.Add(2*time.Minute))
	h.waitFor(2, 10*time.Second)
}

func TestFullOutboxDropsOldest(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	cfg.OutboxMaxEntries = 3
	e := mustNew(t, cfg, fastOptions(t))
	lost := finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")
	for i := range 5 {
		fs := []spof.Finding{}
		if i%2 == 0 {
			fs = append(fs, lost)
		}
		e.Observe(result(fs...), t0.Add(time.Duration(i)*time.Minute))
	}
	got := queued(e)
	want := []string{"firing:SpofRedundancyLost/PSU2", "resolved:SpofRedundancyLost/PSU2", "firing:SpofRedundancyLost/PSU2"}
	if !slices.Equal(got, want) {
		t.Fatalf("kept %q, want the 3 newest %q", got, want)
	}
	if d := testutil.ToFloat64(prometheusGauge(e, "spofwatch_alerting_outbox_dropped_total")); d != 2 {
		t.Fatalf("dropped metric %v, want 2", d)
	}
	var dropped int
	for _, d := range e.Recent() {
		if d.State == "dropped" {
			dropped++
		}
	}
	if dropped != 2 {
		t.Fatalf("recent shows %d dropped, want 2", dropped)
	}
}

// prometheusGauge picks one metric of the engine's collector by name.
func prometheusGauge(e *Engine, name string) *singleMetric {
	return &singleMetric{e: e, name: name}
}

func TestMetricsAndHandler(t *testing.T) {
	h := newHookReceiver(t)
	cfg := webhookConfig(t, h.url())
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2"), finding(spof.CodeRedundancyDegraded, "storage/md/md0", "sdb")), time.Now())
	if n, err := testutil.GatherAndCount(registry(t, e)); err != nil || n == 0 {
		t.Fatalf("gather: %d, %v", n, err)
	}
	want := `
# HELP spofwatch_alerting_alerts Alerts by state.
# TYPE spofwatch_alerting_alerts gauge
spofwatch_alerting_alerts{state="firing"} 1
spofwatch_alerting_alerts{state="pending"} 1
spofwatch_alerting_alerts{state="resolved"} 0
# HELP spofwatch_alerting_outbox_entries Notifications waiting in the outbox.
# TYPE spofwatch_alerting_outbox_entries gauge
spofwatch_alerting_outbox_entries 1
`
	if err := testutil.GatherAndCompare(registry(t, e), strings.NewReader(want), "spofwatch_alerting_alerts", "spofwatch_alerting_outbox_entries"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	h.waitFor(1, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(e.metrics.sent.WithLabelValues("ops")) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("sent counter never reached 1")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/alerts", nil))
	var doc struct {
		Alerts        []apiAlert `json:"alerts"`
		Notifications []Delivery `json:"notifications"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Alerts) != 2 || len(doc.Notifications) != 1 || doc.Notifications[0].State != "delivered" || doc.Notifications[0].Status != notify.StatusFiring {
		t.Fatalf("api answer %s", rec.Body.String())
	}
}

func TestNilEngineIsInert(t *testing.T) {
	var e *Engine
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), t0)
	if e.Recent() != nil || e.Alerts() != nil {
		t.Fatal("nil engine returned data")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEntriesOfRemovedReceiverAreQuarantined(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), t0)
	if len(e.outbox.All()) != 1 {
		t.Fatal("nothing queued")
	}
	cfg.Receivers[0].Name = "ops2"
	e.Close() // a stopped process releases the outbox lock
	e2 := mustNew(t, cfg, fastOptions(t))
	if n := len(e2.outbox.All()); n != 0 {
		t.Fatalf("%d entries of a removed receiver still queued", n)
	}
	q, _ := filepath.Glob(filepath.Join(cfg.OutboxDir, "quarantine", "*"))
	if len(q) != 1 {
		t.Fatalf("quarantine %v", q)
	}
}
