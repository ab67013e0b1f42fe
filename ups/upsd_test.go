package ups_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/ups"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

func TestUpsdRealPeer(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: "testdata/nut", UPS: []string{"ups-a", "ups-b"}, MaxAge: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c, err := ups.Dial(ctx, srv.Addr, ups.Options{Username: "monuser", Password: "monpass", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	devs, err := c.ListUPS(ctx)
	if err != nil || len(devs) != 2 || devs[0].Name != "ups-a" || devs[1].Name != "ups-b" {
		t.Fatalf("ListUPS = %+v, %v", devs, err)
	}
	vl, err := c.ListVars(ctx, "ups-a")
	if err != nil {
		t.Fatal(err)
	}
	st := ups.ParseState(vl)
	if !st.Has(ups.FlagOnline) || st.Load.Value != 23 || st.BatteryDate != "2021/03/15" || len(st.Problems) != 0 {
		t.Errorf("ups-a state %+v", st)
	}
	if v, err := c.GetVar(ctx, "ups-b", "ups.load"); err != nil || v != "41" {
		t.Errorf("GetVar ups-b ups.load = %q, %v", v, err)
	}
	// ERR replies are typed and leave the connection usable.
	if _, err := c.ListVars(ctx, "nope"); !errors.Is(err, ups.ErrUnknownUPS) {
		t.Errorf("LIST VAR nope: %v, want UNKNOWN-UPS", err)
	}
	if _, err := c.GetVar(ctx, "ups-a", "no.such.var"); !errors.Is(err, ups.ErrVarNotSupported) {
		t.Errorf("GET VAR no.such.var: %v, want VAR-NOT-SUPPORTED", err)
	}
	// a fault injected through the .dev file shows up
	if err := srv.Set("ups-a", map[string]string{"ups.status": "OB DISCHRG", "battery.runtime": "600"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitVar(ctx, "ups-a", "ups.status", "OB DISCHRG"); err != nil {
		t.Fatal(err)
	}
	vl, err = c.ListVars(ctx, "ups-a")
	if st := ups.ParseState(vl); err != nil || !st.Has(ups.FlagOnBattery) || !st.Has(ups.FlagDischarging) || st.BatteryRuntime.Value != 600 {
		t.Errorf("after injection: %+v, %v", st, err)
	}
	c.Close()

	// A killed driver: DRIVER-NOT-CONNECTED for that UPS only.
	if err := srv.KillDriver("ups-b"); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitVar(ctx, "ups-b", "ups.status", "ERR DRIVER-NOT-CONNECTED"); err != nil {
		t.Fatal(err)
	}
	c, err = ups.Dial(ctx, srv.Addr, ups.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ListVars(ctx, "ups-b"); !errors.Is(err, ups.ErrDriverNotConnected) {
		t.Errorf("killed driver: %v, want DRIVER-NOT-CONNECTED", err)
	}
	if _, err := c.ListVars(ctx, "ups-a"); err != nil {
		t.Errorf("ups-a after ups-b's driver died: %v", err)
	}
	// A frozen driver: DATA-STALE after MAXAGE.
	if err := srv.FreezeDriver("ups-a", true); err != nil {
		t.Fatal(err)
	}
	defer srv.FreezeDriver("ups-a", false)
	start := time.Now()
	for {
		_, err := c.ListVars(ctx, "ups-a")
		if errors.Is(err, ups.ErrDataStale) {
			t.Logf("frozen driver: DATA-STALE after %v (MAXAGE 5)", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if err != nil && !errors.Is(err, ups.ErrDataStale) {
			if _, ok := ups.IsServerError(err); !ok {
				t.Fatal(err)
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no DATA-STALE within 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestUpsdStartTLS(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: "testdata/nut", UPS: []string{"ups-a"}, TLS: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := ups.TLSConfigFromCAFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ups.Dial(ctx, srv.Addr, ups.Options{StartTLS: true, TLSConfig: cfg, Username: "monuser", Password: "monpass"})
	if err != nil {
		t.Fatalf("STARTTLS with the upsd certificate as CA: %v\n%s", err, srv.Logs())
	}
	vl, err := c.ListVars(ctx, "ups-a")
	if err != nil || vl.Vars["ups.status"] != "OL" {
		t.Errorf("over TLS: %v, %v", vl.Vars["ups.status"], err)
	}
	c.Close()

	// A CA that did not sign upsd's certificate: the handshake fails.
	other := &tls.Config{RootCAs: x509.NewCertPool()}
	other.RootCAs.AddCert(selfSigned(t))
	if c, err := ups.Dial(ctx, srv.Addr, ups.Options{StartTLS: true, TLSConfig: other}); err == nil {
		c.Close()
		t.Error("handshake succeeded with a CA that did not sign upsd's certificate")
	} else {
		var uerr x509.UnknownAuthorityError
		if !errors.As(err, &uerr) {
			t.Errorf("wrong CA: %v, want an unknown-authority error", err)
		}
	}
	// The right CA but the wrong name: refused.
	named := cfg.Clone()
	named.ServerName = "ups.example"
	if c, err := ups.Dial(ctx, srv.Addr, ups.Options{StartTLS: true, TLSConfig: named}); err == nil {
		c.Close()
		t.Error("handshake succeeded for a name the certificate does not carry")
	}
}

func TestUpsdWithoutTLSRefusesStartTLS(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{FixtureDir: "testdata/nut", UPS: []string{"ups-a"}})
	_, err := ups.Dial(context.Background(), srv.Addr, ups.Options{StartTLS: true, Timeout: 5 * time.Second})
	if !errors.Is(err, ups.ErrFeatureNotConfigured) {
		t.Fatalf("STARTTLS against upsd without a certificate: %v, want FEATURE-NOT-CONFIGURED", err)
	}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// BenchmarkPollTwoUPS is one collector poll: connect, LIST VAR of two
// UPSes, LOGOUT, against a real upsd.
func BenchmarkPollTwoUPS(b *testing.B) {
	srv := nuttest.StartT(b, nuttest.Config{FixtureDir: "testdata/nut", UPS: []string{"ups-a", "ups-b"}})
	ctx := context.Background()
	for b.Loop() {
		c, err := ups.Dial(ctx, srv.Addr, ups.Options{Timeout: 2 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range []string{"ups-a", "ups-b"} {
			if _, err := c.ListVars(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
}
