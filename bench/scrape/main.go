// Command scrape puts spofwatch's /metrics beside node_exporter's in one
// run, as a Prometheus server scrapes them (its Accept header, gzip): the
// p99 of sequential scrapes and of 8 concurrent clients, and each
// process's peak RSS (VmHWM) after the scrapes. It prints the figures and
// spofwatch/node_exporter ratios. node_exporter runs the collectors of the
// issue's comparison: mdadm, bonding and powersupplyclass.
//
// A third target, "floor", is this program serving node_exporter's first
// response, gzipped once, from memory with net/http: the latency of a
// scrape that does no work, and the resident memory of a Go HTTP server
// that does nothing else, on this machine and under its current load.
// The load average is printed before and after, since other work on the
// host moves every figure.
//
//	make build    # the production build: CGO_ENABLED=0, PIE, -s -w
//	go run ./bench/scrape -spofwatch bin/spofwatch
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/bench/measure"
)

// acceptPrometheus is the Accept header of a Prometheus 2.x scrape.
const acceptPrometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

func main() {
	spofwatch := flag.String("spofwatch", "bin/spofwatch", "spofwatch binary")
	nodeExporter := flag.String("node-exporter", "/usr/bin/prometheus-node-exporter", "node_exporter binary")
	scrapes := flag.Int("scrapes", 500, "scrapes per target and phase")
	clients := flag.Int("clients", 8, "concurrent clients")
	floorBody := flag.String("serve-floor", "", "internal: serve this file's bytes, gzipped, as /metrics")
	floorAddr := flag.String("web.listen-address", "", "internal: the floor's listen address")
	flag.Parse()
	if *floorBody != "" {
		if err := serveFloor(*floorBody, *floorAddr); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*spofwatch, *nodeExporter, *scrapes, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name   string
	cmd    *exec.Cmd
	url    string
	client *http.Client
}

func start(name, bin string, clients int, args ...string) (*target, error) {
	// Kept-alive connections, one per client, as Prometheus keeps them.
	t := &target{name: name, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}}
	e, err := measure.Start(name, bin, func(url string) error {
		t.url = url
		_, err := t.scrape()
		return err
	}, args...)
	if err != nil {
		return nil, err
	}
	t.cmd = e.Cmd
	return t, nil
}

// scrape fetches /metrics once; the transport asks for gzip and inflates.
func (t *target) scrape() (int, error) {
	req, err := http.NewRequest("GET", t.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", acceptPrometheus)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", t.name, resp.Status)
	}
	return int(n), err
}

// body fetches /metrics once, uncompressed, as the transport inflates it.
func (t *target) body() ([]byte, error) {
	req, err := http.NewRequest("GET", t.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// memory reads a process's current anonymous and file-backed resident
// memory in kB.
func memory(pid int) (anon, file int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &anon)
		}
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &file)
		}
	}
	return anon, file
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// serveFloor serves body, gzipped once, as every /metrics response.
func serveFloor(bodyFile, addr string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	payload := gz.Bytes()
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload)
	}))
}

// sequential scrapes the targets in turn, n times each, so that both see
// the same machine load.
func sequential(ts []*target, n int) (map[string][]time.Duration, error) {
	took := map[string][]time.Duration{}
	for range n {
		for _, t := range ts {
			start := time.Now()
			if _, err := t.scrape(); err != nil {
				return nil, err
			}
			took[t.name] = append(took[t.name], time.Since(start))
		}
	}
	return took, nil
}

