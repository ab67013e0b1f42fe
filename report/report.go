// Package report renders a snapshot for people and tools: the JSON shape
// other tooling relies on (check --format json and /api/v1/findings), the
// text table of `check`, and the Nagios plugin line and exit code.
//
// Text and Nagios output show peer-supplied text through Printable: control
// characters and escape sequences appear as visible escapes (`\x1b`), never
// raw. Nagios output also writes `|` as `¦` (U+00A6), since `|` would start
// the performance data. JSON is exact.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/spofwatch/spofwatch/spof"
)

// Report is the JSON document of DESIGN.md. Field names are an interface:
// never rename one.
type Report struct {
	Host       string      `json:"host"`
	Groups     []Group     `json:"groups"`
	Findings   []Finding   `json:"findings"`
	Collectors []Collector `json:"collectors"`
}

// Group is one redundancy group with its verdict.
type Group struct {
	ID              string   `json:"id"`
	Kind            string   `json:"kind"`
	State           string   `json:"state"`
	MembersTotal    int      `json:"members_total"`
	MembersWorking  int      `json:"members_working"`
	MembersRequired int      `json:"members_required"`
	Members         []Member `json:"members"`
	// StateSince is when the group entered its state (RFC 3339): "redundant
	// since", "degraded for".
	StateSince string `json:"state_since"`
	// LastProven is the group's last proof of redundancy (a completed md
	// check, a ZFS scrub, a UPS self-test); null when never proven or not
	// provable here.
	LastProven *Proof `json:"last_proven"`
}

// Member is one part of a group.
type Member struct {
	Name    string            `json:"name"`
	State   string            `json:"state"`
	Domains map[string]string `json:"domains"`
}

// Finding is one active finding.
type Finding struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Group    string `json:"group"`
	Member   string `json:"member"`
	Summary  string `json:"summary"`
	Since    string `json:"since"`
	// Accepted is present only while an acceptance covers the finding.
	Accepted *Accepted `json:"accepted,omitempty"`
}

// Accepted is an operator's acceptance of a finding (config accept:).
type Accepted struct {
	Reason string `json:"reason"`
	Until  string `json:"until"`
	By     string `json:"by"`
}

// Collector is one collector's health.
type Collector struct {
	Name            string  `json:"name"`
	OK              bool    `json:"ok"`
	Error           string  `json:"error"`
	DurationSeconds float64 `json:"duration_seconds"`
	LastSuccess     *string `json:"last_success"`
}

func byOwner(by string) string {
	if by == "" {
		return ""
	}
	return " by " + Printable(by)
}

