// Package auditlog is the drill audit log (drills.jsonl in the state
// directory): the records root's `spofwatch drill` appends, and the bounded
// reader the unprivileged daemon follows. It imports nothing of ours, so
// the daemon reads drills without linking the drill methods.
package auditlog

import "time"

// Result is a drill's outcome as the audit log and the JSON output say it.
type Result string

const (
	ResultPassed  Result = "passed"
	ResultFailed  Result = "failed"
	ResultRefused Result = "refused"
	// ResultStarted: the drill was started and runs on without us (a
	// scrub or battery test not followed with --wait), or an audit record
	// written before the drill whose end was never recorded.
	ResultStarted Result = "started"
)

// Record is one line of the audit log (drills.jsonl in the state
// directory): who ran what, when, and how it ended. A drill writes a
// "started" record first and its final record after, both fsynced, so a
// drill killed with SIGKILL still leaves its start behind.
type Record struct {
	ID       string    `json:"id"` // shared by a drill's started and final records
	Group    string    `json:"group"`
	Method   string    `json:"method"`
	Result   Result    `json:"result"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Details  []string  `json:"details,omitempty"`
	// FailedMembers: see Outcome.FailedMembers.
	FailedMembers map[string]string `json:"failed_members,omitempty"`
	// Who: the user (SUDO_USER or the login user, and the uid) and pid
	// that ran the drill, and whether it was the scheduled run.
	User      string `json:"user"`
	UID       int    `json:"uid"`
	PID       int    `json:"pid"`
	Scheduled bool   `json:"scheduled,omitempty"`
}
