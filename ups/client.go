// Package ups is a small client for the NUT (Network UPS Tools) network
// protocol, and the UPS state read through it (status flags, battery,
// load). It knows nothing of redundancy groups or Prometheus.
//
// The client is built for a monitor that must never hang: every dial and
// read carries a deadline from the context (and Options.Timeout), lines and
// replies are bounded in size, and a broken stream closes the connection.
// The monitor only reads: it sends USERNAME/PASSWORD when configured but
// never LOGIN, which would register it with upsd as a client powered by the
// UPS. Instant commands (InstCmd) are sent only by the root drill command.
package ups

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/internal/secretfile"
)

// DefaultPort is upsd's registered port.
const DefaultPort = "3493"

// Defaults for Options.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxLineBytes     = 1024       // upsclient uses 512-byte buffers; values are at most 256 bytes
	DefaultMaxResponseBytes = 256 * 1024 // a UPS with 300 variables lists about 20 KiB
	DefaultMaxVars          = 512        // real UPSes list 30 to 300 variables
)

// Options configure a connection. The zero value is a plain, anonymous,
// read-only connection with the defaults above.
type Options struct {
	// Username and Password, when Username is set, are sent with USERNAME
	// and PASSWORD after the connection (and TLS) is up.
	Username string
	Password string
	// StartTLS upgrades the connection with STARTTLS before anything else
	// is sent; a server that refuses is an error, never a silent fallback
	// to plain text.
	StartTLS bool
	// TLSConfig verifies the server when StartTLS is set. Nil uses the
	// system roots. ServerName defaults to the host of the address.
	TLSConfig *tls.Config
	// Timeout bounds the dial, the TLS handshake and each request with its
	// reply, unless the context's deadline is earlier.
	Timeout time.Duration
	// MaxLineBytes bounds one reply line; MaxResponseBytes one whole reply.
	MaxLineBytes     int
	MaxResponseBytes int
	// MaxVars bounds the variables kept from one LIST VAR; the rest of
	// the reply is read and counted in VarList.Dropped, not stored.
	MaxVars int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxVars <= 0 {
		o.MaxVars = DefaultMaxVars
	}
	return o
}

