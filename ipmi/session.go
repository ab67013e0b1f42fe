package ipmi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Interfaces a BMC can be reached through.
const (
	InterfaceOpen    = "open"    // in-band, the Linux OpenIPMI driver (/dev/ipmi0)
	InterfaceLanplus = "lanplus" // IPMI v2.0 / RMCP+ over UDP
)

// DefaultDevice is the in-band device go-ipmi's open interface uses.
const DefaultDevice = "/dev/ipmi0"

// ErrNoBMC means nothing is configured and there is no in-band device: this
// host has no BMC we can read.
var ErrNoBMC = errors.New("no BMC: no lanplus host configured and no " + DefaultDevice)

// Options configure a BMC. The zero value reads /dev/ipmi0.
type Options struct {
	// Interface is "open" or "lanplus". Empty: lanplus when Host is set,
	// else open.
	Interface string
	// Device is the in-band device, /dev/ipmiN. Default DefaultDevice.
	Device string
	Host   string
	Port   int // default 623
	// Username and Password for lanplus. The password is never logged.
	Username string
	Password string
	// CipherSuite is the RMCP+ cipher suite ID, set explicitly: the
	// library's default probes with Get Channel Cipher Suites, which some
	// BMCs (ipmi_sim) never answer, and costs ~5 s per connect. Default 3
	// (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128), as ipmitool 1.8.
	CipherSuite int
	// RequestTimeout bounds one request/response exchange; the poll's ctx
	// bounds the whole poll. Default 1s.
	RequestTimeout time.Duration
	// Retries is how often a lanplus request is resent after a timeout.
	// Default 1.
	Retries int
	// SDRMaxAge forces an SDR re-read even when the repository info did not
	// change. Default 1h.
	SDRMaxAge time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnect attempts
	// after failures. Defaults 1s and 2m.
	BackoffMin, BackoffMax time.Duration
	// SELMaxEntries bounds the SEL entries read per poll. Default 64.
	SELMaxEntries int
	// Events is how many relevant SEL events are kept. Default 32.
	Events int
	Logger *slog.Logger
}

// BMC is one board management controller read over one reused session. It
// is safe for concurrent use; polls are serialised.
type BMC struct {
	opts   Options
	peer   string
	devnum int32 // N of /dev/ipmiN for the in-band interface
	log    *slog.Logger

	mu          sync.Mutex
	client      *client.Client
	failures    int
	nextAttempt time.Time
	lastErr     error

	sdrs    []SDR
	sdrInfo SDRRepoInfo
	sdrAt   time.Time
	// sdrPartial: the BMC cannot return whole SDR records (completion code
	// 0xCA for a read of 0xFF bytes); read them in pieces from the start.
	sdrPartial bool
	sdrChunk   uint8 // largest partial read the BMC accepted

	selKnown  bool
	selInfo   SELInfo
	selLastID uint16
	selHave   bool // selLastID names an entry
	events    []Event

	commands atomic.Uint64 // every IPMI request sent, retries and session setup included
	connects atomic.Uint64
}

