package drill

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/internal/boundedexec"
	"github.com/spofwatch/spofwatch/raid"
)

// ZpoolScrub is the ZFS drill: `zpool scrub`, which reads every block of
// the pool and checks it against its checksum, repairing from the other
// copies (zpool-scrub(8)). It is not disruptive: the pool keeps serving.
type ZpoolScrub struct {
	Pool string
	// ZpoolPath is the zpool command (config raid.zpool_path; "zpool").
	ZpoolPath string
	// Poll is how often a followed scrub is read (default 5s: each read
	// is a zpool run).
	Poll time.Duration
	// CmdTimeout bounds each zpool run (default 30s).
	CmdTimeout time.Duration
	// Loc is the zone zpool prints the scrub's end in (default the
	// host's).
	Loc *time.Location
}

// Name implements Method.
func (z *ZpoolScrub) Name() string { return "zpool-scrub" }

// Disruptive implements Method: a scrub only reads (and repairs).
func (z *ZpoolScrub) Disruptive() bool { return false }

// Key is the thing drilled: one scrub covers every vdev group of the
// pool, so the scheduled run scrubs each pool once.
func (z *ZpoolScrub) Key() string { return "zpool-scrub:" + z.Pool }

func (z *ZpoolScrub) poll() time.Duration {
	if z.Poll > 0 {
		return z.Poll
	}
	return 5 * time.Second
}

func (z *ZpoolScrub) loc() *time.Location {
	if z.Loc != nil {
		return z.Loc
	}
	return time.Local
}

