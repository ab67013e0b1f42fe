package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/journal"
	"github.com/spofwatch/spofwatch/report"
)

// maxEvents bounds one /api/v1/events answer; the newest are kept.
const maxEvents = 10000

// parseSince reads ?since= as an RFC 3339 time or a duration back from now
// (24h, 90d); empty means def back from now.
func parseSince(v string, now time.Time, def time.Duration) (time.Time, error) {
	if v == "" {
		return now.Add(-def), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := model.ParseDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("since: %q is neither an RFC 3339 time nor a duration such as 24h or 90d", v)
	}
	return now.Add(-time.Duration(d)), nil
}

func (opts Options) events(since time.Time) []journal.Event {
	if opts.History == nil {
		return nil
	}
	return opts.History.Events(since)
}

// serveEvents answers GET /api/v1/events?since=: the history's group state
// changes and findings starting and ending, oldest first.
func serveEvents(opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		since, err := parseSince(r.URL.Query().Get("since"), time.Now(), 24*time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events := opts.events(since)
		truncated := len(events) > maxEvents
		if truncated {
			events = events[len(events)-maxEvents:]
		}
		if events == nil {
			events = []journal.Event{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Since     time.Time       `json:"since"`
			Truncated bool            `json:"truncated"`
			Events    []journal.Event `json:"events"`
		}{since.UTC(), truncated, events})
	}
}

// serveReport answers GET /api/v1/report?since=90d&format=json|markdown|html:
// the audit `spofwatch report` prints, for a fleet job to collect.
func serveReport(opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := opts.Source.Snapshot()
		from, err := parseSince(r.URL.Query().Get("since"), snap.Taken, 90*24*time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		format := r.URL.Query().Get("format")
		if format == "" {
			format = "json"
		}
		ctype := map[string]string{"json": "application/json", "markdown": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}[format]
		if ctype == "" {
			http.Error(w, "format: want json, markdown or html", http.StatusBadRequest)
			return
		}
		// All events: durations need the state each group was in at the
		// window's start.
		audit := report.BuildAudit(opts.Host, snap.Evaluation, snap.Acceptances, opts.events(time.Time{}), from, snap.Taken)
		w.Header().Set("Content-Type", ctype)
		report.WriteAudit(w, audit, format)
	}
}
