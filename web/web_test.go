package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/spof"
)

type staticSource struct{ snap *agent.Snapshot }

func (s staticSource) Snapshot() *agent.Snapshot { return s.snap }

func testSnapshot() *agent.Snapshot {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	groups := []spof.Group{
		{ID: "power/ipmi/psu", Kind: spof.KindPower, Function: "power supplies", Required: 1, Members: []spof.Member{
			{Name: "PSU1 Status", State: spof.MemberOK}, {Name: "PSU2 Status", State: spof.MemberFailed, Detail: "failure detected"}}},
		{ID: "storage/mount/root", Kind: spof.KindStorage, Function: "root filesystem /", Required: 1, Members: []spof.Member{
			{Name: "sda1", State: spof.MemberOK, Domains: map[string]string{"disk": "sda"}}, {Name: "sda2", State: spof.MemberOK, Domains: map[string]string{"disk": "sda"}}}},
	}
	return &agent.Snapshot{
		Taken:      now,
		Outcomes:   []agent.Outcome{{Name: "ipmi", OK: true, LastSuccess: now}, {Name: "ups", OK: false, Error: "dial tcp 127.0.0.1:3493: connection refused"}},
		Evaluation: spof.Evaluate(spof.Input{Groups: groups, Now: now, Collectors: []spof.CollectorStatus{{Name: "ups", Error: "dial tcp 127.0.0.1:3493: connection refused"}}}),
	}
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	snap := testSnapshot()
	ready := false
	metrics := agent.NewMetricsHandler(agent.MetricsHandlerOpts{Snapshot: agent.NewExporter(staticSource{snap}, nil), Live: prometheus.NewRegistry()})
	h := Handler(Options{Host: "db-07", Source: staticSource{snap}, Metrics: metrics, Version: "test", Ready: func() bool { return ready }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ready = true
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	srv := newServer(t)
	for _, tt := range []struct {
		path, want string
		code       int
	}{
		{"/-/healthy", "Healthy", 200},
		{"/-/ready", "Ready", 200},
		{"/api/v1/findings", `"code": "redundancy_lost"`, 200},
		{"/metrics", `spofwatch_finding{code="redundancy_lost"`, 200},
		{"/", "power redundancy", 0}, // checked in the browser test
		{"/nonexistent", "404", 404},
	} {
		code, body := get(t, srv.URL+tt.path)
		if tt.code != 0 && (code != tt.code || !strings.Contains(body, tt.want)) {
			t.Errorf("%s: %d %q", tt.path, code, body)
		}
	}
}

func TestNotReadyBeforeFirstCollection(t *testing.T) {
	h := Handler(Options{Host: "h", Source: staticSource{testSnapshot()}, Ready: func() bool { return false }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, _ := get(t, srv.URL+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("ready before the first collection: %d", code)
	}
}

// chromium returns the browser, installing Debian's package when missing:
// this test never skips.
func chromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Log("chromium missing; installing Debian's chromium")
	cmd := exec.Command("sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot install chromium: %v\n%s", err, out)
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var tags = regexp.MustCompile(`<[^>]*>`)

// TestStatusPageInChromium renders the page in a real headless browser and
// checks the text a person sees; the page has no script at all.
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	srv := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--user-data-dir="+profile, "--dump-dom", srv.URL+"/")
	cmd.Env = append(os.Environ(), "HOME="+profile)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	text := strings.Join(strings.Fields(tags.ReplaceAllString(dom, " ")), " ")
	for _, want := range []string{
		"spofwatch on db-07: CRITICAL",
		"redundancy_lost",
		"power supplies: redundancy lost: PSU2 Status failed (failure detected), runs on PSU1 Status alone",
		"shared_failure_domain",
		"disk sda carries sda1, sda2",
		"collector ups unavailable: dial tcp 127.0.0.1:3493: connection refused",
		"PSU2 Status: failed (failure detected)",
		"storage/mount/root",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q\n%s", want, text)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the status page must not need JavaScript")
	}
	fmt.Fprintln(io.Discard, text)
}

// The snapshot is shared by every output: rendering the page must not
// reorder (or otherwise touch) its outcomes.
func TestStatusPageLeavesSnapshotUntouched(t *testing.T) {
	snap := testSnapshot()
	snap.Outcomes = []agent.Outcome{{Name: "ups"}, {Name: "ipmi"}, {Name: "bonding"}}
	h := Handler(Options{Host: "h", Source: staticSource{snap}, Ready: func() bool { return true }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, body := get(t, srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	table := body[strings.Index(body, `<table id="collectors">`):]
	if i, j := strings.Index(table, "<td>bonding"), strings.Index(table, "<td>ups"); i < 0 || j < 0 || i > j {
		t.Errorf("page does not list collectors sorted (bonding at %d, ups at %d)", i, j)
	}
	var got []string
	for _, o := range snap.Outcomes {
		got = append(got, o.Name)
	}
	if want := []string{"ups", "ipmi", "bonding"}; !slices.Equal(got, want) {
		t.Errorf("snapshot outcomes reordered to %v, want %v", got, want)
	}
}
