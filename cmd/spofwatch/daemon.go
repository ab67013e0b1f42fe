package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/spofwatch/spofwatch/collectors"
	"github.com/spofwatch/spofwatch/config"
	spofweb "github.com/spofwatch/spofwatch/web"
)

// generation is one configuration in force: its scheduler and exporter.
type generation struct {
	cfg      *config.Config
	sched    *collectors.Scheduler
	exporter *collectors.Exporter
	cancel   context.CancelFunc
	done     chan struct{}
}

// agent holds the generation in force; a SIGHUP swaps it atomically, so
// HTTP handlers never see a half-applied configuration.
type agent struct {
	cur    atomic.Pointer[generation]
	logger *slog.Logger
	opts   options
	// snapshots receives every snapshot of every generation, in order.
	snapshots chan *collectors.Snapshot
}

func (a *agent) Snapshot() *collectors.Snapshot { return a.cur.Load().sched.Snapshot() }
func (a *agent) Ready() bool                    { return a.cur.Load().sched.Ready() }

// Describe and Collect delegate to the exporter in force (host labels may
// change on reload).
func (a *agent) Describe(chan<- *prometheus.Desc)    {}
func (a *agent) Collect(ch chan<- prometheus.Metric) { a.cur.Load().exporter.Collect(ch) }

// start builds and runs a generation for cfg, seeding finding ages from the
// previous generation so "since" survives a reload.
func (a *agent) start(ctx context.Context, cfg *config.Config, prev *generation) *generation {
	entries, watchers := buildEntries(cfg, a.opts, a.logger)
	opts := collectors.SchedulerOptions{Entries: entries, Logger: a.logger, Compose: composeFor(cfg)}
	if prev != nil {
		opts.Seed = prev.sched.Snapshot().Evaluation.Findings
	}
	sched := collectors.NewScheduler(opts)
	gctx, cancel := context.WithCancel(ctx)
	g := &generation{cfg: cfg, sched: sched, exporter: collectors.NewExporter(sched, cfg.HostLabels), cancel: cancel, done: make(chan struct{})}
	sub := sched.Subscribe()
	var wg sync.WaitGroup
	wg.Add(2 + len(watchers))
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
	go func() { wg.Wait(); close(g.done) }()
	return g
}

func runDaemon(cfg *config.Config, o options, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	a := &agent{logger: logger, opts: o, snapshots: make(chan *collectors.Snapshot, 1)}
	a.cur.Store(a.start(ctx, cfg, nil))

	spofRegistry := prometheus.NewRegistry()
	spofRegistry.MustRegister(a, versioncollector.NewCollector("spofwatch"))
	runtimeRegistry := prometheus.NewRegistry()
	runtimeRegistry.MustRegister(promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}))

	handler := spofweb.Handler(spofweb.Options{
		Host: hostname(), Source: a, Gatherer: prometheus.Gatherers{spofRegistry, runtimeRegistry},
		Logger: logger, Version: version.Version, Ready: a.Ready,
	})
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(server, o.web, logger) }()

	go a.consume(ctx, spofRegistry)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
			return err
		}
	}
}

// reload applies a new config; an invalid one is rejected and the old one
// stays in force.
func (a *agent) reload(ctx context.Context) {
	cfg, err := loadConfig(a.opts, a.logger)
	if err != nil {
		a.logger.Error("config reload rejected; the previous configuration stays in force", "path", a.opts.configFile, "err", err)
		return
	}
	old := a.cur.Load()
	a.cur.Store(a.start(ctx, cfg, old))
	old.cancel()
	<-old.done
	a.logger.Info("configuration reloaded", "path", a.opts.configFile)
}

// consume hands every snapshot to the outputs that push: the textfile.
func (a *agent) consume(ctx context.Context, g prometheus.Gatherer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.snapshots:
			if a.opts.textfile != "" {
				if err := collectors.WriteTextfile(a.opts.textfile, g); err != nil {
					a.logger.Error("write textfile output", "path", a.opts.textfile, "err", err)
				}
			}
		}
	}
}

// composeFor returns the cross-collector step for a config (power feeds).
func composeFor(cfg *config.Config) collectors.Compose {
	return nil
}
