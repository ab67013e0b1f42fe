package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/ups"
)

// The UPS battery test: ask the UPS, through upsd, for its quick battery
// test (INSTCMD test.battery.start.quick) and watch ups.test.result for
// its verdict.
//
// It is not disruptive: the UPS switches its inverter to the battery for
// the 10 to 60 s of a quick test while the load stays fed, as in any
// mains blip the UPS exists for. The risk is a battery too weak to carry
// the load even that long, which is exactly what the test is for; we
// lower it by refusing unless the UPS is on line power with a charged
// battery, and by stopping the test (test.battery.stop) the moment the
// UPS says low battery, on a signal, or at our timeout.

const (
	// UPSBatteryTestName is the method's name in the audit log and metrics.
	UPSBatteryTestName = "ups-battery-test"
	// UPSCmdQuickTest and UPSCmdStopTest are NUT's standard instant
	// commands (NUT docs/nut-names.txt, "Instant commands").
	UPSCmdQuickTest = "test.battery.start.quick"
	UPSCmdStopTest  = "test.battery.stop"

	// upsMemberBattery is the member a failed test condemns: the name
	// collectors.UPSMemberBattery gives the battery in ups/nut/<name>.
	upsMemberBattery = "battery"

	// Defaults of the UPS options.
	DefaultUPSFollowTimeout = 5 * time.Minute // a quick test takes 10 to 60 s
	DefaultUPSPollInterval  = 2 * time.Second
	DefaultUPSMinCharge     = 50 // percent
	// upsRestoreTimeout bounds sending test.battery.stop after ctx is done.
	upsRestoreTimeout = 10 * time.Second
	// upsMaxPollErrors consecutive failed polls end the follow-up.
	upsMaxPollErrors = 5
)

// UPSOption sets an option of NewUPSBatteryTest.
type UPSOption func(*UPSBatteryTest)

// WithUPSFollowTimeout bounds how long Run with wait follows the test
// before it stops the test and fails.
func WithUPSFollowTimeout(d time.Duration) UPSOption {
	return func(m *UPSBatteryTest) { m.followTimeout = d }
}

// WithUPSPollInterval sets how often Run reads the UPS while following.
func WithUPSPollInterval(d time.Duration) UPSOption {
	return func(m *UPSBatteryTest) { m.pollInterval = d }
}

// WithUPSMinCharge sets the battery.charge (percent) below which the
// drill is refused; a UPS that does not report the charge is not refused
// for it.
func WithUPSMinCharge(pct float64) UPSOption {
	return func(m *UPSBatteryTest) { m.minCharge = pct }
}

// WithUPSClientOptions sets the connection's options (STARTTLS, its CA,
// timeouts); Username and Password are always the drill's.
func WithUPSClientOptions(o ups.Options) UPSOption {
	return func(m *UPSBatteryTest) { m.clientOpts = o }
}

// UPSBatteryTest is the ups-battery-test method for one UPS.
type UPSBatteryTest struct {
	target, upsName, addr string
	username, password    string
	followTimeout         time.Duration
	pollInterval          time.Duration
	minCharge             float64
	clientOpts            ups.Options
}

// NewUPSBatteryTest returns the battery-test drill of the UPS at target
// (upsname[@host[:port]], as in the ups: config). username and password
// are a upsd.users user allowed the instant commands test.battery.start.quick
// and test.battery.stop; empty ones are not an error here, the drill is
// refused saying which setting is missing. A malformed target is an error.
func NewUPSBatteryTest(target, username, password string, opts ...UPSOption) (*UPSBatteryTest, error) {
	name, addr, err := ups.ParseTarget(target)
	if err != nil {
		return nil, fmt.Errorf("ups battery test: %w", err)
	}
	m := &UPSBatteryTest{
		target: target, upsName: name, addr: addr, username: username, password: password,
		followTimeout: DefaultUPSFollowTimeout, pollInterval: DefaultUPSPollInterval, minCharge: DefaultUPSMinCharge,
	}
	for _, o := range opts {
		o(m)
	}
	if m.followTimeout <= 0 {
		m.followTimeout = DefaultUPSFollowTimeout
	}
	if m.pollInterval <= 0 {
		m.pollInterval = DefaultUPSPollInterval
	}
	return m, nil
}

