package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/journal"
	"github.com/spofwatch/spofwatch/spof"
)

// Audit is the redundancy audit of one host over a window: what a person
// hands to an auditor or reads in a quarterly review. Field names are an
// interface (the JSON form and /api/v1/report): only ever add to them.
type Audit struct {
	Host        string             `json:"host"`
	Generated   time.Time          `json:"generated"`
	From        time.Time          `json:"from"`
	To          time.Time          `json:"to"`
	Groups      []AuditGroup       `json:"groups"`
	Incidents   []journal.Incident `json:"incidents"`
	Acceptances []AuditAcceptance  `json:"acceptances"`
	// HistoryFrom is the oldest event the journal holds: time before it in
	// the window is not accounted for.
	HistoryFrom *time.Time `json:"history_from"`
}

// AuditGroup is one group: its state now and its time in each state over
// the window.
type AuditGroup struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	State      string    `json:"state"`
	StateSince time.Time `json:"state_since"`
	// SecondsIn is the time spent in each state inside the window, seconds.
	SecondsIn map[string]float64 `json:"seconds_in"`
	// LastProven is when the group's redundancy was last exercised and
	// shown to work; null: never proven (or not provable here).
	LastProven *Proof `json:"last_proven"`
}

// Proof is a group's last proof of redundancy.
type Proof struct {
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Result string    `json:"result"`
}

// ProofOf returns a group's last proof for the outputs, nil when none.
func ProofOf(g spof.Group) *Proof {
	if g.Proof == nil || g.Proof.At.IsZero() {
		return nil
	}
	return &Proof{At: g.Proof.At.UTC(), Method: g.Proof.Method, Result: string(g.Proof.Result)}
}

// ProofText is the last proof in words, as the page and the audit table
// show it: "not provable here", "never", or "2026-11-23 zfs scrub passed".
func ProofText(g spof.Group) string {
	if p := ProofOf(g); p != nil {
		return fmt.Sprintf("%s %s %s", p.At.Format(time.DateOnly), p.Method, p.Result)
	}
	if g.Provable != spof.Provable {
		return "not provable here"
	}
	return "never"
}

