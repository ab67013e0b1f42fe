package journal

import (
	"slices"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// Interval is a stretch of time a group spent in one state.
type Interval struct {
	State spof.GroupState `json:"state"`
	Start time.Time       `json:"start"`
	// End is zero while the state still holds.
	End time.Time `json:"end,omitzero"`
}

// Incident is a finding that was active in the window.
type Incident struct {
	Code     spof.Code `json:"code"`
	Severity string    `json:"severity"`
	Group    string    `json:"group"`
	Member   string    `json:"member,omitempty"`
	Summary  string    `json:"summary"`
	// Accepted: an acceptance covered the finding when it began.
	Accepted bool      `json:"accepted"`
	Start    time.Time `json:"start"`
	// End is zero while the finding is still active.
	End time.Time `json:"end,omitzero"`
	// Duration is the time inside the window (to now when still active).
	Duration time.Duration `json:"duration_seconds"`
}

// GroupHistory is one group's time in each state over the window.
type GroupHistory struct {
	Group string `json:"group"`
	// Current is the state at the end of the window.
	Current spof.GroupState `json:"state"`
	Since   time.Time       `json:"state_since"`
	// TimeIn is the time spent in each state inside the window. Time before
	// the group was first seen is not counted in any state.
	TimeIn map[spof.GroupState]time.Duration `json:"-"`
}

// Summary is the history of a window [From, To].
type Summary struct {
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Groups    []GroupHistory `json:"groups"`
	Incidents []Incident     `json:"incidents"`
}

// Summarize replays events (any order; those after to are ignored) and
// measures the window [from, to]. Pure: the clock is to.
func Summarize(events []Event, from, to time.Time) Summary {
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.At.Compare(b.At) })
	clip := func(t time.Time) time.Time {
		if t.Before(from) {
			return from
		}
		if t.After(to) {
			return to
		}
		return t
	}
	type open struct {
		state spof.GroupState
		since time.Time
	}
	states := map[string]open{}
	hist := map[string]*GroupHistory{}
	addTime := func(id string, st spof.GroupState, a, b time.Time) {
		h := hist[id]
		if h == nil {
			h = &GroupHistory{Group: id, TimeIn: map[spof.GroupState]time.Duration{}}
			hist[id] = h
		}
		if d := clip(b).Sub(clip(a)); d > 0 {
			h.TimeIn[st] += d
		}
	}
	openFindings := map[string]Incident{}
	var incidents []Incident
	closeIncident := func(in Incident, end time.Time) {
		if !end.IsZero() && end.Before(from) {
			return // ended before the window
		}
		in.End = end
		stop := to
		if !end.IsZero() {
			stop = end
		}
		in.Duration = max(0, clip(stop).Sub(clip(in.Start)))
		incidents = append(incidents, in)
	}
	for _, e := range events {
		if e.At.After(to) {
			break
		}
		switch e.Kind {
		case KindGroupState:
			if prev, ok := states[e.Group]; ok {
				addTime(e.Group, prev.state, prev.since, e.At)
			}
			states[e.Group] = open{e.To, e.At}
		case KindFindingStart:
			k := string(e.Code) + "\x00" + e.Group + "\x00" + e.Member
			if _, dup := openFindings[k]; !dup {
				openFindings[k] = Incident{Code: e.Code, Severity: e.Severity, Group: e.Group, Member: e.Member, Summary: e.Summary, Accepted: e.Accepted, Start: e.At}
			}
		case KindFindingEnd:
			k := string(e.Code) + "\x00" + e.Group + "\x00" + e.Member
			if in, ok := openFindings[k]; ok {
				delete(openFindings, k)
				closeIncident(in, e.At)
			}
		}
	}
	for id, o := range states {
		addTime(id, o.state, o.since, to)
		hist[id].Current, hist[id].Since = o.state, o.since
	}
	for _, in := range openFindings {
		closeIncident(in, time.Time{})
	}
	s := Summary{From: from, To: to}
	for _, h := range hist {
		s.Groups = append(s.Groups, *h)
	}
	slices.SortFunc(s.Groups, func(a, b GroupHistory) int { return strings.Compare(a.Group, b.Group) })
	slices.SortFunc(incidents, func(a, b Incident) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Group+string(a.Code)+a.Member, b.Group+string(b.Code)+b.Member)
	})
	s.Incidents = incidents
	return s
}

// LastMatches returns, for each acceptance, the last time the history saw a
// finding it matches active: the end of the finding, or the last event's
// time for one still open. The daemon seeds the stale-acceptance clock
// with it, so a restart does not reset it.
func LastMatches(events []Event, accs []spof.Acceptance) map[string]time.Time {
	type seen struct {
		f    spof.Finding
		open bool
		end  time.Time
	}
	out := map[string]time.Time{}
	var last time.Time
	byKey := map[string]*seen{}
	for _, e := range events {
		if e.At.After(last) {
			last = e.At
		}
		if e.Kind != KindFindingStart && e.Kind != KindFindingEnd {
			continue
		}
		f := spof.Finding{Code: e.Code, Group: e.Group, Member: e.Member}
		s := byKey[f.Key()]
		if s == nil {
			s = &seen{f: f}
			byKey[f.Key()] = s
		}
		s.open = e.Kind == KindFindingStart
		if !s.open {
			s.end = e.At
		}
	}
	for _, a := range accs {
		for _, s := range byKey {
			if !a.Matches(s.f) {
				continue
			}
			at := s.end
			if s.open {
				at = last
			}
			if at.After(out[a.ID]) {
				out[a.ID] = at
			}
		}
	}
	return out
}

// FirstSeen is when the history first recorded each group: the earliest
// event naming it. After a compaction that is the start of the state it
// was then in, later than the true first sighting, so a "never proven"
// clock seeded from it runs late, never early.
func FirstSeen(events []Event) map[string]time.Time {
	out := map[string]time.Time{}
	for _, e := range events {
		if e.Kind != KindGroupState {
			continue
		}
		if t, ok := out[e.Group]; !ok || e.At.Before(t) {
			out[e.Group] = e.At
		}
	}
	return out
}