// Name implements Method.
func (m *UPSBatteryTest) Name() string { return UPSBatteryTestName }

// Disruptive implements Method: the load stays fed through the test (see
// the comment at the top of this file).
func (m *UPSBatteryTest) Disruptive() bool { return false }

// Plan implements Method. It reads upsd (LIST CMD, the UPS's variables) but
// sends no command; an error is the reason the drill would be refused.
func (m *UPSBatteryTest) Plan(ctx context.Context) ([]string, error) {
	c, pre, refusal := m.preflight(ctx)
	if refusal != "" {
		return nil, errors.New(refusal)
	}
	c.Close()
	stop := "test.battery.stop is not offered: an interrupted test runs to its end"
	if pre.canStop {
		stop = "on low battery (LB), a signal or the timeout: INSTCMD " + UPSCmdStopTest
	}
	return []string{
		fmt.Sprintf("connect to upsd at %s as %q", m.addr, m.username),
		fmt.Sprintf("UPS %s offers %s; it is on line power%s; ups.test.result is %q", m.upsName, UPSCmdQuickTest, upsChargeClause(pre.state), pre.state.TestResult),
		fmt.Sprintf("INSTCMD %s %s (the UPS carries the load on its battery for 10-60 s)", m.upsName, UPSCmdQuickTest),
		fmt.Sprintf("with --wait: follow ups.test.result for up to %s; passed only on a new passing result", m.followTimeout),
		stop,
	}, nil
}

// upsPre is what preflight learnt.
type upsPre struct {
	state   ups.State
	canStop bool
	cmds    []string
}

// preflight connects and checks that the drill may start. On refusal the
// connection is closed and refusal says why.
func (m *UPSBatteryTest) preflight(ctx context.Context) (*ups.Client, upsPre, string) {
	var pre upsPre
	if m.username == "" || m.password == "" {
		return nil, pre, "drill.ups.username/password_file not set: the battery test needs a upsd.users user allowed the instant commands " + UPSCmdQuickTest + " and " + UPSCmdStopTest
	}
	opts := m.clientOpts
	opts.Username, opts.Password = m.username, m.password
	c, err := ups.Dial(ctx, m.addr, opts)
	if err != nil {
		return nil, pre, fmt.Sprintf("cannot reach upsd for UPS %s: %v", m.target, err)
	}
	refuse := func(format string, a ...any) (*ups.Client, upsPre, string) {
		c.Close()
		return nil, pre, fmt.Sprintf(format, a...)
	}
	cmds, err := c.ListCmds(ctx, m.upsName)
	if err != nil {
		return refuse("UPS %s: cannot list its instant commands: %v", m.target, err)
	}
	pre.cmds = cmds
	if !slices.Contains(cmds, UPSCmdQuickTest) {
		listed := strings.Join(cmds, ", ")
		if listed == "" {
			listed = "none"
		}
		return refuse("UPS %s does not support %s (LIST CMD: %s)", m.target, UPSCmdQuickTest, listed)
	}
	pre.canStop = slices.Contains(cmds, UPSCmdStopTest)
	vl, err := c.ListVars(ctx, m.upsName)
	if err != nil {
		return refuse("UPS %s: cannot read its state: %v", m.target, err)
	}
	st := ups.ParseState(vl)
	pre.state = st
	status := strings.Join(upsFlagStrings(st.Status), " ")
	switch {
	case !st.StatusKnown:
		return refuse("UPS %s reports no ups.status: its state is unknown", m.target)
	case !st.Has(ups.FlagOnline) || st.Has(ups.FlagOnBattery):
		return refuse("UPS %s is not on line power (ups.status %q): a battery test now would drain the battery the host runs on", m.target, status)
	case st.Has(ups.FlagLowBattery), st.Has(ups.FlagForcedShutdown), st.Has(ups.FlagOff), st.Has(ups.FlagBypass), st.Has(ups.FlagCalibrating), st.Has(ups.FlagOverload):
		return refuse("UPS %s is not in a state to test its battery (ups.status %q)", m.target, status)
	case upsTestRunning(st.TestResult):
		return refuse("UPS %s is already testing its battery (ups.test.result %q)", m.target, st.TestResult)
	case st.BatteryCharge.Valid && st.BatteryCharge.Value < m.minCharge:
		return refuse("UPS %s battery.charge is %.0f%%, below the %.0f%% a test needs: let it charge", m.target, st.BatteryCharge.Value, m.minCharge)
	}
	return c, pre, ""
}

