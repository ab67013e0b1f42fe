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
package alerting

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/spof"
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

// target is one delivery queue: a webhook, or one Alertmanager instance.
type target struct {
	key      string
	receiver string
	url      string
	kind     string
	send     func(context.Context, []notify.Alert) error
	timeout  time.Duration
	maxDelay time.Duration
	wake     chan struct{}
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
	groupLabels := map[string]string{"instance": e.instance}
	for _, r := range cfg.Receivers {
		client, header, secret, err := httpSetup(r)
		if err != nil {
			return nil, fmt.Errorf("alerting: receiver %q: %w", r.Name, err)
		}
		switch r.Type {
		case TypeWebhook:
			w := &notify.Webhook{Receiver: r.Name, URL: r.URL, ExternalURL: cfg.ExternalURL, GroupLabels: groupLabels, Secret: secret, Header: header, Client: client, Now: e.now}
			e.addTarget(&target{receiver: r.Name, kind: r.Type, send: w.Notify, timeout: r.EffectiveTimeout(), maxDelay: e.backoffMax})
		case TypeAlertmanager:
			for _, u := range r.URLs {
				am := &notify.Alertmanager{URL: u, Client: client, Now: e.now}
				// Retry no slower than the resend interval so a restarted
				// Alertmanager has its alerts back within that interval.
				e.addTarget(&target{receiver: r.Name, url: u, kind: r.Type, send: am.Notify, timeout: r.EffectiveTimeout(), maxDelay: min(e.backoffMax, r.EffectiveResendInterval()/2)})
			}
		}
	}
	e.metrics = newMetrics(e)
	ob, err := outbox.Open(outbox.Options{
		Dir:        e.cfg.OutboxDir,
		MaxEntries: cfg.OutboxMaxEntries,
		Logger:     e.logger,
		OnDrop:     func(en outbox.Entry) { e.recent.update(en.ID, "dropped", 0, "outbox full") },
	})
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	e.outbox = ob
	for _, en := range ob.All() {
		if e.byKey[en.Target()] == nil {
			ob.Quarantine(en.ID, fmt.Sprintf("receiver %q (url %q) is no longer configured", en.Receiver, outbox.RedactURL(en.URL)))
			continue
		}
		e.recent.add(deliveryFor(en, "queued"))
	}
	if err := e.loadState(); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	// Alertmanager keeps no pushed alerts across its own restarts and ours
	// may have lasted longer than endsAt: push the active set on start.
	e.amDirty = true
	return e, nil
}

func (e *Engine) addTarget(t *target) {
	t.key = outbox.Target(t.receiver, t.url)
	t.wake = make(chan struct{}, 1)
	e.targets = append(e.targets, t)
	e.byKey[t.key] = t
}

