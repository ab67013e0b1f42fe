package alerting

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// TestWebhookAuthAndTLS: bearer token and basic auth come from files,
// custom headers are sent, a private CA is trusted through ca_file, and
// without it the certificate is refused (skip-verify is off by default).
func TestWebhookAuthAndTLS(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	writeFile(t, filepath.Join(dir, "token"), "t0ken\n")
	writeFile(t, filepath.Join(dir, "pw"), "pa55")

	cfg := Config{OutboxDir: t.TempDir(), KeepFiringFor: dur(0), Receivers: []Receiver{
		{Name: "bearer", Type: TypeWebhook, URL: srv.URL + "/a", BearerTokenFile: filepath.Join(dir, "token"), Headers: map[string]string{"X-Team": "storage"}, TLS: TLSConfig{CAFile: ca}},
		{Name: "basic", Type: TypeWebhook, URL: srv.URL + "/b", BasicAuth: &BasicAuth{Username: "spof", PasswordFile: filepath.Join(dir, "pw")}, TLS: TLSConfig{CAFile: ca}},
		{Name: "untrusted", Type: TypeWebhook, URL: srv.URL + "/c"},
	}}
	e := mustNew(t, cfg, fastOptions(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), time.Now())

	deadline := time.Now().Add(10 * time.Second)
	var untrusted string
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		for _, d := range e.Recent() {
			if d.Receiver == "untrusted" && d.State == "retrying" {
				untrusted = d.Error
			}
		}
		if n >= 2 && untrusted != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d requests, untrusted error %q; recent %+v", n, untrusted, e.Recent())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("server got %d requests, want 2 (the untrusted one must not connect)", len(got))
	}
	var sawBearer, sawBasic bool
	for _, h := range got {
		switch h.Get("Authorization") {
		case "Bearer t0ken":
			sawBearer = h.Get("X-Team") == "storage"
		case "Basic c3BvZjpwYTU1": // spof:pa55
			sawBasic = true
		}
	}
	if !sawBearer || !sawBasic {
		t.Fatalf("headers %v", got)
	}
	if !strings.Contains(untrusted, "certificate") {
		t.Fatalf("untrusted receiver error %q, want a certificate error", untrusted)
	}
}
