package agent

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// swappableSource stands for the scheduler: its snapshot changes.
type swappableSource struct{ cur atomic.Pointer[Snapshot] }

func (s *swappableSource) Snapshot() *Snapshot { return s.cur.Load() }

// liveRegistry has families of every type whose names fall before, between
// and after the snapshot's, with fixed values so two scrapes agree.
func liveRegistry(t testing.TB) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spofwatch_alerting_notifications_sent_total", Help: "Sent."}, []string{"receiver"})
	c.WithLabelValues("hook").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "go_example_seconds", Help: "A histogram.", Buckets: []float64{0.1, 1, 10}})
	h.Observe(0.5)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "process_example_seconds", Help: "A summary.", Objectives: map[float64]float64{0.5: 0.05}})
	s.Observe(2)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "spofwatch_build_info", Help: "Build.", ConstLabels: prometheus.Labels{"version": "x"}})
	g.Set(1)
	z := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zz_after_everything", Help: "Last."})
	reg.MustRegister(c, h, s, g, z)
	return reg
}

// snapshotWithSourceMetrics adds a source collector's own metrics, a
// counter among them, to the 200-group snapshot.
func snapshotWithSourceMetrics() *Snapshot {
	snap := snapshot200()
	desc := prometheus.NewDesc("spofwatch_ipmi_sensor_reads_total", "Reads.", []string{"sensor"}, nil)
	snap.Outcomes[0].Metrics = []prometheus.Metric{
		prometheus.MustNewConstMetric(desc, prometheus.CounterValue, 7, "PSU1"),
		prometheus.MustNewConstMetric(desc, prometheus.CounterValue, 9, "PSU2"),
	}
	return snap
}

const (
	acceptProto      = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	acceptProtoText  = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"
	acceptPrometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	acceptUTF8       = "text/plain;version=0.0.4;escaping=allow-utf-8"
)

type scrapeResult struct {
	code             int
	contentType      string
	contentEncoding  string
	vary             []string
	body             []byte
	compressedLength int
}

func scrapeWith(t *testing.T, h http.Handler, target, accept, acceptEncoding string) scrapeResult {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := scrapeResult{code: rec.Code, contentType: rec.Header().Get("Content-Type"),
		contentEncoding: rec.Header().Get("Content-Encoding"), vary: rec.Header().Values("Vary"),
		body: rec.Body.Bytes(), compressedLength: rec.Body.Len()}
	if res.contentEncoding == "gzip" {
		br := bytes.NewReader(rec.Body.Bytes())
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		// One member, checked against its CRC-32 and length, and nothing
		// after it (a bytes.Reader is read without buffering).
		zr.Multistream(false)
		res.body, err = io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if br.Len() != 0 {
			t.Fatalf("%d bytes after the gzip member", br.Len())
		}
	}
	return res
}

func TestMetricsHandlerMatchesPromhttp(t *testing.T) {
	src := &swappableSource{}
	src.cur.Store(snapshotWithSourceMetrics())
	exp := NewExporter(src, map[string]string{"rack": "r12"})
	live := liveRegistry(t)
	for _, om := range []bool{false, true} {
		want := promhttp.HandlerFor(MergeGatherers(exp, live), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: om})
		got := NewMetricsHandler(MetricsHandlerOpts{Snapshot: exp, Live: live, MaxRequestsInFlight: 10, EnableOpenMetrics: om})
		for _, target := range []string{"/metrics", "/metrics?name[]=spofwatch_host_info&name[]=go_example_seconds&name[]=nope"} {
			for _, accept := range []string{"", "text/plain", acceptProto, acceptProtoText, acceptPrometheus, acceptUTF8, "application/json"} {
				for _, enc := range []string{"", "gzip", "identity", "gzip, deflate, br", "gzip;q=0", "br", "*"} {
					name := fmt.Sprintf("openmetrics=%v/%s/accept=%q/encoding=%q", om, target, accept, enc)
					t.Run(name, func(t *testing.T) {
						w := scrapeWith(t, want, target, accept, enc)
						g := scrapeWith(t, got, target, accept, enc)
						if g.code != w.code || g.contentType != w.contentType || g.contentEncoding != w.contentEncoding {
							t.Fatalf("got %d %q %q, promhttp %d %q %q", g.code, g.contentType, g.contentEncoding, w.code, w.contentType, w.contentEncoding)
						}
						if fmt.Sprint(g.vary) != fmt.Sprint(w.vary) {
							t.Errorf("Vary %v, promhttp %v", g.vary, w.vary)
						}
						if !bytes.Equal(g.body, w.body) {
							t.Fatalf("body differs from promhttp's (%d vs %d bytes):\n%s", len(g.body), len(w.body), firstDifference(g.body, w.body))
						}
						if len(g.body) == 0 {
							t.Fatal("empty body")
						}
					})
				}
			}
		}
	}
}

