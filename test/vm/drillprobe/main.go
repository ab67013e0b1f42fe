// Command drillprobe runs the bond drill methods in the VM guest until the
// `spofwatch drill run` command can: it builds one drill.Method, runs it
// under SIGTERM/SIGINT like the real command, prints the Outcome as JSON on
// stdout and each Details line as "# figure: ..." on stderr (the harness
// prints those lines in the test log), and exits with the drill exit code.
// Test-only: it is built into the initramfs, never shipped.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spofwatch/spofwatch/drill"
)

func main() {
	method := flag.String("method", "bond-failover", "bond-failover or lacp-state")
	sys := flag.String("sys", "/sys", "sysfs root")
	bond := flag.String("bond", "", "bond name")
	targets := flag.String("targets", "", "comma-separated IPv4 targets (default: the gateway via the bond)")
	probeTimeout := flag.Duration("probe-timeout", 3*time.Second, "ARP probe time per slave and target")
	timeout := flag.Duration("timeout", 60*time.Second, "the drill's timeout")
	plan := flag.Bool("plan", false, "print the plan only")
	flag.Parse()

	var ts []netip.Addr
	for _, s := range strings.Split(*targets, ",") {
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(drill.ExitUsage)
		}
		ts = append(ts, a)
	}
	var m drill.Method
	switch *method {
	case "bond-failover":
		m = drill.NewBondFailover(*sys, *bond, ts, *probeTimeout)
	case "lacp-state":
		m = drill.NewLACPState(*sys, "/proc", *bond)
	default:
		fmt.Fprintf(os.Stderr, "unknown method %q\n", *method)
		os.Exit(drill.ExitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *plan {
		steps, err := m.Plan(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "refused:", err)
			os.Exit(drill.ExitRefused)
		}
		fmt.Println(strings.Join(steps, "\n"))
		return
	}
	start := time.Now()
	out := m.Run(ctx, true, nil)
	finished := time.Now()
	for _, d := range out.Details {
		fmt.Fprintf(os.Stderr, "# figure: %s %s: %s\n", m.Name(), *bond, d)
	}
	fmt.Fprintf(os.Stderr, "# figure: %s %s: %s in %.1fms\n", m.Name(), *bond, out.Result, float64(finished.Sub(start).Microseconds())/1000)
	b, _ := json.Marshal(struct {
		Method        string            `json:"method"`
		Result        drill.Result      `json:"result"`
		Reason        string            `json:"reason"`
		Started       time.Time         `json:"started"`
		Finished      time.Time         `json:"finished"`
		Details       []string          `json:"details"`
		FailedMembers map[string]string `json:"failed_members,omitempty"`
	}{m.Name(), out.Result, out.Reason, start, finished, out.Details, out.FailedMembers})
	fmt.Println(string(b))
	switch out.Result {
	case drill.ResultPassed:
		os.Exit(drill.ExitPassed)
	case drill.ResultRefused:
		os.Exit(drill.ExitRefused)
	default:
		os.Exit(drill.ExitFailed)
	}
}
