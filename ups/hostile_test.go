package ups

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hostileServer accepts connections on a free port and hands each to
// handle after reading the client's first request line.
func hostileServer(t *testing.T, handle func(c net.Conn, firstLine string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				handle(c, strings.TrimSpace(line))
			}()
		}
	}()
	return ln.Addr().String()
}

// writeForever writes chunk until the client goes away.
func writeForever(c net.Conn, chunk []byte) {
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

func TestHostileServer(t *testing.T) {
	const deadline = time.Second
	garbage := make([]byte, 64<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rnd.IntN(256))
	}
	tests := []struct {
		name   string
		handle func(c net.Conn, first string)
		// any of these errors is a correct give-up
		want []error
	}{
		{"endless lines", func(c net.Conn, _ string) {
			c.Write([]byte("BEGIN LIST VAR u\n"))
			writeForever(c, []byte(strings.Repeat("VAR u ups.status \"OL\"\n", 1000)))
		}, []error{ErrResponseTooLarge}},
		{"huge line", func(c net.Conn, _ string) {
			c.Write([]byte("BEGIN LIST VAR u\nVAR u x \""))
			writeForever(c, []byte(strings.Repeat("x", 64<<10)))
		}, []error{ErrLineTooLong}},
		{"garbage", func(c net.Conn, _ string) {
			writeForever(c, garbage)
		}, []error{ErrLineTooLong, ErrProtocol}},
		{"slow drip", func(c net.Conn, _ string) {
			c.Write([]byte("BEGIN LIST VAR u\n"))
			msg := []byte("VAR u ups.status \"OL\"\n")
			for i := 0; ; i++ {
				if _, err := c.Write(msg[i%len(msg) : i%len(msg)+1]); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}, []error{os.ErrDeadlineExceeded, context.DeadlineExceeded}},
		{"silence", func(c net.Conn, _ string) {
			io.Copy(io.Discard, c)
		}, []error{os.ErrDeadlineExceeded, context.DeadlineExceeded}},
		{"close mid-list", func(c net.Conn, _ string) {
			c.Write([]byte("BEGIN LIST VAR u\nVAR u ups.status \"OL\"\n"))
		}, []error{io.ErrUnexpectedEOF}},
		{"error inside list", func(c net.Conn, _ string) {
			c.Write([]byte("BEGIN LIST VAR u\nERR DATA-STALE\n"))
			io.Copy(io.Discard, c)
		}, []error{ErrProtocol}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := hostileServer(t, tc.handle)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			c, err := Dial(ctx, addr, Options{Timeout: 10 * time.Second, MaxResponseBytes: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err = c.ListVars(ctx, "u")
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("ListVars succeeded against a hostile server")
			}
			ok := false
			for _, w := range tc.want {
				ok = ok || errors.Is(err, w)
			}
			if !ok {
				t.Errorf("err = %v, want one of %v", err, tc.want)
			}
			// The client gives up by its deadline (plus scheduling slack on
			// a loaded 2-CPU machine), never later.
			if elapsed > deadline+2*time.Second {
				t.Errorf("gave up after %v, deadline %v", elapsed, deadline)
			}
			// Memory stays bounded however much the server sends: the
			// allocation during the call is a small multiple of the reply
			// limit, not of what the server pushed.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("allocated %d bytes during one ListVars", alloc)
			}
			t.Logf("%s: gave up after %v: %v", tc.name, elapsed.Round(time.Millisecond), err)
			// A broken connection refuses further use instead of reading
			// from the middle of a stream.
			if _, err := c.ListVars(context.Background(), "u"); err == nil {
				t.Error("connection reused after a broken reply")
			}
		})
	}
}

func TestCancelInterruptsRead(t *testing.T) {
	addr := hostileServer(t, func(c net.Conn, _ string) { io.Copy(io.Discard, c) })
	c, err := Dial(context.Background(), addr, Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.ListVars(ctx, "u")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestStartTLSHostile(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  error
	}{
		{"refused", "ERR FEATURE-NOT-CONFIGURED\n", ErrFeatureNotConfigured},
		// plain text after OK STARTTLS would be read as if it came over TLS
		{"injection", "OK STARTTLS\nVAR u ups.status \"OL\"\n", ErrProtocol},
		{"wrong reply", "VAR u x \"y\"\n", ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := hostileServer(t, func(c net.Conn, first string) {
				if first != "STARTTLS" {
					c.Write([]byte("ERR UNKNOWN-COMMAND\n"))
					return
				}
				c.Write([]byte(tc.reply))
				io.Copy(io.Discard, c)
			})
			_, err := Dial(context.Background(), addr, Options{StartTLS: true, Timeout: 2 * time.Second})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNeverSendsLogin(t *testing.T) {
	got := make(chan string, 16)
	addr := hostileServer(t, func(c net.Conn, first string) {
		got <- first
		r := bufio.NewReader(c)
		reply := map[string]string{"USERNAME": "OK\n", "PASSWORD": "OK\n", "LOGOUT": "OK Goodbye\n"}
		line := first
		for {
			verb, _, _ := strings.Cut(line, " ")
			if rep, ok := reply[verb]; ok {
				c.Write([]byte(rep))
			} else {
				c.Write([]byte("ERR UNKNOWN-COMMAND\n"))
			}
			l, err := r.ReadString('\n')
			if err != nil {
				close(got)
				return
			}
			line = strings.TrimSpace(l)
			got <- line
		}
	})
	c, err := Dial(context.Background(), addr, Options{Username: "monuser", Password: "se cret#\"x", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	var lines []string
	for l := range got {
		lines = append(lines, l)
	}
	want := []string{"USERNAME monuser", `PASSWORD "se cret\#\"x"`, "LOGOUT"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("client sent %q, want %q", lines, want)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	addr := hostileServer(t, func(c net.Conn, first string) {
		c.Write([]byte("OK\n")) // USERNAME
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		c.Write([]byte("ERR INVALID-PASSWORD " + secret + "\n")) // a server echoing it back
	})
	_, err := Dial(context.Background(), addr, Options{Username: "u", Password: secret, Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("login accepted")
	}
	if !errors.Is(err, ErrInvalidPassword) {
		t.Errorf("err = %v, want INVALID-PASSWORD", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error contains the password: %v", err)
	}
}
