// Package alerting turns findings into alerts and delivers them, at least
// once, to webhooks and Alertmanager.
//
// The pipeline has three stages, each with one job:
//
//	Observe   findings -> alert state machine (pending, firing, resolved)
//	          -> notifications written durably to the outbox
//	Run       one delivery loop per target (a webhook, one Alertmanager
//	          instance): in order, retry with exponential backoff and
//	          jitter, honouring Retry-After
//	notify    integrations that build and send one message and say whether
//	          a failure is retryable
//
// Observe never touches the network, so the scheduler that calls it is never
// held up by a dead receiver.
//
// Files by stage: state.go (the alert state machine over findings),
// persist.go (outbox and alerts.json), deliver.go (delivery loops, retry,
// backoff, Retry-After, Alertmanager resends), receivers.go (targets built
// from the receiver configuration), metrics.go and recent.go (what the
// engine shows).
package alerting

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/alerting/outbox"
)

const stateFile = "alerts.json"

// Options are what the daemon knows beyond the alerting config section.
type Options struct {
	// Instance is the instance label (the host name by default).
	Instance string
	// HostLabels are added to every alert (site, rack, ...). They may not
	// use the names spofwatch sets itself.
	HostLabels map[string]string
	Logger     *slog.Logger
	// BackoffBase and BackoffMax bound retry delays (default 1s and 5m);
	// tests shorten them.
	BackoffBase, BackoffMax time.Duration
	// Now is the clock for delivery and Alertmanager resends; time.Now when nil.
	Now func() time.Time
}

// Engine is the alerting pipeline. Create it with New, start delivery with
// Run and feed it every evaluation with Observe.
type Engine struct {
	cfg        Config
	instance   string
	hostLabels map[string]string
	logger     *slog.Logger
	now        func() time.Time
	backoffMin time.Duration
	backoffMax time.Duration

	outbox  *outbox.Outbox
	targets []*target
	byKey   map[string]*target
	metrics *metrics

	mu       sync.Mutex
	alerts   map[string]*Alert
	amDirty  bool
	lastPush map[string]time.Time // alertmanager receiver -> last push enqueued

	recent *recentLog
}

// New checks cfg, reads the receivers' secret files, opens the outbox and
// loads the persisted alert state. Errors name the offending file.
func New(cfg Config, opts Options) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkHostLabels(opts.HostLabels); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	e := &Engine{
		cfg:        cfg,
		instance:   opts.Instance,
		hostLabels: maps.Clone(opts.HostLabels),
		logger:     opts.Logger,
		now:        opts.Now,
		backoffMin: cmp.Or(opts.BackoffBase, time.Second),
		backoffMax: cmp.Or(opts.BackoffMax, 5*time.Minute),
		byKey:      map[string]*target{},
		alerts:     map[string]*Alert{},
		lastPush:   map[string]time.Time{},
		recent:     newRecentLog(200),
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.cfg.OutboxDir == "" {
		e.cfg.OutboxDir = DefaultOutboxDir
	}
	if err := e.buildTargets(); err != nil {
		return nil, err
	}
	e.metrics = newMetrics(e)
	if err := e.openOutbox(); err != nil {
		return nil, err
	}
	if err := e.loadState(); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	// Alertmanager keeps no pushed alerts across its own restarts and ours
	// may have lasted longer than endsAt: push the active set on start.
	e.amDirty = true
	return e, nil
}

// Run delivers queued notifications and re-pushes active alerts to
// Alertmanager until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if e == nil {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	for _, t := range e.targets {
		wg.Go(func() { e.deliverLoop(ctx, t) })
	}
	wg.Go(func() { e.resendLoop(ctx) })
	wg.Wait()
	return nil
}

// Alerts returns the current alerts (pending, firing, recently resolved).
func (e *Engine) Alerts() []Alert {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	for _, a := range e.sortedAlertsLocked() {
		c := *a
		c.Labels, c.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
		out = append(out, c)
	}
	return out
}
