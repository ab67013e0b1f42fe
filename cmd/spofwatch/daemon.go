package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/alerting"
	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/journal"
	"github.com/spofwatch/spofwatch/spof"
	spofweb "github.com/spofwatch/spofwatch/web"
)

// generation is one configuration in force: its scheduler and exporter.
type generation struct {
	cfg *config.Config
	// eng is nil when no receiver is configured; its methods accept that.
	eng      *alerting.Engine
	sched    *agent.Scheduler
	exporter *agent.Exporter
	cancel   context.CancelFunc
	done     chan struct{}
	// seedStates are the states this generation started from, so a reload
	// before a slow collector's first run keeps that group's since.
	seedStates map[string]spof.StateSince
	// seedProofs likewise keep the groups' last proofs across reloads.
	seedProofs map[string]spof.Proof
}

// runner holds the generation in force; a SIGHUP swaps it atomically, so
// HTTP handlers never see a half-applied configuration.
type runner struct {
	cur    atomic.Pointer[generation]
	logger *slog.Logger
	opts   options
	// snapshots receives every snapshot of every generation, in order.
	snapshots chan *agent.Snapshot
	// history is the journal of state changes and findings; nil when the
	// state directory cannot be used (the agent runs on without history).
	history *journal.Store
	// historyBase is what the journal knew last; only consume touches it.
	historyBase journal.Baseline
}

// Events lists the history since a time (nil without a journal).
func (a *runner) Events(since time.Time) []journal.Event {
	if a.history == nil {
		return nil
	}
	return a.history.Events(since)
}

func (a *runner) Snapshot() *agent.Snapshot { return a.cur.Load().sched.Snapshot() }
func (a *runner) Ready() bool               { return a.cur.Load().sched.Ready() }

// Gather delegates to the exporter in force (host labels may change on
// reload); it gathers each snapshot once.
func (a *runner) Gather() ([]*dto.MetricFamily, error) { return a.cur.Load().exporter.Gather() }

// Encoded delegates to the exporter in force, which encodes each snapshot
// once per format.
func (a *runner) Encoded(f expfmt.Format) *agent.Encoded { return a.cur.Load().exporter.Encoded(f) }

// selfCheckInterval is how often the alert engine's health is looked at.
const selfCheckInterval = 5 * time.Second

// start builds and runs a generation for cfg, seeding finding ages from the
// previous generation so "since" survives a reload.
func (a *runner) start(ctx context.Context, cfg *config.Config, entries []agent.Entry, watchers []watcher, eng *alerting.Engine, prev *generation) *generation {
	if eng != nil {
		// The alert path's own health is a finding like any other.
		entries = append(slices.Clone(entries), agent.Entry{Collector: eng.SelfCheck(), Schedule: agent.Schedule{Interval: selfCheckInterval, Timeout: time.Second}})
	}
	opts := agent.SchedulerOptions{Entries: entries, Logger: a.logger, Compose: composeFor(cfg), Acceptances: cfg.Acceptances(), ProofPolicy: cfg.ProofPolicy()}
	if prev == nil {
		// At start the history seeds group states, findings and proofs
		// (with their times), each acceptance's last match and each group's
		// first sighting, so a restart resets none of them. consume has not
		// started yet: a.historyBase is still this goroutine's.
		opts.SeedStates, opts.Seed, opts.SeedProofs = a.historyBase.States(), a.historyBase.ActiveFindings(), a.historyBase.Proofs
		if a.history != nil {
			history := a.history.Events(time.Time{})
			opts.SeedAcceptanceMatches = journal.LastMatches(history, opts.Acceptances)
			opts.SeedFirstSeen = journal.FirstSeen(history)
		}
	} else {
		// On a reload the previous generation seeds them, on top of what it
		// started from.
		last := prev.sched.Snapshot()
		opts.SeedStates = maps.Clone(prev.seedStates)
		maps.Copy(opts.SeedStates, last.Evaluation.States())
		opts.SeedProofs = maps.Clone(prev.seedProofs)
		if opts.SeedProofs == nil {
			opts.SeedProofs = map[string]spof.Proof{}
		}
		maps.Copy(opts.SeedProofs, last.Proofs())
		opts.Seed = last.Evaluation.Findings
		opts.SeedOutcomes = last.Outcomes
		opts.SeedFirstSeen = last.FirstSeen
		opts.SeedAcceptanceMatches = map[string]time.Time{}
		for _, acc := range last.Acceptances {
			opts.SeedAcceptanceMatches[acc.ID] = acc.LastMatched
		}
	}
	sched := agent.NewScheduler(opts)
	gctx, cancel := context.WithCancel(ctx)
	g := &generation{seedStates: opts.SeedStates, seedProofs: opts.SeedProofs, cfg: cfg, eng: eng, sched: sched, exporter: agent.NewExporter(sched, cfg.HostLabels), cancel: cancel, done: make(chan struct{})}
	sub := sched.Subscribe()
	var wg sync.WaitGroup
	wg.Add(3 + len(watchers))
	go func() { defer wg.Done(); eng.Run(gctx) }()
	go func() { defer wg.Done(); sched.Run(gctx) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-gctx.Done():
				return
			case s := <-sub:
				select {
				case a.snapshots <- s:
				case <-gctx.Done():
					return
				}
			}
		}
	}()
	for _, w := range watchers {
		go func() {
			defer wg.Done()
			if err := w.run(gctx); err != nil && gctx.Err() == nil {
				a.logger.Warn("event watcher stopped; periodic collection continues", "collector", w.name, "err", err)
			}
		}()
	}
	go func() {
		wg.Wait()
		closeCollectors(entries, a.logger)
		close(g.done)
	}()
	return g
}

