// Package scenario is the data language of the VM harness: what to set up
// inside the guest, which faults to inject, and what spofwatch must report
// afterwards. It is shared by the host (test/vm, which judges) and the guest
// agent (test/vm/guest, which runs the steps and polls until the
// expectations hold), so a scenario is plain JSON-serialisable data and other
// areas add theirs without touching the runner.
package scenario

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Plan is everything the guest agent runs in one boot.
type Plan struct {
	// Spofwatch is the path of the agent binary inside the guest.
	Spofwatch string `json:"spofwatch"`
	// CheckArgs are passed to every `spofwatch check --format json`.
	CheckArgs []string `json:"check_args,omitempty"`
	// DaemonArgs are passed to the daemon (listen address included).
	DaemonArgs []string `json:"daemon_args,omitempty"`
	// APIURL is where the daemon serves the findings JSON.
	APIURL    string     `json:"api_url"`
	Scenarios []Scenario `json:"scenarios"`
}

// Scenario is one setup with its faults and expectations, run in order.
// Scenarios in one boot share the kernel: later ones see earlier arrays and
// bonds, so expectations name their group.
type Scenario struct {
	Name string `json:"name"`
	// Needs lists the spofwatch collectors the expectations depend on
	// ("md", "bonding", "ipmi"). A check whose output lacks one of them
	// fails with a message naming it, instead of a confusing mismatch.
	Needs []string `json:"needs,omitempty"`
	Steps []Step   `json:"steps"`
}

// Step is one action and/or one assertion. Fields run in this order:
// Sh, Host, Daemon, Wait, Check, Latency. The first error ends the scenario.
type Step struct {
	Name string `json:"name"`
	// Sh are guest shell commands (busybox sh -c), each must exit 0.
	Sh []string `json:"sh,omitempty"`
	// Host are requests the host performs: "set_link <netdev> on|off"
	// (QMP), "qmp <command> [<JSON arguments>]" (any QMP command, e.g.
	// qom-set or device_del) and "ipmisim <console command>" (OpenIPMI
	// ipmi_sim).
	Host []string `json:"host,omitempty"`
	// Daemon is "start", "stop" or "restart" for the spofwatch daemon.
	Daemon string `json:"daemon,omitempty"`
	// Wait are kernel-side conditions polled until they hold: they prove
	// the fault really happened before spofwatch is judged.
	Wait []FileCond `json:"wait,omitempty"`
	// Check runs spofwatch and polls until every expectation holds or the
	// timeout passes; the last output is reported either way.
	Check *Check `json:"check,omitempty"`
	// Latency measures fault-to-finding time over several rounds.
	Latency *Latency `json:"latency,omitempty"`
	// TimeoutSeconds bounds Wait and Check (default 30).
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
}

// Timeout returns the step's timeout.
func (s Step) Timeout() time.Duration {
	if s.TimeoutSeconds <= 0 {
		return 30 * time.Second
	}
	return time.Duration(s.TimeoutSeconds * float64(time.Second))
}

// FileCond holds when the file's content contains Contains (or, with Not,
// does not).
type FileCond struct {
	Path     string `json:"path"`
	Contains string `json:"contains"`
	Not      bool   `json:"not,omitempty"`
}

func (c FileCond) String() string {
	if c.Not {
		return fmt.Sprintf("%s does not contain %q", c.Path, c.Contains)
	}
	return fmt.Sprintf("%s contains %q", c.Path, c.Contains)
}

// Holds reports whether content satisfies the condition.
func (c FileCond) Holds(content string) bool {
	return strings.Contains(content, c.Contains) != c.Not
}

// Check is one assertion on spofwatch's JSON.
type Check struct {
	// API reads the daemon's /api/v1/findings instead of running
	// `spofwatch check`.
	API    bool     `json:"api,omitempty"`
	Args   []string `json:"args,omitempty"`
	Expect []Expect `json:"expect"`
}

