package agent

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BenchmarkMetricsHandler is a /metrics scrape over a 200-group snapshot,
// from cached bytes and, for comparison, through promhttp as before; with
// a small fixed live registry, and with the Go and process collectors the
// daemon adds; identity and gzip.
func BenchmarkMetricsHandler(b *testing.B) {
	exp := NewExporter(staticSource{snapshot200()}, map[string]string{"rack": "r1"})
	runtimeRegistry := prometheus.NewRegistry()
	runtimeRegistry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, live := range []struct {
		name string
		g    prometheus.Gatherer
	}{{"fixed-live", liveRegistry(b)}, {"go+process-live", runtimeRegistry}} {
		handlers := []struct {
			name string
			h    http.Handler
		}{
			{"cached", NewMetricsHandler(MetricsHandlerOpts{Snapshot: exp, Live: live.g, MaxRequestsInFlight: 10})},
			{"promhttp", promhttp.HandlerFor(MergeGatherers(exp, live.g), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})},
		}
		for _, enc := range []string{"identity", "gzip"} {
			for _, h := range handlers {
				b.Run(live.name+"/"+enc+"/"+h.name, func(b *testing.B) {
					req := httptest.NewRequest("GET", "/metrics", nil)
					req.Header.Set("Accept-Encoding", enc)
					var took []time.Duration
					b.ReportAllocs()
					for b.Loop() {
						start := time.Now()
						rec := httptest.NewRecorder()
						h.h.ServeHTTP(rec, req)
						took = append(took, time.Since(start))
						if rec.Code != http.StatusOK {
							b.Fatalf("status %d", rec.Code)
						}
					}
					slices.Sort(took)
					b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
				})
			}
		}
	}
}

// BenchmarkMetricsHandlerBurst is a burst of gzip scrapes from 8 clients at
// once, as a Prometheus server and a few dashboards would send, with the
// daemon's Go and process collectors as live families. Beside allocs/op
// and B/op it reports the heap that stays in use after the burst and a
// GC (retained-B): what the handler keeps between scrapes raises the GC's
// heap goal, and so the process's resident memory, by twice as much.
func BenchmarkMetricsHandlerBurst(b *testing.B) {
	exp := NewExporter(staticSource{snapshot200()}, map[string]string{"rack": "r1"})
	runtimeRegistry := prometheus.NewRegistry()
	runtimeRegistry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := NewMetricsHandler(MetricsHandlerOpts{Snapshot: exp, Live: runtimeRegistry, MaxRequestsInFlight: 10})
	req := httptest.NewRequest("GET", "/metrics", nil)
	// The snapshot's families, gathered and encoded, are not the handler's.
	h.ServeHTTP(httptest.NewRecorder(), req)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	b.SetParallelism(4) // 8 clients on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(before)), "retained-B")
	runtime.KeepAlive(h)
}
