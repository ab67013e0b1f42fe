// Package nuttest runs a real NUT upsd with dummy-ups drivers on 127.0.0.1
// for tests and benchmarks: private config and state directories, a free
// port, fault injection by rewriting .dev files. It needs Debian's
// nut-server (/lib/nut/upsd, /lib/nut/dummy-ups) and, for TLS, certutil
// from libnss3-tools.
//
// It talks to upsd through its own few lines of protocol, not through
// package ups, so that readiness checks do not depend on the code under
// test.
package nuttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Default binaries. /sbin/upsd on Debian is a wrapper that reads
// /etc/nut/nut.conf and exits "upsd disabled"; the real daemon is here.
const (
	DefaultUpsdPath     = "/lib/nut/upsd"
	DefaultDummyUPSPath = "/lib/nut/dummy-ups"
	DefaultCertutilPath = "certutil"
)

// Config describes one upsd instance.
type Config struct {
	// FixtureDir holds <name>.dev for every UPS and upsd.users.
	FixtureDir string
	// UPS lists the UPS names to serve, one dummy-ups each.
	UPS []string
	// Emulated lists UPS names served through an emulated driver instead
	// (emulated.go): <name>.dev gives its variables, Commands its instant
	// commands, OnInstCmd what it does with them. For instant commands,
	// which dummy-ups does not carry out.
	Emulated []string
	// Commands are the instant commands each emulated UPS offers.
	Commands map[string][]string
	// TLS creates an NSS certificate database and enables STARTTLS;
	// Server.CAFile is then the PEM certificate clients must trust.
	TLS bool
	// Dir is the working directory; empty means a new temporary directory
	// removed by Stop.
	Dir string
	// MaxAge is upsd's MAXAGE (seconds before data is stale); 0 means 15.
	MaxAge int
	// UpsdPath, DummyUPSPath and CertutilPath override the Default* binaries.
	UpsdPath, DummyUPSPath, CertutilPath string
}

// Server is a running upsd with its drivers.
type Server struct {
	Addr     string // 127.0.0.1:port
	Dir      string
	ConfDir  string
	StateDir string
	CAFile   string // set when Config.TLS

	cfg     Config
	ownDir  bool
	nutUID  int
	nutGID  int
	asRoot  bool
	mu      sync.Mutex
	upsd    *exec.Cmd
	drivers map[string]*exec.Cmd
	base    map[string]*devFile
	cur     map[string]*devFile
	mtime   map[string]int64
	emu     map[string]*emulated
}

// devFile is an ordered list of name: value lines.
type devFile struct {
	names  []string
	values map[string]string
}

func (d *devFile) clone() *devFile {
	c := &devFile{names: append([]string(nil), d.names...), values: map[string]string{}}
	for k, v := range d.values {
		c.values[k] = v
	}
	return c
}

func (d *devFile) set(name, value string) {
	if _, ok := d.values[name]; !ok {
		d.names = append(d.names, name)
	}
	d.values[name] = value
}

