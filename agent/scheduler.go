package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/spof"
)

// Outcome is the latest result of one collector.
type Outcome struct {
	Name string
	// OK is false when the last collection failed, timed out, or its data
	// went stale.
	OK bool
	// NoData means the source is absent on this host (ErrNoData): quiet.
	NoData bool
	Error  string
	// Groups are the latest groups; after a failure they are the last known
	// groups marked unknown, so a group never silently disappears.
	Groups         []spof.Group
	Metrics        []prometheus.Metric
	HostConditions []spof.Condition
	// Drills are the latest drill outcomes; after a failure they are the
	// last known ones, so an unreadable audit log never clears a failed
	// drill.
	Drills      []spof.DrillOutcome
	Started     time.Time
	Duration    time.Duration
	LastSuccess time.Time
	// Collections counts finished attempts, for tests and metrics.
	Collections uint64
}

// Snapshot is the latest state of every collector plus the evaluation over
// them. It is immutable once published.
type Snapshot struct {
	Taken      time.Time
	Outcomes   []Outcome // sorted by name
	Evaluation spof.Result
	// Generation increases with every published snapshot.
	Generation uint64
	// Acceptances in force, with when each last matched.
	Acceptances []spof.Acceptance
	// FirstSeen is when each group was first seen (SeedFirstSeen of the
	// next generation after a reload).
	FirstSeen map[string]time.Time
}

// Compose post-processes the combined groups of every collector before
// evaluation (power-feed mapping needs PSU and UPS groups together).
type Compose func([]spof.Group) []spof.Group

// SchedulerOptions configures a Scheduler.
type SchedulerOptions struct {
	Entries []Entry
	Logger  *slog.Logger
	Compose Compose
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// StaleAfter is how many intervals may pass without a fresh result
	// before data counts as stale. Default 3.
	StaleAfter int
	// Seed are findings of a previous scheduler (before a config reload):
	// findings that are still active keep their Since.
	Seed []spof.Finding
	// SeedOutcomes are the previous scheduler's outcomes: until a collector
	// of the same name has run once, its previous result stands in, so a
	// reload never shows a moment of "all clear".
	SeedOutcomes []Outcome
	// Acceptances mark matching findings accepted. The scheduler keeps when
	// each last matched (seeded from SeedAcceptanceMatches, else from its
	// start), so an acceptance that matches nothing for a day is reported.
	Acceptances           []spof.Acceptance
	SeedAcceptanceMatches map[string]time.Time
	// SeedStates are the groups' states and since from before this
	// scheduler (the previous generation, or the history after a restart),
	// so "redundant since" survives reloads and restarts.
	SeedStates map[string]spof.StateSince
	// ProofPolicy is how old a group's last proof may be before
	// redundancy_untested. SeedFirstSeen carries when each group was first
	// seen across a reload; otherwise a group is first seen when this
	// scheduler first evaluates it (in memory: a restart starts the count
	// afresh, which delays the finding and never raises a false one).
	ProofPolicy   spof.ProofPolicy
	SeedFirstSeen map[string]time.Time
	// SeedProofs are groups' last proofs from before this scheduler (the
	// history, the previous generation): a group whose source reports no
	// proof, or an older one, keeps it, so what only the agent observed (an
	// md check seen finishing) survives restarts and reloads.
	SeedProofs map[string]spof.Proof
}

// Scheduler runs every collector on its own schedule and keeps the latest
// Snapshot. Outputs read the snapshot; they never collect.
type Scheduler struct {
	opts     SchedulerOptions
	log      *slog.Logger
	mu       sync.Mutex
	current  *Snapshot
	results  map[string]*Outcome
	subs     []chan *Snapshot
	inFlight map[string]bool
	seed     []spof.Finding
	// seedOutcomes stand in for collectors that have not run yet.
	seedOutcomes map[string]Outcome
	// acceptMatched is when each acceptance last matched a finding.
	acceptMatched map[string]time.Time
	// firstSeen is when each group was first evaluated (redundancy_untested
	// ages a never-proven group from it).
	firstSeen map[string]time.Time
}

