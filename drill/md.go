package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/raid"
)

// MdCheck is the md drill: a `check` of the array, which reads every copy
// (or parity) of every block and counts the blocks where they differ
// (Documentation/admin-guide/md.rst, sync_action and mismatch_cnt). It is
// not disruptive: the array keeps serving, the check yields to I/O.
type MdCheck struct {
	// Array is the md device name (md0).
	Array string
	// SysPath is the sysfs root (--path.sysfs).
	SysPath string
	// AllowMismatch: mismatches are expected on this array (swap on
	// raid1), so a count > 0 does not fail the drill.
	AllowMismatch bool
	// Poll is how often a followed check is read (default 1s).
	Poll time.Duration
}

// Name implements Method.
func (m *MdCheck) Name() string { return "md-check" }

// Disruptive implements Method: a check only reads.
func (m *MdCheck) Disruptive() bool { return false }

func (m *MdCheck) attr(name string) string {
	return path.Join(orSys(m.SysPath), "block", m.Array, "md", name)
}

func orSys(s string) string {
	if s == "" {
		return "/sys"
	}
	return s
}

// idle says why the array cannot be checked now ("" when it can).
func (m *MdCheck) idle(a raid.MdArray) string {
	switch {
	case a.Sync.Action == "":
		return fmt.Sprintf("cannot read %s", m.attr("sync_action"))
	case a.Sync.Action != "idle":
		return fmt.Sprintf("%s is busy: sync_action is %s (a resync, recovery or check already runs; a drill never interrupts it)", m.Array, a.Sync.Action)
	case a.Inactive():
		return fmt.Sprintf("%s is %s", m.Array, a.ArrayState)
	case a.Degraded():
		return fmt.Sprintf("%s is degraded: %s", m.Array, a.Summary())
	}
	return ""
}

// Plan implements Method.
func (m *MdCheck) Plan(ctx context.Context) ([]string, error) {
	if err := m.validName(); err != nil {
		return nil, err
	}
	a := raid.ReadMdArray(m.SysPath, m.Array)
	if why := m.idle(a); why != "" {
		return nil, errors.New(why)
	}
	mismatch := "a mismatch_cnt above 0 fails the drill"
	if m.AllowMismatch {
		mismatch = "a mismatch_cnt above 0 is reported but allowed (drill.md.allow_mismatch)"
	}
	return []string{
		fmt.Sprintf("read %s: idle (it is)", m.attr("sync_action")),
		fmt.Sprintf("write check to %s: md reads and compares every copy of %s (%s)", m.attr("sync_action"), m.Array, a.Level),
		"without --wait: stop following here; the check runs on and the agent records its end",
		fmt.Sprintf("with --wait: read %s every %s until sync_action is idle again", m.attr("sync_completed"), m.poll()),
		fmt.Sprintf("read %s: %s", m.attr("mismatch_cnt"), mismatch),
		fmt.Sprintf("on interrupt or timeout while following: write idle to %s (stops the check)", m.attr("sync_action")),
	}, nil
}

func (m *MdCheck) poll() time.Duration {
	if m.Poll > 0 {
		return m.Poll
	}
	return time.Second
}

func (m *MdCheck) validName() error {
	if m.Array == "" || strings.ContainsAny(m.Array, "/\x00") || m.Array == "." || m.Array == ".." {
		return fmt.Errorf("bad md array name %q", m.Array)
	}
	return nil
}

