package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/journal"

	"github.com/spofwatch/spofwatch/report"
)

// runCheck collects once, prints the verdict and returns the Nagios exit
// code of the worst active finding. Config errors are UNKNOWN (3).
func runCheck(o options, stdout, stderr io.Writer, logger *slog.Logger) int {
	cfg, err := loadConfig(o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		if o.checkFormat == "nagios" {
			fmt.Fprintf(stdout, "SPOFWATCH UNKNOWN - invalid configuration: %v\n", err)
		}
		return report.ExitUnknown
	}
	entries, _, err := buildEntries(cfg, o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		return report.ExitUnknown
	}
	defer closeCollectors(entries, logger)
	// The daemon's history, where this user may read it, gives each group
	// its state_since and each finding its since; without it they are now.
	opts := agent.SchedulerOptions{Entries: entries, Logger: logger, Compose: composeFor(cfg), Acceptances: cfg.Acceptances()}
	if events, _, err := journal.Read(o.paths.state, journal.Options{}); err == nil {
		base := journal.Replay(events)
		opts.SeedStates, opts.Seed = base.States(), base.ActiveFindings()
	} else {
		logger.Debug("history not readable; since is now", "path", o.paths.state, "err", err)
	}
	sched := agent.NewScheduler(opts)
	ctx, cancel := context.WithTimeout(context.Background(), o.checkTimeout)
	defer cancel()
	snap := sched.CollectOnce(ctx)
	host := hostname()
	switch o.checkFormat {
	case "json":
		err = report.WriteJSON(stdout, report.Build(host, snap))
	case "nagios":
		err = report.WriteNagios(stdout, snap.Evaluation)
	case "dot":
		err = report.WriteDot(stdout, host, report.BuildMap(snap.Evaluation))
	default:
		err = report.WriteText(stdout, host, snap)
	}
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: write output: %v\n", err)
		return report.ExitUnknown
	}
	return report.ExitCode(snap.Evaluation)
}

// runReport collects once and prints the audit over the window, with the
// history read from the state directory.
func runReport(o options, stdout, stderr io.Writer, logger *slog.Logger) int {
	cfg, err := loadConfig(o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		return report.ExitUnknown
	}
	entries, _, err := buildEntries(cfg, o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		return report.ExitUnknown
	}
	defer closeCollectors(entries, logger)
	events, skipped, err := journal.Read(o.paths.state, journal.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: %v\n", err)
		return report.ExitUnknown
	}
	if skipped > 0 {
		logger.Warn("unreadable lines skipped in the history", "path", o.paths.state, "lines", skipped)
	}
	sched := agent.NewScheduler(agent.SchedulerOptions{Entries: entries, Logger: logger, Compose: composeFor(cfg),
		Acceptances: cfg.Acceptances(), SeedStates: journal.Replay(events).States()})
	ctx, cancel := context.WithTimeout(context.Background(), o.checkTimeout)
	defer cancel()
	snap := sched.CollectOnce(ctx)
	audit := report.BuildAudit(hostname(), snap.Evaluation, snap.Acceptances, events, snap.Taken.Add(-time.Duration(o.reportSince)), snap.Taken)
	if err := report.WriteAudit(stdout, audit, o.reportFormat); err != nil {
		fmt.Fprintf(stderr, "spofwatch: write report: %v\n", err)
		return report.ExitUnknown
	}
	return 0
}
