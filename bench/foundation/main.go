// Command foundation puts spofwatch beside node_exporter on this host in
// one run: /metrics scrape latency (p50/p99), idle peak RSS (VmHWM), and
// the wall time of `spofwatch check`. It prints the figures and ratios.
//
//	go run ./bench/foundation -spofwatch bin/spofwatch -node-exporter /usr/bin/prometheus-node-exporter
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/spofwatch/spofwatch/bench/measure"
)

func main() {
	spofwatch := flag.String("spofwatch", "bin/spofwatch", "spofwatch binary")
	nodeExporter := flag.String("node-exporter", "/usr/bin/prometheus-node-exporter", "node_exporter binary")
	scrapes := flag.Int("scrapes", 500, "scrapes per target")
	checks := flag.Int("checks", 20, "spofwatch check runs")
	idle := flag.Duration("idle", 5*time.Second, "idle time before reading peak RSS")
	flag.Parse()
	if err := run(*spofwatch, *nodeExporter, *scrapes, *checks, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	cmd  *exec.Cmd
	url  string
}

func start(name, bin string, args ...string) (*target, error) {
	e, err := measure.Start(name, bin, func(url string) error {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}, args...)
	if err != nil {
		return nil, err
	}
	return &target{name: name, cmd: e.Cmd, url: e.URL}, nil
}

func scrape(url string, n int) ([]time.Duration, int, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	var took []time.Duration
	size := 0
	for i := 0; i < n; i++ {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return nil, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, 0, err
		}
		took = append(took, time.Since(start))
		size = len(b)
	}
	return took, size, nil
}

func run(spofwatch, nodeExporter string, scrapes, checks int, idle time.Duration) error {
	// An empty config: all defaults, whatever /etc holds on this machine.
	empty, err := os.CreateTemp("", "spofwatch-bench-*.yml")
	if err != nil {
		return err
	}
	empty.Close()
	defer os.Remove(empty.Name())
	sw, err := start("spofwatch", spofwatch, "--config.file="+empty.Name(), "--path.state="+os.TempDir()+"/spofwatch-bench-state")
	if err != nil {
		return err
	}
	defer sw.cmd.Process.Kill()
	ne, err := start("node_exporter", nodeExporter)
	if err != nil {
		return err
	}
	defer ne.cmd.Process.Kill()

	time.Sleep(idle)
	swIdle, err := measure.VmHWM(sw.cmd.Process.Pid)
	if err != nil {
		return err
	}
	neIdle, err := measure.VmHWM(ne.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("idle peak RSS (VmHWM): spofwatch %.1f MB, node_exporter %.1f MB, ratio %.2f\n",
		float64(swIdle)/1024, float64(neIdle)/1024, float64(swIdle)/float64(neIdle))

	results := map[string][]time.Duration{}
	for _, t := range []*target{sw, ne} {
		took, size, err := scrape(t.url, scrapes)
		if err != nil {
			return fmt.Errorf("scrape %s: %w", t.name, err)
		}
		results[t.name] = took
		fmt.Printf("%-13s /metrics: %d scrapes, %d bytes, p50 %s, p99 %s\n", t.name, scrapes, size,
			measure.Percentile(took, 50).Round(time.Microsecond), measure.Percentile(took, 99).Round(time.Microsecond))
	}
	fmt.Printf("scrape p99 ratio spofwatch/node_exporter: %.2f\n",
		float64(measure.Percentile(results["spofwatch"], 99))/float64(measure.Percentile(results["node_exporter"], 99)))
	swAfter, _ := measure.VmHWM(sw.cmd.Process.Pid)
	fmt.Printf("spofwatch VmHWM after %d scrapes: %.1f MB\n", scrapes, float64(swAfter)/1024)

	var walls []time.Duration
	for i := 0; i < checks; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		cmd := exec.CommandContext(ctx, spofwatch, "check", "--format=json", "--config.file="+empty.Name())
		cmd.Stdout = io.Discard
		err := cmd.Run()
		walls = append(walls, time.Since(start))
		cancel()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 2) {
			return fmt.Errorf("spofwatch check: %w", err)
		}
	}
	fmt.Printf("spofwatch check wall time: %d runs, p50 %s, max %s\n", checks,
		measure.Percentile(walls, 50).Round(time.Millisecond), measure.Percentile(walls, 100).Round(time.Millisecond))
	return nil
}