// Run implements Method.
func (m *UPSBatteryTest) Run(ctx context.Context, wait bool, progress Progress) Outcome {
	if progress == nil {
		progress = func(float64, float64, string) {}
	}
	c, pre, refusal := m.preflight(ctx)
	if refusal != "" {
		return Outcome{Result: ResultRefused, Reason: refusal}
	}
	// The follow-up may replace a broken connection: close the last one.
	f := &upsFollow{m: m, c: c, pre: pre, progress: progress}
	defer func() { f.c.Close() }()
	prev := pre.state
	f.details = []string{fmt.Sprintf("before: ups.status %q, ups.test.result %q%s%s",
		strings.Join(upsFlagStrings(prev.Status), " "), prev.TestResult, upsDateClause(prev.TestDate), upsChargeClause(prev))}

	// Tracking (NUT 2.8.0+) says whether the driver carried the command
	// out; without it upsd's OK only means it passed the command on.
	tracked := c.EnableTracking(ctx) == nil
	id, err := c.InstCmdTracked(ctx, m.upsName, UPSCmdQuickTest)
	if err != nil {
		if se, ok := ups.IsServerError(err); ok {
			return Outcome{Result: ResultRefused, Reason: m.instCmdRefusal(se), Details: f.details}
		}
		// The request or its reply was lost: the test may be running.
		return m.abort(c, pre, f.details, fmt.Sprintf("lost upsd while sending %s, the test may have started: %v", UPSCmdQuickTest, err))
	}
	f.started, f.trackID = time.Now(), id
	f.details = append(f.details, fmt.Sprintf("INSTCMD %s accepted by upsd", UPSCmdQuickTest))
	progress(0, m.followTimeout.Seconds(), "battery test requested")
	if tracked && id != "" {
		if out, done := f.awaitTracking(ctx); done {
			return out
		}
	}
	if !wait {
		f.details = append(f.details, fmt.Sprintf("not followed: see ups.test.result on %s", m.target))
		return Outcome{Result: ResultStarted, Reason: fmt.Sprintf("battery test started on UPS %s", m.target), Details: f.details}
	}
	return f.run(ctx)
}

// instCmdRefusal words upsd's refusal of the test command.
func (m *UPSBatteryTest) instCmdRefusal(se *ups.ServerError) string {
	switch se.Code {
	case ups.CodeAccessDenied:
		return fmt.Sprintf("upsd refused %s on UPS %s to user %q (ERR %s): check drill.ups.password_file, and grant the user \"instcmds = %s\" and \"instcmds = %s\" in upsd.users, then reload upsd",
			UPSCmdQuickTest, m.target, m.username, se.Code, UPSCmdQuickTest, UPSCmdStopTest)
	case ups.CodeCmdNotSupported:
		return fmt.Sprintf("UPS %s does not support %s (upsd: ERR %s)", m.target, UPSCmdQuickTest, se.Code)
	}
	return fmt.Sprintf("upsd refused %s on UPS %s: %v", UPSCmdQuickTest, m.target, se)
}

// upsFollow watches one started test.
type upsFollow struct {
	m        *UPSBatteryTest
	c        *ups.Client
	pre      upsPre
	details  []string
	started  time.Time
	progress Progress
	trackID  string
	// sawRunning: the UPS said the test was in progress, so the next
	// finished result is this test's even if it reads as the last one.
	sawRunning, sawOB bool
	last              ups.State
}

// awaitTracking waits (within the poll budget) for the driver's answer to
// the command. done is true when that answer ends the drill.
func (f *upsFollow) awaitTracking(ctx context.Context) (Outcome, bool) {
	deadline := time.Now().Add(min(f.m.followTimeout, 30*time.Second))
	for time.Now().Before(deadline) {
		st, err := f.c.TrackingStatus(ctx, f.trackID)
		if se, ok := ups.IsServerError(err); ok {
			// The battery is not proven bad, only untested: no failed member.
			return Outcome{Result: ResultFailed, Details: f.details,
				Reason: fmt.Sprintf("UPS %s did not start its battery test: the driver answered %s with ERR %s (upsd tracking)", f.m.target, UPSCmdQuickTest, se.Code)}, true
		}
		if err != nil {
			break // the follow-up reads the result and says what is wrong
		}
		if st == ups.TrackingSuccess {
			f.details = append(f.details, "the driver carried the command out (upsd tracking SUCCESS)")
			return Outcome{}, false
		}
		if !upsSleep(ctx, min(f.m.pollInterval, time.Second)) {
			break
		}
	}
	return Outcome{}, false
}

