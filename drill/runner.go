package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/spofwatch/spofwatch/drill/auditlog"
	"github.com/spofwatch/spofwatch/spof"
)

// Options are how one drill runs.
type Options struct {
	// StateDir holds the lock and the audit log.
	StateDir string
	// DryRun prints the plan: no lock, no audit record, nothing changed.
	DryRun bool
	// Wait follows a long drill (scrub, battery test) to its end.
	Wait bool
	// Scheduled marks the timer's run in the audit log.
	Scheduled bool
	// Timeout caps the drill; 0 means DefaultTimeout(method).
	Timeout time.Duration
	// Progress receives the method's progress (nil: none).
	Progress Progress
	// Who ran it; the zero value means CurrentUser().
	Who Who
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Who is who ran a drill, for the audit log.
type Who struct {
	User string
	UID  int
	PID  int
}

// CurrentUser is the person behind this process: SUDO_USER when sudo ran
// us (root's name says nothing), else the login name of our uid.
func CurrentUser() Who {
	w := Who{UID: os.Getuid(), PID: os.Getpid()}
	if su := os.Getenv("SUDO_USER"); su != "" {
		w.User = su
		return w
	}
	if u, err := user.LookupId(strconv.Itoa(w.UID)); err == nil {
		w.User = u.Username
	} else {
		w.User = "uid " + strconv.Itoa(w.UID)
	}
	return w
}

// Report is what `spofwatch drill run` prints: the JSON shape of the
// issue ({"group","method","result","reason","started","finished",
// "details"}, plus "failed_members" when any). A dry run has no result
// unless it would be refused, and carries the plan instead.
type Report struct {
	Group         string            `json:"group"`
	Method        string            `json:"method"`
	Result        Result            `json:"result,omitempty"`
	Reason        string            `json:"reason"`
	Started       time.Time         `json:"started,omitzero"`
	Finished      time.Time         `json:"finished,omitzero"`
	Details       []string          `json:"details"`
	FailedMembers map[string]string `json:"failed_members,omitempty"`
	DryRun        bool              `json:"dry_run,omitempty"`
	Plan          []string          `json:"plan,omitempty"`
}

// MarshalJSON writes details as a list, [] when there are none.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Details == nil {
		r.Details = []string{}
	}
	return json.Marshal(plain(r))
}

// ExitCode is the `drill run` exit status of a report: 0 passed (or
// started, or a dry run that would go ahead), 1 failed, 2 refused.
func (r Report) ExitCode() int {
	switch r.Result {
	case ResultFailed:
		return ExitFailed
	case ResultRefused:
		return ExitRefused
	}
	return ExitPassed
}

// Default timeouts per method: what a healthy drill of that kind needs,
// with room. A scrub or check of a large array takes many hours, so it is
// bounded only against a drill that never ends.
const (
	DefaultBondTimeout  = 2 * time.Minute
	DefaultUPSTimeout   = 10 * time.Minute
	DefaultScrubTimeout = 48 * time.Hour
	DefaultOtherTimeout = 10 * time.Minute
)

// DefaultTimeout is a method's own timeout: its DefaultTimeout method if
// it has one, else by its name.
func DefaultTimeout(m Method) time.Duration {
	if d, ok := m.(interface{ DefaultTimeout() time.Duration }); ok && d.DefaultTimeout() > 0 {
		return d.DefaultTimeout()
	}
	switch m.Name() {
	case "bond-failover", "lacp-state":
		return DefaultBondTimeout
	case "ups-battery-test":
		return DefaultUPSTimeout
	case "md-check", "zpool-scrub":
		return DefaultScrubTimeout
	}
	return DefaultOtherTimeout
}

// Ready says why a group may not be drilled now ("" when it may): a drill
// takes a member out of service or loads every member, so the group must
// be fully redundant with every member ok. A degraded or unknown member
// may be the one the drill relies on.
func Ready(gr spof.GroupResult) string {
	if gr.State != spof.StateRedundant {
		return fmt.Sprintf("%s is %s, not redundant: a drill needs every member working", gr.Group.ID, gr.State)
	}
	if len(gr.Group.Members) == 0 {
		return fmt.Sprintf("%s has no members to drill (the source reports the group only as a whole)", gr.Group.ID)
	}
	for _, m := range gr.Group.Members {
		if m.State != spof.MemberOK {
			why := fmt.Sprintf("member %s is %s", m.Name, m.State)
			if m.Detail != "" {
				why += " (" + m.Detail + ")"
			}
			return why + ": a drill needs every member ok"
		}
	}
	return ""
}