// New checks the options; it does not connect. With no interface and no host
// configured, New returns ErrNoBMC when the in-band device does not exist.
func New(opts Options) (*BMC, error) {
	if opts.Device == "" {
		opts.Device = DefaultDevice
	}
	if opts.Interface == "" {
		if opts.Host != "" {
			opts.Interface = InterfaceLanplus
		} else {
			if _, err := os.Stat(opts.Device); err != nil {
				return nil, ErrNoBMC
			}
			opts.Interface = InterfaceOpen
		}
	}
	if opts.Port == 0 {
		opts.Port = 623
	}
	if opts.CipherSuite == 0 {
		opts.CipherSuite = 3
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = time.Second
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = 1
	}
	if opts.SDRMaxAge <= 0 {
		opts.SDRMaxAge = time.Hour
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = max(2*time.Minute, opts.BackoffMin)
	}
	if opts.SELMaxEntries <= 0 {
		opts.SELMaxEntries = 64
	}
	if opts.Events <= 0 {
		opts.Events = 32
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &BMC{opts: opts}
	switch opts.Interface {
	case InterfaceOpen:
		b.peer = opts.Device
		// go-ipmi opens /dev/ipmiN by number.
		n, err := strconv.Atoi(strings.TrimLeft(filepath.Base(opts.Device), "ipmi"))
		if err != nil || n < 0 || !strings.HasPrefix(filepath.Base(opts.Device), "ipmi") {
			return nil, fmt.Errorf("ipmi: in-band device %q is not /dev/ipmiN", opts.Device)
		}
		b.devnum = int32(n)
	case InterfaceLanplus:
		if opts.Host == "" {
			return nil, errors.New("ipmi: interface lanplus needs a host")
		}
		if opts.CipherSuite < 0 || opts.CipherSuite > 255 {
			return nil, fmt.Errorf("ipmi: cipher suite %d out of range", opts.CipherSuite)
		}
		b.peer = net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	default:
		return nil, fmt.Errorf("ipmi: unknown interface %q (want open or lanplus)", opts.Interface)
	}
	b.log = opts.Logger.With("peer", b.peer)
	return b, nil
}

// Peer names the BMC: the device path or host:port.
func (b *BMC) Peer() string { return b.peer }

// Interface is "open" or "lanplus".
func (b *BMC) Interface() string { return b.opts.Interface }

// Commands returns how many IPMI requests were sent so far, session setup,
// keep-alives and retries included.
func (b *BMC) Commands() uint64 { return b.commands.Load() }

// Connects returns how many sessions were opened so far.
func (b *BMC) Connects() uint64 { return b.connects.Load() }

// Close ends the session.
func (b *BMC) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropSession()
	return nil
}

// session returns the live client, connecting when there is none and the
// backoff after earlier failures has passed.
func (b *BMC) session(ctx context.Context) (*client.Client, error) {
	if b.client != nil {
		return b.client, nil
	}
	if now := time.Now(); now.Before(b.nextAttempt) {
		return nil, fmt.Errorf("BMC %s: next reconnect in %s after %d failures: %w",
			b.peer, b.nextAttempt.Sub(now).Round(time.Millisecond), b.failures, b.lastErr)
	}
	c, err := b.connect(ctx)
	if err != nil {
		b.failed(err)
		return nil, err
	}
	b.client = c
	if b.connects.Add(1) > 1 {
		b.log.Info("ipmi session re-established", "interface", b.opts.Interface, "failures", b.failures)
	} else {
		b.log.Debug("ipmi session established", "interface", b.opts.Interface)
	}
	return c, nil
}

func (b *BMC) connect(ctx context.Context) (*client.Client, error) {
	var (
		c   *client.Client
		err error
	)
	switch b.opts.Interface {
	case InterfaceOpen:
		if _, err := os.Stat(b.opts.Device); err != nil {
			return nil, fmt.Errorf("in-band BMC: %w", err)
		}
		c, err = client.NewOpenClient()
		if err != nil {
			return nil, fmt.Errorf("in-band BMC %s: %w", b.peer, err)
		}
		c.WithTimeout(b.opts.RequestTimeout)
		if err := c.ConnectOpen(ctx, b.devnum); err != nil {
			return nil, fmt.Errorf("in-band BMC %s: %w", b.peer, err)
		}
		return c, nil
	default:
		c, err = client.NewClient(b.opts.Host, b.opts.Port, b.opts.Username, b.opts.Password)
		if err != nil {
			return nil, fmt.Errorf("BMC %s: %w", b.peer, err)
		}
		c.WithInterface(client.InterfaceLanplus)
		c.WithCipherSuiteID(types.CipherSuiteID(b.opts.CipherSuite))
		c.WithTimeout(b.opts.RequestTimeout)
		c.WithRetry(b.opts.Retries)
		// Reading sensors, SDRs, the SEL and chassis status needs no more
		// than User privilege.
		c.WithMaxPrivilegeLevel(types.PrivilegeLevelUser)
		c.WithUDPProxy(countingDialer{n: &b.commands})
	}
	if err := c.Connect(ctx); err != nil {
		closeClient(c)
		return nil, fmt.Errorf("connect to BMC %s over %s: %w", b.peer, b.opts.Interface, err)
	}
	return c, nil
}