// setAction writes sync_action, confined to the sysfs root.
func (m *MdCheck) setAction(action string) error {
	root, err := os.OpenRoot(orSys(m.SysPath))
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile(path.Join("block", m.Array, "md", "sync_action"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	// The kernel takes one write as one command.
	_, werr := f.Write([]byte(action))
	return errors.Join(werr, f.Close())
}

// Run implements Method.
func (m *MdCheck) Run(ctx context.Context, wait bool, progress Progress) Outcome {
	if err := m.validName(); err != nil {
		return Outcome{Result: ResultRefused, Reason: err.Error()}
	}
	a := raid.ReadMdArray(m.SysPath, m.Array)
	if why := m.idle(a); why != "" {
		return Outcome{Result: ResultRefused, Reason: why}
	}
	if err := ctx.Err(); err != nil {
		return Outcome{Result: ResultRefused, Reason: "cancelled before the check started"}
	}
	if err := m.setAction("check"); err != nil {
		// Nothing started: the kernel refused the write (EBUSY).
		return Outcome{Result: ResultRefused, Reason: fmt.Sprintf("cannot start the check: write check to %s: %v", m.attr("sync_action"), err)}
	}
	details := []string{fmt.Sprintf("wrote check to %s", m.attr("sync_action"))}
	progress(0, 100, m.Array+": check started")
	if !wait {
		return Outcome{Result: ResultStarted, Details: details,
			Reason: fmt.Sprintf("check of %s started; it runs on (cat /proc/mdstat), and the agent records its end and mismatch_cnt", m.Array)}
	}

	t := time.NewTicker(m.poll())
	defer t.Stop()
	lastPct := -1.0
	for {
		select {
		case <-ctx.Done():
			return m.stop(ctx, details, lastPct)
		case <-t.C:
		}
		a = raid.ReadMdArray(m.SysPath, m.Array)
		switch a.Sync.Action {
		case "check":
			if r, ok := a.Sync.Ratio(); ok {
				lastPct = r * 100
				progress(lastPct, 100, m.Array+": "+a.Sync.String())
			} else {
				progress(0, 0, m.Array+": "+a.Sync.String())
			}
			continue
		case "idle":
			return m.finish(a, details)
		case "":
			// Unreadable for a moment is no verdict; keep following
			// until the timeout says otherwise.
			continue
		default:
			// A member failed and md recovers, or a resync took over:
			// the check did not run to its end.
			return Outcome{Result: ResultFailed, Details: details,
				Reason: fmt.Sprintf("the check of %s gave way to %s: %s", m.Array, a.Sync.Action, a.Summary())}
		}
	}
}

// stop ends a check we started and are following: the command was
// interrupted or timed out. It writes idle (own short work, not ctx).
func (m *MdCheck) stop(ctx context.Context, details []string, lastPct float64) Outcome {
	at := "before its first progress"
	if lastPct >= 0 {
		at = fmt.Sprintf("at %.1f%%", lastPct)
	}
	reason := fmt.Sprintf("%v; the check of %s was stopped %s", context.Cause(ctx), m.Array, at)
	if err := m.setAction("idle"); err != nil {
		reason = fmt.Sprintf("%v; could NOT stop the check of %s (write idle to %s: %v), it runs on", context.Cause(ctx), m.Array, m.attr("sync_action"), err)
	} else {
		details = append(details, fmt.Sprintf("wrote idle to %s", m.attr("sync_action")))
	}
	return Outcome{Result: ResultFailed, Reason: reason, Details: details}
}

// finish judges a check that went idle.
func (m *MdCheck) finish(a raid.MdArray, details []string) Outcome {
	if a.Sync.LastAction != "" && a.Sync.LastAction != "check" {
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("the check of %s did not run to its end: last_sync_action is %s", m.Array, a.Sync.LastAction)}
	}
	if a.Degraded() {
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("%s became degraded during the check: %s", m.Array, a.Summary())}
	}
	switch {
	case a.MismatchCount < 0:
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("mismatch_cnt of %s unreadable after check", m.Array)}
	case a.MismatchCount > 0 && !m.AllowMismatch:
		details = append(details, "the copies differ: find out why before trusting either (a repair makes them equal, not right)")
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("mismatch_cnt %d after check", a.MismatchCount)}
	case a.MismatchCount > 0:
		return Outcome{Result: ResultPassed, Details: details,
			Reason: fmt.Sprintf("check of %s done, mismatch_cnt %d (allowed by drill.md.allow_mismatch)", m.Array, a.MismatchCount)}
	}
	return Outcome{Result: ResultPassed, Details: details,
		Reason: fmt.Sprintf("check of %s done, mismatch_cnt 0", m.Array)}
}
