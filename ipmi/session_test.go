package ipmi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewOptions(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{Device: filepath.Join(dir, "ipmi0")}); !errors.Is(err, ErrNoBMC) {
		t.Errorf("nothing configured, no device: %v, want ErrNoBMC", err)
	}
	if _, err := New(Options{Interface: InterfaceOpen, Device: "/dev/ttyS0"}); err == nil || !strings.Contains(err.Error(), "not /dev/ipmiN") {
		t.Errorf("in-band device /dev/ttyS0: %v", err)
	}
	if _, err := New(Options{Interface: InterfaceLanplus}); err == nil {
		t.Error("lanplus without host accepted")
	}
	if _, err := New(Options{Interface: "lan"}); err == nil {
		t.Error("unknown interface accepted")
	}
	b, err := New(Options{Host: "bmc.example", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Interface() != InterfaceLanplus || b.Peer() != "bmc.example:623" || b.opts.CipherSuite != 3 {
		t.Errorf("defaults: interface %s peer %s cipher suite %d", b.Interface(), b.Peer(), b.opts.CipherSuite)
	}
	dev := filepath.Join(dir, "ipmi1")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err = New(Options{Device: dev})
	if err != nil || b.Interface() != InterfaceOpen || b.devnum != 1 {
		t.Fatalf("device %s: %v, interface %s, devnum %d", dev, err, b.Interface(), b.devnum)
	}
}

// TestBackoff: a BMC that cannot be reached is not retried before the
// backoff has passed, and the error says why.
func TestBackoff(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ipmi7") // exists, but /dev/ipmi7 does not
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Device: dev, BackoffMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := b.Poll(context.Background())
	_, err2 := b.Poll(context.Background())
	if err1 == nil || err2 == nil {
		t.Fatalf("polls of a missing device: %v, %v", err1, err2)
	}
	if !strings.Contains(err2.Error(), "next reconnect in") || !errors.Is(err2, err1) {
		t.Errorf("second poll %q does not wait for the backoff after %q", err2, err1)
	}
	if b.failures != 1 {
		t.Errorf("failures = %d, want 1 (the backoff wait is no new attempt)", b.failures)
	}
}
