package spof

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Evaluate answers "which single failure would take this host down now?"
// for every group. It is a pure function of its input.
func Evaluate(in Input) Result {
	var res Result
	var findings []Finding
	drills := latestDrills(in.Drills)
	for _, g := range in.Groups {
		d, drilled := drills[g.ID]
		if drilled {
			g = applyDrill(g, d)
		}
		gr, fs := evaluateGroup(g)
		if drilled {
			gr.LastDrill = &d
			if d.Result == ProofFailed {
				fs = append(fs, drillFailedFinding(g, d))
			}
		}
		gr.Since = in.Now
		if p, ok := in.PreviousStates[g.ID]; ok && p.State == gr.State && !p.Since.IsZero() {
			gr.Since = p.Since
		}
		res.Groups = append(res.Groups, gr)
		findings = append(findings, fs...)
		if f, ok := untestedFinding(g, in.ProofPolicy, in.FirstSeen[g.ID], in.Now); ok {
			findings = append(findings, f)
		}
	}
	for _, c := range in.Collectors {
		if c.OK {
			continue
		}
		findings = append(findings, Finding{
			Code:     CodeCollectorUnavailable,
			Severity: DefaultSeverity(CodeCollectorUnavailable),
			Group:    CollectorGroupID(c.Name),
			Summary:  fmt.Sprintf("collector %s unavailable: %s", c.Name, orUnknown(c.Error)),
			Details:  "Its groups are reported as unknown until it recovers; unknown is never reported as healthy.",
		})
	}
	for _, c := range in.HostConditions {
		findings = append(findings, conditionFinding("", c))
	}

	findings = dedupe(findings)
	findings, res.AcceptancesMatched = applyAcceptances(findings, in.Acceptances, in.Now)
	since := make(map[string]Finding, len(in.Previous))
	for _, p := range in.Previous {
		since[p.Key()] = p
	}
	for i := range findings {
		if p, ok := since[findings[i].Key()]; ok && !p.Since.IsZero() {
			findings[i].Since = p.Since
		} else {
			findings[i].Since = in.Now
		}
	}
	// Keys are unique (group IDs; code+group+member after dedupe), so an
	// unstable sort is still deterministic.
	slices.SortFunc(res.Groups, func(a, b GroupResult) int { return strings.Compare(a.Group.ID, b.Group.ID) })
	slices.SortFunc(findings, compareFindings)
	res.Findings = findings
	return res
}

// CollectorGroupID is the group a whole-collector failure is reported under.
func CollectorGroupID(collector string) string { return "collector/" + collector }

func compareFindings(a, b Finding) int {
	if a.Severity != b.Severity {
		return int(b.Severity) - int(a.Severity)
	}
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Code), string(b.Code)); c != 0 {
		return c
	}
	return strings.Compare(a.Member, b.Member)
}

// dedupe keeps one finding per key, the most severe.
func dedupe(fs []Finding) []Finding {
	idx := make(map[string]int, len(fs))
	out := fs[:0]
	for _, f := range fs {
		if i, ok := idx[f.Key()]; ok {
			if f.Severity > out[i].Severity {
				out[i] = f
			}
			continue
		}
		idx[f.Key()] = len(out)
		out = append(out, f)
	}
	return out
}