func parseDev(b []byte) *devFile {
	d := &devFile{values: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		d.set(strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`))
	}
	return d
}

// render writes every value quoted: an empty quoted value deletes the
// variable in dummy-ups, a bare empty one repeats the previous line's value.
func (d *devFile) render() []byte {
	var b strings.Builder
	for _, n := range d.names {
		fmt.Fprintf(&b, "%s: \"%s\"\n", n, d.values[n])
	}
	return []byte(b.String())
}

// Start renders the configuration, starts the drivers and upsd, and waits
// until every UPS reports a status other than WAIT.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 15
	}
	if cfg.UpsdPath == "" {
		cfg.UpsdPath = DefaultUpsdPath
	}
	if cfg.DummyUPSPath == "" {
		cfg.DummyUPSPath = DefaultDummyUPSPath
	}
	if cfg.CertutilPath == "" {
		cfg.CertutilPath = DefaultCertutilPath
	}
	s := &Server{cfg: cfg, drivers: map[string]*exec.Cmd{}, base: map[string]*devFile{}, cur: map[string]*devFile{}, mtime: map[string]int64{}, emu: map[string]*emulated{}}
	s.asRoot = os.Geteuid() == 0
	if s.asRoot {
		u, err := user.Lookup("nut")
		if err != nil {
			return nil, fmt.Errorf("nuttest: user nut (from nut-server) missing: %w", err)
		}
		s.nutUID, _ = strconv.Atoi(u.Uid)
		s.nutGID, _ = strconv.Atoi(u.Gid)
	}
	s.Dir = cfg.Dir
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "spofwatch-nut-")
		if err != nil {
			return nil, err
		}
		s.Dir, s.ownDir = d, true
	}
	if err := s.setup(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) setup(ctx context.Context) error {
	// Drivers and upsd drop root for user nut before they read .dev files
	// and open sockets: every directory on the way must be traversable.
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	if !s.ownDir {
		if err := os.Chmod(filepath.Dir(s.Dir), 0o755); err != nil {
			return err
		}
	}
	s.ConfDir = filepath.Join(s.Dir, "etc")
	s.StateDir = filepath.Join(s.Dir, "state")
	for _, d := range []string{s.ConfDir, s.StateDir, filepath.Join(s.Dir, "log")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	var upsConf strings.Builder
	upsConf.WriteString("maxretry = 3\npollinterval = 1\n")
	for _, name := range s.cfg.UPS {
		b, err := os.ReadFile(filepath.Join(s.cfg.FixtureDir, name+".dev"))
		if err != nil {
			return fmt.Errorf("nuttest: %w", err)
		}
		s.base[name] = parseDev(b)
		s.cur[name] = s.base[name].clone()
		if err := s.writeDev(name); err != nil {
			return err
		}
		fmt.Fprintf(&upsConf, "\n[%s]\n\tdriver = dummy-ups\n\tport = %s.dev\n\tdesc = \"spofwatch test UPS %s\"\n", name, name, name)
	}
	for _, name := range s.cfg.Emulated {
		b, err := os.ReadFile(filepath.Join(s.cfg.FixtureDir, name+".dev"))
		if err != nil {
			return fmt.Errorf("nuttest: %w", err)
		}
		s.base[name] = parseDev(b)
		s.cur[name] = s.base[name].clone()
		fmt.Fprintf(&upsConf, "\n[%s]\n\tdriver = %s\n\tport = none\n\tdesc = \"spofwatch emulated UPS %s\"\n", name, emulatedDriverName, name)
	}
	users, err := os.ReadFile(filepath.Join(s.cfg.FixtureDir, "upsd.users"))
	if err != nil {
		return fmt.Errorf("nuttest: %w", err)
	}
	upsdConf := fmt.Sprintf("LISTEN 127.0.0.1 %d\nMAXAGE %d\nSTATEPATH %s\n", port, s.cfg.MaxAge, s.StateDir)
	if s.cfg.TLS {
		if err := s.makeCertDB(ctx); err != nil {
			return err
		}
		// Debian's NUT 2.8.0 is built with Mozilla NSS: a certificate
		// database and a nickname, not a PEM file.
		upsdConf += fmt.Sprintf("CERTPATH %s\nCERTIDENT \"upsd-cert\" \"dbpass\"\n", filepath.Join(s.Dir, "tls"))
	}
	for name, content := range map[string][]byte{
		"ups.conf": []byte(upsConf.String()), "upsd.conf": []byte(upsdConf), "upsd.users": users, "nut.conf": []byte("MODE=standalone\n"),
	} {
		if err := s.writeConf(filepath.Join(s.ConfDir, name), content); err != nil {
			return err
		}
	}
	if s.asRoot {
		if err := os.Chown(s.StateDir, s.nutUID, s.nutGID); err != nil {
			return err
		}
		if err := os.Chmod(s.StateDir, 0o770); err != nil {
			return err
		}
		if err := os.Chown(s.ConfDir, 0, s.nutGID); err != nil {
			return err
		}
	}
	for _, name := range s.cfg.UPS {
		if err := s.StartDriver(name); err != nil {
			return err
		}
	}
	for _, name := range s.cfg.Emulated {
		if err := s.startEmulated(name); err != nil {
			return err
		}
	}
	return s.StartUpsd(ctx)
}

func (s *Server) makeCertDB(ctx context.Context) error {
	dir := filepath.Join(s.Dir, "tls")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	pw := filepath.Join(dir, "pw.txt")
	noise := filepath.Join(dir, "noise.bin")
	if err := os.WriteFile(pw, []byte("dbpass\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(noise, []byte(strconv.FormatInt(time.Now().UnixNano(), 10)+strings.Repeat("spofwatch-noise", 8)), 0o600); err != nil {
		return err
	}
	db := "sql:" + dir
	run := func(args ...string) ([]byte, error) {
		out, err := exec.CommandContext(ctx, s.cfg.CertutilPath, args...).CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("nuttest: certutil %s: %w: %s", args[0], err, out)
		}
		return out, nil
	}
	if _, err := run("-N", "-d", db, "-f", pw); err != nil {
		return err
	}
	if _, err := run("-S", "-s", "CN=127.0.0.1", "-n", "upsd-cert", "-x", "-t", "CTu,Cu,Cu", "-d", db, "-f", pw,
		"-z", noise, "-k", "rsa", "-g", "2048", "-v", "12", "--extSAN", "ip:127.0.0.1,dns:localhost"); err != nil {
		return err
	}
	pem, err := run("-L", "-d", db, "-n", "upsd-cert", "-a")
	if err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.Dir, "upsd-cert.pem")
	if err := os.WriteFile(s.CAFile, pem, 0o644); err != nil {
		return err
	}
	if s.asRoot {
		return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, s.nutUID, s.nutGID)
		})
	}
	return nil
}

// writeConf writes a file readable by group nut only (upsd warns about
// world-readable upsd.conf/users; drivers re-read .dev files as nut).
func (s *Server) writeConf(path string, content []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o640); err != nil {
		return err
	}
	if s.asRoot {
		if err := os.Chown(tmp, 0, s.nutGID); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeDev writes the current .dev of a UPS and forces a strictly newer
// mtime: dummy-ups re-reads the file only when st_mtime (whole seconds)
// changes, so a second edit within the same second would be lost.
func (s *Server) writeDev(name string) error {
	path := filepath.Join(s.ConfDir, name+".dev")
	if err := s.writeConf(path, s.cur[name].render()); err != nil {
		return err
	}
	m := time.Now().Unix()
	if last, ok := s.mtime[name]; ok && m <= last {
		m = last + 1
	}
	s.mtime[name] = m
	t := time.Unix(m, 0)
	return os.Chtimes(path, t, t)
}

// Set changes variables of a UPS by rewriting its .dev file; a value ""
// deletes the variable. The driver picks the change up within its poll
// interval (1 s); use WaitVar to know when upsd serves it. An emulated
// UPS sends the change to upsd at once.
func (s *Server) Set(name string, vars map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.cur[name]
	if !ok {
		return fmt.Errorf("nuttest: no UPS %q", name)
	}
	for k, v := range vars {
		d.set(k, v)
	}
	if e := s.emu[name]; e != nil {
		e.push(vars)
		return nil
	}
	return s.writeDev(name)
}

// Reset puts a UPS back to its fixture values, deleting variables that
// were added since.
func (s *Server) Reset(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	base, ok := s.base[name]
	if !ok {
		return fmt.Errorf("nuttest: no UPS %q", name)
	}
	next := base.clone()
	for _, n := range s.cur[name].names {
		if _, ok := base.values[n]; !ok {
			next.set(n, "")
		}
	}
	s.cur[name] = next
	if e := s.emu[name]; e != nil {
		e.push(next.values)
		return nil
	}
	return s.writeDev(name)
}

func (s *Server) env() []string {
	return append(os.Environ(), "NUT_CONFPATH="+s.ConfDir, "NUT_STATEPATH="+s.StateDir, "NUT_ALTPIDPATH="+s.StateDir)
}

func (s *Server) start(args []string, logName string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "log", logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = s.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a ^C to the test does not reach the daemons
	// before Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nuttest: start %s: %w", args[0], err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd, nil
}

// StartDriver starts the dummy-ups driver of one UPS in the foreground.
func (s *Server) StartDriver(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.drivers[name]; c != nil {
		return fmt.Errorf("nuttest: driver %s already running", name)
	}
	// -F leaves its socket behind when killed; a new driver would refuse
	// nothing, but remove it so upsd reconnects to the new one cleanly.
	_ = os.Remove(filepath.Join(s.StateDir, "dummy-ups-"+name))
	cmd, err := s.start([]string{s.cfg.DummyUPSPath, "-a", name, "-F"}, "dummy-ups-"+name+".log")
	if err != nil {
		return err
	}
	s.drivers[name] = cmd
	sock := filepath.Join(s.StateDir, "dummy-ups-"+name)
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nuttest: driver %s made no socket within 5 s: %s", name, s.Logs())
}

// KillDriver kills one UPS driver (SIGKILL, like a crash); upsd then answers
// ERR DRIVER-NOT-CONNECTED for that UPS.
func (s *Server) KillDriver(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.drivers[name]
	if c == nil {
		return fmt.Errorf("nuttest: driver %s not running", name)
	}
	delete(s.drivers, name)
	return stopProcess(c, syscall.SIGKILL)
}

// FreezeDriver stops (SIGSTOP) or resumes (SIGCONT) a driver: its data goes
// stale after MAXAGE.
func (s *Server) FreezeDriver(name string, frozen bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.drivers[name]
	if c == nil {
		return fmt.Errorf("nuttest: driver %s not running", name)
	}
	sig := syscall.SIGCONT
	if frozen {
		sig = syscall.SIGSTOP
	}
	return c.Process.Signal(sig)
}

// StartUpsd starts upsd (on the same port as before) and waits until it
// serves every UPS whose driver runs.
func (s *Server) StartUpsd(ctx context.Context) error {
	s.mu.Lock()
	if s.upsd != nil {
		s.mu.Unlock()
		return errors.New("nuttest: upsd already running")
	}
	cmd, err := s.start([]string{s.cfg.UpsdPath, "-F"}, "upsd.log")
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.upsd = cmd
	var running []string
	for n := range s.drivers {
		running = append(running, n)
	}
	for n := range s.emu {
		running = append(running, n)
	}
	s.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, n := range running {
		if err := s.WaitReady(wctx, n); err != nil {
			return fmt.Errorf("%w: %s", err, s.Logs())
		}
	}
	return nil
}

// StopUpsd stops upsd (SIGTERM); the drivers keep running.
func (s *Server) StopUpsd() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.upsd
	s.upsd = nil
	if c == nil {
		return nil
	}
	return stopProcess(c, syscall.SIGTERM)
}

// Stop stops upsd and every driver and removes a directory Start created.
func (s *Server) Stop() {
	_ = s.StopUpsd()
	s.mu.Lock()
	for n, c := range s.drivers {
		_ = c.Process.Signal(syscall.SIGCONT)
		_ = stopProcess(c, syscall.SIGTERM)
		delete(s.drivers, n)
	}
	for _, e := range s.emu {
		e.close()
	}
	s.mu.Unlock()
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// stopProcess signals a process we started and waits up to 5 s for it to
// exit, then kills it.
func stopProcess(c *exec.Cmd, sig syscall.Signal) error {
	if err := c.Process.Signal(sig); err != nil {
		return nil // already gone
	}
	for i := 0; i < 100; i++ {
		if c.Process.Signal(syscall.Signal(0)) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c.Process.Kill()
}

// Logs returns the daemons' output, for failure messages.
func (s *Server) Logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.Dir, "log", "*.log"))
	for _, f := range files {
		out, _ := os.ReadFile(f)
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		fmt.Fprintf(&b, "\n--- %s\n%s", filepath.Base(f), out)
	}
	return b.String()
}

// Get asks upsd for one variable over a fresh plain connection; the reply
// is the value, or the raw ERR line.
func (s *Server) Get(ctx context.Context, ups, name string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET VAR %s %s\n", ups, name); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	prefix := fmt.Sprintf("VAR %s %s ", ups, name)
	if strings.HasPrefix(line, prefix) {
		return strings.Trim(strings.TrimPrefix(line, prefix), `"`), nil
	}
	return line, nil
}

// WaitVar waits until upsd serves want for a variable (or the ERR line
// want, e.g. "ERR DRIVER-NOT-CONNECTED").
func (s *Server) WaitVar(ctx context.Context, ups, name, want string) error {
	var last string
	for {
		v, err := s.Get(ctx, ups, name)
		if err == nil && v == want {
			return nil
		}
		last = v
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nuttest: %s %s: want %q, still %q: %w", ups, name, want, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitReady waits until a UPS reports a real status (not WAIT, not an ERR).
func (s *Server) WaitReady(ctx context.Context, ups string) error {
	var last string
	for {
		v, err := s.Get(ctx, ups, "ups.status")
		if err == nil && v != "" && v != "WAIT" && !strings.HasPrefix(v, "ERR") {
			return nil
		}
		last = v
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nuttest: %s not ready, last %q: %w", ups, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
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

// StartT starts a server in t.TempDir(), stops it at cleanup, and fails
// the test (never skips) when upsd cannot run.
func StartT(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start upsd (Debian nut-server, see scripts/apt-packages.txt): %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// ClosedAddr returns a loopback address nothing listens on: a upsd that
// is down.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