// failed records a session failure and schedules the next reconnect.
func (b *BMC) failed(err error) {
	b.failures++
	b.lastErr = err
	wait := b.opts.BackoffMin
	for i := 1; i < b.failures && wait < b.opts.BackoffMax; i++ {
		wait *= 2
	}
	wait = min(wait, b.opts.BackoffMax)
	b.nextAttempt = time.Now().Add(wait)
	b.log.Debug("ipmi session failed", "err", err, "failures", b.failures, "retry_in", wait)
}

// dropSession abandons the current session: after a transport error, or a
// BMC reset, go-ipmi does not recover by itself.
func (b *BMC) dropSession() {
	if b.client == nil {
		return
	}
	closeClient(b.client)
	b.client = nil
}

// closeClient closes a go-ipmi client without waiting long for a BMC that
// may be gone: Close sends Close Session before closing the socket.
func closeClient(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = c.Close(ctx)
}

// CompletionError is a BMC's answer with a non-zero completion code: the
// session works, the command did not.
type CompletionError struct {
	Code uint8
	Cmd  string
}

func (e *CompletionError) Error() string {
	return fmt.Sprintf("%s: completion code %#02x (%s)", e.Cmd, e.Code, completionText(e.Code))
}

func completionText(cc uint8) string {
	switch cc {
	case 0xc0:
		return "node busy"
	case 0xc1:
		return "invalid command"
	case 0xc3:
		return "timeout"
	case 0xc5:
		return "reservation cancelled"
	case 0xc7, 0xc8:
		return "request data length invalid"
	case 0xc9:
		return "parameter out of range"
	case 0xca:
		return "cannot return number of requested bytes"
	case 0xcb:
		return "requested sensor, data or record not present"
	case 0xcc:
		return "invalid data field in request"
	case 0xcd:
		return "illegal for this sensor or record type"
	case 0xce:
		return "response could not be provided"
	case 0xd4:
		return "insufficient privilege"
	case 0xd5:
		return "not supported in present state"
	case 0xff:
		return "unspecified error"
	}
	return "see IPMI v2.0 table 5-2"
}

// command sends one IPMI request and returns its response data without the
// completion code. A non-zero completion code is a *CompletionError and
// leaves the session up; any other error ends the session.
func (b *BMC) command(ctx context.Context, c *client.Client, netFn types.NetFn, cmd uint8, lun uint8, data []byte, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s to BMC %s: %w", name, b.peer, err)
	}
	if b.opts.Interface == InterfaceOpen {
		// The in-band backend ignores ctx; bound each request by what is
		// left of it instead.
		t := b.opts.RequestTimeout
		if dl, ok := ctx.Deadline(); ok {
			t = min(t, max(time.Until(dl), time.Millisecond))
		}
		c.WithTimeout(t)
		b.commands.Add(1)
	}
	if lun != 0 {
		ctx = client.WithCommandContext(ctx, (&client.CommandContext{}).WithResponderLUN(lun))
	}
	res, err := c.RawCommand(ctx, netFn, cmd, data, name)
	if err != nil {
		if respErr, ok := types.IsResponseError(err); ok && respErr.CompletionCode() != 0 {
			return nil, &CompletionError{Code: uint8(respErr.CompletionCode()), Cmd: name}
		}
		return nil, fmt.Errorf("%s to BMC %s: %w", name, b.peer, err)
	}
	return res.Response, nil
}

// countingDialer counts every datagram sent to the BMC, so the command
// counter includes session setup, keep-alives and retries.
type countingDialer struct{ n *atomic.Uint64 }

func (d countingDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, n: d.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}