// NewScheduler returns a scheduler over the given entries.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 3
	}
	s := &Scheduler{opts: opts, log: opts.Logger, results: map[string]*Outcome{}, inFlight: map[string]bool{}, seed: opts.Seed}
	s.seedOutcomes = map[string]Outcome{}
	s.acceptMatched = map[string]time.Time{}
	s.firstSeen = maps.Clone(opts.SeedFirstSeen)
	if s.firstSeen == nil {
		s.firstSeen = map[string]time.Time{}
	}
	for _, a := range opts.Acceptances {
		if t, ok := opts.SeedAcceptanceMatches[a.ID]; ok {
			s.acceptMatched[a.ID] = t
		} else {
			s.acceptMatched[a.ID] = opts.Now()
		}
	}
	for _, o := range opts.SeedOutcomes {
		s.seedOutcomes[o.Name] = o
	}
	for _, e := range opts.Entries {
		s.results[e.Collector.Name()] = &Outcome{Name: e.Collector.Name(), Error: "not collected yet"}
	}
	s.publishLocked()
	return s
}

// Snapshot returns the latest snapshot.
func (s *Scheduler) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Ready reports whether every collector has finished at least once.
func (s *Scheduler) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.results {
		if o.Collections == 0 {
			return false
		}
	}
	return true
}

// Subscribe returns a channel that receives every new snapshot. Slow
// subscribers miss intermediate snapshots but always get the latest one.
func (s *Scheduler) Subscribe() <-chan *Snapshot {
	ch := make(chan *Snapshot, 1)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

// CollectOnce runs every collector once, concurrently, and returns the
// resulting snapshot. Used by `spofwatch check`.
func (s *Scheduler) CollectOnce(ctx context.Context) *Snapshot {
	var wg sync.WaitGroup
	for _, e := range s.opts.Entries {
		wg.Go(func() { s.runOne(ctx, e) })
	}
	wg.Wait()
	return s.Snapshot()
}

// Run collects on every collector's schedule until ctx ends. Each collector
// has its own goroutine; a slow one never delays another.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range s.opts.Entries {
		wg.Go(func() { s.loop(ctx, e) })
	}
	stale := time.NewTicker(staleCheckInterval(s.opts.Entries))
	defer stale.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-stale.C:
			s.markStale()
		}
	}
}

func staleCheckInterval(entries []Entry) time.Duration {
	d := time.Minute
	for _, e := range entries {
		d = min(d, e.Schedule.interval())
	}
	return d
}

func (s *Scheduler) loop(ctx context.Context, e Entry) {
	interval := e.Schedule.interval()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		s.runOne(ctx, e)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-e.Schedule.Trigger:
			ticker.Reset(interval)
		}
	}
}

type collectReply struct {
	res Result
	err error
}

// runOne collects once with the collector's timeout. A collector that
// ignores its context is abandoned at the timeout: its goroutine finishes in
// the background and its late result is dropped, and while it is still
// stuck the next attempt is refused rather than piling up goroutines.
func (s *Scheduler) runOne(ctx context.Context, e Entry) {
	name := e.Collector.Name()
	s.mu.Lock()
	if s.inFlight[name] {
		s.mu.Unlock()
		s.record(name, s.opts.Now(), 0, Result{}, errors.New("previous collection is still running past its timeout"))
		return
	}
	s.inFlight[name] = true
	s.mu.Unlock()

	timeout := e.Schedule.timeout()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	started := s.opts.Now()
	reply := make(chan collectReply, 1)
	go func() {
		// The in-flight flag is cleared before the reply is sent, so an
		// attempt triggered right after this one never sees it still set.
		var r collectReply
		defer func() {
			if p := recover(); p != nil {
				r = collectReply{err: fmt.Errorf("collector panicked: %v", p)}
			}
			s.mu.Lock()
			delete(s.inFlight, name)
			s.mu.Unlock()
			reply <- r
		}()
		r.res, r.err = e.Collector.Collect(cctx)
	}()

	var r collectReply
	select {
	case r = <-reply:
		if r.err != nil && cctx.Err() != nil && ctx.Err() == nil {
			r.err = fmt.Errorf("timed out after %s: %w", timeout, r.err)
		}
	case <-cctx.Done():
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			return // shutting down: keep the last snapshot as it is
		case ctx.Err() != nil:
			// The caller's own deadline (check --timeout) ran out first: a
			// collector that did not finish is unknown, never left out.
			r = collectReply{err: fmt.Errorf("did not finish before the overall deadline (%s into its own %s timeout)", s.opts.Now().Sub(started).Round(time.Millisecond), timeout)}
		default:
			r = collectReply{err: fmt.Errorf("timed out after %s", timeout)}
		}
	}
	s.record(name, started, s.opts.Now().Sub(started), r.res, r.err)
}