// TLSConfigFromCAFile returns a TLS configuration that trusts only the
// certificates in the PEM file at path (upsd's self-signed certificate, or
// the CA that signed it).
func TLSConfigFromCAFile(path string) (*tls.Config, error) {
	pool, err := secretfile.CertPool(path)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// ParseTarget splits a NUT target "upsname[@host[:port]]" into the UPS
// name and a dialable host:port (host defaults to localhost, port to 3493).
func ParseTarget(target string) (upsName, addr string, err error) {
	name, host, found := strings.Cut(target, "@")
	if name == "" {
		return "", "", fmt.Errorf("target %q: no UPS name before @", target)
	}
	if _, err := quoteWord(name); err != nil || strings.ContainsAny(name, " \t\"\\#") {
		return "", "", fmt.Errorf("target %q: UPS name has characters upsd does not allow", target)
	}
	if !found || host == "" {
		return name, net.JoinHostPort("localhost", DefaultPort), nil
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		if h == "" || p == "" {
			return "", "", fmt.Errorf("target %q: empty host or port", target)
		}
		return name, host, nil
	}
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return name, net.JoinHostPort(h, DefaultPort), nil
}

// Client is one connection to upsd. It is not safe for concurrent use;
// open one per poll (or per goroutine).
type Client struct {
	addr string
	opts Options
	conn net.Conn // *tls.Conn after STARTTLS
	lr   *lineReader

	// broken is set after a network or protocol error: the stream position
	// is unknown, so the connection is closed and every later call fails.
	broken error
	once   sync.Once
}

// Dial connects to upsd at addr (host:port), upgrades with STARTTLS and
// authenticates when opts say so.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	dctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, fmt.Errorf("nut %s: connect: %w", addr, err)
	}
	var raw net.Conn = conn
	if tc, ok := conn.(*net.TCPConn); ok {
		raw = quickAckConn{tc}
	}
	c := &Client{addr: addr, opts: opts, conn: raw, lr: newLineReader(raw, opts.MaxLineBytes)}
	if opts.StartTLS {
		if err := c.startTLS(ctx, raw); err != nil {
			c.closeConn()
			return nil, err
		}
	}
	if opts.Username != "" {
		if err := c.login(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Client) startTLS(ctx context.Context, raw net.Conn) error {
	if err := c.roundTrip(ctx, "STARTTLS", "STARTTLS", func() error {
		_, err := expectOK(c.lr, c.opts.MaxResponseBytes)
		return err
	}); err != nil {
		return err
	}
	// Anything already buffered after "OK STARTTLS" was sent in plain text
	// before the handshake and could be an injection: refuse it.
	if c.lr.br.Buffered() > 0 {
		err := fmt.Errorf("%w: %d plain-text bytes after OK STARTTLS", ErrProtocol, c.lr.br.Buffered())
		return opError(c.addr, "STARTTLS", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(c.addr)
		if err != nil {
			host = c.addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return opError(c.addr, "TLS handshake", err)
	}
	c.conn = tc
	c.lr = newLineReader(tc, c.opts.MaxLineBytes)
	return nil
}

func (c *Client) login(ctx context.Context) error {
	user, err := quoteWord(c.opts.Username)
	if err != nil {
		return opError(c.addr, "USERNAME", err)
	}
	pass, err := quoteWord(c.opts.Password)
	if err != nil {
		return opError(c.addr, "PASSWORD", errors.New("password contains a line break or NUL"))
	}
	okReply := func() error {
		_, err := expectOK(c.lr, c.opts.MaxResponseBytes)
		// Keep only the code of a refusal: whatever text follows it is
		// not ours to log next to credentials.
		if se, ok := IsServerError(err); ok {
			return &ServerError{Code: se.Code}
		}
		return err
	}
	if err := c.roundTrip(ctx, "USERNAME "+user, "USERNAME", okReply); err != nil {
		return err
	}
	// The request name in errors is "PASSWORD": the password itself never
	// appears in an error or log.
	return c.roundTrip(ctx, "PASSWORD "+pass, "PASSWORD", okReply)
}

// Addr is the address the client is connected to.
func (c *Client) Addr() string { return c.addr }

// ListUPS lists the UPSes upsd serves.
func (c *Client) ListUPS(ctx context.Context) ([]Device, error) {
	var out []Device
	err := c.roundTrip(ctx, "LIST UPS", "LIST UPS", func() error {
		var err error
		out, err = readListUPS(c.lr, c.opts.MaxResponseBytes)
		return err
	})
	return out, err
}

// ListVars reads the variables of one UPS, at most Options.MaxVars of
// them (VarList.Dropped counts the rest). An ERR reply (DATA-STALE,
// DRIVER-NOT-CONNECTED, UNKNOWN-UPS, ...) comes back as a *ServerError and
// leaves the connection usable for the next UPS.
func (c *Client) ListVars(ctx context.Context, upsName string) (VarList, error) {
	name, err := quoteWord(upsName)
	if err != nil {
		return VarList{}, opError(c.addr, "LIST VAR", err)
	}
	var out VarList
	err = c.roundTrip(ctx, "LIST VAR "+name, "LIST VAR "+upsName, func() error {
		var err error
		out, err = readListVarLimit(c.lr, upsName, c.opts.MaxResponseBytes, c.opts.MaxVars)
		return err
	})
	return out, err
}

// GetVar reads one variable of one UPS.
func (c *Client) GetVar(ctx context.Context, upsName, varName string) (string, error) {
	u, err := quoteWord(upsName)
	if err != nil {
		return "", opError(c.addr, "GET VAR", err)
	}
	v, err := quoteWord(varName)
	if err != nil {
		return "", opError(c.addr, "GET VAR", err)
	}
	var out string
	err = c.roundTrip(ctx, "GET VAR "+u+" "+v, "GET VAR "+upsName+" "+varName, func() error {
		var err error
		out, err = readGetVar(c.lr, upsName, varName, c.opts.MaxResponseBytes)
		return err
	})
	return out, err
}

// ListCmds lists the instant commands a UPS offers (LIST CMD), at most
// Options.MaxVars of them. upsd lists what the driver registered; it
// needs no login.
func (c *Client) ListCmds(ctx context.Context, upsName string) ([]string, error) {
	name, err := quoteWord(upsName)
	if err != nil {
		return nil, opError(c.addr, "LIST CMD", err)
	}
	var out []string
	err = c.roundTrip(ctx, "LIST CMD "+name, "LIST CMD "+upsName, func() error {
		var err error
		out, err = readListCmd(c.lr, upsName, c.opts.MaxResponseBytes, c.opts.MaxVars)
		return err
	})
	return out, err
}

// InstCmd sends an instant command to a UPS (INSTCMD). The connection
// must have been dialled with Username/Password of a upsd.users user whose
// instcmds grant cmd. upsd's refusal comes back as a *ServerError, verbatim:
// CMD-NOT-SUPPORTED (the driver does not offer cmd; upsd checks this
// first), ACCESS-DENIED (no such user, wrong password, or cmd not in the
// user's instcmds), DRIVER-NOT-CONNECTED, DATA-STALE, UNKNOWN-UPS.
//
// upsd says OK once it has passed the command to the driver, not once the
// UPS has done it: see EnableTracking for the driver's answer.
func (c *Client) InstCmd(ctx context.Context, upsName, cmd string) error {
	_, err := c.instCmd(ctx, upsName, cmd)
	return err
}

// InstCmdTracked is InstCmd on a connection with tracking on
// (EnableTracking): it returns the id to ask TrackingStatus about. Without
// tracking on, upsd gives no id and the id is "".
func (c *Client) InstCmdTracked(ctx context.Context, upsName, cmd string) (string, error) {
	return c.instCmd(ctx, upsName, cmd)
}

func (c *Client) instCmd(ctx context.Context, upsName, cmd string) (string, error) {
	u, err := quoteWord(upsName)
	if err != nil {
		return "", opError(c.addr, "INSTCMD", err)
	}
	cw, err := quoteWord(cmd)
	if err != nil {
		return "", opError(c.addr, "INSTCMD", err)
	}
	var id string
	err = c.roundTrip(ctx, "INSTCMD "+u+" "+cw, "INSTCMD "+upsName+" "+cmd, func() error {
		var err error
		id, err = readInstCmdReply(c.lr, c.opts.MaxResponseBytes)
		return err
	})
	return id, err
}

// EnableTracking turns on command tracking for this connection (SET
// TRACKING ON, NUT 2.8.0 and later): INSTCMD then returns an id, and
// TrackingStatus tells whether the driver carried the command out. Older
// upsd answers ERR UNKNOWN-COMMAND or INVALID-ARGUMENT; the connection
// stays usable without tracking.
func (c *Client) EnableTracking(ctx context.Context) error {
	return c.roundTrip(ctx, "SET TRACKING ON", "SET TRACKING ON", func() error {
		_, err := expectOK(c.lr, c.opts.MaxResponseBytes)
		return err
	})
}

// TrackingStatus asks upsd how a tracked command went (GET TRACKING <id>):
// TrackingPending, TrackingSuccess, or the driver's failure as a
// *ServerError (ERR UNKNOWN: the driver does not handle the command or
// failed without saying why; ERR INVALID-ARGUMENT; ERR FAILED).
func (c *Client) TrackingStatus(ctx context.Context, id string) (TrackingStatus, error) {
	w, err := quoteWord(id)
	if err != nil {
		return "", opError(c.addr, "GET TRACKING", err)
	}
	var out TrackingStatus
	err = c.roundTrip(ctx, "GET TRACKING "+w, "GET TRACKING "+id, func() error {
		var err error
		out, err = readTracking(c.lr, c.opts.MaxResponseBytes)
		return err
	})
	return out, err
}

// Close says LOGOUT (when the connection is still sound, with a short
// deadline) and closes the connection. It is safe to call more than once.
func (c *Client) Close() error {
	c.once.Do(func() {
		if c.broken == nil {
			ctx, cancel := context.WithTimeout(context.Background(), min(c.opts.Timeout, time.Second))
			_ = c.roundTrip(ctx, "LOGOUT", "LOGOUT", func() error {
				_, err := expectOK(c.lr, c.opts.MaxResponseBytes)
				return err
			})
			cancel()
		}
		c.closeConn()
	})
	return nil
}

func (c *Client) closeConn() {
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	_ = c.conn.Close()
}

// roundTrip sends one request line and reads its reply with read, under a
// deadline of min(ctx deadline, now+Timeout) that covers every read of the
// reply: a server that drips bytes cannot stretch it. Cancelling ctx
// interrupts a blocked read at once. request is what errors name (never a
// secret).
func (c *Client) roundTrip(ctx context.Context, line, request string, read func() error) error {
	if c.broken != nil {
		return opError(c.addr, request, fmt.Errorf("connection unusable: %w", c.broken))
	}
	if err := ctx.Err(); err != nil {
		return opError(c.addr, request, err)
	}
	deadline := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	budget := time.Until(deadline)
	_ = c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err := c.write(line)
	if err == nil {
		err = read()
	}
	if err == nil {
		return nil
	}
	if _, ok := IsServerError(err); ok && !errors.Is(err, ErrProtocol) {
		return opError(c.addr, request, err)
	}
	// Anything else leaves the stream at an unknown position.
	// Running out of time reads the same whichever deadline fired first
	// (the context's or the connection's): a text that alternates between
	// the two would defeat log de-duplication.
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		// Whole seconds: the remaining budget differs by milliseconds from
		// poll to poll, and a changing text defeats log de-duplication and
		// churns the unknown reason of the UPS's group.
		err = fmt.Errorf("no complete reply within %s: %w", max(budget.Round(time.Second), time.Second), err)
	}
	c.broken = err
	c.closeConn()
	return opError(c.addr, request, err)
}

func (c *Client) write(line string) error {
	_, err := c.conn.Write([]byte(line + "\n"))
	return err
}
