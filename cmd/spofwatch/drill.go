package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/drill"
	"github.com/spofwatch/spofwatch/report"
	"github.com/spofwatch/spofwatch/spof"
)

// drillOptions are the flags of `spofwatch drill`.
type drillOptions struct {
	format    string
	group     string
	dryRun    bool
	wait      bool
	scheduled bool
}

// drillSetup loads the config and collects once, as check does, under the
// command's signal context. It returns the exit code when it cannot.
func drillSetup(ctx context.Context, o options, stderr io.Writer, logger *slog.Logger) (*config.Config, *agent.Snapshot, int) {
	cfg, err := loadConfig(o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: invalid configuration:\n%v\n", err)
		return nil, nil, drill.ExitUsage
	}
	snap, _, histErr, _ := collectWith(ctx, cfg, o, stderr, logger)
	if snap == nil {
		return nil, nil, drill.ExitUsage // said why on stderr
	}
	if histErr != nil {
		logger.Debug("history not readable; last proofs from the sources only", "path", o.paths.state, "err", histErr)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "spofwatch: interrupted before any drill started (%v); nothing was changed\n", context.Cause(ctx))
		return nil, nil, drill.ExitRefused
	}
	return cfg, snap, 0
}

func drillEnv(cfg *config.Config, o options) drill.Env {
	return drill.Env{SysPath: o.paths.sys, ProcPath: o.paths.proc, StateDir: o.paths.state, Drill: cfg.Drill, ZpoolPath: cfg.RAID.ZpoolPath, UPS: cfg.UPS}
}

// drillSignals is the drill's context: SIGINT, SIGTERM and SIGHUP cancel
// it, and the method restores before the command exits.
func drillSignals() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
}

// drillListEntry is one group of `drill list --format json`.
type drillListEntry struct {
	Group      string        `json:"group"`
	Kind       string        `json:"kind"`
	State      string        `json:"state"`
	Drillable  bool          `json:"drillable"`
	Method     string        `json:"method,omitempty"`
	Disruptive bool          `json:"disruptive,omitempty"`
	Scheduled  bool          `json:"scheduled"`
	Reason     string        `json:"reason,omitempty"`
	LastProven *report.Proof `json:"last_proven"`
}

