// Command vmguest is the VM harness's agent inside the guest. The guest's
// init starts it after loading the kernel modules; it reads the plan
// (/etc/vm/plan.json), runs every scenario step against the real kernel and
// the spofwatch binary, and reports each result to the host as JSON lines on
// a virtio-serial port. Human-readable progress goes to the serial console.
//
// It polls spofwatch until a step's expectations hold (the kernel and the
// daemon settle asynchronously) but the host is the judge: it re-checks the
// reported JSON itself.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spofwatch/spofwatch/test/vm/scenario"
)

const portName = "spofwatch.ctl"

func main() {
	planPath := "/etc/vm/plan.json"
	if len(os.Args) > 1 {
		planPath = os.Args[1]
	}
	b, err := os.ReadFile(planPath)
	if err != nil {
		fatal("read plan: %v", err)
	}
	var plan scenario.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		fatal("decode plan %s: %v", planPath, err)
	}
	ctl, err := openControl(10 * time.Second)
	if err != nil {
		fatal("%v", err)
	}
	a := &agent{plan: plan, ctl: ctl, acks: map[int]chan scenario.Message{}, http: &http.Client{Timeout: 5 * time.Second}}
	go a.readAcks()
	a.send(scenario.Message{Type: "hello"})
	for _, sc := range plan.Scenarios {
		a.runScenario(sc)
	}
	a.stopDaemon()
	a.send(scenario.Message{Type: "done"})
}

func fatal(format string, args ...any) {
	fmt.Printf("@@VMGUEST-FATAL "+format+"\n", args...)
	os.Exit(1)
}