func (f *upsFollow) run(ctx context.Context) Outcome {
	end := f.started.Add(f.m.followTimeout)
	fails := 0
	var lastErr error
	for {
		if ctx.Err() != nil {
			return f.m.abort(f.c, f.pre, f.details, fmt.Sprintf("interrupted (%v) while following the battery test on UPS %s%s", context.Cause(ctx), f.m.target, f.lastClause()))
		}
		if time.Now().After(end) {
			return f.m.abort(f.c, f.pre, f.details, fmt.Sprintf("no result from UPS %s within %s%s", f.m.target, f.m.followTimeout, f.lastClause()))
		}
		st, err := f.poll(ctx)
		if err != nil {
			fails, lastErr = fails+1, err
			if fails >= upsMaxPollErrors {
				return f.m.abort(f.c, f.pre, f.details, fmt.Sprintf("lost UPS %s while following its battery test: %v", f.m.target, lastErr))
			}
		} else {
			fails = 0
			if out, done := f.judge(st); done {
				return out
			}
		}
		if !upsSleep(ctx, f.m.pollInterval) {
			continue // the top of the loop aborts
		}
	}
}

// poll reads the UPS, reconnecting when the connection broke.
func (f *upsFollow) poll(ctx context.Context) (ups.State, error) {
	vl, err := f.c.ListVars(ctx, f.m.upsName)
	if err != nil {
		if _, ok := ups.IsServerError(err); !ok && ctx.Err() == nil {
			f.c.Close()
			opts := f.m.clientOpts
			opts.Username, opts.Password = f.m.username, f.m.password
			c, derr := ups.Dial(ctx, f.m.addr, opts)
			if derr != nil {
				return ups.State{}, derr
			}
			f.c = c
			vl, err = f.c.ListVars(ctx, f.m.upsName)
		}
		if err != nil {
			return ups.State{}, err
		}
	}
	return ups.ParseState(vl), nil
}

// judge decides from one reading whether the test is over.
func (f *upsFollow) judge(st ups.State) (Outcome, bool) {
	f.last = st
	elapsed := time.Since(f.started)
	status := strings.Join(upsFlagStrings(st.Status), " ")
	f.progress(elapsed.Seconds(), f.m.followTimeout.Seconds(), fmt.Sprintf("ups.test.result %q, ups.status %q%s", st.TestResult, status, upsChargeClause(st)))
	if st.Has(ups.FlagOnBattery) && !f.sawOB {
		f.sawOB = true
		f.details = append(f.details, fmt.Sprintf("on battery after %s, as a battery test should be (ups.status %q)", elapsed.Round(time.Second), status))
	}
	if st.Has(ups.FlagLowBattery) {
		reason := fmt.Sprintf("UPS %s reported low battery (ups.status %q) %s into its battery test", f.m.target, status, elapsed.Round(time.Second))
		out := f.m.abort(f.c, f.pre, f.details, reason)
		out.FailedMembers = map[string]string{upsMemberBattery: "low battery during a quick battery test"}
		return out, true
	}
	if upsTestRunning(st.TestResult) {
		f.sawRunning = true
		return Outcome{}, false
	}
	prev := f.pre.state
	fresh := f.sawRunning || st.TestResult != prev.TestResult || (st.TestDate != "" && st.TestDate != prev.TestDate)
	if !fresh {
		return Outcome{}, false
	}
	words := fmt.Sprintf("ups.test.result %q%s", st.TestResult, upsDateClause(st.TestDate))
	switch {
	case st.SelfTest() == ups.TestPassed:
		f.details = append(f.details, fmt.Sprintf("%s after %s", words, elapsed.Round(time.Second)))
		return Outcome{Result: ResultPassed, Reason: fmt.Sprintf("UPS %s passed its quick battery test: %s", f.m.target, words), Details: f.details}, true
	case st.SelfTest() == ups.TestFailed, upsTestAborted(st.TestResult):
		f.details = append(f.details, fmt.Sprintf("%s after %s", words, elapsed.Round(time.Second)))
		return Outcome{Result: ResultFailed, Reason: fmt.Sprintf("UPS %s failed its quick battery test: %s", f.m.target, words), Details: f.details,
			FailedMembers: map[string]string{upsMemberBattery: fmt.Sprintf("battery test: %q", st.TestResult)}}, true
	}
	// "No test initiated" or words we do not know: not a verdict, keep
	// watching until one comes or the timeout.
	return Outcome{}, false
}

