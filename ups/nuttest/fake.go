package nuttest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// FakeConfig describes a scripted NUT server. It is not upsd: it answers
// whatever it is told to, as a hostile or broken process on port 3493
// would, for tests of what a client does with a server that floods it.
type FakeConfig struct {
	// UPS is how many UPSes LIST UPS lists, named FakeUPSName(0..UPS-1).
	UPS int
	// Vars is how many variables LIST VAR lists per UPS: the four a
	// monitor reads first, then filler variables x.fill.<n>. At least 4.
	Vars int
	// Status is every UPS's ups.status; empty means "OL".
	Status string
	// Reset makes the server close every connection with a TCP reset as
	// soon as it receives the first line, like a dying upsd.
	Reset bool
}

// FakeUPSName is the name of the i-th UPS of a fake server.
func FakeUPSName(i int) string { return fmt.Sprintf("ups-%04d", i) }

// Fake is a running fake server on 127.0.0.1.
type Fake struct {
	Addr  string
	cfg   FakeConfig
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

// Conns counts the connections accepted so far.
func (f *Fake) Conns() int64 { return f.conns.Load() }

// StartFake starts a fake server on a free port and stops it at cleanup.
func StartFake(t testing.TB, cfg FakeConfig) *Fake {
	t.Helper()
	if cfg.Status == "" {
		cfg.Status = "OL"
	}
	cfg.Vars = max(cfg.Vars, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{Addr: ln.Addr().String(), cfg: cfg, ln: ln}
	f.wg.Go(f.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *Fake) accept() {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.conns.Add(1)
		conns.Go(func() { f.serve(c) })
	}
}

func (f *Fake) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if f.cfg.Reset {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return
		}
		words := strings.Fields(line)
		switch {
		case len(words) == 2 && (words[0] == "USERNAME" || words[0] == "PASSWORD"):
			w.WriteString("OK\n")
		case len(words) == 1 && words[0] == "LOGOUT":
			w.WriteString("OK Goodbye\n")
			_ = w.Flush()
			return
		case len(words) == 2 && words[0] == "LIST" && words[1] == "UPS":
			w.WriteString("BEGIN LIST UPS\n")
			for i := range f.cfg.UPS {
				fmt.Fprintf(w, "UPS %s \"fake UPS %d\"\n", FakeUPSName(i), i)
			}
			w.WriteString("END LIST UPS\n")
		case len(words) == 3 && words[0] == "LIST" && words[1] == "VAR":
			f.listVar(w, words[2])
		default:
			w.WriteString("ERR UNKNOWN-COMMAND\n")
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func (f *Fake) listVar(w *bufio.Writer, name string) {
	var i int
	if _, err := fmt.Sscanf(name, "ups-%04d", &i); err != nil || i < 0 || i >= f.cfg.UPS || FakeUPSName(i) != name {
		w.WriteString("ERR UNKNOWN-UPS\n")
		return
	}
	fmt.Fprintf(w, "BEGIN LIST VAR %s\n", name)
	fmt.Fprintf(w, "VAR %s ups.status %q\n", name, f.cfg.Status)
	fmt.Fprintf(w, "VAR %s battery.charge \"50\"\nVAR %s battery.runtime \"600\"\nVAR %s ups.load \"20\"\n", name, name, name)
	for n := 4; n < f.cfg.Vars; n++ {
		fmt.Fprintf(w, "VAR %s x.fill.%d \"%d\"\n", name, n, n)
	}
	fmt.Fprintf(w, "END LIST VAR %s\n", name)
}
