// Package ipmibench measures spofwatch's BMC poll against Debian's
// prometheus-ipmi-exporter scrape and `ipmitool sdr elist`, all reading one
// ipmi_sim through a UDP relay that counts the IPMI requests each one sends.
// Run it with ./run.sh (go test -bench SideBySide -benchtime 1x).
package ipmibench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/ipmi"
	"github.com/spofwatch/spofwatch/ipmi/ipmisim"
)

// relay forwards UDP datagrams between clients and the BMC and counts the
// requests (client to BMC datagrams).
type relay struct {
	conn   *net.UDPConn
	target *net.UDPAddr
	sent   atomic.Int64
	mu     sync.Mutex
	peers  map[string]*net.UDPConn
}

func startRelay(tb testing.TB, target string) *relay {
	tb.Helper()
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	r := &relay{conn: c, target: ta, peers: map[string]*net.UDPConn{}}
	tb.Cleanup(func() {
		c.Close()
		r.mu.Lock()
		for _, p := range r.peers {
			p.Close()
		}
		r.mu.Unlock()
	})
	go r.serve()
	return r
}

func (r *relay) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *relay) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		up, ok := r.peers[from.String()]
		if !ok {
			up, err = net.DialUDP("udp", nil, r.target)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			r.peers[from.String()] = up
			go func(up *net.UDPConn, client *net.UDPAddr) {
				b := make([]byte, 65536)
				for {
					n, err := up.Read(b)
					if err != nil {
						return
					}
					_, _ = r.conn.WriteToUDP(b[:n], client)
				}
			}(up, from)
		}
		r.mu.Unlock()
		r.sent.Add(1)
		_, _ = up.Write(buf[:n])
	}
}

type result struct {
	name     string
	runs     int
	perRun   time.Duration
	requests float64
	note     string
}

func BenchmarkSideBySide(b *testing.B) {
	for _, bin := range []string{"ipmitool", "prometheus-ipmi-exporter"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("%s not found (scripts/apt-packages.txt): %v", bin, err)
		}
	}
	sim := ipmisim.Start(b)
	rl := startRelay(b, net.JoinHostPort(sim.Host, fmt.Sprint(sim.Port)))
	var results []result

	// spofwatch: one session, SDR cache, 3 + sensors-of-interest requests.
	bmc, err := ipmi.New(ipmi.Options{Interface: ipmi.InterfaceLanplus, Host: "127.0.0.1", Port: rl.port(),
		Username: ipmisim.Username, Password: ipmisim.Password, CipherSuite: 3})
	if err != nil {
		b.Fatal(err)
	}
	defer bmc.Close()
	ctx := context.Background()
	before := rl.sent.Load()
	start := time.Now()
	st, err := bmc.Poll(ctx)
	if err != nil {
		b.Fatal(err)
	}
	results = append(results, result{"spofwatch first poll (session + SDR read)", 1, time.Since(start),
		float64(rl.sent.Load() - before), fmt.Sprintf("%d sensors of interest", len(st.Sensors))})
	const polls = 50
	before = rl.sent.Load()
	start = time.Now()
	for range polls {
		if st, err = bmc.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	spof := result{"spofwatch poll (reused session)", polls, time.Since(start) / polls,
		float64(rl.sent.Load()-before) / polls, fmt.Sprintf("counter says %d per poll", st.Commands)}
	results = append(results, spof)

	// ipmitool sdr elist: a new session and a full SDR walk every time.
	const toolRuns = 10
	before = rl.sent.Load()
	start = time.Now()
	for range toolRuns {
		out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", fmt.Sprint(rl.port()),
			"-U", ipmisim.Username, "-P", ipmisim.Password, "sdr", "elist").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PSU2 Status") {
			b.Fatalf("ipmitool: %v\n%s", err, out)
		}
	}
	tool := result{"ipmitool -I lanplus -C 3 sdr elist", toolRuns, time.Since(start) / toolRuns,
		float64(rl.sent.Load()-before) / toolRuns, "new session per run"}
	results = append(results, tool)

	// prometheus-ipmi-exporter: FreeIPMI processes per scrape.
	dir := b.TempDir()
	cfg := filepath.Join(dir, "ipmi.yml")
	if err := os.WriteFile(cfg, []byte(`modules:
  default:
    user: admin
    pass: admin
    driver: LAN_2_0
    privilege: admin
    timeout: 10000
    workaround_flags: [opensesspriv]
`), 0o600); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	exp := exec.Command("prometheus-ipmi-exporter", "--config.file="+cfg, "--web.listen-address="+addr, "--log.level=warn")
	exp.Stdout, exp.Stderr = io.Discard, io.Discard
	if err := exp.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = exp.Process.Kill(); _ = exp.Wait() }()
	url := fmt.Sprintf("http://%s/ipmi?target=127.0.0.1:%d&module=default", addr, rl.port())
	scrape := func() (string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := scrape() // warm-up, and wait for the listener
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("ipmi_exporter not up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const scrapes = 10
	var body string
	before = rl.sent.Load()
	start = time.Now()
	for range scrapes {
		if body, err = scrape(); err != nil {
			b.Fatal(err)
		}
	}
	expRes := result{"prometheus-ipmi-exporter scrape (opensesspriv)", scrapes, time.Since(start) / scrapes,
		float64(rl.sent.Load()-before) / scrapes, ""}
	var ups []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "ipmi_up{") {
			ups = append(ups, strings.TrimPrefix(l, "ipmi_up"))
		}
	}
	expRes.note = strings.Join(ups, " ")
	if !strings.Contains(body, `ipmi_up{collector="ipmi"} 1`) {
		b.Fatalf("ipmi_exporter could not read the simulator:\n%s", body)
	}
	results = append(results, expRes)

	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-48s %6s %12s %14s  %s\n", "reader", "runs", "wall/run", "requests/run", "note")
	for _, r := range results {
		fmt.Fprintf(&sb, "%-48s %6d %12s %14.1f  %s\n", r.name, r.runs, r.perRun.Round(10*time.Microsecond), r.requests, r.note)
	}
	ratio := func(a, b result) string {
		return fmt.Sprintf("%.1fx time, %.1fx requests", float64(a.perRun)/float64(b.perRun), a.requests/b.requests)
	}
	fmt.Fprintf(&sb, "\nprometheus-ipmi-exporter / spofwatch poll: %s\n", ratio(expRes, spof))
	fmt.Fprintf(&sb, "ipmitool sdr elist / spofwatch poll:       %s\n", ratio(tool, spof))
	fmt.Print(sb.String())
	b.ReportMetric(float64(spof.perRun.Nanoseconds()), "spofwatch-ns/poll")
	b.ReportMetric(spof.requests, "spofwatch-requests/poll")
	b.ReportMetric(float64(expRes.perRun.Nanoseconds()), "ipmi_exporter-ns/scrape")
	b.ReportMetric(expRes.requests, "ipmi_exporter-requests/scrape")
	b.ReportMetric(float64(tool.perRun.Nanoseconds()), "ipmitool-ns/run")
	b.ReportMetric(float64(expRes.perRun)/float64(spof.perRun), "x-faster-than-ipmi_exporter")
	if float64(expRes.perRun)/float64(spof.perRun) < 5 {
		b.Errorf("spofwatch poll is less than 5x faster than an ipmi_exporter scrape")
	}
}