// Expect is one assertion about one group. Only the fields that are set are
// checked.
type Expect struct {
	Group string `json:"group"`
	// GroupMatch, when set instead of Group, is a regular expression
	// exactly one reported group ID must match, for groups named after
	// kernel instance numbers that vary from boot to boot (an NVMe
	// namespace head, nvme<N>n1).
	GroupMatch string `json:"group_match,omitempty"`
	// Absent asserts the group is not reported at all.
	Absent bool `json:"absent,omitempty"`
	// State is the group state (redundant, degraded, redundancy_lost,
	// no_redundancy, down, unknown).
	State    string `json:"state,omitempty"`
	Working  *int   `json:"working,omitempty"`
	Required *int   `json:"required,omitempty"`
	Total    *int   `json:"total,omitempty"`
	// Members maps a member name to its expected state.
	Members map[string]string `json:"members,omitempty"`
	// MemberDomains maps a member name to domain key=value pairs it must
	// carry ("disk": "vdj").
	MemberDomains map[string]map[string]string `json:"member_domains,omitempty"`
	// Findings must all be present for the group.
	Findings []FindingExpect `json:"findings,omitempty"`
	// NoFindings lists codes that must be absent for the group; "*" means
	// the group has no finding at all.
	NoFindings []string `json:"no_findings,omitempty"`
	// LastProven is the result the group's last_proven must carry
	// ("passed", "failed"), or "none" for never proven.
	LastProven string `json:"last_proven,omitempty"`
}

// FindingExpect matches one finding of the expectation's group.
type FindingExpect struct {
	// Code is the finding code; empty matches any code.
	Code     string `json:"code,omitempty"`
	Severity string `json:"severity,omitempty"`
	Member   string `json:"member,omitempty"`
	// Summary is a regular expression the summary must match.
	Summary string `json:"summary,omitempty"`
}

// Latency measures, Rounds times, the time from a fault to the daemon's
// API satisfying Changed, then restores and waits for Restored.
type Latency struct {
	Name     string   `json:"name"`
	Rounds   int      `json:"rounds"`
	Fault    Action   `json:"fault"`
	Changed  []Expect `json:"changed"`
	Restore  Action   `json:"restore"`
	Restored []Expect `json:"restored"`
	// TargetP50Millis is the acceptance target for the median.
	TargetP50Millis float64 `json:"target_p50_ms,omitempty"`
	// PollMillis is the pause between API reads (default 5).
	PollMillis int `json:"poll_millis,omitempty"`
}

// Action is a fault or a repair: guest commands (run without a shell, so
// their return is timed exactly) or host requests.
type Action struct {
	Exec [][]string `json:"exec,omitempty"`
	Sh   []string   `json:"sh,omitempty"`
	Host []string   `json:"host,omitempty"`
	// Wait conditions after the action (not part of the timed path for
	// Restore; for Fault they are checked after the finding changed).
	Wait []FileCond `json:"wait,omitempty"`
}

// N is a helper for the optional integer fields.
func N(n int) *int { return &n }

// Report is spofwatch's JSON (`check --format json`, /api/v1/findings).
// It is decoded independently of package report on purpose: the harness
// reads the document as outside tooling does, so a renamed key in report
// fails the VM scenarios instead of silently following along.
type Report struct {
	Host       string            `json:"host"`
	Groups     []Group           `json:"groups"`
	Findings   []Finding         `json:"findings"`
	Collectors []CollectorStatus `json:"collectors"`
}

// Group is one group in the report.
type Group struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	State    string   `json:"state"`
	Total    int      `json:"members_total"`
	Working  int      `json:"members_working"`
	Required int      `json:"members_required"`
	Members  []Member `json:"members"`
	// LastProven is null when never proven.
	LastProven *Proof `json:"last_proven"`
}

// Proof is a group's last proof in the report.
type Proof struct {
	At     string `json:"at"`
	Method string `json:"method"`
	Result string `json:"result"`
}

// Member is one member in the report.
type Member struct {
	Name    string            `json:"name"`
	State   string            `json:"state"`
	Domains map[string]string `json:"domains"`
}

