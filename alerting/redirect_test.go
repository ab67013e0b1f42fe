package alerting

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spofwatch/spofwatch/spof"
)

// TestRedirectIsNotDelivered: a webhook answering 301 must not be counted
// as delivered. Following the redirect would re-issue the request as a GET
// without body, which the target answers 200.
func TestRedirectIsNotDelivered(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	posts := make(chan struct{}, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method+" "+r.URL.Path)
		mu.Unlock()
		defer func() { posts <- struct{}{} }()
		if r.URL.Path == "/moved" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Location", "http://user:hunter2@"+ln.Addr().String()+"/moved?token=hunter2")
		w.WriteHeader(http.StatusMovedPermanently)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cfg := webhookConfig(t, "http://"+ln.Addr().String()+"/hook")
	e := mustNew(t, cfg, fastOptions(t))
	e.Observe(result(finding(spof.CodeGroupDown, "storage/md/md0", "")), t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	// Two requests: either a second POST (the first was classified and
	// retried) or the GET of a followed redirect.
	for range 2 {
		select {
		case <-posts:
		case <-time.After(10 * time.Second):
			t.Fatal("receiver got fewer than two requests")
		}
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	for _, m := range methods {
		if m != "POST /hook" {
			t.Fatalf("receiver saw %q: the redirect was followed (all requests: %q)", m, methods)
		}
	}
	if n := len(e.outbox.All()); n != 1 {
		t.Fatalf("outbox holds %d entries, want the undelivered one", n)
	}
	if got := testutil.ToFloat64(e.metrics.sent.WithLabelValues("ops")); got != 0 {
		t.Fatalf("sent counter %v, want 0", got)
	}
	rec := e.Recent()
	if len(rec) != 1 || rec[0].State != "retrying" || !strings.Contains(rec[0].Error, "/moved") || !strings.Contains(rec[0].Error, "301") {
		t.Fatalf("recent %+v, want one retrying entry naming the 301 and its Location", rec)
	}
	if strings.Contains(rec[0].Error, "hunter2") || strings.Contains(rec[0].Error, "user") {
		t.Fatalf("error %q shows the Location's credentials", rec[0].Error)
	}
}
