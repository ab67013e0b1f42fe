// Package ipmisim starts OpenIPMI's ipmi_sim as a real BMC for tests, on
// free 127.0.0.1 ports in a test's temporary directory, with the PSU, power
// unit and fan sensors of ipmi/testdata/sim, and injects faults through the
// simulator's console. Like net/http/httptest it is for tests only.
package ipmisim

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"time"
)

// Credentials of the simulator's admin user.
const (
	Username = "admin"
	Password = "admin"
)

// Sensor numbers in the simulator.
const (
	SensorPSU1          = 0x10
	SensorPSU2          = 0x11
	SensorPSRedundancy  = 0x12
	SensorFanRedundancy = 0x13
	SensorFAN1          = 0x20
)

// Sim is one running ipmi_sim.
type Sim struct {
	t           testing.TB
	Dir         string
	Host        string
	Port        int    // RMCP/RMCP+ UDP port
	ConsolePort int    // emulator console TCP port
	config      string // command file, one of the Config constants
	cmd         *exec.Cmd
	done        chan struct{}
}

// Scenarios are named fault injections (console commands). The last
// argument of sensor_set_bit* asks the simulator to log a SEL event.
var Scenarios = map[string][]string{
	"psu1-fail":       {"sensor_set_bit 0x20 0 0x10 1 1 1"},
	"psu1-ac-lost":    {"sensor_set_bit 0x20 0 0x10 3 1 1"},
	"psu1-ok":         {"sensor_set_bit_clr_rest 0x20 0 0x10 0 1"},
	"psu2-fail":       {"sensor_set_bit 0x20 0 0x11 1 1 1"},
	"psu2-predictive": {"sensor_set_bit 0x20 0 0x11 2 1 1"},
	"psu2-ac-lost":    {"sensor_set_bit 0x20 0 0x11 3 1 1"},
	"psu2-ok":         {"sensor_set_bit_clr_rest 0x20 0 0x11 0 1"},
	"psu2-remove":     {"sensor_set_bit 0x20 0 0x11 1 0 1", "sensor_set_bit 0x20 0 0x11 0 0 1"},
	"ps-red-ok":       {"sensor_set_bit_clr_rest 0x20 0 0x12 0 1"},
	"ps-red-lost":     {"sensor_set_bit_clr_rest 0x20 0 0x12 1 1"},
	"ps-red-degr":     {"sensor_set_bit_clr_rest 0x20 0 0x12 2 1"},
	"fan-red-ok":      {"sensor_set_bit_clr_rest 0x20 0 0x13 0 1"},
	"fan-red-lost":    {"sensor_set_bit_clr_rest 0x20 0 0x13 1 1"},
	"fan-red-degr":    {"sensor_set_bit_clr_rest 0x20 0 0x13 2 1"},
	"fan3-stall":      {"sensor_set_value 0x20 0 0x22 5 1"},
	"fan3-slow":       {"sensor_set_value 0x20 0 0x22 15 1"},
	"fan3-ok":         {"sensor_set_value 0x20 0 0x22 60 1"},
	"all-ok": {"sensor_set_bit_clr_rest 0x20 0 0x10 0 1", "sensor_set_bit_clr_rest 0x20 0 0x11 0 1",
		"sensor_set_bit_clr_rest 0x20 0 0x12 0 1", "sensor_set_bit_clr_rest 0x20 0 0x13 0 1",
		"sensor_set_value 0x20 0 0x20 60 0", "sensor_set_value 0x20 0 0x21 60 0", "sensor_set_value 0x20 0 0x22 60 0"},
}

// configDir is ipmi/testdata/sim, found from this source file so tests in any
// package can start the simulator.
func configDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "sim")
}

// Command files in ipmi/testdata/sim that StartWith accepts.
const (
	// ConfigFull is the default BMC: PSU, redundancy and fan sensors.
	ConfigFull = "spof.emu"
	// ConfigRedundancyOnly is a BMC with the power-unit and fan redundancy
	// sensors (same numbers as ConfigFull) and no per-PSU or per-fan sensor.
	ConfigRedundancyOnly = "redundancy-only.emu"
)

// Start runs ipmi_sim with ConfigFull and stops it when the test ends. A
// missing ipmi_sim fails the test: install Debian's openipmi
// (scripts/apt-packages.txt).
func Start(t testing.TB) *Sim {
	t.Helper()
	return StartWith(t, ConfigFull)
}

