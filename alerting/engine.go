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
	"slices"
	"sync"
	"sync/atomic"
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
	// OutboxFS is what the outbox and alerts.json are written through; the
	// real file system when nil. Tests inject full, read-only or stalling
	// disks.
	OutboxFS outbox.FS
	// Previous is the engine this one replaces on a reload, already
	// closed. Its alert state and the notifications it held only in memory
	// (its disk refused them) are taken over, so a reload while the outbox
	// cannot be written neither loses a resolve nor re-fires an alert.
	Previous *Engine
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

	// mu guards the state machine; it is held across the outbox's disk
	// writes, so nothing a scrape or health check calls may take it.
	mu       sync.Mutex
	alerts   map[string]*Alert
	amDirty  bool
	lastPush map[string]time.Time // alertmanager receiver -> last push enqueued
	closed   bool

	// Published after every change for readers that must not wait on
	// the disk: the alerts (API) and the last alerts.json write error.
	view     atomic.Pointer[[]Alert]
	stateErr atomic.Pointer[error]

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
	if err := e.openOutbox(opts.OutboxFS); err != nil {
		return nil, err
	}
	if err := e.loadState(); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	e.takeOver(opts.Previous)
	// Alertmanager keeps no pushed alerts across its own restarts and ours
	// may have lasted longer than endsAt: push the active set on start.
	e.amDirty = true
	e.publishLocked()
	return e, nil
}

// takeOver adopts a closed predecessor's in-memory alert state (it is at
// least as new as alerts.json, which may not have been writable) and the
// notifications it held only in memory, queued again for the same receiver
// and instance; those for a receiver the new configuration dropped are
// logged and left.
func (e *Engine) takeOver(prev *Engine) {
	if prev == nil {
		return
	}
	prev.mu.Lock()
	alerts := make(map[string]*Alert, len(prev.alerts))
	for fp, a := range prev.alerts {
		c := *a
		c.Labels, c.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
		alerts[fp] = &c
	}
	prev.mu.Unlock()
	held := prev.outbox.Held()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.alerts = alerts
	var keep []outbox.Entry
	for _, en := range held {
		if e.byKey[en.Target()] == nil {
			e.logger.Warn("notification held in memory is for a receiver no longer configured; dropped", "receiver", en.Receiver, "alerts", len(en.Alerts))
			continue
		}
		en.ID = 0
		keep = append(keep, en)
	}
	if len(keep) > 0 {
		e.logger.Info("taking over notifications the previous configuration held in memory", "entries", len(keep))
		e.enqueue(keep)
	}
	e.saveStateLocked()
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
// It never waits on the disk.
func (e *Engine) Alerts() []Alert {
	if e == nil {
		return nil
	}
	p := e.view.Load()
	if p == nil {
		return nil
	}
	out := slices.Clone(*p)
	for i := range out {
		out[i].Labels, out[i].Annotations = maps.Clone(out[i].Labels), maps.Clone(out[i].Annotations)
	}
	return out
}

// publishLocked refreshes the view Alerts and the metrics read.
func (e *Engine) publishLocked() {
	var out []Alert
	for _, a := range e.sortedAlertsLocked() {
		c := *a
		c.Labels, c.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
		out = append(out, c)
	}
	e.view.Store(&out)
}

// Health says whether notifications are durable. It is false, with the
// reason, while the outbox or alerts.json cannot be written: notifications
// are then delivered from memory (lost if the agent stops first) and a
// restart may re-send or miss some. It recovers by itself once a write
// succeeds (Observe retries the disk at every evaluation). It never waits
// on the disk; a nil Engine is healthy.
func (e *Engine) Health() (ok bool, reason string) {
	if e == nil {
		return true, ""
	}
	if err := e.outbox.WriteErr(); err != nil {
		return false, "alert outbox " + e.outbox.Dir() + " cannot be written, notifications are kept in memory only: " + err.Error()
	}
	if held := e.outbox.Stats().Held; held > 0 {
		return false, fmt.Sprintf("alert outbox %s: %d notifications not yet written to disk", e.outbox.Dir(), held)
	}
	if p := e.stateErr.Load(); p != nil {
		return false, "alert state " + e.statePath() + " cannot be saved: " + (*p).Error()
	}
	return true, ""
}

// Close ends the engine's ownership of its outbox directory: later Observe
// calls do nothing and the directory lock is released, so the engine of a
// reloaded configuration can open it. Call it after Run has returned.
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.outbox.Close()
}