// zpool runs one bounded zpool command.
func (z *ZpoolScrub) zpool(ctx context.Context, args ...string) ([]byte, error) {
	bin := z.ZpoolPath
	if bin == "" {
		bin = "zpool"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", raid.ErrNoZpool, err)
	}
	to := z.CmdTimeout
	if to <= 0 {
		to = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	out, err := boundedexec.Cmd{Path: p, Args: args, Env: []string{"LC_ALL=C"}, MaxOutput: 1 << 20}.Run(ctx)
	if err != nil {
		msg := strings.TrimSpace(string(out.Stderr))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return nil, fmt.Errorf("zpool %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return out.Stdout, nil
}

// status reads the pool's state and scan line.
func (z *ZpoolScrub) status(ctx context.Context) (raid.Zpool, error) {
	out, err := z.zpool(ctx, "status", "-p", z.Pool)
	if err != nil {
		return raid.Zpool{}, err
	}
	for _, p := range raid.ParseZpoolStatus(out) {
		if p.Name == z.Pool {
			return p, nil
		}
	}
	return raid.Zpool{}, fmt.Errorf("zpool status -p %s: pool not in the output (%d bytes)", z.Pool, len(out))
}

// ready says why the pool cannot be scrubbed now ("" when it can).
func ready(p raid.Zpool) string {
	low := strings.ToLower(p.Scan.Text)
	switch {
	case p.State != "ONLINE":
		return fmt.Sprintf("pool %s is %s, not ONLINE", p.Name, p.State)
	case p.Scan.InProgress:
		return fmt.Sprintf("pool %s is busy: %s (a drill never interrupts it)", p.Name, p.Scan.String())
	case strings.Contains(low, "paused"):
		return fmt.Sprintf("pool %s has a paused scrub (zpool scrub would resume it, not start a drill): %s", p.Name, firstLineOf(p.Scan.Text))
	}
	return ""
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Plan implements Method.
func (z *ZpoolScrub) Plan(ctx context.Context) ([]string, error) {
	p, err := z.status(ctx)
	if err != nil {
		return nil, err
	}
	if why := ready(p); why != "" {
		return nil, errors.New(why)
	}
	return []string{
		fmt.Sprintf("run zpool status -p %s: ONLINE, no scrub or resilver running (so it is)", z.Pool),
		fmt.Sprintf("run zpool scrub %s: ZFS reads and verifies every block of the pool", z.Pool),
		"without --wait: stop following here; the scrub runs on and the agent reads its result from zpool status",
		fmt.Sprintf("with --wait: run zpool status -p %s every %s until the scrub has finished", z.Pool, z.poll()),
		"errors the scrub could not repair fail the drill",
		fmt.Sprintf("on interrupt or timeout while following: zpool scrub -s %s (stops the scrub)", z.Pool),
	}, nil
}

// Run implements Method.
func (z *ZpoolScrub) Run(ctx context.Context, wait bool, progress Progress) Outcome {
	before, err := z.status(ctx)
	if err != nil {
		return Outcome{Result: ResultRefused, Reason: err.Error()}
	}
	if why := ready(before); why != "" {
		return Outcome{Result: ResultRefused, Reason: why}
	}
	prev, hadPrev := raid.ParseScrubDone(before.Scan.Text, z.loc())
	if _, err := z.zpool(ctx, "scrub", z.Pool); err != nil {
		return Outcome{Result: ResultRefused, Reason: "cannot start the scrub: " + err.Error()}
	}
	details := []string{"ran zpool scrub " + z.Pool}
	progress(0, 100, z.Pool+": scrub started")
	if !wait {
		return Outcome{Result: ResultStarted, Details: details,
			Reason: fmt.Sprintf("scrub of %s started; it runs on (zpool status %s), and the agent reads its result", z.Pool, z.Pool)}
	}
	t := time.NewTicker(z.poll())
	defer t.Stop()
	lastPct, idle := -1.0, 0
	for {
		select {
		case <-ctx.Done():
			return z.stop(ctx, details, lastPct)
		case <-t.C:
		}
		p, err := z.status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return z.stop(ctx, details, lastPct)
			}
			// One failed read is no verdict; the timeout bounds the rest.
			progress(0, 0, z.Pool+": "+err.Error())
			continue
		}
		switch {
		case p.Scan.InProgress && p.Scan.Function == "scrub":
			idle = 0
			if p.Scan.Percent >= 0 {
				lastPct = p.Scan.Percent
				progress(lastPct, 100, z.Pool+": "+p.Scan.String())
			} else {
				progress(0, 0, z.Pool+": "+p.Scan.String())
			}
			continue
		case p.Scan.InProgress:
			return Outcome{Result: ResultFailed, Details: details,
				Reason: fmt.Sprintf("the scrub of %s gave way to %s (pool %s)", z.Pool, p.Scan.String(), p.State)}
		}
		done, ok := raid.ParseScrubDone(p.Scan.Text, z.loc())
		if ok && (!hadPrev || done.End.After(prev.End)) {
			return z.finish(p, done, details)
		}
		if strings.Contains(strings.ToLower(p.Scan.Text), "cancel") {
			return Outcome{Result: ResultFailed, Details: details,
				Reason: fmt.Sprintf("the scrub of %s was canceled: %s", z.Pool, firstLineOf(p.Scan.Text))}
		}
		// zpool may show the old result for a moment after the start;
		// three reads in a row without a scrub running or a new result
		// mean it is gone.
		if idle++; idle >= 3 {
			return Outcome{Result: ResultFailed, Details: details,
				Reason: fmt.Sprintf("the scrub of %s is not running and left no result: %s", z.Pool, firstLineOf(p.Scan.Text))}
		}
	}
}

// stop cancels a scrub we started and are following (own deadline).
func (z *ZpoolScrub) stop(ctx context.Context, details []string, lastPct float64) Outcome {
	at := ""
	if lastPct >= 0 {
		at = fmt.Sprintf(" at %.2f%%", lastPct)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := z.zpool(sctx, "scrub", "-s", z.Pool); err != nil {
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("%v; could NOT stop the scrub of %s%s (%v), it runs on", context.Cause(ctx), z.Pool, at, err)}
	}
	details = append(details, "ran zpool scrub -s "+z.Pool)
	return Outcome{Result: ResultFailed, Details: details,
		Reason: fmt.Sprintf("%v; the scrub of %s was stopped%s", context.Cause(ctx), z.Pool, at)}
}

func (z *ZpoolScrub) finish(p raid.Zpool, s raid.ZfsScrub, details []string) Outcome {
	details = append(details, firstLineOf(p.Scan.Text))
	switch {
	case s.Errors > 0:
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("scrub of %s found %d errors it could not repair", z.Pool, s.Errors)}
	case p.State != "ONLINE":
		return Outcome{Result: ResultFailed, Details: details,
			Reason: fmt.Sprintf("pool %s is %s after the scrub", z.Pool, p.State)}
	}
	repaired := ""
	if s.Repaired != "" {
		repaired = ", repaired " + s.Repaired
	}
	return Outcome{Result: ResultPassed, Details: details,
		Reason: fmt.Sprintf("scrub of %s done: 0 errors%s", z.Pool, repaired)}
}