// httpSetup builds a receiver's client and static headers and reads its
// secret files.
func httpSetup(r Receiver) (*http.Client, http.Header, []byte, error) {
	header := http.Header{}
	for k, v := range r.Headers {
		header.Set(k, v)
	}
	var secret []byte
	if r.SecretFile != "" {
		b, err := readSecret(r.SecretFile)
		if err != nil {
			return nil, nil, nil, err
		}
		secret = b
	}
	if r.BearerTokenFile != "" {
		b, err := readSecret(r.BearerTokenFile)
		if err != nil {
			return nil, nil, nil, err
		}
		header.Set("Authorization", "Bearer "+string(b))
	}
	if r.BasicAuth != nil {
		b, err := readSecret(r.BasicAuth.PasswordFile)
		if err != nil {
			return nil, nil, nil, err
		}
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(r.BasicAuth.Username+":"+string(b))))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: r.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if r.TLS.CAFile != "" {
		pem, err := os.ReadFile(r.TLS.CAFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", r.TLS.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: r.EffectiveTimeout()}, header, secret, nil
}

// readSecret reads a secret file; trailing newlines and spaces are not part
// of the secret (editors add them).
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n\t "))
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

// Observe feeds one evaluation into the state machine and durably queues
// the notifications it causes. It does disk I/O but never network I/O.
//
// A nil *Engine (alerting not configured) ignores every call.
func (e *Engine) Observe(res spof.Result, now time.Time) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	minSev := e.cfg.EffectiveMinSeverity()
	dirty := false
	active := map[string]bool{}
	for _, f := range res.Findings {
		if f.Severity < minSev {
			continue
		}
		labels := e.labelsFor(f)
		fp := fingerprint(labels)
		if active[fp] {
			continue
		}
		active[fp] = true
		a := e.alerts[fp]
		if a == nil || a.State == StateResolved {
			if a != nil && a.Notified == notify.StatusFiring {
				// The resolve of the previous instance was never queued;
				// the receivers still see it firing, so just carry on.
				a.State, a.ResolvedAt, a.ResolvedPosts = StateFiring, time.Time{}, 0
			} else {
				a = &Alert{Fingerprint: fp, Code: f.Code, Severity: f.Severity, Labels: labels, State: StatePending, ActiveAt: now}
				e.alerts[fp] = a
			}
			dirty = true
		}
		// Summaries change often (rebuild ETA, UPS runtime); the new text is
		// used by the next message but is not worth an fsync by itself.
		if ann := e.annotationsFor(f); !maps.Equal(ann, a.Annotations) {
			a.Annotations = ann
		}
		if !a.ClearedAt.IsZero() {
			a.ClearedAt = time.Time{}
			dirty = true
		}
		if a.State == StatePending && now.Sub(a.ActiveAt) >= e.cfg.PendingFor(f.Code, f.Severity) {
			a.State, a.FiredAt = StateFiring, now
			e.amDirty, dirty = true, true
		}
	}
	for fp, a := range e.alerts {
		if active[fp] {
			continue
		}
		switch a.State {
		case StatePending:
			// Never fired, nobody was told: forget it.
			delete(e.alerts, fp)
			dirty = true
		case StateFiring:
			if a.ClearedAt.IsZero() {
				a.ClearedAt = now
				dirty = true
			}
			if now.Sub(a.ClearedAt) >= e.cfg.EffectiveKeepFiringFor() {
				a.State, a.ResolvedAt = StateResolved, a.ClearedAt
				e.amDirty, dirty = true, true
			}
		}
	}
	if e.enqueueLocked(now) {
		dirty = true
	}
	if dirty {
		e.saveStateLocked()
	}
}

// enqueueLocked queues what the receivers have not been told yet. It
// reports whether the alert state changed.
func (e *Engine) enqueueLocked(now time.Time) bool {
	repeat := e.cfg.EffectiveRepeatInterval()
	var due []*Alert
	for _, a := range e.sortedAlertsLocked() {
		switch {
		case a.State == StateFiring && (a.Notified != notify.StatusFiring || now.Sub(a.LastSent) >= repeat):
			due = append(due, a)
		case a.State == StateResolved && a.Notified == notify.StatusFiring:
			due = append(due, a)
		}
	}
	var entries []outbox.Entry
	created := e.now()
	if len(due) > 0 {
		for _, r := range e.cfg.Receivers {
			if r.Type != TypeWebhook {
				continue
			}
			var alerts []notify.Alert
			for _, a := range due {
				status := notify.StatusFiring
				if a.State == StateResolved {
					status = notify.StatusResolved
				}
				alerts = append(alerts, e.webhookAlert(a, status))
			}
			for chunk := range slices.Chunk(alerts, cmp.Or(r.MaxAlerts, len(alerts))) {
				entries = append(entries, outbox.Entry{Receiver: r.Name, Created: created, Alerts: chunk})
			}
		}
	}
	var pushed []*Alert
	if e.amDirty {
		entries, pushed = e.pushEntriesLocked(entries, created, nil)
	}
	if len(entries) == 0 {
		return e.forgetLocked()
	}
	if err := e.enqueue(entries); err != nil {
		e.logger.Error("cannot queue notifications; will retry at the next evaluation", "err", err)
		return false
	}
	for _, a := range due {
		a.LastSent = now
		a.Notified = notify.StatusFiring
		if a.State == StateResolved {
			a.Notified = notify.StatusResolved
		}
	}
	if e.amDirty {
		e.markPushedLocked(pushed, created, nil)
	}
	e.forgetLocked()
	return true
}