func evaluateGroup(g Group) (GroupResult, []Finding) {
	gr := GroupResult{Group: g, Total: len(g.Members)}
	var fs []Finding
	add := func(code Code, member, summary, details string) {
		fs = append(fs, Finding{Code: code, Severity: DefaultSeverity(code), Group: g.ID, Member: member, Summary: summary, Details: details})
	}
	fn := g.Function
	if fn == "" {
		fn = g.ID
	}

	// A source's own verdicts on the whole group are kept apart from the
	// other conditions: they decide the state together with the count.
	var verdicts []sourceVerdict
	var conditions []Condition
	for _, c := range g.Conditions {
		if st, ok := conditionVerdict(c); ok {
			verdicts = append(verdicts, sourceVerdict{st, c})
		} else {
			conditions = append(conditions, c)
		}
	}

	if g.UnknownReason != "" || (len(g.Members) == 0 && g.Required <= 0 && len(verdicts) == 0) {
		reason := g.UnknownReason
		if reason == "" {
			reason = "no members reported"
		}
		gr.State = StateUnknown
		add(CodeCollectorUnavailable, "", fmt.Sprintf("%s: state unknown: %s", fn, reason), "")
		return gr, fs
	}

	if g.DownReason != "" {
		gr.State = StateDown
		for _, m := range g.Members {
			if m.State.Working() {
				gr.Working++
			}
		}
		add(CodeGroupDown, "", fmt.Sprintf("%s is down: %s", fn, g.DownReason), "The function this group provides is out.")
		fs = append(fs, outvoted(g.ID, verdicts, StateDown, -1)...)
		for _, c := range conditions {
			fs = append(fs, conditionFinding(g.ID, c))
		}
		return gr, fs
	}

	// A group without members (a BMC fan redundancy sensor without fan
	// sensors) has only its sources' verdicts: the worst one is the state.
	if len(g.Members) == 0 && g.Required <= 0 {
		w := worstVerdict(verdicts)
		gr.State = verdicts[w].state
		if stateCode(gr.State) != "" {
			fs = append(fs, verdictFinding(g.ID, verdicts[w]))
		}
		fs = append(fs, outvoted(g.ID, verdicts, gr.State, w)...)
		for _, c := range conditions {
			fs = append(fs, conditionFinding(g.ID, c))
		}
		return gr, fs
	}

	required := max(g.Required, 1)
	var working, failed, unknown []Member
	for _, m := range g.Members {
		switch {
		case m.State.Working():
			working = append(working, m)
		case m.State == MemberUnknown:
			unknown = append(unknown, m)
		default:
			failed = append(failed, m)
		}
		switch m.State {
		case MemberDegraded:
			add(CodeMemberDegraded, m.Name, fmt.Sprintf("%s: %s is degraded: %s", fn, m.Name, orUnknown(m.Detail)), "")
		case MemberRebuilding:
			add(CodeRebuildInProgress, m.Name, fmt.Sprintf("%s: %s is rebuilding: %s", fn, m.Name, orUnknown(m.Detail)), "It does not count as a working copy until it is in sync.")
		case MemberUnknown:
			add(CodeCollectorUnavailable, m.Name, fmt.Sprintf("%s: state of %s unknown: %s", fn, m.Name, orUnknown(m.Detail)), "")
		}
	}
	gr.Working = len(working)

	// Unknown members count as failed for the pessimistic verdict and as
	// working for the optimistic one. A source's verdict worse than the
	// count wins, and a better one never hides a worse count: Worse, the one
	// order of states. When the two combined verdicts disagree, the group's
	// state depends on what we could not read, so it is unknown; the
	// optimistic one is then a proven lower bound, reported with what is
	// known to have failed.
	pessimistic, optimistic, _ := countVerdicts(g.Members, required)
	count, bound, src := pessimistic, pessimistic, -1
	if len(verdicts) > 0 {
		src = worstVerdict(verdicts)
	}
	combine := func(count GroupState) GroupState {
		if src < 0 {
			return count
		}
		return Worse(count, verdicts[src].state)
	}
	gr.State = combine(pessimistic)
	if gr.State != combine(optimistic) {
		gr.State = StateUnknown
		count, bound = optimistic, combine(optimistic)
	}
	// The state (or its lower bound) gets exactly one finding: the source's
	// when the source made it worse than the count, else the count's own.
	if src >= 0 && StateRank(verdicts[src].state) <= StateRank(count) {
		src = -1
	}
	margin := len(working) - required
	switch {
	case src >= 0:
		// No lower bound of "no redundancy": unknown members would have
		// to be working for it, so it proves nothing.
		if gr.State != StateUnknown || bound != StateNoRedundancy {
			fs = append(fs, verdictFinding(g.ID, verdicts[src]))
		}
	case gr.State == StateUnknown:
		switch bound {
		case StateDown:
			add(CodeGroupDown, "", fmt.Sprintf("%s is down even if the unreadable members work: %s", fn, failedList(failed, unknown)), "")
		case StateRedundancyLost:
			add(CodeRedundancyLost, "", fmt.Sprintf("%s: redundancy lost even if the unreadable members work: %s", fn, failedList(failed, unknown)), "")
		case StateDegraded:
			add(CodeRedundancyDegraded, "", fmt.Sprintf("%s: redundancy degraded even if the unreadable members work: %s", fn, failedList(failed, unknown)), "")
		}
	case gr.State == StateDown:
		add(CodeGroupDown, "", fmt.Sprintf("%s is down: %d working of %d required%s", fn, len(working), required, failedClause(failed)),
			"The function this group provides is out. Replace or restore the failed members.")
	case gr.State == StateRedundancyLost:
		add(CodeRedundancyLost, "", fmt.Sprintf("%s: redundancy lost: %s, %s", fn, failedList(failed, unknown), runsOn(working, required)),
			"One more failure is an outage. Replace the failed member now.")
	case gr.State == StateDegraded:
		add(CodeRedundancyDegraded, "", fmt.Sprintf("%s: redundancy degraded: %s; %d of %d working, %d more may fail", fn, failedList(failed, unknown), len(working), len(g.Members), margin),
			"The group still tolerates a failure. Replace the failed member.")
	case gr.State == StateNoRedundancy:
		add(CodeNoRedundancy, "", fmt.Sprintf("%s has no redundancy: %s", fn, runsOn(working, required)),
			"Any failure of a member is an outage of the function. This is by design of the setup, not a fault.")
	}
	fs = append(fs, outvoted(g.ID, verdicts, bound, src)...)

	if margin > 0 && gr.State != StateUnknown {
		fs = append(fs, sharedDomains(g, working, required, fn)...)
	}
	for _, c := range conditions {
		fs = append(fs, conditionFinding(g.ID, c))
	}
	return gr, fs
}