// StartWith runs ipmi_sim with one of the command files above.
func StartWith(t testing.TB, config string) *Sim {
	t.Helper()
	if config != ConfigFull && config != ConfigRedundancyOnly {
		t.Fatalf("ipmisim: unknown config %q", config)
	}
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		t.Fatalf("ipmi_sim not found (Debian package openipmi, see scripts/apt-packages.txt): %v", err)
	}
	s := &Sim{t: t, Dir: t.TempDir(), Host: "127.0.0.1", config: config}
	s.Port = freePort(t, "udp")
	s.ConsolePort = freePort(t, "tcp")
	src := configDir()
	for _, f := range []string{ConfigFull, ConfigRedundancyOnly, "sdrs.emu", "fans.emu"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatalf("ipmisim: %v", err)
		}
		if err := os.WriteFile(filepath.Join(s.Dir, f), b, 0o644); err != nil {
			t.Fatalf("ipmisim: %v", err)
		}
	}
	tmpl, err := template.ParseFiles(filepath.Join(src, "lan.conf.tmpl"))
	if err != nil {
		t.Fatalf("ipmisim: %v", err)
	}
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, s); err != nil {
		t.Fatalf("ipmisim: %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "lan.conf"), conf.Bytes(), 0o644); err != nil {
		t.Fatalf("ipmisim: %v", err)
	}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Sim) start() {
	s.t.Helper()
	state := filepath.Join(s.Dir, "state")
	// Fresh state on every start: ipmi_sim persists SEL and SDRs there, and
	// the command file adds the SDRs again.
	_ = os.RemoveAll(state)
	if err := os.MkdirAll(state, 0o755); err != nil {
		s.t.Fatalf("ipmisim: %v", err)
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "ipmi_sim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatalf("ipmisim: %v", err)
	}
	// -n: no stdin console (the TCP console is used); -s: private state dir.
	// SIGPIPE ignored: a console client that goes away must not kill the
	// simulator.
	cmd := exec.Command("sh", "-c", `trap "" PIPE; exec ipmi_sim -c lan.conf -f "$1" -s "$0" -n`, state, s.config)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("ipmisim: start ipmi_sim: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Up means the LAN channel answers a ping and the console its
		// prompt. Never close the console before its prompt: ipmi_sim would
		// die of SIGPIPE writing it (ignored below, but be polite).
		err := s.ping()
		if err == nil {
			if err = s.Exec(); err == nil {
				return
			}
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "ipmi_sim.log"))
			s.t.Fatalf("ipmisim: ipmi_sim exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ipmisim: console %s not up after 10s: %v", s.console(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping sends an RMCP/ASF presence ping to the LAN port and waits for the
// pong.
func (s *Sim) ping() error {
	c, err := net.Dial("udp", net.JoinHostPort(s.Host, fmt.Sprint(s.Port)))
	if err != nil {
		return err
	}
	defer c.Close()
	// RMCP v1.0, seq 0xff (no ack), class ASF; ASF IANA 4542, type 0x80 ping.
	ping := []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00}
	if _, err := c.Write(ping); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if n < 9 || buf[8] != 0x40 { // 0x40: presence pong
		return fmt.Errorf("unexpected answer to RMCP ping: % x", buf[:n])
	}
	return nil
}

func (s *Sim) console() string { return net.JoinHostPort(s.Host, fmt.Sprint(s.ConsolePort)) }

// Kill stops the simulator (SIGKILL: a BMC that vanishes) and waits for it.
func (s *Sim) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart kills the simulator and starts it again on the same ports with
// fresh state, like a BMC reset: every session is gone.
func (s *Sim) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Inject runs a named scenario from Scenarios.
func (s *Sim) Inject(name string) {
	s.t.Helper()
	cmds, ok := Scenarios[name]
	if !ok {
		s.t.Fatalf("ipmisim: unknown scenario %q", name)
	}
	if err := s.Exec(cmds...); err != nil {
		s.t.Fatalf("ipmisim: inject %s: %v", name, err)
	}
}

// Exec sends emulator commands to the console and fails on a command the
// simulator rejects (its errors start with "**"). Never send "quit": it
// exits the simulator.
func (s *Sim) Exec(cmds ...string) error {
	c, err := net.DialTimeout("tcp", s.console(), 2*time.Second)
	if err != nil {
		return fmt.Errorf("console %s: %w", s.console(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if err := readPrompt(r); err != nil {
		return fmt.Errorf("console %s: %w", s.console(), err)
	}
	for _, cmd := range cmds {
		if strings.TrimSpace(cmd) == "quit" {
			return fmt.Errorf("refusing to send quit: it exits the simulator")
		}
		if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
			return fmt.Errorf("console %s: %w", s.console(), err)
		}
		out, err := readUntilPrompt(r)
		if err != nil {
			return fmt.Errorf("console %s: %s: %w", s.console(), cmd, err)
		}
		if strings.Contains(out, "**") {
			return fmt.Errorf("ipmi_sim rejected %q: %s", cmd, strings.TrimSpace(out))
		}
	}
	return nil
}

func readPrompt(r *bufio.Reader) error {
	_, err := readUntilPrompt(r)
	return err
}

// readUntilPrompt reads up to the console's "> " prompt, dropping telnet
// negotiation bytes.
func readUntilPrompt(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), err
		}
		if c == 0xff { // telnet IAC + command + option
			_, _ = r.ReadByte()
			_, _ = r.ReadByte()
			continue
		}
		b.WriteByte(c)
		s := b.String()
		if strings.HasSuffix(s, "> ") {
			// The echo of the command also starts with "> "; a prompt is
			// one at the start of a line.
			if len(s) == 2 || strings.HasSuffix(s, "\n> ") || strings.HasSuffix(s, "\r> ") {
				return s, nil
			}
		}
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("ipmisim: free UDP port: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("ipmisim: free TCP port: %v", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}
