// Package journal keeps the host's redundancy history: a bounded, durable
// log of group state changes and of findings starting and ending, in the
// state directory. Diff and Summarize are pure; Store does the file I/O.
package journal

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// Kind says what an event records.
type Kind string

const (
	// KindGroupState: a group moved from one state to another (From, To).
	KindGroupState Kind = "group_state"
	// KindFindingStart: a finding became active.
	KindFindingStart Kind = "finding_start"
	// KindFindingEnd: an active finding cleared.
	KindFindingEnd Kind = "finding_end"
	// KindProof: a group's last proof of redundancy changed (ProvenAt,
	// Method, Result, Summary = its detail). The history keeps what only
	// the agent observed (an md check seen finishing), so a restart does not
	// forget it.
	KindProof Kind = "proof"
	// KindHistoryStart marks where compaction cut the journal: before At
	// only each group's state then (and open findings) is known, not the
	// changes and incidents that ended before it.
	KindHistoryStart Kind = "history_start"
)

// HistoryStart is when the journal's detail begins: the last compaction
// cut, else its first event; zero for an empty journal.
func HistoryStart(events []Event) time.Time {
	var first, cut time.Time
	for _, e := range events {
		if e.Kind == KindHistoryStart && e.At.After(cut) {
			cut = e.At
		}
		if first.IsZero() || e.At.Before(first) {
			first = e.At
		}
	}
	if !cut.IsZero() {
		return cut
	}
	return first
}

// Event is one line of the journal. The JSON keys are a public interface
// (GET /api/v1/events): only ever add to them.
type Event struct {
	At       time.Time       `json:"at"`
	Kind     Kind            `json:"kind"`
	Group    string          `json:"group"`
	Member   string          `json:"member,omitempty"`
	From     spof.GroupState `json:"from,omitempty"`
	To       spof.GroupState `json:"to,omitempty"`
	Code     spof.Code       `json:"code,omitempty"`
	Severity string          `json:"severity,omitempty"`
	Summary  string          `json:"summary,omitempty"`
	// Accepted is set on a finding_start when an acceptance covered the
	// finding as it began.
	Accepted bool `json:"accepted,omitempty"`
	// ProvenAt, Method and Result describe a proof (KindProof).
	ProvenAt time.Time `json:"proven_at,omitzero"`
	Method   string    `json:"method,omitempty"`
	Result   string    `json:"result,omitempty"`
}

// GroupSince is a group's current state and when it entered it.
type GroupSince struct {
	State spof.GroupState
	Since time.Time
}

// Baseline is what the journal knew before an evaluation: each group's
// state and the active findings by key.
type Baseline struct {
	Groups   map[string]GroupSince
	Findings map[string]spof.Finding
	// Proofs are each group's last proof of redundancy.
	Proofs map[string]spof.Proof
}

// NewBaseline returns an empty baseline.
func NewBaseline() Baseline {
	return Baseline{Groups: map[string]GroupSince{}, Findings: map[string]spof.Finding{}, Proofs: map[string]spof.Proof{}}
}

// Diff returns the events that lead from the baseline to the evaluation at
// now, and the new baseline. Groups absent from the evaluation (a collector
// not run yet after a restart) keep their baseline and raise no event, so a
// restart neither loses nor invents history. A group seen for the first
// time is recorded with an empty From.
func Diff(base Baseline, res spof.Result, now time.Time) ([]Event, Baseline) {
	next := Baseline{Groups: make(map[string]GroupSince, len(res.Groups)), Findings: make(map[string]spof.Finding, len(res.Findings)), Proofs: maps.Clone(base.Proofs)}
	if next.Proofs == nil {
		next.Proofs = map[string]spof.Proof{}
	}
	var events []Event
	seen := map[string]bool{}
	for _, g := range res.Groups {
		id := g.Group.ID
		if seen[id] {
			continue
		}
		seen[id] = true
		if p := g.Group.Proof; p != nil {
			if old, ok := base.Proofs[id]; !ok || !old.At.Equal(p.At) || old.Method != p.Method || old.Result != p.Result {
				events = append(events, Event{At: now, Kind: KindProof, Group: id, ProvenAt: p.At, Method: p.Method, Result: string(p.Result), Summary: p.Detail})
			}
			next.Proofs[id] = *p
		}
		prev, known := base.Groups[id]
		if known && prev.State == g.State {
			next.Groups[id] = prev
			continue
		}
		events = append(events, Event{At: now, Kind: KindGroupState, Group: id, From: prev.State, To: g.State})
		next.Groups[id] = GroupSince{State: g.State, Since: now}
	}
	for id, gs := range base.Groups {
		if !seen[id] {
			next.Groups[id] = gs
		}
	}
	active := map[string]bool{}
	for _, f := range res.Findings {
		k := f.Key()
		active[k] = true
		next.Findings[k] = f
		if _, was := base.Findings[k]; !was {
			events = append(events, Event{At: now, Kind: KindFindingStart, Group: f.Group, Member: f.Member, Code: f.Code, Severity: f.Severity.String(), Summary: f.Summary, Accepted: f.Accepted != nil})
		}
	}
	for k, f := range base.Findings {
		if active[k] {
			continue
		}
		if _, known := base.Groups[f.Group]; known && !seen[f.Group] {
			next.Findings[k] = f // its group was not evaluated: unknown, not ended
			continue
		}
		events = append(events, Event{At: now, Kind: KindFindingEnd, Group: f.Group, Member: f.Member, Code: f.Code, Severity: f.Severity.String(), Summary: f.Summary})
	}
	slices.SortStableFunc(events, func(a, b Event) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(string(a.Code)+a.Member, string(b.Code)+b.Member)
	})
	return events, next
}

// Replay rebuilds the baseline from events in time order: the state of the
// agent's knowledge when the last of them was written.
func Replay(events []Event) Baseline {
	b := NewBaseline()
	for _, e := range events {
		switch e.Kind {
		case KindGroupState:
			b.Groups[e.Group] = GroupSince{State: e.To, Since: e.At}
		case KindFindingStart:
			sev, _ := spof.ParseSeverity(e.Severity)
			f := spof.Finding{Code: e.Code, Severity: sev, Group: e.Group, Member: e.Member, Summary: e.Summary, Since: e.At}
			b.Findings[f.Key()] = f
		case KindFindingEnd:
			delete(b.Findings, spof.Finding{Code: e.Code, Group: e.Group, Member: e.Member}.Key())
		case KindProof:
			b.Proofs[e.Group] = spof.Proof{At: e.ProvenAt, Method: e.Method, Result: spof.ProofResult(e.Result), Detail: e.Summary}
		}
	}
	return b
}

// States is the baseline's group states in the model's form, to seed
// spof.Input.PreviousStates after a restart.
func (b Baseline) States() map[string]spof.StateSince {
	out := make(map[string]spof.StateSince, len(b.Groups))
	for id, g := range b.Groups {
		out[id] = spof.StateSince{State: g.State, Since: g.Since}
	}
	return out
}

// ActiveFindings are the findings open at the end of the history, with
// their since, to seed spof.Input.Previous after a restart.
func (b Baseline) ActiveFindings() []spof.Finding {
	out := make([]spof.Finding, 0, len(b.Findings))
	for _, f := range b.Findings {
		out = append(out, f)
	}
	return out
}