// runDrillList prints each group: whether and how it can be drilled, and
// its last proof.
func runDrillList(o options, do drillOptions, stdout, stderr io.Writer, logger *slog.Logger) int {
	ctx, stop := drillSignals()
	defer stop()
	// Readiness is judged on what the sources say now, without earlier
	// drills' verdicts: a member failed only by a past drill must not
	// block the re-drill that can clear it. The drill's own record still
	// goes to the log, and the daemon applies it.
	o.enabled = withoutDrillLog(o.enabled)
	cfg, snap, code := drillSetup(ctx, o, stderr, logger)
	if snap == nil {
		return code
	}
	env := drillEnv(cfg, o)
	entries := []drillListEntry{}
	for _, gr := range snap.Evaluation.Groups {
		e := drillListEntry{Group: gr.Group.ID, Kind: string(gr.Group.Kind), State: string(gr.State), LastProven: report.ProofOf(gr.Group)}
		m, err := drill.Select(gr.Group, env)
		var nd *drill.NotDrillableError
		switch {
		case errors.As(err, &nd):
			e.Reason = nd.Reason
		case err != nil:
			e.Reason = err.Error()
		default:
			e.Drillable, e.Method, e.Disruptive = true, m.Name(), m.Disruptive()
			var why string
			e.Scheduled, why = drill.Scheduled(gr.Group, m, env)
			if !e.Scheduled {
				e.Reason = "timer: " + why
			}
		}
		entries = append(entries, e)
	}
	if do.format == "json" {
		if err := json.NewEncoder(stdout).Encode(entries); err != nil {
			fmt.Fprintf(stderr, "spofwatch: write output: %v\n", err)
			return drill.ExitUsage
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tDRILL\tLAST PROVEN")
	for i, e := range entries {
		how := "-"
		if e.Drillable {
			how = e.Method
			if e.Disruptive {
				how += " (disruptive)"
			}
			if e.Scheduled {
				how += ", timer"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Group, e.State, how, report.ProofText(snap.Evaluation.Groups[i].Group))
	}
	tw.Flush()
	for _, e := range entries {
		if !e.Drillable || e.Reason != "" {
			fmt.Fprintf(stdout, "  %s: %s\n", e.Group, e.Reason)
		}
	}
	return 0
}

// runDrillRun drills one group, or with --scheduled every group the timer
// may drill.
func runDrillRun(o options, do drillOptions, stdout, stderr io.Writer, logger *slog.Logger) int {
	switch {
	case do.scheduled && do.group != "":
		fmt.Fprintln(stderr, "spofwatch: drill run: --scheduled drills every eligible group; give no GROUP")
		return drill.ExitUsage
	case do.scheduled && do.wait:
		fmt.Fprintln(stderr, "spofwatch: drill run: --scheduled starts scrubs and checks and does not follow them; --wait does not apply")
		return drill.ExitUsage
	case !do.scheduled && do.group == "":
		fmt.Fprintln(stderr, "spofwatch: drill run: name a GROUP (spofwatch drill list shows them), or give --scheduled")
		return drill.ExitUsage
	}
	ctx, stop := drillSignals()
	defer stop()
	// Readiness is judged on what the sources say now, without earlier
	// drills' verdicts: a member failed only by a past drill must not
	// block the re-drill that can clear it. The drill's own record still
	// goes to the log, and the daemon applies it.
	o.enabled = withoutDrillLog(o.enabled)
	cfg, snap, code := drillSetup(ctx, o, stderr, logger)
	if snap == nil {
		return code
	}
	env := drillEnv(cfg, o)
	opts := drill.Options{StateDir: o.paths.state, DryRun: do.dryRun, Wait: do.wait, Scheduled: do.scheduled,
		Timeout: time.Duration(cfg.Drill.Timeout)}
	if do.scheduled {
		return runScheduled(ctx, snap, env, opts, do, stdout, stderr)
	}

	gr, ok := findGroup(snap, do.group)
	if !ok {
		fmt.Fprintf(stderr, "spofwatch: drill run: no group %q here (spofwatch drill list shows them)\n", do.group)
		return drill.ExitUsage
	}
	m, err := drill.Select(gr.Group, env)
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: drill run: %v\n", err)
		return drill.ExitUsage
	}
	var printer *drill.ProgressPrinter
	if do.wait && !do.dryRun {
		printer = drill.NewProgressPrinter(stderr, isTerminal(stderr))
		opts.Progress = printer.Progress
	}
	rep := drill.Run(ctx, gr, m, opts)
	if printer != nil {
		printer.Done()
	}
	if err := writeDrillReports(stdout, do.format, false, rep); err != nil {
		fmt.Fprintf(stderr, "spofwatch: write output: %v\n", err)
	}
	return rep.ExitCode()
}

// withoutDrillLog is the collector switches with the drill audit log's
// reader turned off.
func withoutDrillLog(enabled map[string]*bool) map[string]*bool {
	out := make(map[string]*bool, len(enabled)+1)
	for k, v := range enabled {
		out[k] = v
	}
	off := false
	out[drillsSpec.name] = &off
	return out
}

// runScheduled is the timer's run: for each group in turn, the drill it
// may run (non-disruptive ones, and bonds the config marks scheduled),
// started and not followed, each recorded. One drill per pool or array.
// The exit status is the highest of the drills'.
func runScheduled(ctx context.Context, snap *agent.Snapshot, env drill.Env, opts drill.Options, do drillOptions, stdout, stderr io.Writer) int {
	opts.Wait = false
	var reports []drill.Report
	done := map[string]bool{}
	exit := drill.ExitPassed
	for _, gr := range snap.Evaluation.Groups {
		m, err := drill.Select(gr.Group, env)
		if err != nil {
			continue // not drillable: drill list says why
		}
		if ok, _ := drill.Scheduled(gr.Group, m, env); !ok {
			continue
		}
		key := drill.Key(gr.Group, m)
		if done[key] {
			continue
		}
		done[key] = true
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "spofwatch: interrupted; %s and the groups after it were not drilled\n", gr.Group.ID)
			return max(exit, drill.ExitRefused)
		}
		rep := drill.Run(ctx, gr, m, opts)
		reports = append(reports, rep)
		exit = max(exit, rep.ExitCode())
		if do.format != "json" {
			if err := writeDrillReports(stdout, do.format, true, rep); err != nil {
				fmt.Fprintf(stderr, "spofwatch: write output: %v\n", err)
			}
		}
	}
	if do.format == "json" {
		if reports == nil {
			reports = []drill.Report{}
		}
		if err := json.NewEncoder(stdout).Encode(reports); err != nil {
			fmt.Fprintf(stderr, "spofwatch: write output: %v\n", err)
		}
	} else if len(reports) == 0 {
		fmt.Fprintln(stdout, "no group the timer may drill (spofwatch drill list says why)")
	}
	return exit
}

func findGroup(snap *agent.Snapshot, id string) (spof.GroupResult, bool) {
	for _, gr := range snap.Evaluation.Groups {
		if gr.Group.ID == id {
			return gr, true
		}
	}
	return spof.GroupResult{}, false
}

// writeDrillReports prints a drill's report: one JSON object, or lines.
func writeDrillReports(w io.Writer, format string, short bool, rep drill.Report) error {
	if format == "json" {
		return json.NewEncoder(w).Encode(rep)
	}
	var b strings.Builder
	if rep.DryRun {
		fmt.Fprintf(&b, "%s: %s, dry run", rep.Group, rep.Method)
		if rep.Result == drill.ResultRefused {
			fmt.Fprintf(&b, ": would be refused: %s\n", rep.Reason)
		} else {
			b.WriteString(" (nothing is changed). Plan:\n")
			for i, step := range rep.Plan {
				fmt.Fprintf(&b, "  %d. %s\n", i+1, step)
			}
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%s: %s %s: %s\n", rep.Group, rep.Method, rep.Result, rep.Reason)
	if !short {
		if !rep.Started.IsZero() && !rep.Finished.IsZero() {
			fmt.Fprintf(&b, "  started %s, took %s\n", rep.Started.Format(time.RFC3339), rep.Finished.Sub(rep.Started).Round(time.Millisecond))
		}
		for _, d := range rep.Details {
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(rep.FailedMembers)) {
		fmt.Fprintf(&b, "  member %s failed: %s\n", m, rep.FailedMembers[m])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// isTerminal: the progress bar is drawn only on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && drill.IsTerminal(f.Fd())
}