func (s *Scheduler) record(name string, started time.Time, took time.Duration, res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.results[name]
	if o == nil {
		o = &Outcome{Name: name}
		s.results[name] = o
	}
	o.Started, o.Duration = started, took
	o.Collections++
	if errors.Is(err, ErrNoData) && len(o.Groups) > 0 && !o.NoData {
		// The source was there and is gone (the last pool vanished, a
		// controller lost its config): that is not "nothing here".
		err = fmt.Errorf("%w: %w", ErrSourceDisappeared, err)
	}
	switch {
	case err == nil:
		o.OK, o.NoData, o.Error = true, false, ""
		o.Groups = append(res.Groups, vanished(o.Groups, res.Groups, name)...)
		o.Metrics, o.HostConditions, o.Drills = res.Metrics, res.HostConditions, res.Drills
		o.LastSuccess = started.Add(took)
	case errors.Is(err, ErrNoData) && !errors.Is(err, ErrSourceDisappeared):
		if !o.NoData {
			s.log.Debug("source absent on this host; collector idle", "collector", name, "reason", err.Error())
		}
		o.OK, o.NoData, o.Error = true, true, ""
		o.Groups, o.Metrics, o.HostConditions, o.Drills = nil, nil, nil, nil
		o.LastSuccess = started.Add(took)
	default:
		if o.OK || o.Error != err.Error() {
			s.log.Warn("collection failed", "collector", name, "err", err)
		}
		o.OK, o.NoData, o.Error = false, false, err.Error()
		o.Groups = markUnknown(o.Groups, fmt.Sprintf("collector %s failed: %s", name, err))
		o.Metrics = nil // source details of a failed read would be stale
	}
	s.publishLocked()
}

// markStale turns collectors whose data is older than StaleAfter intervals
// into failures, so stale data is never presented as fresh even when a
// collector goroutine is wedged.
func (s *Scheduler) markStale() {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, e := range s.opts.Entries {
		o := s.results[e.Collector.Name()]
		if o == nil || !o.OK || o.LastSuccess.IsZero() {
			continue
		}
		limit := time.Duration(s.opts.StaleAfter)*e.Schedule.interval() + e.Schedule.timeout()
		if age := now.Sub(o.LastSuccess); age > limit {
			o.OK, o.NoData = false, false
			o.Error = fmt.Sprintf("data is stale: last success %s ago", age.Round(time.Second))
			o.Groups = markUnknown(o.Groups, o.Error)
			o.Metrics = nil
			changed = true
		}
	}
	if changed {
		s.publishLocked()
	}
}

// vanished returns the groups a collector reported before and no longer
// does, as unknown: an array, pool or default route that disappears must
// not silently clear its alarm. They stay until the source reports them
// again or the configuration is reloaded (SIGHUP), which forgets groups
// removed on purpose.
func vanished(before, now []spof.Group, collector string) []spof.Group {
	current := make(map[string]bool, len(now))
	for _, g := range now {
		current[g.ID] = true
	}
	var out []spof.Group
	for _, g := range before {
		if current[g.ID] {
			continue
		}
		if g.UnknownReason == "" {
			g.UnknownReason = fmt.Sprintf("no longer reported by the %s collector (removed? reload to forget it)", collector)
			g.Conditions = nil
		}
		out = append(out, g)
	}
	return out
}