// AuditAcceptance is one configured acceptance.
type AuditAcceptance struct {
	Code   string    `json:"code"`
	Group  string    `json:"group"`
	Member string    `json:"member,omitempty"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	Until  time.Time `json:"until"`
	// Matching counts the findings it covers now.
	Matching int `json:"matching"`
}

// BuildAudit measures the window [from, to] from the journal's events and
// states the current evaluation. Pure: to is the clock.
func BuildAudit(host string, res spof.Result, accs []spof.Acceptance, events []journal.Event, from, to time.Time) Audit {
	sum := journal.Summarize(events, from, to)
	a := Audit{Host: host, Generated: to, From: from, To: to, Incidents: []journal.Incident{}, Groups: []AuditGroup{}, Acceptances: []AuditAcceptance{}}
	for _, in := range sum.Incidents {
		// Info findings (a rebuild running, a VM notice) are facts, not
		// incidents an auditor needs to account for.
		if in.Severity != spof.SeverityInfo.String() {
			a.Incidents = append(a.Incidents, in)
		}
	}
	if start := journal.HistoryStart(events); !start.IsZero() {
		a.HistoryFrom = &start
	}
	hist := map[string]journal.GroupHistory{}
	for _, g := range sum.Groups {
		hist[g.Group] = g
	}
	for _, gr := range res.Groups {
		g := AuditGroup{ID: gr.Group.ID, Kind: string(gr.Group.Kind), State: string(gr.State), StateSince: gr.Since, SecondsIn: map[string]float64{}, LastProven: ProofOf(gr.Group)}
		if h, ok := hist[gr.Group.ID]; ok {
			for st, d := range h.TimeIn {
				g.SecondsIn[string(st)] = d.Seconds()
			}
		}
		a.Groups = append(a.Groups, g)
	}
	for _, acc := range accs {
		n := 0
		for _, f := range res.Findings {
			if f.Accepted != nil && f.Accepted.ID == acc.ID {
				n++
			}
		}
		a.Acceptances = append(a.Acceptances, AuditAcceptance{Code: string(acc.Code), Group: acc.Group, Member: acc.Member, Reason: acc.Reason, By: acc.By, Until: acc.Until, Matching: n})
	}
	slices.SortFunc(a.Acceptances, func(x, y AuditAcceptance) int { return cmp.Compare(x.Group+x.Code, y.Group+y.Code) })
	return a
}

// WriteAuditJSON writes the audit as indented JSON.
func WriteAuditJSON(w io.Writer, a Audit) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(a)
}

// nonRedundant are the states an audit accounts for, worst first.
var nonRedundant = []spof.GroupState{spof.StateDown, spof.StateRedundancyLost, spof.StateNoRedundancy, spof.StateDegraded, spof.StateUnknown}

// HumanDuration renders a duration for people: 3d 4h, 2h 5m, 40s.
func HumanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return d.String()
}

func secs(s float64) string { return HumanDuration(time.Duration(s * float64(time.Second))) }

// auditView is what the markdown and HTML forms show, computed once.
type auditView struct {
	Audit
	Rows      [][]string // group, state, since, time per non-redundant state..., last proven
	Header    []string
	Incidents [][]string
	Accepts   [][]string
}

func viewOf(a Audit) auditView {
	v := auditView{Audit: a, Header: []string{"Group", "State now", "Since"}}
	for _, st := range nonRedundant {
		v.Header = append(v.Header, "Time "+string(st))
	}
	v.Header = append(v.Header, "Last proven")
	for _, g := range a.Groups {
		row := []string{g.ID, g.State, g.StateSince.UTC().Format(time.DateTime) + "Z"}
		for _, st := range nonRedundant {
			row = append(row, secs(g.SecondsIn[string(st)]))
		}
		proven := "never"
		if g.LastProven != nil {
			proven = fmt.Sprintf("%s (%s, %s)", g.LastProven.At.UTC().Format(time.DateOnly), g.LastProven.Method, g.LastProven.Result)
		}
		v.Rows = append(v.Rows, append(row, proven))
	}
	for _, in := range a.Incidents {
		end := "ongoing"
		if !in.End.IsZero() {
			end = in.End.UTC().Format(time.DateTime) + "Z"
		}
		sev := in.Severity
		if in.Accepted {
			sev += " (accepted)"
		}
		v.Incidents = append(v.Incidents, []string{in.Start.UTC().Format(time.DateTime) + "Z", end, HumanDuration(in.Duration), sev, string(in.Code), in.Group, in.Member, in.Summary})
	}
	for _, acc := range a.Acceptances {
		v.Accepts = append(v.Accepts, []string{acc.Code, acc.Group, acc.Member, acc.Reason, acc.By, spof.FormatUntil(acc.Until), fmt.Sprint(acc.Matching)})
	}
	return v
}

// WriteAuditMarkdown writes the audit as Markdown.
func WriteAuditMarkdown(w io.Writer, a Audit) error {
	v := viewOf(a)
	var b strings.Builder
	fmt.Fprintf(&b, "# Redundancy audit: %s\n\n", mdCell(a.Host))
	fmt.Fprintf(&b, "Window %s to %s (%s). Generated by spofwatch.\n\n", a.From.UTC().Format(time.DateTime)+"Z", a.To.UTC().Format(time.DateTime)+"Z", HumanDuration(a.To.Sub(a.From)))
	if a.HistoryFrom == nil {
		b.WriteString("The history is empty: durations count from now on.\n\n")
	} else if a.HistoryFrom.After(a.From) {
		fmt.Fprintf(&b, "The history starts %s: time before it is not accounted for.\n\n", a.HistoryFrom.UTC().Format(time.DateTime)+"Z")
	}
	b.WriteString("## Groups\n\n")
	mdTable(&b, v.Header, v.Rows)
	b.WriteString("\n## Incidents\n\n")
	if len(v.Incidents) == 0 {
		b.WriteString("None in the window.\n")
	} else {
		mdTable(&b, []string{"Start", "End", "Duration", "Severity", "Code", "Group", "Member", "What failed"}, v.Incidents)
	}
	b.WriteString("\n## Accepted risks\n\n")
	if len(v.Accepts) == 0 {
		b.WriteString("None.\n")
	} else {
		mdTable(&b, []string{"Code", "Group", "Member", "Reason", "Owner", "Until", "Findings covered"}, v.Accepts)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdTable(b *strings.Builder, header []string, rows [][]string) {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = mdCell(c)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}

// mdCell makes peer text inert in a table cell: no control characters,
// nothing that breaks the table (|), and no Markdown or HTML syntax (links,
// images, emphasis, code, raw tags) that a viewer would act on.
func mdCell(s string) string {
	return mdEscaper.Replace(Printable(s))
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "&", "&amp;",
	"*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
	"!", `\!`, "#", `\#`, "~", `\~`,
)

var auditHTML = template.Must(template.New("audit").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Redundancy audit: {{.Host}}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}</style></head>
<body><h1>Redundancy audit: {{.Host}}</h1>
<p>Window {{.From.UTC.Format "2006-01-02 15:04:05Z"}} to {{.To.UTC.Format "2006-01-02 15:04:05Z"}}. Generated by spofwatch.</p>
{{if not .HistoryFrom}}<p>The history is empty: durations count from now on.</p>{{end}}
<h2>Groups</h2><table id="groups"><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>
<h2>Incidents</h2>{{if .Incidents}}<table id="incidents"><tr><th>Start</th><th>End</th><th>Duration</th><th>Severity</th><th>Code</th><th>Group</th><th>Member</th><th>What failed</th></tr>
{{range .Incidents}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>{{else}}<p>None in the window.</p>{{end}}
<h2>Accepted risks</h2>{{if .Accepts}}<table id="acceptances"><tr><th>Code</th><th>Group</th><th>Member</th><th>Reason</th><th>Owner</th><th>Until</th><th>Findings covered</th></tr>
{{range .Accepts}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>{{else}}<p>None.</p>{{end}}
</body></html>
`))

// WriteAuditHTML writes the audit as a self-contained HTML page.
func WriteAuditHTML(w io.Writer, a Audit) error { return auditHTML.Execute(w, viewOf(a)) }

// WriteAudit writes the audit in a format: markdown, json or html.
func WriteAudit(w io.Writer, a Audit, format string) error {
	switch format {
	case "json":
		return WriteAuditJSON(w, a)
	case "html":
		return WriteAuditHTML(w, a)
	case "markdown", "":
		return WriteAuditMarkdown(w, a)
	}
	return fmt.Errorf("unknown report format %q (markdown, json or html)", format)
}
