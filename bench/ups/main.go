// Command ups-bench is the side-by-side benchmark of the UPS issue: one poll
// of 2 UPSes against a real upsd (Debian nut-server, started here on a free
// port) by spofwatch's client versus `upsc` for the same variables. It
// prints per-poll times and the ratio. Target: a poll under 5 ms.
//
//	go run ./bench/ups [-n 300] [-fixtures ups/testdata/nut]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spofwatch/spofwatch/ups"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

func main() {
	n := flag.Int("n", 300, "polls per contender")
	fixtures := flag.String("fixtures", "ups/testdata/nut", "directory with ups-a.dev, ups-b.dev, upsd.users")
	flag.Parse()
	if err := run(*n, *fixtures); err != nil {
		fmt.Fprintln(os.Stderr, "ups-bench:", err)
		os.Exit(1)
	}
}

var names = []string{"ups-a", "ups-b"}

func run(n int, fixtures string) error {
	ctx := context.Background()
	srv, err := nuttest.Start(ctx, nuttest.Config{FixtureDir: fixtures, UPS: names})
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("upsd %s, %d polls each; one poll = every variable of ups-a and ups-b\n\n", srv.Addr, n)

	// spofwatch: what the collector does per poll (connect, LIST VAR x2, LOGOUT).
	ours, err := measure(n, func() error {
		c, err := ups.Dial(ctx, srv.Addr, ups.Options{Username: "monuser", Password: "monpass", Timeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		for _, u := range names {
			if _, err := c.ListVars(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// spofwatch client on one kept connection (TCP_QUICKACK set before reads).
	kept, err := ups.Dial(ctx, srv.Addr, ups.Options{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	reused, err := measure(n, func() error {
		for _, u := range names {
			if _, err := kept.ListVars(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	kept.Close()
	if err != nil {
		return err
	}
	// The same on a kept connection without TCP_QUICKACK: what the quick
	// ACK saves (a plain reader, no package ups).
	noQuick, err := rawReused(srv.Addr, min(n, 40), false)
	if err != nil {
		return err
	}
	withQuick, err := rawReused(srv.Addr, n, true)
	if err != nil {
		return err
	}
	// upsc, one process per UPS (upsc takes one UPS per call).
	upsc, err := exec.LookPath("upsc")
	if err != nil {
		return fmt.Errorf("upsc (Debian nut-client) missing: %w", err)
	}
	theirs, err := measure(min(n, 100), func() error {
		for _, u := range names {
			cmd := exec.Command(upsc, u+"@"+srv.Addr)
			if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "ups.status:") {
				return fmt.Errorf("upsc %s: %v %q", u, err, out)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("%-52s %s\n", "spofwatch ups client, new connection per poll", ours)
	fmt.Printf("%-52s %s\n", "spofwatch ups client, kept connection", reused)
	fmt.Printf("%-52s %s\n", "raw client, kept connection, no TCP_QUICKACK", noQuick)
	fmt.Printf("%-52s %s\n", "raw client, kept connection, TCP_QUICKACK", withQuick)
	fmt.Printf("%-52s %s\n", "upsc ups-a + upsc ups-b (processes)", theirs)
	fmt.Printf("\nratio upsc / spofwatch (median, new connection per poll): %.1fx\n", float64(theirs.median)/float64(ours.median))
	verdict := "MET"
	if ours.median >= 5*time.Millisecond {
		verdict = "MISSED"
	}
	fmt.Printf("target poll < 5 ms: %s (median %v, p90 %v)\n", verdict, ours.median, ours.p90)
	return nil
}

type result struct {
	n                     int
	min, median, p90, max time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("n=%-4d min %-9v median %-9v p90 %-9v max %v", r.n, r.min, r.median, r.p90, r.max)
}

func measure(n int, poll func() error) (result, error) {
	if err := poll(); err != nil { // warm-up
		return result{}, err
	}
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := poll(); err != nil {
			return result{}, err
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return result{n, r(ds[0]), r(ds[n/2]), r(ds[n*9/10]), r(ds[n-1])}, nil
}

// rawReused polls over one kept connection with a plain reader, setting
// TCP_QUICKACK before every read or not, to isolate what the option saves.
func rawReused(addr string, n int, quickAck bool) (result, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	c := conn.(*net.TCPConn)
	br := bufio.NewReader(readerFunc(func(b []byte) (int, error) {
		if quickAck {
			rc, _ := c.SyscallConn()
			_ = rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
			})
		}
		return c.Read(b)
	}))
	return measure(n, func() error {
		for _, u := range names {
			fmt.Fprintf(c, "LIST VAR %s\n", u)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return err
				}
				if strings.HasPrefix(line, "END LIST") {
					break
				}
			}
		}
		return nil
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }
