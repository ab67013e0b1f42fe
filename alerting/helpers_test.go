package alerting

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/spof"
)

// hookReceiver is a real HTTP webhook receiver on loopback that records
// every Alertmanager v4 message it accepts. It can be stopped and started
// again on the same port to simulate an outage.
type hookReceiver struct {
	t      testing.TB
	addr   string
	secret []byte

	mu       sync.Mutex
	msgs     []notify.WebhookMessage
	arrivals []time.Time
	attempts []time.Time
	raws     [][]byte
	badSigs  int
	srv      *http.Server
	notify   chan struct{}
	status   int // answer instead of 200 when non-zero
	header   http.Header
}

func newHookReceiver(t testing.TB) *hookReceiver {
	t.Helper()
	h := &hookReceiver{t: t, notify: make(chan struct{}, 1<<16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.serve(ln)
	t.Cleanup(h.stop)
	return h
}

func (h *hookReceiver) url() string { return "http://" + h.addr + "/hook" }

func (h *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(h.handle)}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go srv.Serve(ln)
}

func (h *hookReceiver) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts = append(h.attempts, time.Now())
	if h.status != 0 {
		for k, v := range h.header {
			w.Header()[k] = v
		}
		w.WriteHeader(h.status)
		return
	}
	if h.secret != nil {
		if err := notify.VerifySignature(h.secret, r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			h.badSigs++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	var m notify.WebhookMessage
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.msgs = append(h.msgs, m)
	h.raws = append(h.raws, body)
	h.arrivals = append(h.arrivals, time.Now())
	h.notify <- struct{}{}
}

func (h *hookReceiver) stop() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// start listens again on the same address.
func (h *hookReceiver) start() {
	h.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("restart receiver on %s: %v", h.addr, err)
	}
	h.serve(ln)
}

func (h *hookReceiver) messages() []notify.WebhookMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.WebhookMessage(nil), h.msgs...)
}

// waitFor waits until at least n messages arrived or the deadline passes
// (the deadline only bounds a broken run; the assertion is on content).
func (h *hookReceiver) waitFor(n int, deadline time.Duration) []notify.WebhookMessage {
	h.t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		if ms := h.messages(); len(ms) >= n {
			return ms
		}
		select {
		case <-h.notify:
		case <-timer.C:
			ms := h.messages()
			h.t.Fatalf("got %d webhook messages, want %d: %+v", len(ms), n, ms)
			return nil
		}
	}
}

// waitUntil waits until ok holds for the messages received, or fails the
// test when the deadline (which only bounds a broken run) passes.
func (h *hookReceiver) waitUntil(ok func([]notify.WebhookMessage) bool, deadline time.Duration) {
	h.t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for !ok(h.messages()) {
		select {
		case <-h.notify:
		case <-timer.C:
			h.t.Fatalf("condition not reached in %s; messages %+v", deadline, h.messages())
		}
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

func dur(d time.Duration) *model.Duration { m := model.Duration(d); return &m }

func finding(code spof.Code, group, member string) spof.Finding {
	return spof.Finding{
		Code: code, Severity: spof.DefaultSeverity(code), Group: group, Member: member,
		Summary: "power supplies: redundancy lost: PSU2 failed, PSU1 left", Details: "PSU2 reports AC lost.",
	}
}

func result(fs ...spof.Finding) spof.Result { return spof.Result{Findings: fs} }

// fastOptions keep retries quick on loopback.
func fastOptions(t testing.TB) Options {
	return Options{Instance: "host1", HostLabels: map[string]string{"site": "lab"}, Logger: testLogger(t), BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustNew(t testing.TB, cfg Config, opts Options) *Engine {
	t.Helper()
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