// pushEntriesLocked adds one Alertmanager push per instance of the
// receivers in only (all when nil) holding every firing alert and the
// recently resolved ones.
func (e *Engine) pushEntriesLocked(entries []outbox.Entry, now time.Time, only map[string]bool) ([]outbox.Entry, []*Alert) {
	var pushed []*Alert
	for _, a := range e.sortedAlertsLocked() {
		if a.State == StateFiring || (a.State == StateResolved && a.ResolvedPosts < ResolvedPosts) {
			pushed = append(pushed, a)
		}
	}
	for _, r := range e.cfg.Receivers {
		if r.Type != TypeAlertmanager || (only != nil && !only[r.Name]) || len(pushed) == 0 {
			continue
		}
		alerts := make([]notify.Alert, 0, len(pushed))
		for _, a := range pushed {
			alerts = append(alerts, e.pushAlert(a, now, r.EffectiveResendInterval()))
		}
		for _, u := range r.URLs {
			entries = append(entries, outbox.Entry{Receiver: r.Name, URL: u, Created: now, Alerts: alerts})
		}
	}
	return entries, pushed
}

func (e *Engine) markPushedLocked(pushed []*Alert, now time.Time, only map[string]bool) {
	for _, r := range e.cfg.Receivers {
		if r.Type == TypeAlertmanager && (only == nil || only[r.Name]) {
			e.lastPush[r.Name] = now
		}
	}
	for _, a := range pushed {
		if a.State == StateResolved {
			a.ResolvedPosts++
		}
	}
	e.amDirty = false
}

// forgetLocked drops resolved alerts every receiver has been told about.
func (e *Engine) forgetLocked() bool {
	hasAM := slices.ContainsFunc(e.cfg.Receivers, func(r Receiver) bool { return r.Type == TypeAlertmanager })
	changed := false
	for fp, a := range e.alerts {
		if a.State == StateResolved && a.Notified != notify.StatusFiring && (!hasAM || a.ResolvedPosts >= ResolvedPosts) {
			delete(e.alerts, fp)
			changed = true
		}
	}
	return changed
}