// Finding is one finding in the report.
type Finding struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Group    string `json:"group"`
	Member   string `json:"member"`
	Summary  string `json:"summary"`
	Since    string `json:"since"`
}

// CollectorStatus is one collector's health in the report.
type CollectorStatus struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// ParseReport decodes spofwatch's JSON.
func ParseReport(b []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode spofwatch JSON: %w", err)
	}
	return r, nil
}

// Group returns the group with the given ID.
func (r Report) Group(id string) (Group, bool) {
	for _, g := range r.Groups {
		if g.ID == id {
			return g, true
		}
	}
	return Group{}, false
}

// GroupFindings returns the findings of one group.
func (r Report) GroupFindings(id string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Group == id {
			out = append(out, f)
		}
	}
	return out
}

// MissingCollectors returns the needed collectors the report does not list.
func (r Report) MissingCollectors(needs []string) []string {
	var missing []string
	for _, n := range needs {
		found := false
		for _, c := range r.Collectors {
			if c.Name == n {
				found = true
			}
		}
		if !found {
			missing = append(missing, n)
		}
	}
	return missing
}

// Verify returns one line per expectation that does not hold; nil means all
// hold.
func Verify(r Report, expects []Expect) []string {
	var errs []string
	for _, e := range expects {
		errs = append(errs, e.verify(r)...)
	}
	return errs
}

func (e Expect) verify(r Report) []string {
	if e.GroupMatch != "" {
		re, err := regexp.Compile("^(?:" + e.GroupMatch + ")$")
		if err != nil {
			return []string{fmt.Sprintf("group_match %q: %v", e.GroupMatch, err)}
		}
		var ids []string
		for _, g := range r.Groups {
			if re.MatchString(g.ID) {
				ids = append(ids, g.ID)
			}
		}
		if len(ids) != 1 {
			return []string{fmt.Sprintf("group_match %q: %d groups match %v, want exactly one", e.GroupMatch, len(ids), ids)}
		}
		e.Group, e.GroupMatch = ids[0], ""
	}
	g, ok := r.Group(e.Group)
	if e.Absent {
		if ok {
			return []string{fmt.Sprintf("group %s: reported, want absent", e.Group)}
		}
		return nil
	}
	if !ok {
		ids := make([]string, 0, len(r.Groups))
		for _, g := range r.Groups {
			ids = append(ids, g.ID)
		}
		return []string{fmt.Sprintf("group %s: not reported (groups: %s)", e.Group, strings.Join(ids, ", "))}
	}
	var errs []string
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Sprintf("group %s: ", e.Group)+fmt.Sprintf(format, a...))
	}
	if e.State != "" && g.State != e.State {
		bad("state %s, want %s", g.State, e.State)
	}
	for _, c := range []struct {
		name string
		want *int
		got  int
	}{{"members_working", e.Working, g.Working}, {"members_required", e.Required, g.Required}, {"members_total", e.Total, g.Total}} {
		if c.want != nil && *c.want != c.got {
			bad("%s %d, want %d", c.name, c.got, *c.want)
		}
	}
	member := func(name string) (Member, bool) {
		for _, m := range g.Members {
			if m.Name == name {
				return m, true
			}
		}
		return Member{}, false
	}
	for name, want := range e.Members {
		m, ok := member(name)
		switch {
		case !ok:
			bad("member %s not reported (members: %s)", name, memberList(g))
		case m.State != want:
			bad("member %s state %s, want %s", name, m.State, want)
		}
	}
	for name, doms := range e.MemberDomains {
		m, ok := member(name)
		if !ok {
			bad("member %s not reported (members: %s)", name, memberList(g))
			continue
		}
		for k, v := range doms {
			if m.Domains[k] != v {
				bad("member %s domain %s=%q, want %q", name, k, m.Domains[k], v)
			}
		}
	}
	switch {
	case e.LastProven == "":
	case e.LastProven == "none" && g.LastProven != nil:
		bad("last_proven %s %s at %s, want never proven", g.LastProven.Method, g.LastProven.Result, g.LastProven.At)
	case e.LastProven == "none":
	case g.LastProven == nil:
		bad("last_proven null, want %s", e.LastProven)
	case g.LastProven.Result != e.LastProven:
		bad("last_proven %s %s at %s, want %s", g.LastProven.Method, g.LastProven.Result, g.LastProven.At, e.LastProven)
	}
	fs := r.GroupFindings(e.Group)
	for _, fe := range e.Findings {
		if !anyFinding(fs, fe) {
			bad("no finding %s; findings: %s", fe, findingList(fs))
		}
	}
	for _, code := range e.NoFindings {
		for _, f := range fs {
			if code == "*" || f.Code == code {
				bad("unexpected finding %s (%s): %s", f.Code, f.Severity, f.Summary)
			}
		}
	}
	return errs
}