// sourceVerdict is a group-level condition with the state it stands for.
type sourceVerdict struct {
	state GroupState
	cond  Condition
}

// worstVerdict returns the index of the worst of the sources' verdicts, the
// first of equals. vs must not be empty.
func worstVerdict(vs []sourceVerdict) int {
	worst := 0
	for i, v := range vs {
		if StateRank(v.state) > StateRank(vs[worst].state) {
			worst = i
		}
	}
	return worst
}

// verdictFinding is the finding of the source's verdict that decided the
// group's state; its code is the state's.
func verdictFinding(group string, v sourceVerdict) Finding {
	c := v.cond
	c.Code = stateCode(v.state)
	return conditionFinding(group, c)
}

// outvoted turns the sources' verdicts that did not decide the state into
// info notices, so a source that disagrees stays visible without a finding
// code that contradicts the state. winner is the index of the verdict that
// decided it, or -1. A verdict equal to the state adds nothing; neither does
// a source calling redundant a group that has no redundancy by design.
func outvoted(group string, vs []sourceVerdict, state GroupState, winner int) []Finding {
	var fs []Finding
	for i, v := range vs {
		if i == winner || v.state == state || !hasFailure(v.state) && !hasFailure(state) {
			continue
		}
		c := v.cond
		c.Code, c.Severity = CodeNotice, SeverityInfo
		fs = append(fs, conditionFinding(group, c))
	}
	return fs
}

// sharedDomains applies the failure-domain rule: a domain value v is a single
// point of failure when the working members outside v are fewer than
// required.
func sharedDomains(g Group, working []Member, required int, fn string) []Finding {
	type domainValue struct{ key, value string }
	seen := map[domainValue]bool{}
	var order []domainValue
	for _, m := range working {
		for k, v := range m.Domains {
			if v == "" {
				continue
			}
			dv := domainValue{k, v}
			if !seen[dv] {
				seen[dv] = true
				order = append(order, dv)
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].key != order[j].key {
			return order[i].key < order[j].key
		}
		return order[i].value < order[j].value
	})
	var fs []Finding
	for _, dv := range order {
		outside := 0
		var inside []string
		for _, m := range working {
			if m.Domains[dv.key] == dv.value {
				inside = append(inside, m.Name)
			} else {
				outside++
			}
		}
		if outside >= required {
			continue
		}
		fs = append(fs, Finding{
			Code:     CodeSharedFailureDomain,
			Severity: domainSeverity(dv.key),
			Group:    g.ID,
			Member:   dv.key + "=" + dv.value,
			Summary: fmt.Sprintf("%s: single point of failure: %s %s carries %s; losing it leaves %d of %d required",
				fn, dv.key, dv.value, strings.Join(inside, ", "), outside, required),
			Details: fmt.Sprintf("failure domain %s=%s", dv.key, dv.value),
		})
	}
	return fs
}

// domainSeverity is the severity of a shared domain. A shared controller is
// info: the onboard HBA of a two-disk server is as much a single point as the
// mainboard it sits on, and warning on every such host would bury the
// actionable cases (one disk, one NIC card, one UPS).
func domainSeverity(key string) Severity {
	if key == DomainController {
		return SeverityInfo
	}
	return DefaultSeverity(CodeSharedFailureDomain)
}

func conditionFinding(group string, c Condition) Finding {
	code := c.Code
	if code == "" {
		code = stateCode(c.State)
	}
	sev := c.Severity
	if sev == 0 {
		sev = DefaultSeverity(code)
	}
	return Finding{Code: code, Severity: sev, Group: group, Member: c.Member, Summary: c.Summary, Details: c.Details}
}

func failedList(failed, unknown []Member) string {
	var parts []string
	for _, m := range failed {
		part := m.Name + " " + string(m.State)
		if m.Detail != "" {
			part += " (" + m.Detail + ")"
		}
		parts = append(parts, part)
	}
	for _, m := range unknown {
		parts = append(parts, m.Name+" unknown")
	}
	return strings.Join(parts, ", ")
}

func failedClause(failed []Member) string {
	if len(failed) == 0 {
		return ""
	}
	return "; " + failedList(failed, nil)
}

func runsOn(working []Member, required int) string {
	names := make([]string, len(working))
	for i, m := range working {
		names[i] = m.Name
	}
	switch {
	case len(names) == 1:
		return "runs on " + names[0] + " alone"
	case required == len(names):
		return "needs all of " + strings.Join(names, ", ")
	}
	return "runs on " + strings.Join(names, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
