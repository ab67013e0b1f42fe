package nuttest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// An emulated driver stands where a UPS driver would, for the tests that
// need instant commands: NUT 2.8.0's dummy-ups registers only load.off and
// answers every INSTCMD with "unknown command" (drivers/dummy-ups.c,
// upsdrv_initinfo and instcmd), so no real driver without hardware offers
// test.battery.start.quick. upsd stays the real one: it connects to the
// emulated driver's socket as to any driver and does LIST CMD, the
// upsd.users checks, INSTCMD routing and TRACKING itself. The driver side
// speaks NUT's driver/server socket protocol (docs/sock-protocol.txt):
// DUMPALL -> SETINFO..., ADDCMD..., DATAOK, DUMPDONE; PING -> PONG;
// INSTCMD <cmd> [<param>] [TRACKING <id>] -> the test's handler, then
// TRACKING <id> <status> when upsd asked for it. What the UPS does in
// reply (ups.test.result, ups.status) is what the test injects.

// emulatedDriverName is the driver name in ups.conf: upsd finds the socket
// at STATEPATH/<driver>-<ups> and never runs the driver itself.
const emulatedDriverName = "spofwatch-emulated"

// Instant command results of a driver (NUT drivers/upshandler.h).
const (
	StatInstCmdHandled = 0 // completed successfully
	StatInstCmdUnknown = 1 // unspecified error
	StatInstCmdInvalid = 2 // invalid command
	StatInstCmdFailed  = 3 // command failed
)

// InstCmdHandler is what an emulated UPS does with an instant command; it
// returns one of the StatInstCmd* results. It may call Server.Set.
type InstCmdHandler func(cmd, param string) int

type emulated struct {
	ln   net.Listener
	cmds []string

	mu       sync.Mutex // guards the fields below and writes to conns
	conns    map[net.Conn]bool
	handler  InstCmdHandler
	received []string
	closed   bool
}

func (s *Server) startEmulated(name string) error {
	path := filepath.Join(s.StateDir, emulatedDriverName+"-"+name)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("nuttest: emulated driver %s: %w", name, err)
	}
	// upsd runs as nut: it must be able to connect.
	if s.asRoot {
		if err := os.Chown(path, s.nutUID, s.nutGID); err != nil {
			ln.Close()
			return err
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return err
	}
	e := &emulated{ln: ln, cmds: append([]string(nil), s.cfg.Commands[name]...), conns: map[net.Conn]bool{}}
	s.emu[name] = e
	go e.serve(s, name)
	return nil
}

func (e *emulated) serve(s *Server, name string) {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conns[c] = true
		e.mu.Unlock()
		go e.handle(s, name, c)
	}
}

func (e *emulated) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	_ = e.ln.Close()
	for c := range e.conns {
		_ = c.Close()
	}
}

func (e *emulated) handle(s *Server, name string, c net.Conn) {
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 1024), 4096)
	for sc.Scan() {
		words := strings.Fields(sc.Text())
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "DUMPALL":
			s.mu.Lock()
			d := s.cur[name].clone()
			s.mu.Unlock()
			var b strings.Builder
			for _, n := range d.names {
				if v := d.values[n]; v != "" {
					fmt.Fprintf(&b, "SETINFO %s %s\n", n, sockQuote(v))
				}
			}
			for _, cmd := range e.cmds {
				fmt.Fprintf(&b, "ADDCMD %s\n", cmd)
			}
			b.WriteString("DATAOK\nDUMPDONE\n")
			e.write(c, b.String())
		case "PING":
			e.write(c, "PONG\n")
		case "INSTCMD":
			if len(words) < 2 {
				continue
			}
			cmd, rest := words[1], words[2:]
			var id, param string
			if n := len(rest); n >= 2 && rest[n-2] == "TRACKING" {
				id, rest = rest[n-1], rest[:n-2]
			}
			if len(rest) > 0 {
				param = rest[0]
			}
			e.mu.Lock()
			e.received = append(e.received, cmd)
			h := e.handler
			e.mu.Unlock()
			status := StatInstCmdUnknown
			if h != nil {
				status = h(cmd, param)
			}
			if id != "" {
				e.write(c, fmt.Sprintf("TRACKING %s %d\n", id, status))
			}
		}
	}
}

func (e *emulated) write(c net.Conn, s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = c.Write([]byte(s))
}

// push sends changed variables to every connected upsd, as a driver sends
// its updates unprompted.
func (e *emulated) push(vars map[string]string) {
	var b strings.Builder
	for k, v := range vars {
		if v == "" {
			fmt.Fprintf(&b, "DELINFO %s\n", k)
		} else {
			fmt.Fprintf(&b, "SETINFO %s %s\n", k, sockQuote(v))
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns {
		_, _ = c.Write([]byte(b.String()))
	}
}

// sockQuote quotes a value the way parseconf reads it.
func sockQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// OnInstCmd sets what an emulated UPS does with instant commands. Without
// a handler every command fails with StatInstCmdUnknown, as dummy-ups's do.
func (s *Server) OnInstCmd(name string, h InstCmdHandler) error {
	e, ok := s.emu[name]
	if !ok {
		return fmt.Errorf("nuttest: %s is not an emulated UPS", name)
	}
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
	return nil
}

// InstCmds returns the instant commands an emulated UPS's driver received
// from upsd, in order.
func (s *Server) InstCmds(name string) ([]string, error) {
	e, ok := s.emu[name]
	if !ok {
		return nil, errors.New("nuttest: " + name + " is not an emulated UPS")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.received...), nil
}
