package alerting

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/spof"
)

// faultFS is a disk a test can make full (ENOSPC on write) or stall (an
// fsync that blocks until released).
type faultFS struct {
	full    atomic.Bool
	stall   atomic.Bool
	stalled chan struct{} // receives when an fsync starts blocking
	release chan struct{} // closed to let blocked fsyncs finish
}

func newFaultFS() *faultFS {
	return &faultFS{stalled: make(chan struct{}, 64), release: make(chan struct{})}
}

func (f *faultFS) Write(file *os.File, b []byte) error {
	if f.full.Load() {
		return syscall.ENOSPC
	}
	_, err := file.Write(b)
	return err
}

func (f *faultFS) Sync(file *os.File) error {
	if f.stall.Load() {
		f.stalled <- struct{}{}
		<-f.release
	}
	return file.Sync()
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoCredentialsOnDisk: an Alertmanager URL with user:password is used
// to send (the peer sees the basic auth) but reaches neither the outbox
// files, nor the quarantine, nor the logs, nor the API.
func TestNoCredentialsOnDisk(t *testing.T) {
	const user, pass = "amuser42", "s3cr3tpw"
	attempts := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		attempts <- u + ":" + p
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	amURL := strings.Replace(srv.URL, "http://", "http://"+user+":"+pass+"@", 1)

	var logs syncBuffer
	opts := fastOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{
		OutboxDir: t.TempDir(), KeepFiringFor: dur(0),
		Receivers: []Receiver{{Name: "am", Type: TypeAlertmanager, URLs: []string{amURL}, ResendInterval: model.Duration(time.Hour)}},
	}
	e := mustNew(t, cfg, opts)
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	for range 2 {
		select {
		case got := <-attempts:
			if got != user+":"+pass {
				t.Fatalf("peer got basic auth %q: the configured URL was not used to send", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Alertmanager stand-in never reached")
		}
	}
	cancel()
	<-done
	if len(e.outbox.All()) == 0 {
		t.Fatal("nothing queued: the test checks nothing")
	}
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/alerts", nil))
	if !strings.Contains(rec.Body.String(), srv.Listener.Addr().String()) {
		t.Fatalf("API does not name the peer at all: %s", rec.Body.String())
	}

	// The receiver is renamed: its entries go to quarantine.
	e.Close()
	cfg.Receivers[0].Name = "am-renamed"
	e2 := mustNew(t, cfg, opts)
	e2.Close()
	if q, _ := filepath.Glob(filepath.Join(cfg.OutboxDir, "quarantine", "*")); len(q) == 0 {
		t.Fatal("nothing quarantined: the test checks nothing")
	}

	for where, text := range map[string]string{"logs": logs.String(), "API": rec.Body.String()} {
		if strings.Contains(text, user) || strings.Contains(text, pass) {
			t.Errorf("%s show the credentials:\n%s", where, text)
		}
	}
	assertNoFileContains(t, cfg.OutboxDir, user, pass)
}

func assertNoFileContains(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains %q", p, s)
			}
		}
		return nil
	})
}

// TestOldFormatEntryIsRetargeted: an entry written by an earlier version
// names its Alertmanager by URL (password included). It is still
// delivered, to that instance, and its file no longer holds the URL.
func TestOldFormatEntryIsRetargeted(t *testing.T) {
	const user, pass = "amuser42", "s3cr3tpw"
	got := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		got <- b.Bytes()
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	amURL := strings.Replace(srv.URL, "http://", "http://"+user+":"+pass+"@", 1)
	cfg := Config{
		OutboxDir: t.TempDir(), KeepFiringFor: dur(0),
		Receivers: []Receiver{{Name: "am", Type: TypeAlertmanager, URLs: []string{other.URL, amURL}, ResendInterval: model.Duration(time.Hour)}},
	}
	old := outbox.Entry{ID: 7, Receiver: "am", URL: amURL, Created: t0, Alerts: []notify.Alert{{Status: "firing", Labels: map[string]string{"alertname": "SpofOld"}, StartsAt: t0}}}
	b, err := outbox.Encode(old)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(cfg.OutboxDir, "queue"), 0o700)
	writeFile(t, filepath.Join(cfg.OutboxDir, "queue", fmt.Sprintf("%020d.entry", 7)), string(b))

	e := mustNew(t, cfg, fastOptions(t))
	assertNoFileContains(t, cfg.OutboxDir, user, pass)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case body := <-got:
			if bytes.Contains(body, []byte("SpofOld")) {
				return
			}
		case <-timeout:
			t.Fatal("old-format entry never delivered to its Alertmanager")
		}
	}
}