func (e *Engine) sortedAlertsLocked() []*Alert {
	out := slices.Collect(maps.Values(e.alerts))
	slices.SortFunc(out, func(a, b *Alert) int {
		return cmp.Or(a.ActiveAt.Compare(b.ActiveAt), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
	return out
}

// enqueue writes entries to the outbox and wakes their delivery loops.
func (e *Engine) enqueue(entries []outbox.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	stored, err := e.outbox.Enqueue(entries...)
	if err != nil {
		e.metrics.outboxWriteErrors.Inc()
		return err
	}
	for _, en := range stored {
		e.recent.add(deliveryFor(en, "queued"))
		if t := e.byKey[en.Target()]; t != nil {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
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

// resendLoop re-posts active alerts to every Alertmanager receiver each
// resend_interval: Alertmanager forgets pushed alerts when it restarts and
// resolves them itself once endsAt passes.
func (e *Engine) resendLoop(ctx context.Context) {
	if !slices.ContainsFunc(e.cfg.Receivers, func(r Receiver) bool { return r.Type == TypeAlertmanager }) {
		return
	}
	e.resend(nil)
	for {
		// Sleep until the earliest receiver is due; a push caused by a
		// state change in between just makes the next wake-up find nothing due.
		now := e.now()
		e.mu.Lock()
		due := map[string]bool{}
		var next time.Time
		for _, r := range e.cfg.Receivers {
			if r.Type != TypeAlertmanager {
				continue
			}
			at := e.lastPush[r.Name].Add(r.EffectiveResendInterval())
			if !now.Before(at) {
				due[r.Name] = true
			} else if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		e.mu.Unlock()
		if len(due) > 0 {
			e.resend(due)
			continue
		}
		timer := time.NewTimer(max(next.Sub(now), 10*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// resend queues a push of the active set to the Alertmanager receivers in
// only (every one when nil, or when a state change is still unpushed).
func (e *Engine) resend(only map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.amDirty {
		only = nil
	}
	now := e.now()
	entries, pushed := e.pushEntriesLocked(nil, now, only)
	if len(entries) == 0 {
		e.markPushedLocked(nil, now, only)
		return
	}
	if err := e.enqueue(entries); err != nil {
		e.logger.Error("cannot queue Alertmanager push; will retry", "err", err)
		return
	}
	e.markPushedLocked(pushed, now, only)
	e.forgetLocked()
	e.saveStateLocked()
}

// deliverLoop sends one target's entries in order. Webhook entries go one
// message each; for Alertmanager every pending entry is merged into one
// post (later alert versions win), since each push restates the active set.
func (e *Engine) deliverLoop(ctx context.Context, t *target) {
	attempt := 0
	for {
		pending := e.outbox.Pending(t.key)
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			}
		}
		batch := pending[:1]
		alerts := pending[0].Alerts
		if t.kind == TypeAlertmanager {
			batch, alerts = pending, mergeAlerts(pending)
		}
		actx, cancel := context.WithTimeout(ctx, t.timeout)
		err := t.send(actx, alerts)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // shutting down: the entry stays queued
		}
		ids := make([]uint64, len(batch))
		for i, en := range batch {
			ids[i] = en.ID
		}
		attempt++
		if err == nil {
			e.outbox.Remove(ids...)
			e.metrics.sent.WithLabelValues(t.receiver).Add(float64(len(batch)))
			e.recent.updateAll(ids, "delivered", attempt, "")
			e.logger.Debug("notification delivered", "receiver", t.receiver, "peer", outbox.RedactURL(t.url), "alerts", len(alerts), "attempts", attempt)
			attempt = 0
			continue
		}
		e.metrics.failed.WithLabelValues(t.receiver).Inc()
		if !notify.Retryable(err) {
			e.outbox.Remove(ids...)
			e.recent.updateAll(ids, "failed", attempt, err.Error())
			e.logger.Error("notification rejected, not retrying", "receiver", t.receiver, "peer", outbox.RedactURL(t.url), "attempts", attempt, "err", err)
			attempt = 0
			continue
		}
		delay := backoff(attempt, e.backoffMin, t.maxDelay)
		if ra := notify.RetryAfter(err); ra > delay {
			delay = min(ra, maxRetryAfter)
		}
		e.recent.updateAll(ids, "retrying", attempt, err.Error())
		e.logger.Warn("notification failed, will retry", "receiver", t.receiver, "peer", outbox.RedactURL(t.url), "attempts", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// maxRetryAfter caps a receiver's Retry-After, so a bogus header cannot
// park a queue for a day.
const maxRetryAfter = 15 * time.Minute

// backoff is exponential from base, capped at maxDelay, with equal jitter
// (a random delay between half and all of the step) so a fleet of agents
// does not retry in lockstep.
func backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

func mergeAlerts(entries []outbox.Entry) []notify.Alert {
	idx := map[string]int{}
	var out []notify.Alert
	for _, en := range entries {
		for _, a := range en.Alerts {
			if i, ok := idx[a.Fingerprint]; ok {
				out[i] = a
				continue
			}
			idx[a.Fingerprint] = len(out)
			out = append(out, a)
		}
	}
	return out
}

type stateDoc struct {
	Version int      `json:"version"`
	Alerts  []*Alert `json:"alerts"`
}

func (e *Engine) statePath() string { return filepath.Join(e.cfg.OutboxDir, stateFile) }

func (e *Engine) loadState() error {
	b, err := os.ReadFile(e.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read alert state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil || doc.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unsupported version %d", doc.Version)
		}
		to := e.statePath() + ".corrupt-" + e.now().UTC().Format("20060102T150405")
		rerr := os.Rename(e.statePath(), to)
		e.logger.Error("alert state unreadable, starting afresh: alerts still active will fire again", "path", e.statePath(), "quarantine", to, "err", err, "rename_err", rerr)
		return nil
	}
	for _, a := range doc.Alerts {
		if a == nil || a.Fingerprint == "" || len(a.Labels) == 0 {
			continue
		}
		e.alerts[a.Fingerprint] = a
	}
	return nil
}

func (e *Engine) saveStateLocked() {
	doc := stateDoc{Version: 1, Alerts: e.sortedAlertsLocked()}
	b, err := json.Marshal(doc)
	if err == nil {
		err = outbox.WriteFileAtomic(e.statePath(), b)
	}
	if err != nil {
		e.logger.Error("cannot save alert state", "path", e.statePath(), "err", err)
	}
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