// concurrent runs n scrapes per target from c clients at once, target by
// target in rounds of 50 scrapes, again to share the machine's load.
func concurrent(ts []*target, n, c int) (map[string][]time.Duration, error) {
	took := map[string][]time.Duration{}
	const round = 50
	for done := 0; done < n; done += round {
		for _, t := range ts {
			var mu sync.Mutex
			var firstErr error
			var wg sync.WaitGroup
			jobs := make(chan struct{}, round)
			for range min(round, n-done) {
				jobs <- struct{}{}
			}
			close(jobs)
			for range c {
				wg.Go(func() {
					for range jobs {
						start := time.Now()
						_, err := t.scrape()
						d := time.Since(start)
						mu.Lock()
						if err != nil && firstErr == nil {
							firstErr = err
						}
						took[t.name] = append(took[t.name], d)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if firstErr != nil {
				return nil, firstErr
			}
		}
	}
	return took, nil
}

func run(spofwatch, nodeExporter string, scrapes, clients int) error {
	// An empty config: all defaults, whatever /etc holds on this machine.
	empty, err := os.CreateTemp("", "spofwatch-bench-*.yml")
	if err != nil {
		return err
	}
	empty.Close()
	defer os.Remove(empty.Name())
	sw, err := start("spofwatch", spofwatch, clients, "--config.file="+empty.Name(), "--path.state="+os.TempDir()+"/spofwatch-bench-state")
	if err != nil {
		return err
	}
	defer sw.cmd.Process.Kill()
	ne, err := start("node_exporter", nodeExporter, clients,
		"--collector.disable-defaults", "--collector.mdadm", "--collector.bonding", "--collector.powersupplyclass")
	if err != nil {
		return err
	}
	defer ne.cmd.Process.Kill()
	body, err := ne.body()
	if err != nil {
		return err
	}
	bodyFile, err := os.CreateTemp("", "spofwatch-bench-floor-*.txt")
	if err != nil {
		return err
	}
	defer os.Remove(bodyFile.Name())
	if _, err := bodyFile.Write(body); err != nil {
		return err
	}
	bodyFile.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	floor, err := start("floor", self, clients, "-serve-floor="+bodyFile.Name())
	if err != nil {
		return err
	}
	defer floor.cmd.Process.Kill()
	fmt.Printf("load average before: %s\n", loadavg())
	ts := []*target{sw, ne, floor}
	for _, t := range ts {
		n, _ := t.scrape()
		hwm, _ := measure.VmHWM(t.cmd.Process.Pid)
		fmt.Printf("%-13s %6d bytes a scrape (uncompressed), VmHWM before the scrapes %.1f MiB\n", t.name, n, float64(hwm)/1024)
	}

	seq, err := sequential(ts, scrapes)
	if err != nil {
		return err
	}
	conc, err := concurrent(ts, scrapes, clients)
	if err != nil {
		return err
	}
	hwm := map[string]int{}
	for _, t := range ts {
		if hwm[t.name], err = measure.VmHWM(t.cmd.Process.Pid); err != nil {
			return err
		}
		anon, file := memory(t.cmd.Process.Pid)
		fmt.Printf("%-13s sequential p50 %8s p99 %8s | %d clients p50 %8s p99 %8s | VmHWM after %d scrapes %.1f MiB (now anon %.1f + file %.1f)\n", t.name,
			measure.Percentile(seq[t.name], 50).Round(time.Microsecond), measure.Percentile(seq[t.name], 99).Round(time.Microsecond), clients,
			measure.Percentile(conc[t.name], 50).Round(time.Microsecond), measure.Percentile(conc[t.name], 99).Round(time.Microsecond),
			2*scrapes, float64(hwm[t.name])/1024, float64(anon)/1024, float64(file)/1024)
	}
	fmt.Printf("load average after: %s\n", loadavg())
	ratio := func(m map[string][]time.Duration, name string) float64 {
		return float64(measure.Percentile(m[name], 99)) / float64(measure.Percentile(m["node_exporter"], 99))
	}
	for _, name := range []string{"spofwatch", "floor"} {
		fmt.Printf("ratio %s/node_exporter: sequential p99 %.2f, %d-client p99 %.2f, VmHWM %.2f\n", name,
			ratio(seq, name), clients, ratio(conc, name), float64(hwm[name])/float64(hwm["node_exporter"]))
	}
	return nil
}