func firstDifference(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-80)
	return fmt.Sprintf("at byte %d:\ngot  …%q\nwant …%q", i, a[from:min(len(a), i+80)], b[from:min(len(b), i+80)])
}

func TestMetricsHandlerFollowsSnapshots(t *testing.T) {
	src := &swappableSource{}
	first := snapshotWithSourceMetrics()
	src.cur.Store(first)
	exp := NewExporter(src, nil)
	live := liveRegistry(t)
	got := NewMetricsHandler(MetricsHandlerOpts{Snapshot: exp, Live: live})
	want := promhttp.HandlerFor(MergeGatherers(exp, live), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})

	f := expfmt.NewFormat(expfmt.TypeTextPlain)
	if exp.Encoded(f) != exp.Encoded(f) {
		t.Error("one snapshot is encoded twice in one format")
	}
	before := scrapeWith(t, got, "/metrics", "", "gzip")
	// A later snapshot: one group fewer.
	second := snapshotWithSourceMetrics()
	second.Evaluation.Groups = second.Evaluation.Groups[1:]
	src.cur.Store(second)
	after := scrapeWith(t, got, "/metrics", "", "gzip")
	if bytes.Equal(before.body, after.body) {
		t.Fatal("the scrape still serves the previous snapshot")
	}
	if w := scrapeWith(t, want, "/metrics", "", "gzip"); !bytes.Equal(after.body, w.body) {
		t.Fatalf("after a new snapshot, body differs from promhttp's:\n%s", firstDifference(after.body, w.body))
	}
}

func TestMetricsHandlerNameClashFallsBackToMerging(t *testing.T) {
	snap := snapshotWithSourceMetrics()
	exp := NewExporter(staticSource{snap}, nil)
	// The live registry has a family of the snapshot's name, other labels:
	// promhttp over prometheus.Gatherers merges the two.
	live := prometheus.NewRegistry()
	shared := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spofwatch_ipmi_sensor_reads_total", Help: "Reads."}, []string{"sensor"})
	shared.WithLabelValues("FAN1").Add(2)
	live.MustRegister(shared)
	want := promhttp.HandlerFor(MergeGatherers(exp, live), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	got := NewMetricsHandler(MetricsHandlerOpts{Snapshot: exp, Live: live})
	for _, enc := range []string{"", "gzip"} {
		w := scrapeWith(t, want, "/metrics", "", enc)
		g := scrapeWith(t, got, "/metrics", "", enc)
		if !bytes.Contains(g.body, []byte(`sensor="FAN1"`)) || !bytes.Contains(g.body, []byte(`sensor="PSU1"`)) {
			t.Fatal("the clashing families are not merged")
		}
		if !bytes.Equal(g.body, w.body) {
			t.Fatalf("encoding %q: body differs from promhttp's:\n%s", enc, firstDifference(g.body, w.body))
		}
	}
}

// TestMetricsNonReadingClientsHoldNoSlot is the denial of service from the
// hardening issue: connections that pipeline scrapes and never read their
// responses must not keep an ordinary scrape from its 200.
func TestMetricsNonReadingClientsHoldNoSlot(t *testing.T) {
	exp := NewExporter(staticSource{snapshot200()}, nil)
	h := NewMetricsHandler(MetricsHandlerOpts{Snapshot: exp, Live: liveRegistry(t), MaxRequestsInFlight: 10, WriteTimeout: time.Minute})
	var active atomic.Int64
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		h.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Small socket buffers on both ends, so that a response or two fills
	// them rather than megabytes.
	srv := &http.Server{Handler: counting}
	go srv.Serve(smallSendBuffers{l})
	t.Cleanup(func() { srv.Close() })
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}

	const clients, pipelined = 20, 50
	request := bytes.Repeat([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), pipelined)
	for range clients {
		c, err := dialer.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(request); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until at least as many handlers as the limit are stuck writing
	// to clients that do not read (what held every slot before): that many
	// in flight over ten polls in a row.
	deadline := time.Now().Add(30 * time.Second)
	for steady := 0; steady < 10; time.Sleep(20 * time.Millisecond) {
		if active.Load() < 10 {
			steady = 0
		} else {
			steady++
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d handlers in flight; the non-reading clients never got stuck", active.Load())
		}
	}

	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		resp, err := client.Get("http://" + l.Addr().String() + "/metrics")
		if err != nil {
			t.Fatalf("scrape %d beside %d non-reading clients: %v", i, clients, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape %d beside %d non-reading clients: %s: %s", i, clients, resp.Status, body)
		}
	}
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}