func (fe FindingExpect) String() string {
	s := fe.Code
	if s == "" {
		s = "(any code)"
	}
	if fe.Severity != "" {
		s += " severity=" + fe.Severity
	}
	if fe.Member != "" {
		s += " member=" + fe.Member
	}
	if fe.Summary != "" {
		s += fmt.Sprintf(" summary~%q", fe.Summary)
	}
	return s
}

func anyFinding(fs []Finding, fe FindingExpect) bool {
	for _, f := range fs {
		if (fe.Code != "" && f.Code != fe.Code) || (fe.Severity != "" && f.Severity != fe.Severity) || (fe.Member != "" && f.Member != fe.Member) {
			continue
		}
		if fe.Summary != "" {
			re, err := regexp.Compile(fe.Summary)
			if err != nil || !re.MatchString(f.Summary) {
				continue
			}
		}
		return true
	}
	return false
}

func memberList(g Group) string {
	var s []string
	for _, m := range g.Members {
		s = append(s, m.Name+"="+m.State)
	}
	return strings.Join(s, ", ")
}

func findingList(fs []Finding) string {
	if len(fs) == 0 {
		return "none"
	}
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%s(%s, member %q): %s", f.Code, f.Severity, f.Member, f.Summary))
	}
	return strings.Join(s, "; ")
}

// Message is one line of the guest<->host control protocol (JSON lines over
// a virtio-serial port).
type Message struct {
	// Type: guest->host "hello", "host" (request), "mark", "step",
	// "latency", "changed", "log", "done"; host->guest "ack".
	Type string `json:"t"`
	ID   int    `json:"id,omitempty"`
	// Uptime is the guest's /proc/uptime when the message was sent.
	Uptime float64        `json:"up,omitempty"`
	Cmd    string         `json:"cmd,omitempty"`
	Name   string         `json:"name,omitempty"`
	Err    string         `json:"err,omitempty"`
	Step   *StepResult    `json:"step,omitempty"`
	Lat    *LatencyResult `json:"lat,omitempty"`
}

// StepResult is what the guest reports after a step.
type StepResult struct {
	Scenario string `json:"scenario"`
	Step     string `json:"step"`
	// Err is set when an action or wait failed (the step could not be
	// judged) or the expectations did not hold by the timeout.
	Err string `json:"err,omitempty"`
	// Output is the last spofwatch JSON (or its stderr on failure).
	Output   string  `json:"output,omitempty"`
	ExitCode int     `json:"exit_code"`
	Attempts int     `json:"attempts,omitempty"`
	Seconds  float64 `json:"seconds"`
	// Log is the guest command output for the step (shell, waits).
	Log string `json:"log,omitempty"`
}

// LatencyResult is one measured fault->finding interval.
type LatencyResult struct {
	Name  string `json:"name"`
	Round int    `json:"round"`
	// GuestMillis is measured in the guest from the fault action's return
	// (or the host's ack) to the API showing the change.
	GuestMillis float64 `json:"guest_ms"`
	// HostID ties a host-side fault to the "changed" message so the host
	// can measure from its own set_link.
	HostID int    `json:"host_id,omitempty"`
	Polls  int    `json:"polls"`
	Err    string `json:"err,omitempty"`
}