func markUnknown(groups []spof.Group, reason string) []spof.Group {
	out := make([]spof.Group, len(groups))
	for i, g := range groups {
		g.UnknownReason = reason
		g.Conditions = nil
		out[i] = g
	}
	return out
}

func (s *Scheduler) publishLocked() {
	outcomes := make([]Outcome, 0, len(s.results))
	var groups []spof.Group
	var statuses []spof.CollectorStatus
	var hostConds []spof.Condition
	var drills []spof.DrillOutcome
	for _, o := range s.results {
		if seed, ok := s.seedOutcomes[o.Name]; ok && o.Collections == 0 {
			outcomes = append(outcomes, seed) // previous generation's result
			continue
		}
		outcomes = append(outcomes, *o)
	}
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].Name < outcomes[j].Name })
	pending := false
	for _, o := range outcomes {
		groups = append(groups, o.Groups...)
		hostConds = append(hostConds, o.HostConditions...)
		drills = append(drills, o.Drills...)
		if o.Collections == 0 {
			pending = true // not collected yet: shown on the page, not a finding
			continue
		}
		if !o.NoData {
			statuses = append(statuses, spof.CollectorStatus{Name: o.Name, OK: o.OK, Error: o.Error})
		}
	}
	if s.opts.Compose != nil {
		groups = s.opts.Compose(groups)
	}
	groups = withSeedProofs(groups, s.opts.SeedProofs)
	var prev []spof.Finding
	var gen uint64
	prev = s.seed
	if s.current != nil {
		prev = append(append([]spof.Finding(nil), s.seed...), s.current.Evaluation.Findings...)
		gen = s.current.Generation
	}
	if !pending {
		s.seed = nil
	}
	now := s.opts.Now()
	accs := make([]spof.Acceptance, len(s.opts.Acceptances))
	for i, a := range s.opts.Acceptances {
		a.LastMatched = s.acceptMatched[a.ID]
		accs[i] = a
	}
	states := maps.Clone(s.opts.SeedStates)
	if states == nil {
		states = map[string]spof.StateSince{}
	}
	if s.current != nil {
		maps.Copy(states, s.current.Evaluation.States())
	}
	for _, g := range groups {
		if _, ok := s.firstSeen[g.ID]; !ok {
			s.firstSeen[g.ID] = now
		}
	}
	firstSeen := maps.Clone(s.firstSeen)
	eval := spof.Evaluate(spof.Input{Groups: groups, Collectors: statuses, HostConditions: hostConds, Previous: prev, Acceptances: accs, PreviousStates: states,
		ProofPolicy: s.opts.ProofPolicy, FirstSeen: firstSeen, Drills: drills, Now: now})
	for _, id := range eval.AcceptancesMatched {
		s.acceptMatched[id] = now
	}
	for i := range accs {
		accs[i].LastMatched = s.acceptMatched[accs[i].ID]
	}
	snap := &Snapshot{
		Taken:       now,
		Outcomes:    outcomes,
		Generation:  gen + 1,
		Evaluation:  eval,
		Acceptances: accs,
		FirstSeen:   firstSeen,
	}
	s.current = snap
	for _, ch := range s.subs {
		select {
		case <-ch: // drop the older pending snapshot
		default:
		}
		ch <- snap
	}
}

// withSeedProofs gives each group the newer of its source's proof and the
// seeded one. The groups are copies; the outcomes keep what sources said.
func withSeedProofs(groups []spof.Group, seed map[string]spof.Proof) []spof.Group {
	if len(seed) == 0 {
		return groups
	}
	for i := range groups {
		p, ok := seed[groups[i].ID]
		if !ok || groups[i].Provable == spof.NotProvable {
			continue
		}
		if cur := groups[i].Proof; cur == nil || p.At.After(cur.At) {
			groups[i].Proof = &p
		}
	}
	return groups
}

// Proofs returns the groups' last proofs in a snapshot, to seed the next
// scheduler (a reload).
func (s *Snapshot) Proofs() map[string]spof.Proof {
	out := map[string]spof.Proof{}
	for _, g := range s.Evaluation.Groups {
		if g.Group.Proof != nil {
			out[g.Group.ID] = *g.Group.Proof
		}
	}
	return out
}
