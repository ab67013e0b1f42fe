package ups_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/ups"
	"github.com/spofwatch/spofwatch/ups/nuttest"
)

// TestUpsdInstCmd runs LIST CMD, INSTCMD and TRACKING against a real upsd
// serving a real dummy-ups (ups-a, which offers only load.off and carries
// out nothing) and an emulated driver (ups-t, which offers the battery test
// and reports what it was sent).
func TestUpsdInstCmd(t *testing.T) {
	srv := nuttest.StartT(t, nuttest.Config{
		FixtureDir: "testdata/nut", UPS: []string{"ups-a"}, Emulated: []string{"ups-t"},
		Commands: map[string][]string{"ups-t": {"test.battery.start.quick", "test.battery.stop"}},
	})
	if err := srv.OnInstCmd("ups-t", func(cmd, _ string) int {
		if cmd == "test.battery.stop" {
			return nuttest.StatInstCmdFailed
		}
		return nuttest.StatInstCmdHandled
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	anon, err := ups.Dial(ctx, srv.Addr, ups.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	for _, tc := range []struct {
		ups  string
		want []string
		err  error
	}{
		{"ups-a", []string{"load.off"}, nil},
		{"ups-t", []string{"test.battery.start.quick", "test.battery.stop"}, nil},
		{"nope", nil, ups.ErrUnknownUPS},
	} {
		got, err := anon.ListCmds(ctx, tc.ups)
		slices.Sort(got)
		if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
			t.Errorf("LIST CMD %s = %q, %v; want %q, %v", tc.ups, got, err, tc.want, tc.err)
		}
	}

	for _, tc := range []struct {
		name       string
		user, pass string
		ups, cmd   string
		want       error
	}{
		{"granted", "cmduser", "cmdpass", "ups-t", "test.battery.start.quick", nil},
		// upsd checks the driver's command list before the user.
		{"command the UPS lacks", "cmduser", "cmdpass", "ups-a", "test.battery.start.quick", ups.ErrCmdNotSupported},
		{"user without instcmds", "monuser", "monpass", "ups-t", "test.battery.start.quick", ups.ErrAccessDenied},
		{"wrong password", "cmduser", "wrong", "ups-t", "test.battery.start.quick", ups.ErrAccessDenied},
		// upsd asks for a login before it looks at the command.
		{"anonymous", "", "", "ups-t", "test.battery.start.quick", &ups.ServerError{Code: ups.CodeUsernameRequired}},
		{"unknown UPS", "cmduser", "cmdpass", "nope", "test.battery.start.quick", ups.ErrUnknownUPS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := srv.InstCmds("ups-t")
			c, err := ups.Dial(ctx, srv.Addr, ups.Options{Username: tc.user, Password: tc.pass, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.InstCmd(ctx, tc.ups, tc.cmd)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("INSTCMD = %v, want %v", err, tc.want)
			}
			if _, ok := ups.IsServerError(err); err != nil && !ok {
				t.Errorf("refusal %v is not a *ServerError", err)
			}
			// The connection stays usable after a refusal.
			if _, err := c.GetVar(ctx, "ups-t", "ups.status"); err != nil {
				t.Errorf("after INSTCMD: %v", err)
			}
			after, _ := srv.InstCmds("ups-t")
			if sent := len(after) - len(before); (tc.want == nil) != (sent == 1) {
				t.Errorf("the driver received %d commands", sent)
			}
		})
	}

	// TRACKING: the driver's own answer comes back through upsd.
	c, err := ups.Dial(ctx, srv.Addr, ups.Options{Username: "cmduser", Password: "cmdpass", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.EnableTracking(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ups, cmd string
		want     ups.TrackingStatus
		err      ups.ErrorCode
	}{
		{"ups-t", "test.battery.start.quick", ups.TrackingSuccess, ""},
		{"ups-t", "test.battery.stop", "", "FAILED"},
		// the real dummy-ups lists load.off but carries out no command
		{"ups-a", "load.off", "", "UNKNOWN"},
	} {
		id, err := c.InstCmdTracked(ctx, tc.ups, tc.cmd)
		if err != nil || id == "" {
			t.Fatalf("INSTCMD %s %s with tracking: id %q, %v", tc.ups, tc.cmd, id, err)
		}
		var st ups.TrackingStatus
		for st, err = c.TrackingStatus(ctx, id); err == nil && st == ups.TrackingPending; st, err = c.TrackingStatus(ctx, id) {
			time.Sleep(20 * time.Millisecond)
		}
		se, _ := ups.IsServerError(err)
		switch {
		case tc.err == "" && (err != nil || st != tc.want):
			t.Errorf("%s %s: tracking %q, %v; want %q", tc.ups, tc.cmd, st, err, tc.want)
		case tc.err != "" && (se == nil || se.Code != tc.err):
			t.Errorf("%s %s: tracking %q, %v; want ERR %s", tc.ups, tc.cmd, st, err, tc.err)
		}
	}
}
