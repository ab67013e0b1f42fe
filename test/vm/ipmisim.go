package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// IPMISim is an OpenIPMI ipmi_sim BMC on 127.0.0.1 that QEMU's
// ipmi-bmc-extern connects to (VM codec), with its command console used to
// inject sensor faults.
type IPMISim struct {
	VMPort      int
	ConsolePort int

	cmd     *exec.Cmd
	exited  chan error
	mu      sync.Mutex
	console net.Conn
	log     string
}

// StartIPMISim starts ipmi_sim in dir with the emulator commands (.emu) and
// the SDR source (.sdrs, compiled here with sdrcomp) on free ports.
func StartIPMISim(ctx context.Context, dir, emuFile, sdrsFile string) (*IPMISim, error) {
	bin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		return nil, fmt.Errorf("ipmi_sim not found: install openipmi")
	}
	sdrcomp, err := exec.LookPath("sdrcomp")
	if err != nil {
		return nil, fmt.Errorf("sdrcomp not found: install openipmi")
	}
	s := &IPMISim{}
	if s.VMPort, err = freePort(); err != nil {
		return nil, err
	}
	if s.ConsolePort, err = freePort(); err != nil {
		return nil, err
	}
	// ipmi_sim keeps its SDR repository in <state>/ipmi_sim/<name>/.
	state := filepath.Join(dir, "state")
	repo := filepath.Join(state, "ipmi_sim", "vm")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, sdrcomp, "-o", filepath.Join(repo, "sdr.20.main"), sdrsFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sdrcomp %s: %v: %s", sdrsFile, err, out)
	}
	conf := filepath.Join(dir, "lan.conf")
	// Only the VM serial interface (QEMU ipmi-bmc-extern) and the console.
	lan := fmt.Sprintf("name \"vm\"\nset_working_mc 0x20\n  serial 15 127.0.0.1 %d codec VM\n  startnow false\nconsole 127.0.0.1 %d\n", s.VMPort, s.ConsolePort)
	if err := os.WriteFile(conf, []byte(lan), 0o644); err != nil {
		return nil, err
	}
	s.log = filepath.Join(dir, "ipmi_sim.log")
	lf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	s.cmd = exec.Command(bin, "-c", conf, "-f", emuFile, "-s", state, "-n")
	s.cmd.Dir = dir
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ipmi_sim: %w", err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.ConsolePort))
		if err == nil {
			s.console = c
			go io.Copy(io.Discard, c) // prompts and echoes
			break
		}
		select {
		case err := <-s.exited:
			b, _ := os.ReadFile(s.log)
			return nil, fmt.Errorf("ipmi_sim exited (%v): %s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("ipmi_sim console 127.0.0.1:%d not up after 10s", s.ConsolePort)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, nil
}

// Command sends one console command (e.g. "sensor_set_bit 0x20 0 3 1 1 1").
// Never "quit": it ends the simulator.
func (s *IPMISim) Command(c string) error {
	if strings.TrimSpace(c) == "quit" {
		return fmt.Errorf("refusing to send quit to ipmi_sim")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.console.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.console.Write([]byte(c + "\n")); err != nil {
		return fmt.Errorf("ipmi_sim console: %w", err)
	}
	return nil
}

// Log returns ipmi_sim's output so far.
func (s *IPMISim) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// Stop ends the simulator (our own process, by handle).
func (s *IPMISim) Stop() {
	if s.console != nil {
		s.console.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
