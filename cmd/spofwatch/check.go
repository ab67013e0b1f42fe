package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/journal"

	"github.com/spofwatch/spofwatch/report"
)

// collectOnce loads the config and collects once, seeded from the history
// in the state directory (so groups and findings keep their since). It
// returns the snapshot, the history and, when it could not, an exit code
// (UNKNOWN) after saying why on stderr. histErr is the history's read
// error, for the caller to weigh.
func collectOnce(o options, stdout, stderr io.Writer, logger *slog.Logger) (snap *agent.Snapshot, events []journal.Event, histErr error, code int) {
	cfg, err := loadConfig(o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		if o.checkFormat == "nagios" {
			fmt.Fprintf(stdout, "SPOFWATCH UNKNOWN - invalid configuration: %v\n", err)
		}
		return nil, nil, nil, report.ExitUnknown
	}
	return collectWith(context.Background(), cfg, o, stderr, logger)
}

// collectWith collects once with a loaded config, as collectOnce does;
// ctx cancels the collection (the drill command's signals).
func collectWith(ctx context.Context, cfg *config.Config, o options, stderr io.Writer, logger *slog.Logger) (snap *agent.Snapshot, events []journal.Event, histErr error, code int) {
	entries, _, err := buildEntries(cfg, o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		return nil, nil, nil, report.ExitUnknown
	}
	defer closeCollectors(entries, logger)
	opts := agent.SchedulerOptions{Entries: entries, Logger: logger, Compose: composeFor(cfg), Acceptances: cfg.Acceptances(),
		ProofPolicy: cfg.ProofPolicy()}
	events, skipped, histErr := journal.Read(o.paths.state, journal.Options{})
	if histErr == nil {
		base := journal.Replay(events)
		opts.SeedStates, opts.Seed = base.States(), base.ActiveFindings()
		opts.SeedFirstSeen = journal.FirstSeen(events)
		opts.SeedProofs = base.Proofs
		if skipped > 0 {
			logger.Warn("unreadable lines skipped in the history", "path", o.paths.state, "lines", skipped)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.checkTimeout)
	defer cancel()
	return agent.NewScheduler(opts).CollectOnce(ctx), events, histErr, 0
}

// runCheck collects once, prints the verdict and returns the Nagios exit
// code of the worst active finding. Config errors are UNKNOWN (3).
func runCheck(o options, stdout, stderr io.Writer, logger *slog.Logger) int {
	snap, _, histErr, code := collectOnce(o, stdout, stderr, logger)
	if snap == nil {
		return code
	}
	if histErr != nil {
		// Where this user cannot read the daemon's history, since is now.
		logger.Debug("history not readable; since is now", "path", o.paths.state, "err", histErr)
	}
	host := hostname()
	var err error
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
	snap, events, histErr, code := collectOnce(o, stdout, stderr, logger)
	if snap == nil {
		return code
	}
	if histErr != nil {
		fmt.Fprintf(stderr, "spofwatch: %v\n", histErr)
		return report.ExitUnknown
	}
	audit := report.BuildAudit(hostname(), snap.Evaluation, snap.Acceptances, events, snap.Taken.Add(-time.Duration(o.reportSince)), snap.Taken)
	if err := report.WriteAudit(stdout, audit, o.reportFormat); err != nil {
		fmt.Fprintf(stderr, "spofwatch: write report: %v\n", err)
		return report.ExitUnknown
	}
	return 0
}