// openControl finds the virtio-serial port the host named spofwatch.ctl.
func openControl(timeout time.Duration) (*os.File, error) {
	deadline := time.Now().Add(timeout)
	for {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err == nil && strings.TrimSpace(string(b)) == portName {
				dev := "/dev/" + filepath.Base(filepath.Dir(n))
				f, err := os.OpenFile(dev, os.O_RDWR, 0)
				if err == nil {
					return f, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("virtio-serial port %q not found after %s (ports: %v)", portName, timeout, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type agent struct {
	plan scenario.Plan
	ctl  *os.File
	wmu  sync.Mutex

	mu     sync.Mutex
	nextID int
	acks   map[int]chan scenario.Message

	daemon *exec.Cmd
	http   *http.Client
}

func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

func (a *agent) send(m scenario.Message) {
	m.Uptime = uptime()
	b, _ := json.Marshal(m)
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if _, err := a.ctl.Write(append(b, '\n')); err != nil {
		fmt.Printf("@@VMGUEST control write: %v\n", err)
	}
}

func (a *agent) readAcks() {
	sc := bufio.NewScanner(a.ctl)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m scenario.Message
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Type != "ack" {
			continue
		}
		a.mu.Lock()
		ch := a.acks[m.ID]
		delete(a.acks, m.ID)
		a.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// host asks the host to act and waits for its ack. It returns the request
// ID, which the host uses to time what follows.
func (a *agent) host(cmd string) (int, error) {
	a.mu.Lock()
	a.nextID++
	id := a.nextID
	ch := make(chan scenario.Message, 1)
	a.acks[id] = ch
	a.mu.Unlock()
	a.send(scenario.Message{Type: "host", ID: id, Cmd: cmd})
	select {
	case m := <-ch:
		if m.Err != "" {
			return id, fmt.Errorf("host %q: %s", cmd, m.Err)
		}
		return id, nil
	case <-time.After(30 * time.Second):
		return id, fmt.Errorf("host %q: no ack within 30s", cmd)
	}
}

func (a *agent) runScenario(sc scenario.Scenario) {
	fmt.Printf("\n@@SCENARIO %s (t=%.2f)\n", sc.Name, uptime())
	a.send(scenario.Message{Type: "mark", Name: "scenario-start " + sc.Name})
	failed := false
	for _, st := range sc.Steps {
		res := scenario.StepResult{Scenario: sc.Name, Step: st.Name}
		if failed {
			res.Err = "not run: an earlier step of this scenario failed"
			a.send(scenario.Message{Type: "step", Step: &res})
			continue
		}
		start := time.Now()
		var log bytes.Buffer
		err := a.runStep(sc, st, &res, &log)
		res.Seconds = time.Since(start).Seconds()
		res.Log = tail(log.String(), 4000)
		if err != nil {
			res.Err = err.Error()
			failed = true
		}
		fmt.Printf("@@STEP %s / %s: %.2fs err=%v\n", sc.Name, st.Name, res.Seconds, err)
		a.send(scenario.Message{Type: "step", Step: &res})
	}
	a.send(scenario.Message{Type: "mark", Name: "scenario-end " + sc.Name})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func (a *agent) runStep(sc scenario.Scenario, st scenario.Step, res *scenario.StepResult, log *bytes.Buffer) error {
	for _, c := range st.Sh {
		if err := runSh(c, log); err != nil {
			return err
		}
	}
	for _, h := range st.Host {
		fmt.Fprintf(log, "# host %s\n", h)
		if _, err := a.host(h); err != nil {
			return err
		}
	}
	switch st.Daemon {
	case "":
	case "start":
		if err := a.startDaemon(log); err != nil {
			return err
		}
	case "stop":
		a.stopDaemon()
	case "restart":
		a.stopDaemon()
		if err := a.startDaemon(log); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown daemon action %q", st.Daemon)
	}
	if len(st.Wait) > 0 {
		if err := waitFiles(st.Wait, st.Timeout(), log); err != nil {
			return err
		}
	}
	if st.Check != nil {
		if err := a.check(sc, st, res); err != nil {
			return err
		}
	}
	if st.Latency != nil {
		return a.latency(sc, *st.Latency, log)
	}
	return nil
}

func runSh(c string, log *bytes.Buffer) error {
	fmt.Fprintf(log, "$ %s\n", c)
	out, err := exec.Command("/bin/sh", "-c", c).CombinedOutput()
	log.Write(out)
	if err != nil {
		return fmt.Errorf("sh %q: %v: %s", c, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func waitFiles(conds []scenario.FileCond, timeout time.Duration, log *bytes.Buffer) error {
	deadline := time.Now().Add(timeout)
	for _, c := range conds {
		for {
			b, err := os.ReadFile(c.Path)
			if err == nil && c.Holds(string(b)) {
				fmt.Fprintf(log, "# ok: %s\n", c)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("timeout after %s waiting until %s (have %q, err %v)", timeout, c, strings.TrimSpace(string(b)), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// fetch returns spofwatch's JSON, its exit code (check only) and an error
// when there is no JSON to judge.
func (a *agent) fetch(c scenario.Check) ([]byte, int, error) {
	if c.API {
		resp, err := a.http.Get(a.plan.APIURL)
		if err != nil {
			return nil, -1, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, -1, err
		}
		if resp.StatusCode != http.StatusOK {
			return b, -1, fmt.Errorf("GET %s: %s", a.plan.APIURL, resp.Status)
		}
		return b, 0, nil
	}
	args := append([]string{"check", "--format", "json"}, a.plan.CheckArgs...)
	args = append(args, c.Args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.plan.Spofwatch, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return stderr.Bytes(), -1, fmt.Errorf("run %s check: %v", a.plan.Spofwatch, err)
	}
	if !json.Valid(stdout.Bytes()) {
		return append(stdout.Bytes(), stderr.Bytes()...), code, fmt.Errorf("spofwatch check exit %d printed no JSON; stderr: %s", code, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), code, nil
}

func (a *agent) check(sc scenario.Scenario, st scenario.Step, res *scenario.StepResult) error {
	deadline := time.Now().Add(st.Timeout())
	var last []string
	for {
		res.Attempts++
		out, code, err := a.fetch(*st.Check)
		res.Output, res.ExitCode = string(out), code
		if err == nil {
			r, perr := scenario.ParseReport(out)
			if perr != nil {
				err = perr
			} else if miss := r.MissingCollectors(sc.Needs); len(miss) > 0 {
				// No point waiting: the binary lacks the collector.
				return fmt.Errorf("spofwatch reports no collector %s (collectors: %v): the collector has not landed in this binary or is disabled", strings.Join(miss, ", "), collectorNames(r))
			} else if last = scenario.Verify(r, st.Check.Expect); len(last) == 0 {
				return nil
			}
		}
		if err != nil {
			last = []string{err.Error()}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("expectations not met after %s (%d attempts): %s", st.Timeout(), res.Attempts, strings.Join(last, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func collectorNames(r scenario.Report) []string {
	var n []string
	for _, c := range r.Collectors {
		n = append(n, c.Name)
	}
	return n
}

func (a *agent) startDaemon(log *bytes.Buffer) error {
	if a.daemon != nil {
		return nil
	}
	lf, err := os.Create("/tmp/spofwatch-daemon.log")
	if err != nil {
		return err
	}
	cmd := exec.Command(a.plan.Spofwatch, a.plan.DaemonArgs...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	a.daemon = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := a.http.Get(a.plan.APIURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(log, "# daemon up, %s answers\n", a.plan.APIURL)
				return nil
			}
		}
		select {
		case err := <-exited:
			a.daemon = nil
			b, _ := os.ReadFile("/tmp/spofwatch-daemon.log")
			return fmt.Errorf("daemon exited (%v): %s", err, tail(string(b), 2000))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile("/tmp/spofwatch-daemon.log")
			return fmt.Errorf("daemon API %s not ready after 60s: %s", a.plan.APIURL, tail(string(b), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *agent) stopDaemon() {
	if a.daemon == nil {
		return
	}
	a.daemon.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { a.daemon.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		a.daemon.Process.Kill()
	}
	a.daemon = nil
}

// act performs an action. It returns the time the fault took effect from
// the guest's point of view (the last command returned, or the host's ack
// arrived) and the ID of the last host request.
func (a *agent) act(act scenario.Action, log *bytes.Buffer) (time.Time, int, error) {
	var hostID int
	for _, c := range act.Sh {
		if err := runSh(c, log); err != nil {
			return time.Time{}, 0, err
		}
	}
	for _, argv := range act.Exec {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return time.Time{}, 0, fmt.Errorf("exec %q: %v: %s", argv, err, out)
		}
	}
	for _, h := range act.Host {
		id, err := a.host(h)
		if err != nil {
			return time.Time{}, 0, err
		}
		hostID = id
	}
	return time.Now(), hostID, nil
}

func (a *agent) latency(sc scenario.Scenario, l scenario.Latency, log *bytes.Buffer) error {
	poll := time.Duration(l.PollMillis) * time.Millisecond
	if poll <= 0 {
		poll = 5 * time.Millisecond
	}
	var lastMismatch string // what the first poll saw, for the log
	// until polls the API until the expectations hold; it returns the
	// time they were first seen to hold.
	until := func(expects []scenario.Expect, timeout time.Duration) (time.Time, int, error) {
		deadline := time.Now().Add(timeout)
		polls := 0
		var last []string
		for {
			polls++
			out, _, err := a.fetch(scenario.Check{API: true})
			now := time.Now()
			if err == nil {
				r, perr := scenario.ParseReport(out)
				if perr != nil {
					err = perr
				} else if last = scenario.Verify(r, expects); len(last) == 0 {
					return now, polls, nil
				}
			}
			if err != nil {
				last = []string{err.Error()}
			}
			if polls == 1 {
				lastMismatch = strings.Join(last, "; ")
			}
			if now.After(deadline) {
				return now, polls, fmt.Errorf("not seen within %s (%d polls): %s", timeout, polls, strings.Join(last, "; "))
			}
			time.Sleep(poll)
		}
	}
	t0 := time.Now()
	if _, polls, err := until(l.Restored, 60*time.Second); err != nil {
		return fmt.Errorf("%s: initial state: %w", l.Name, err)
	} else if d := time.Since(t0); d > time.Second {
		// Worth knowing: the daemon missed the setup's event and only a
		// periodic collection caught up.
		fmt.Fprintf(log, "# %s: initial state took %.1f s (%d polls): %s\n", l.Name, d.Seconds(), polls, lastMismatch)
	}
	var errs []string
	for round := 1; round <= l.Rounds; round++ {
		res := scenario.LatencyResult{Name: l.Name, Round: round}
		t0, hostID, err := a.act(l.Fault, log)
		if err != nil {
			return fmt.Errorf("%s round %d: fault: %w", l.Name, round, err)
		}
		t1, polls, err := until(l.Changed, 30*time.Second)
		if err == nil && hostID != 0 {
			a.send(scenario.Message{Type: "changed", ID: hostID, Name: l.Name})
		}
		res.GuestMillis = float64(t1.Sub(t0).Microseconds()) / 1000
		res.Polls, res.HostID = polls, hostID
		if err != nil {
			res.Err = err.Error()
			errs = append(errs, fmt.Sprintf("round %d: %v", round, err))
		}
		fmt.Fprintf(log, "# %s round %d: %.1f ms (%d polls) %v\n", l.Name, round, res.GuestMillis, polls, err)
		a.send(scenario.Message{Type: "latency", Lat: &res})
		if len(l.Fault.Wait) > 0 {
			if err := waitFiles(l.Fault.Wait, 30*time.Second, log); err != nil {
				return fmt.Errorf("%s round %d: fault did not happen in the kernel: %w", l.Name, round, err)
			}
		}
		tr := time.Now()
		if _, _, err := a.act(l.Restore, log); err != nil {
			return fmt.Errorf("%s round %d: restore: %w", l.Name, round, err)
		}
		if len(l.Restore.Wait) > 0 {
			if err := waitFiles(l.Restore.Wait, 60*time.Second, log); err != nil {
				return fmt.Errorf("%s round %d: restore: %w", l.Name, round, err)
			}
		}
		tw := time.Now()
		if _, _, err := until(l.Restored, 60*time.Second); err != nil {
			return fmt.Errorf("%s round %d: not restored: %w", l.Name, round, err)
		}
		fmt.Fprintf(log, "# %s round %d: restored in the kernel after %.0f ms, in the API %.0f ms later\n",
			l.Name, round, float64(tw.Sub(tr).Milliseconds()), float64(time.Since(tw).Milliseconds()))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", l.Name, strings.Join(errs, "; "))
	}
	return nil
}