// TestScrapeDoesNotWaitOnDisk: while an fsync of the outbox blocks (with
// the engine's and the outbox's locks held), a scrape still completes.
func TestScrapeDoesNotWaitOnDisk(t *testing.T) {
	disk := newFaultFS()
	opts := fastOptions(t)
	opts.OutboxFS = disk
	e := mustNew(t, webhookConfig(t, "http://127.0.0.1:1/hook"), opts)
	reg := registry(t, e)
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), t0)

	disk.stall.Store(true)
	observed := make(chan struct{})
	go func() {
		e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", ""), finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")), t0.Add(time.Minute))
		close(observed)
	}()
	<-disk.stalled // Observe is now inside an fsync, holding the locks

	gathered := make(chan error, 1)
	go func() {
		_, err := reg.Gather()
		// The API and the health check do not wait either.
		e.Health()
		if err == nil && len(e.Alerts()) != 1 {
			err = fmt.Errorf("Alerts() = %+v, want the one alert known before the stalled write", e.Alerts())
		}
		gathered <- err
	}()
	select {
	case err := <-gathered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Gather blocked while an fsync was blocked")
	}
	disk.stall.Store(false)
	close(disk.release)
	<-observed
}

// TestUnwritableOutboxStillDelivers: a full disk or an outbox directory
// that cannot be created does not silence alerting: the notification
// reaches a real receiver from memory, Health says why, and it recovers
// once the fault clears.
func TestUnwritableOutboxStillDelivers(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		// fault breaks the disk and returns what clears it.
		fault func(t *testing.T, cfg *Config, disk *faultFS) func()
	}{
		{"disk full", "no space left", func(t *testing.T, cfg *Config, disk *faultFS) func() {
			disk.full.Store(true)
			return func() { disk.full.Store(false) }
		}},
		{"directory path is a file", "not a directory", func(t *testing.T, cfg *Config, disk *faultFS) func() {
			// Fails for root too, unlike a read-only mode.
			block := filepath.Join(t.TempDir(), "file")
			writeFile(t, block, "")
			cfg.OutboxDir = filepath.Join(block, "outbox")
			return func() {
				os.Remove(block)
				os.MkdirAll(block, 0o700)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookReceiver(t)
			cfg := webhookConfig(t, h.url())
			disk := newFaultFS()
			clearFault := tc.fault(t, &cfg, disk)
			opts := fastOptions(t)
			opts.OutboxFS = disk
			e := mustNew(t, cfg, opts)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { e.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			f := finding(spof.CodeGroupDown, "storage/md/md0", "")
			e.Observe(result(f), time.Now())
			ms := h.waitFor(1, 10*time.Second)
			if ms[0].Status != notify.StatusFiring {
				t.Fatalf("got %+v, want the firing", ms[0])
			}
			ok, reason := e.Health()
			if ok || !strings.Contains(reason, tc.reason) {
				t.Fatalf("Health() = %v, %q; want degraded naming %q", ok, reason, tc.reason)
			}

			clearFault()
			e.Observe(result(f), time.Now())
			if ok, reason := e.Health(); !ok {
				t.Fatalf("Health() after the fault cleared = %v, %q", ok, reason)
			}
			if _, err := os.Stat(filepath.Join(cfg.OutboxDir, stateFile)); err != nil {
				t.Fatalf("alert state not written after recovery: %v", err)
			}
			e.Observe(result(), time.Now())
			ms = h.waitFor(2, 10*time.Second)
			if ms[1].Status != notify.StatusResolved {
				t.Fatalf("got %+v, want the resolve", ms[1])
			}
		})
	}
}

// TestOnePendingPushPerAlertmanager: while an Alertmanager is down, each
// state change queues a push; they merge into one entry per instance, so
// they cannot crowd webhook notifications out of the bounded outbox.
func TestOnePendingPushPerAlertmanager(t *testing.T) {
	cfg := webhookConfig(t, "http://127.0.0.1:1/hook")
	cfg.Receivers = append(cfg.Receivers, Receiver{Name: "am", Type: TypeAlertmanager, URLs: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}})
	cfg.OutboxMaxEntries = 6
	e := mustNew(t, cfg, fastOptions(t))
	var fs []spof.Finding
	for i := range 3 {
		fs = append(fs, finding(spof.CodeGroupDown, fmt.Sprintf("storage/md/md%d", i), ""))
		e.Observe(result(fs...), t0.Add(time.Duration(i)*time.Minute))
	}
	var webhook, am int
	var merged []notify.Alert
	for _, en := range e.outbox.All() {
		switch en.Receiver {
		case "ops":
			webhook++
		case "am":
			am++
			merged = en.Alerts
		}
	}
	if webhook != 3 || am != 2 {
		t.Fatalf("outbox holds %d webhook and %d Alertmanager entries, want 3 and 2 (one per instance)", webhook, am)
	}
	if len(merged) != 3 {
		t.Fatalf("merged push carries %d alerts, want all 3", len(merged))
	}
	if d := e.outbox.Stats().Dropped; d != 0 {
		t.Fatalf("%d entries dropped", d)
	}
}

// TestReloadStorm: configuration reloads, done as the daemon does them
// (stop the old engine's delivery, close it, open the new one), while
// another goroutine feeds flapping findings to whichever engine is
// current. Every alert's stream at a real receiver stays well-formed:
// each firing is followed by its resolve, with one startsAt per episode.
func TestReloadStorm(t *testing.T) {
	h := newHookReceiver(t)
	cfg := webhookConfig(t, h.url())
	type gen struct {
		e      *Engine
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func() *gen {
		e := mustNew(t, cfg, fastOptions(t))
		ctx, cancel := context.WithCancel(context.Background())
		g := &gen{e: e, cancel: cancel, done: make(chan struct{})}
		go func() { e.Run(ctx); close(g.done) }()
		return g
	}
	var cur atomic.Pointer[gen]
	cur.Store(start())

	fs := []spof.Finding{finding(spof.CodeGroupDown, "storage/md/md0", ""), finding(spof.CodeRedundancyLost, "power/ipmi/psu", "PSU2")}
	stop := make(chan struct{})
	fed := make(chan struct{})
	observed := make(chan struct{}, 1)
	go func() {
		defer close(fed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// The consumer loads the generation and observes, like the
			// daemon's: it may still hold one a reload just replaced.
			var active []spof.Finding
			for j, f := range fs {
				if (i>>j)&1 == 1 {
					active = append(active, f)
				}
			}
			cur.Load().e.Observe(result(active...), time.Now())
			select {
			case observed <- struct{}{}:
			default:
			}
		}
	}()
	const reloads = 100
	for range reloads {
		// Let the findings change between reloads.
		<-observed
		<-observed
		old := cur.Load()
		old.cancel()
		<-old.done
		old.e.Close()
		cur.Store(start())
	}
	close(stop)
	<-fed
	g := cur.Load()
	g.e.Observe(result(), time.Now())
	defer func() { g.cancel(); <-g.done; g.e.Close() }()

	// Wait until every alert's last message is a resolve, then check the
	// whole stream.
	h.waitUntil(func(ms []notify.WebhookMessage) bool {
		last := map[string]string{}
		for _, m := range ms {
			for _, a := range m.Alerts {
				last[a.Fingerprint] = a.Status
			}
		}
		for _, s := range last {
			if s != notify.StatusResolved {
				return false
			}
		}
		return len(last) > 0
	}, 30*time.Second)
	type episode struct {
		open     bool
		startsAt time.Time
	}
	eps := map[string]*episode{}
	for i, m := range h.messages() {
		for _, a := range m.Alerts {
			ep := eps[a.Fingerprint]
			if ep == nil {
				ep = &episode{}
				eps[a.Fingerprint] = ep
			}
			switch {
			case a.Status == notify.StatusFiring && ep.open && !a.StartsAt.Equal(ep.startsAt):
				t.Fatalf("message %d: %s fires again with startsAt %s while its episode from %s is open", i, a.Labels["alertname"], a.StartsAt, ep.startsAt)
			case a.Status == notify.StatusFiring:
				ep.open, ep.startsAt = true, a.StartsAt
			case a.Status == notify.StatusResolved && ep.open && !a.StartsAt.Equal(ep.startsAt):
				t.Fatalf("message %d: %s resolves startsAt %s, but the open episode started %s", i, a.Labels["alertname"], a.StartsAt, ep.startsAt)
			case a.Status == notify.StatusResolved && !ep.open && !a.StartsAt.Equal(ep.startsAt):
				t.Fatalf("message %d: %s resolves an episode (startsAt %s) that never fired", i, a.Labels["alertname"], a.StartsAt)
			default:
				ep.open = false
			}
		}
	}
	t.Logf("%d messages for %d alerts across %d reloads", len(h.messages()), len(eps), reloads)
}

// A reload while the disk refuses writes: the new engine takes over the
// old one's alert state and held notifications, so the alert that fired
// from memory still gets its resolve, and is not fired a second time.
func TestReloadWithUnwritableOutboxKeepsState(t *testing.T) {
	h := newHookReceiver(t)
	cfg := webhookConfig(t, h.url())
	disk := newFaultFS()
	disk.full.Store(true)
	opts := fastOptions(t)
	opts.OutboxFS = disk
	first := mustNew(t, cfg, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { first.Run(ctx); close(done) }()
	f := finding(spof.CodeGroupDown, "storage/md/md0", "")
	first.Observe(result(f), time.Now())
	if ms := h.waitFor(1, 10*time.Second); ms[0].Status != notify.StatusFiring {
		t.Fatalf("got %+v, want the firing", ms[0])
	}
	// Delivered means acknowledged: until then a held entry is handed
	// over and sent again (at least once), which is allowed but not what
	// this test is about.
	for deadline := time.Now().Add(5 * time.Second); first.outbox.Stats().Entries != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	first.Close()

	opts.Previous = first
	second := mustNew(t, cfg, opts)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { second.Run(ctx2); close(done2) }()
	defer func() { cancel2(); <-done2 }()
	second.Observe(result(f), time.Now()) // still active: nothing new
	second.Observe(result(), time.Now())  // cleared: the resolve
	ms := h.waitFor(2, 10*time.Second)
	if ms[1].Status != notify.StatusResolved {
		t.Fatalf("second message %+v, want the resolve", ms[1])
	}
	firing := 0
	for _, m := range h.messages() {
		if m.Status == notify.StatusFiring {
			firing++
		}
	}
	if firing != 1 {
		t.Errorf("%d firing messages across the reload, want 1", firing)
	}
}
