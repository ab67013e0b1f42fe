// Package web serves the snapshot over HTTP: /metrics (the agent's handler,
// passed in), /api/v1/findings,
// the status page at / and the health endpoints. Every handler reads the
// latest snapshot; none collects.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/journal"

	"github.com/spofwatch/spofwatch/report"
	"github.com/spofwatch/spofwatch/spof"
)

// Options configures the handler.
type Options struct {
	Host   string
	Source agent.SnapshotSource
	// Metrics serves /metrics (agent.NewMetricsHandler: pre-encoded bytes,
	// a concurrency slot that never covers the write); nil serves none.
	Metrics http.Handler
	Logger  *slog.Logger
	Version string
	// Ready reports whether the first collection round has finished.
	Ready func() bool
	// Extra mounts more handlers (alerting's /api/v1/alerts) and lists
	// panels for the status page.
	Extra map[string]http.Handler
	// Panels add sections to the status page (recent notifications).
	Panels []Panel
	// History serves /api/v1/events, /api/v1/report and the page's recent
	// changes; nil leaves them empty.
	History HistorySource
	// Drills serves /api/v1/drills (the drill audit log); nil lists none.
	Drills DrillSource
}

// HistorySource lists the journal's events since a time.
type HistorySource interface {
	Events(since time.Time) []journal.Event
}

// Panel is an extra section of the status page.
type Panel interface {
	Title() string
	// Rows returns a header row and data rows.
	Rows() (header []string, rows [][]string)
}

//go:embed status.html
var assets embed.FS

var statusTemplate = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"lower": strings.ToLower,
	"until": spof.FormatUntil,
	"held":  func(since, now time.Time) string { return report.HumanDuration(now.Sub(since)) },
	"ago": func(t time.Time, now time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
}).ParseFS(assets, "status.html"))

// recentChanges is how many history events the page shows.
const recentChanges = 20

// Handler returns the HTTP handler of the agent.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /api/v1/findings", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := report.WriteJSON(w, report.Build(opts.Host, opts.Source.Snapshot())); err != nil {
			opts.Logger.Debug("write findings", "err", err)
		}
	})
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Healthy\n"))
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {
		if opts.Ready != nil && !opts.Ready() {
			http.Error(w, "first collection still running", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("Ready\n"))
	})
	mux.HandleFunc("GET /api/v1/events", serveEvents(opts))
	mux.HandleFunc("GET /api/v1/report", serveReport(opts))
	mux.HandleFunc("GET /api/v1/drills", serveDrills(opts))
	for path, h := range opts.Extra {
		mux.Handle(path, h)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := statusTemplate.Execute(&buf, statusData(opts)); err != nil {
			opts.Logger.Error("render status page", "err", err)
			http.Error(w, "cannot render status page", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	})
	return mux
}

type pageGroup struct {
	spof.GroupResult
	Unknown string
	// Proven is the last proof in words: "never", "not provable here", or
	// date, method and result.
	Proven string
}

type pagePanel struct {
	Title  string
	Header []string
	Rows   [][]string
}

type pageData struct {
	Host       string
	Version    string
	Status     string
	Now        time.Time
	Taken      time.Time
	Groups     []pageGroup
	Findings   []spof.Finding
	Collectors []agent.Outcome
	Panels     []pagePanel
	Map        template.HTML
	Changes    []journal.Event
}

func statusData(opts Options) pageData {
	snap := opts.Source.Snapshot()
	d := pageData{Host: opts.Host, Version: opts.Version, Now: time.Now(), Taken: snap.Taken}
	switch report.ExitCode(snap.Evaluation) {
	case report.ExitOK:
		d.Status = "OK"
	case report.ExitWarning:
		d.Status = "WARNING"
	default:
		d.Status = "CRITICAL"
	}
	for _, g := range snap.Evaluation.Groups {
		d.Groups = append(d.Groups, pageGroup{GroupResult: g, Unknown: g.Group.UnknownReason, Proven: report.ProofText(g.Group)})
	}
	d.Findings = snap.Evaluation.Findings
	d.Map = RedundancyMap(report.BuildMap(snap.Evaluation))
	if ev := opts.events(snap.Taken.Add(-7 * 24 * time.Hour)); len(ev) > 0 {
		d.Changes = slices.Clone(ev[max(0, len(ev)-recentChanges):])
		slices.Reverse(d.Changes)
	}
	// The snapshot is shared and immutable: sort a copy, never its slice.
	d.Collectors = slices.SortedStableFunc(slices.Values(snap.Outcomes), func(a, b agent.Outcome) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range opts.Panels {
		h, rows := p.Rows()
		d.Panels = append(d.Panels, pagePanel{Title: p.Title(), Header: h, Rows: rows})
	}
	return d
}
