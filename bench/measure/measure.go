// Package measure holds what the side-by-side benchmarks measure alike:
// a process's peak resident set and latency percentiles.
package measure

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// VmHWM reads a process's peak resident set size in kB.
func VmHWM(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// Percentile is the nearest-rank p-th percentile of d (d is not changed).
func Percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// Exporter is an exporter process started for a side-by-side run.
type Exporter struct {
	Cmd *exec.Cmd
	// URL is its /metrics on a free loopback port.
	URL string
}

// Start runs bin with args and --web.listen-address on a free loopback
// port, and waits up to 15 s until ready(URL) succeeds.
func Start(name, bin string, ready func(url string) error, args ...string) (*Exporter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, append(args, "--web.listen-address="+addr)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	e := &Exporter{Cmd: cmd, URL: "http://" + addr + "/metrics"}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ready(e.URL)
		if err == nil {
			return e, nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("%s never answered: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