// Build turns a snapshot into the report.
func Build(host string, snap *agent.Snapshot) Report {
	r := Report{Host: host, Groups: []Group{}, Findings: []Finding{}, Collectors: []Collector{}}
	for _, gr := range snap.Evaluation.Groups {
		g := Group{
			ID: gr.Group.ID, Kind: string(gr.Group.Kind), State: string(gr.State),
			MembersTotal: gr.Total, MembersWorking: gr.Working, MembersRequired: gr.Group.Required,
			Members: []Member{}, StateSince: gr.Since.UTC().Format(time.RFC3339),
			LastProven: ProofOf(gr.Group),
		}
		for _, m := range gr.Group.Members {
			dom := m.Domains
			if dom == nil {
				dom = map[string]string{}
			}
			state := string(m.State)
			if gr.Group.UnknownReason != "" {
				state = string(spof.MemberUnknown) // last known members of an unreadable group
			}
			g.Members = append(g.Members, Member{Name: m.Name, State: state, Domains: dom})
		}
		r.Groups = append(r.Groups, g)
	}
	for _, f := range snap.Evaluation.Findings {
		rf := Finding{
			Code: string(f.Code), Severity: f.Severity.String(), Group: f.Group, Member: f.Member,
			Summary: f.Summary, Since: f.Since.UTC().Format(time.RFC3339),
		}
		if a := f.Accepted; a != nil {
			rf.Accepted = &Accepted{Reason: a.Reason, Until: a.Until.UTC().Format(time.RFC3339), By: a.By}
		}
		r.Findings = append(r.Findings, rf)
	}
	for _, o := range snap.Outcomes {
		c := Collector{Name: o.Name, OK: o.OK, Error: o.Error, DurationSeconds: o.Duration.Seconds()}
		if !o.LastSuccess.IsZero() {
			s := o.LastSuccess.UTC().Format(time.RFC3339Nano)
			c.LastSuccess = &s
		}
		r.Collectors = append(r.Collectors, c)
	}
	return r
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Nagios exit codes.
const (
	ExitOK       = 0
	ExitWarning  = 1
	ExitCritical = 2
	ExitUnknown  = 3
)

// ExitCode maps the worst active finding to a Nagios exit code. Info
// findings are OK. An unknown group without a warning-or-worse finding
// cannot happen: unknown always raises collector_unavailable.
func ExitCode(res spof.Result) int {
	worst, ok := res.Worst()
	switch {
	case !ok || worst <= spof.SeverityInfo:
		return ExitOK
	case worst == spof.SeverityWarning:
		return ExitWarning
	}
	return ExitCritical
}

var statusWord = map[int]string{ExitOK: "OK", ExitWarning: "WARNING", ExitCritical: "CRITICAL", ExitUnknown: "UNKNOWN"}

// WriteNagios writes the plugin output: a status line, the findings as long
// text, and perfdata of group margins. Text from peers is made printable
// and any `|` in it is written as `¦`, so the only `|` is the perfdata
// separator of the status line.
func WriteNagios(w io.Writer, res spof.Result) error {
	code := ExitCode(res)
	var actionable []spof.Finding
	for _, f := range res.Findings {
		if f.EffectiveSeverity() > spof.SeverityInfo {
			actionable = append(actionable, f)
		}
	}
	head := fmt.Sprintf("SPOFWATCH %s - %d groups", statusWord[code], len(res.Groups))
	if len(actionable) > 0 {
		head += ": " + nagiosText(actionable[0].Summary)
		if len(actionable) > 1 {
			head += fmt.Sprintf(" (+%d more)", len(actionable)-1)
		}
	} else {
		head += ", no single point of failure found"
	}
	var perf []string
	for _, g := range res.Groups {
		perf = append(perf, fmt.Sprintf("'%s'=%d;;;0;%d", strings.ReplaceAll(nagiosText(g.Group.ID), "'", ""), g.Working, g.Total))
	}
	if _, err := fmt.Fprintf(w, "%s | %s\n", head, strings.Join(perf, " ")); err != nil {
		return err
	}
	for _, f := range res.Findings {
		sev, summary := strings.ToUpper(f.Severity.String()), nagiosText(f.Summary)
		if a := f.Accepted; a != nil {
			sev = "ACCEPTED"
			summary += nagiosText(fmt.Sprintf(" [accepted until %s: %s]", spof.FormatUntil(a.Until), a.Reason))
		}
		if _, err := fmt.Fprintf(w, "%s %s: %s\n", sev, nagiosText(string(f.Code)), summary); err != nil {
			return err
		}
	}
	return nil
}

// WriteText writes the table a person acts on: each group with its state,
// working/required, what failed and what is left; then the findings. Text
// from peers is made printable (Printable).
func WriteText(w io.Writer, host string, snap *agent.Snapshot) error {
	res := snap.Evaluation
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "host %s: %s\n\n", Printable(host), statusWord[ExitCode(res)])
	fmt.Fprintln(tw, "GROUP\tSTATE\tWORKING/REQUIRED\tFAILED\tLEFT")
	for _, gr := range res.Groups {
		var failed, left []string
		for _, m := range gr.Group.Members {
			if m.State.Working() && gr.Group.UnknownReason == "" {
				left = append(left, Printable(m.Name))
			} else {
				failed = append(failed, fmt.Sprintf("%s (%s)", Printable(m.Name), Printable(string(m.State))))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", Printable(gr.Group.ID), Printable(string(gr.State)), gr.Working, gr.Group.Required, dash(failed), dash(left))
	}
	fmt.Fprintln(tw)
	if len(res.Findings) == 0 {
		fmt.Fprintln(tw, "no findings")
	}
	findings := append([]spof.Finding(nil), res.Findings...)
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].EffectiveSeverity() > findings[j].EffectiveSeverity() })
	for _, f := range findings {
		sev, summary := strings.ToUpper(f.Severity.String()), Printable(f.Summary)
		if a := f.Accepted; a != nil {
			sev = "ACCEPTED"
			summary += fmt.Sprintf(" [accepted until %s%s: %s]", spof.FormatUntil(a.Until), byOwner(a.By), Printable(a.Reason))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", sev, Printable(string(f.Code)), summary)
	}
	var bad []string
	for _, o := range snap.Outcomes {
		if !o.OK {
			bad = append(bad, fmt.Sprintf("%s: %s", Printable(o.Name), Printable(o.Error)))
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(tw, "\ncollectors failing: %s\n", strings.Join(bad, "; "))
	}
	return tw.Flush()
}

func dash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}