// daemonSignals are the daemon's signals, registered before anything slow
// happens: until signal.Notify, a SIGHUP or SIGTERM kills the process with
// the default action, and a SIGHUP is routinely sent right after a start
// (logrotate, configuration management).
type daemonSignals struct {
	hup chan os.Signal
	// ctx is cancelled by SIGTERM or SIGINT.
	ctx  context.Context
	stop context.CancelFunc
}

func notifyDaemonSignals() *daemonSignals {
	s := &daemonSignals{hup: make(chan os.Signal, 1)}
	signal.Notify(s.hup, syscall.SIGHUP)
	s.ctx, s.stop = signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	return s
}

func (s *daemonSignals) release() {
	signal.Stop(s.hup)
	s.stop()
}

// Server timeouts. A scrape answers from memory, so a client that needs
// more than writeTimeout to take a response is not reading it; an idle
// kept-alive connection is closed after idleTimeout.
const (
	readHeaderTimeout   = 10 * time.Second
	writeTimeout        = 30 * time.Second
	idleTimeout         = 2 * time.Minute
	metricsWriteTimeout = 10 * time.Second
)

func runDaemon(cfg *config.Config, o options, logger *slog.Logger, sig *daemonSignals) error {
	ctx, hup := sig.ctx, sig.hup

	entries, watchers, err := buildEntries(cfg, o, logger)
	if err != nil {
		return configError{err}
	}
	eng, err := newEngine(cfg, logger, nil)
	if err != nil {
		return configError{err}
	}
	a := &runner{logger: logger, opts: o, snapshots: make(chan *agent.Snapshot, 1), historyBase: journal.NewBaseline()}
	if h, err := journal.Open(o.paths.state, journal.Options{}); err != nil {
		logger.Error("no redundancy history: the state directory cannot be used; running without it", "path", o.paths.state, "err", err)
	} else {
		a.history, a.historyBase = h, h.Baseline()
		if n := h.Skipped(); n > 0 {
			logger.Warn("unreadable lines skipped in the history", "path", o.paths.state, "lines", n)
		}
		defer h.Close()
	}
	a.cur.Store(a.start(ctx, cfg, entries, watchers, eng, nil))

	// Three sources: the snapshot (gathered once per snapshot), live
	// spofwatch metrics (build info, alerting), and the Go runtime, which
	// the textfile output leaves out.
	liveRegistry := prometheus.NewRegistry()
	liveRegistry.MustRegister(versioncollector.NewCollector("spofwatch"), alertingMetrics{a})
	runtimeRegistry := prometheus.NewRegistry()
	runtimeRegistry.MustRegister(promcollectors.NewGoCollector(), agent.NewProcessCollector())
	spofGatherer := agent.MergeGatherers(a, liveRegistry)

	// /metrics is served from the snapshot's pre-encoded bytes, with the
	// live families encoded per scrape.
	metrics := agent.NewMetricsHandler(agent.MetricsHandlerOpts{
		Snapshot: a, Live: agent.MergeGatherers(liveRegistry, runtimeRegistry),
		Logger: logger, MaxRequestsInFlight: 10, WriteTimeout: metricsWriteTimeout,
	})
	handler := spofweb.Handler(spofweb.Options{
		Host: hostname(), Source: a, Metrics: metrics,
		Logger: logger, Version: version.Version, Ready: a.Ready, History: a, Drills: drillLogSource{drillLogPath(o.paths.state)},
		Extra:  map[string]http.Handler{"GET /api/v1/alerts": http.HandlerFunc(a.serveAlerts)},
		Panels: []spofweb.Panel{notificationsPanel{a}},
	})
	server := &http.Server{Handler: handler, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(server, o.web, logger) }()

	go a.consume(ctx, spofGatherer)

	logger.Info("spofwatch started", "version", version.Version, "config", cfg.File, "collectors", len(a.cur.Load().sched.Snapshot().Outcomes))
	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http server: %w", err)
			}
			return nil
		case <-hup:
			a.reload(ctx)
		case <-ctx.Done():
			logger.Info("shutting down")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := server.Shutdown(shutdownCtx)
			g := a.cur.Load()
			g.cancel()
			<-g.done
			g.eng.Close()
			return err
		}
	}
}

