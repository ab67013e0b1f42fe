// Package drill proves a group's redundancy by exercising it: a bond
// failover to each backup slave, an md check, a ZFS scrub, a UPS battery
// test. It is run by the root `spofwatch drill` command, never by the
// daemon; results go to an audit log in the state directory that the
// daemon only reads.
//
// This file is the contract between the runner (safety: redundancy check,
// lock, timeout, audit log, signals) and the methods (what each drill
// does and how it restores).
package drill

import (
	"context"

	"github.com/spofwatch/spofwatch/drill/auditlog"
)

// Exit codes of `spofwatch drill run`.
const (
	ExitPassed  = 0
	ExitFailed  = 1
	ExitRefused = 2
	ExitUsage   = 3
)

// Progress reports how far a long drill is, for --wait: done of total in
// the method's own unit (percent of a scrub, seconds of a battery test),
// total 0 when unknown, and a short line saying what is happening.
type Progress func(done, total float64, msg string)

// Outcome is what a method reports when it returns.
type Outcome struct {
	Result Result
	// Reason says why in the operator's words: "ab1 cannot reach gateway
	// 10.9.0.1 (2 ARP probes, 3s)", "mismatch_cnt 128 after check".
	Reason string
	// Details are further facts, one per line ("ab1: active 41ms, ARP
	// reply from 10.9.0.1 in 2.1ms", "restored ab0 in 12ms").
	Details []string
	// FailedMembers are members the drill found unable to carry the load,
	// with the reason for each. They stay `failed` in the model until the
	// group's next passing drill.
	FailedMembers map[string]string
}

// Method is one way to exercise a group's redundancy.
type Method interface {
	// Name is the method as the audit log and metrics label it:
	// "bond-failover", "lacp-state", "md-check", "zpool-scrub",
	// "ups-battery-test".
	Name() string
	// Disruptive methods change which path carries traffic; the
	// scheduled (timer) run only runs them where the config allows.
	Disruptive() bool
	// Plan says, step by step, what Run would do. --dry-run prints it and
	// nothing is changed.
	Plan(ctx context.Context) ([]string, error)
	// Run performs the drill. It must leave the group as it found it on
	// every exit path, including when ctx is cancelled (signal or
	// timeout): restore work uses its own short deadline, not ctx. With
	// wait false, a method that would run on for long (scrub, battery
	// test) may return ResultStarted once the drill is under way.
	Run(ctx context.Context, wait bool, progress Progress) Outcome
}

// Record and Result live in drill/auditlog, which imports nothing of ours,
// so the daemon's reader (collectors) does not pull in the methods and
// their sources.
type (
	Record = auditlog.Record
	Result = auditlog.Result
)

const (
	ResultPassed  = auditlog.ResultPassed
	ResultFailed  = auditlog.ResultFailed
	ResultRefused = auditlog.ResultRefused
	ResultStarted = auditlog.ResultStarted
)