func (f *upsFollow) lastClause() string {
	if !f.last.StatusKnown && f.last.TestResult == "" {
		return ""
	}
	return fmt.Sprintf(" (last ups.test.result %q, ups.status %q)", f.last.TestResult, strings.Join(upsFlagStrings(f.last.Status), " "))
}

// abort stops the test where the UPS can (test.battery.stop), with its own
// deadline so that it works after ctx is done, and fails the drill.
func (m *UPSBatteryTest) abort(c *ups.Client, pre upsPre, details []string, reason string) Outcome {
	out := Outcome{Result: ResultFailed, Reason: reason, Details: details}
	if !pre.canStop {
		out.Details = append(out.Details, fmt.Sprintf("UPS %s offers no %s: the test, if it runs, ends on its own", m.target, UPSCmdStopTest))
		return out
	}
	rctx, cancel := context.WithTimeout(context.Background(), upsRestoreTimeout)
	defer cancel()
	err := m.stopTest(rctx, c)
	if err != nil {
		if _, ok := ups.IsServerError(err); !ok {
			// The connection is gone: one fresh try.
			opts := m.clientOpts
			opts.Username, opts.Password = m.username, m.password
			if c2, derr := ups.Dial(rctx, m.addr, opts); derr == nil {
				err = m.stopTest(rctx, c2)
				c2.Close()
			} else {
				err = fmt.Errorf("%w; reconnecting: %w", err, derr)
			}
		}
	}
	if err != nil {
		out.Details = append(out.Details, fmt.Sprintf("could not stop the test: %v", err))
	} else {
		out.Details = append(out.Details, fmt.Sprintf("stopped the test: %s on UPS %s", UPSCmdStopTest, m.target))
	}
	return out
}

// stopTest sends test.battery.stop and, where upsd tracks commands, waits
// for the driver's answer within ctx.
func (m *UPSBatteryTest) stopTest(ctx context.Context, c *ups.Client) error {
	_ = c.EnableTracking(ctx) // an old upsd: the OK is all we learn
	id, err := c.InstCmdTracked(ctx, m.upsName, UPSCmdStopTest)
	if err != nil || id == "" {
		return err
	}
	for {
		st, err := c.TrackingStatus(ctx, id)
		if err != nil || st != ups.TrackingPending {
			return err
		}
		if !upsSleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("%s sent, the driver did not confirm it: %w", UPSCmdStopTest, ctx.Err())
		}
	}
}

// upsTestRunning reports a test under way. Drivers' words for it: "In
// progress" (usbhid-ups: drivers/mge-hid.c, apc-hid.c, belkin-hid.c;
// bcmxcp.c; tripplitesu.c), "Test scheduled" (belkin-hid.c), all NUT 2.8.0.
func upsTestRunning(result string) bool {
	r := strings.ToLower(result)
	return strings.Contains(r, "in progress") || strings.Contains(r, "scheduled")
}

// upsTestAborted: a test that ended without a verdict, "Aborted" in
// usbhid-ups's and tripplitesu's words. The battery did not prove itself.
func upsTestAborted(result string) bool {
	return strings.Contains(strings.ToLower(result), "abort")
}

func upsFlagStrings(fs []ups.Flag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func upsChargeClause(st ups.State) string {
	if !st.BatteryCharge.Valid {
		return ""
	}
	return fmt.Sprintf(", battery.charge %.0f%%", st.BatteryCharge.Value)
}

func upsDateClause(d string) string {
	if d == "" {
		return ""
	}
	return fmt.Sprintf(" (ups.test.date %q)", d)
}

// upsSleep sleeps d or until ctx is done; false when ctx is done.
func upsSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