// reload applies a new config; an invalid one is rejected and the old one
// stays in force.
func (a *runner) reload(ctx context.Context) {
	cfg, err := loadConfig(a.opts, a.logger)
	var entries []agent.Entry
	var watchers []watcher
	if err == nil {
		entries, watchers, err = buildEntries(cfg, a.opts, a.logger)
	}
	if err != nil {
		a.logger.Error("config reload rejected; the previous configuration stays in force", "path", a.opts.configFile, "err", err)
		return
	}
	// The alert engine owns its outbox directory (a lock held until Close):
	// the old one stops delivering and is closed, so a snapshot still on its
	// way to it is ignored, before the new one opens the directory and reads
	// alerts.json. Should the new engine fail after all (a secret file
	// vanished in between), the old configuration is started again.
	old := a.cur.Load()
	old.cancel()
	<-old.done
	if err := old.eng.Close(); err != nil {
		a.logger.Warn("closing the previous alert engine", "err", err)
	}
	eng, err := newEngine(cfg, a.logger, old.eng)
	if err != nil {
		a.logger.Error("config reload rejected; the previous configuration stays in force", "path", a.opts.configFile, "err", err)
		// Restore the old configuration; only once that is built are the
		// new collectors released. Should even that fail, the new
		// collectors run without alerting rather than no collectors at all.
		oldEntries, oldWatchers, berr := buildEntries(old.cfg, a.opts, a.logger)
		var oldEng *alerting.Engine
		if berr == nil {
			oldEng, berr = newEngine(old.cfg, a.logger, old.eng)
			if berr != nil {
				closeCollectors(oldEntries, a.logger)
			}
		}
		if berr == nil {
			closeCollectors(entries, a.logger)
			cfg, entries, watchers, eng = old.cfg, oldEntries, oldWatchers, oldEng
		} else {
			a.logger.Error("cannot restore the previous configuration either; running the new one with alerting off until the next reload", "err", berr)
			eng = nil
		}
	} else {
		a.logger.Info("configuration reloaded", "path", a.opts.configFile)
	}
	a.cur.Store(a.start(ctx, cfg, entries, watchers, eng, old))
}