// Run drills one group: the safety rules are here, what the drill does is
// the method's. gr is the group as one collection just evaluated it.
//
// Order: refuse unless Ready; take the per-host lock (refuse if held);
// append the started record (refuse if it cannot be written: a drill that
// leaves no trace is not run); run the method under the timeout; append
// the final record with the same ID. Refusals are audited too; dry runs
// are not (they change nothing and may be run by anyone able to read the
// state). ctx is the command's: a signal cancels it and the method
// restores.
func Run(ctx context.Context, gr spof.GroupResult, m Method, o Options) Report {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	who := o.Who
	if who == (Who{}) {
		who = CurrentUser()
	}
	rep := Report{Group: gr.Group.ID, Method: m.Name()}
	why := Ready(gr)

	if o.DryRun {
		rep.DryRun = true
		if why != "" {
			rep.Result, rep.Reason = ResultRefused, why
			return rep
		}
		plan, err := m.Plan(ctx)
		if err != nil {
			rep.Result, rep.Reason = ResultRefused, err.Error()
			return rep
		}
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout(m)
		}
		rep.Reason = "dry run: nothing was changed"
		rep.Plan = append([]string{
			fmt.Sprintf("check %s is %s with every member ok (it is)", gr.Group.ID, spof.StateRedundant),
			"take the drill lock " + LockPath(o.StateDir) + " (refuse if another drill holds it)",
			"append a started record to " + auditlog.LogPath(o.StateDir),
		}, plan...)
		rep.Plan = append(rep.Plan,
			fmt.Sprintf("stop and restore after %s, or on SIGINT/SIGTERM/SIGHUP", timeout),
			"append the final record to "+auditlog.LogPath(o.StateDir))
		return rep
	}

	rec := Record{ID: newID(who.PID, now().UnixNano()), Group: rep.Group, Method: rep.Method, User: who.User, UID: who.UID, PID: who.PID, Scheduled: o.Scheduled}
	refuse := func(reason string, audit bool) Report {
		t := now()
		rep.Result, rep.Reason, rep.Started, rep.Finished = ResultRefused, reason, t, t
		if audit {
			rec.Result, rec.Reason, rec.Started, rec.Finished = ResultRefused, reason, t, t
			if err := auditlog.AppendLog(auditlog.LogPath(o.StateDir), rec); err != nil {
				rep.Details = append(rep.Details, "not recorded: "+err.Error())
			}
		}
		return rep
	}
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return refuse(fmt.Sprintf("cannot create the state directory: %v", err), false)
	}
	if why != "" {
		return refuse(why, true)
	}
	lock, err := AcquireLock(LockPath(o.StateDir))
	if err != nil {
		var le *LockedError
		return refuse(err.Error(), errors.As(err, &le))
	}
	defer lock.Release()

	rep.Started = now()
	rec.Started, rec.Result = rep.Started, ResultStarted
	if err := auditlog.AppendLog(auditlog.LogPath(o.StateDir), rec); err != nil {
		return refuse(fmt.Sprintf("cannot write the audit log, so the drill was not started: %v", err), false)
	}

	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout(m)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	progress := o.Progress
	if progress == nil {
		progress = func(float64, float64, string) {}
	}
	out := m.Run(rctx, o.Wait, progress)
	rep.Finished = now()
	switch {
	case out.Result == "":
		out.Result, out.Reason = ResultFailed, "the method returned no result: "+out.Reason
	case out.Result == ResultPassed, out.Result == ResultRefused:
	case ctx.Err() != nil:
		out.Result, out.Reason = ResultFailed, "interrupted: "+out.Reason
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		out.Result, out.Reason = ResultFailed, fmt.Sprintf("timed out after %s: %s", timeout, out.Reason)
	}
	rep.Result, rep.Reason, rep.Details, rep.FailedMembers = out.Result, out.Reason, out.Details, out.FailedMembers

	rec.Result, rec.Reason, rec.Finished = rep.Result, rep.Reason, rep.Finished
	rec.Details, rec.FailedMembers = rep.Details, rep.FailedMembers
	if err := auditlog.AppendLog(auditlog.LogPath(o.StateDir), rec); err != nil {
		rep.Details = append(rep.Details, "final record not written: "+err.Error())
	}
	return rep
}

// newID returns a drill ID: unique enough to pair a started record with
// its final one in one host's log.
func newID(pid int, started int64) string {
	return fmt.Sprintf("%x-%d", started, pid)
}