// newEngine builds the alert engine, or nil when no receiver is configured.
// prev, the engine a reload replaces (closed), hands over what it held in
// memory only.
func newEngine(cfg *config.Config, logger *slog.Logger, prev *alerting.Engine) (*alerting.Engine, error) {
	if len(cfg.Alerting.Receivers) == 0 {
		return nil, nil
	}
	eng, err := alerting.New(cfg.Alerting, alerting.Options{Instance: hostname(), HostLabels: cfg.HostLabels, Logger: logger.With("component", "alerting"), Previous: prev})
	if err != nil {
		return nil, fmt.Errorf("%s: alerting: %w", cfg.File, err)
	}
	return eng, nil
}

func (a *runner) serveAlerts(w http.ResponseWriter, r *http.Request) {
	eng := a.cur.Load().eng
	if eng == nil {
		http.Error(w, "alerting is not configured (no alerting.receivers)", http.StatusNotFound)
		return
	}
	eng.Handler().ServeHTTP(w, r)
}

// alertingMetrics exports the metrics of the engine in force.
type alertingMetrics struct{ a *runner }

func (m alertingMetrics) Describe(chan<- *prometheus.Desc) {}
func (m alertingMetrics) Collect(ch chan<- prometheus.Metric) {
	if eng := m.a.cur.Load().eng; eng != nil {
		eng.Collector().Collect(ch)
	}
}

// notificationsPanel shows recent notifications on the status page, so an
// operator can see that the webhook went out.
type notificationsPanel struct{ a *runner }

func (p notificationsPanel) Title() string { return "Recent notifications" }
func (p notificationsPanel) Rows() ([]string, [][]string) {
	header := []string{"Queued", "Receiver", "Status", "Alerts", "Delivery", "Attempts", "Error"}
	var rows [][]string
	for i, d := range p.a.cur.Load().eng.Recent() {
		if i == 20 {
			break
		}
		rows = append(rows, []string{d.Queued.UTC().Format("2006-01-02 15:04:05Z"), d.Receiver, d.Status,
			strings.Join(d.Alerts, "; "), d.State, fmt.Sprint(d.Attempts), d.Error})
	}
	if len(rows) == 0 {
		rows = [][]string{{"-", "-", "-", "no notifications yet (or no receiver configured)", "-", "-", "-"}}
	}
	return header, rows
}

// consume hands every snapshot to the outputs that push: the textfile.
func (a *runner) consume(ctx context.Context, g prometheus.Gatherer) {
	announced := false
	for {
		select {
		case <-ctx.Done():
			return
		case snap := <-a.snapshots:
			if !announced && a.Ready() {
				announced = true
				a.logCollectors(snap)
			}
			// An evaluation before every collector has run would look like
			// "everything cleared" to the alert state machine.
			if a.Ready() {
				a.cur.Load().eng.Observe(snap.Evaluation, snap.Taken)
				a.record(snap)
			}
			if a.opts.textfile != "" {
				if err := agent.WriteTextfile(a.opts.textfile, g); err != nil {
					a.logger.Error("write textfile output", "path", a.opts.textfile, "err", err)
				}
			}
		}
	}
}

// record appends the snapshot's changes to the history. A failed write is
// logged and retried with the next snapshot: the baseline only moves on
// once the events are on disk.
func (a *runner) record(snap *agent.Snapshot) {
	if a.history == nil {
		return
	}
	events, next := journal.Diff(a.historyBase, snap.Evaluation, snap.Taken)
	if err := a.history.Append(events); err != nil {
		a.logger.Error("cannot write the redundancy history", "err", err)
		return
	}
	a.historyBase = next
}

// logCollectors says once which collectors found their source and which are
// idle because the source is absent on this host.
func (a *runner) logCollectors(snap *agent.Snapshot) {
	var active, idle, failing []string
	for _, o := range snap.Outcomes {
		switch {
		case o.NoData:
			idle = append(idle, o.Name)
		case o.OK:
			active = append(active, o.Name)
		default:
			failing = append(failing, o.Name)
		}
	}
	a.logger.Info("first collection done", "active", strings.Join(active, ","), "idle_source_absent", strings.Join(idle, ","), "failing", strings.Join(failing, ","))
}
