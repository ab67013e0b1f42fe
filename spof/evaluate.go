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
	for _, g := range in.Groups {
		gr, fs := evaluateGroup(g)
		res.Groups = append(res.Groups, gr)
		findings = append(findings, fs...)
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

	if g.UnknownReason != "" || (len(g.Members) == 0 && g.Required <= 0) {
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
		for _, c := range g.Conditions {
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
	// working for the optimistic one; when the two disagree the group's
	// state depends on what we could not read, so it is unknown.
	pessimistic := verdict(len(working), required, len(failed)+len(unknown) > 0)
	optimistic := verdict(len(working)+len(unknown), required, len(failed) > 0)
	gr.State = pessimistic
	if pessimistic != optimistic {
		gr.State = StateUnknown
		// Even counting every unreadable member as working, the group is
		// this bad: a proven lower bound, reported with what is known to
		// have failed.
		switch optimistic {
		case StateDown:
			add(CodeGroupDown, "", fmt.Sprintf("%s is down even if the unreadable members work: %s", fn, failedList(failed, unknown)), "")
		case StateRedundancyLost:
			add(CodeRedundancyLost, "", fmt.Sprintf("%s: redundancy lost even if the unreadable members work: %s", fn, failedList(failed, unknown)), "")
		case StateDegraded:
			add(CodeRedundancyDegraded, "", fmt.Sprintf("%s: redundancy degraded even if the unreadable members work: %s", fn, failedList(failed, unknown)), "")
		}
	}

	margin := len(working) - required
	switch gr.State {
	case StateDown:
		add(CodeGroupDown, "", fmt.Sprintf("%s is down: %d working of %d required%s", fn, len(working), required, failedClause(failed)),
			"The function this group provides is out. Replace or restore the failed members.")
	case StateRedundancyLost:
		add(CodeRedundancyLost, "", fmt.Sprintf("%s: redundancy lost: %s, %s", fn, failedList(failed, unknown), runsOn(working, required)),
			"One more failure is an outage. Replace the failed member now.")
	case StateDegraded:
		add(CodeRedundancyDegraded, "", fmt.Sprintf("%s: redundancy degraded: %s; %d of %d working, %d more may fail", fn, failedList(failed, unknown), len(working), len(g.Members), margin),
			"The group still tolerates a failure. Replace the failed member.")
	case StateNoRedundancy:
		add(CodeNoRedundancy, "", fmt.Sprintf("%s has no redundancy: %s", fn, runsOn(working, required)),
			"Any failure of a member is an outage of the function. This is by design of the setup, not a fault.")
	}

	if margin > 0 && gr.State != StateUnknown {
		fs = append(fs, sharedDomains(g, working, required, fn)...)
	}
	// A source's own verdict on the whole group (the BMC's redundancy
	// sensor) may be worse than the member count: the worse one wins. The
	// condition itself becomes the finding that says which source said so.
	if gr.State != StateUnknown {
		for _, c := range g.Conditions {
			if st, ok := conditionState[c.Code]; ok && c.Member == "" && stateRank[st] > stateRank[gr.State] {
				gr.State = st
			}
		}
	}
	for _, c := range g.Conditions {
		fs = append(fs, conditionFinding(g.ID, c))
	}
	return gr, fs
}

// conditionState maps group-level condition codes to the state they imply.
var conditionState = map[Code]GroupState{
	CodeGroupDown:          StateDown,
	CodeRedundancyLost:     StateRedundancyLost,
	CodeRedundancyDegraded: StateDegraded,
}

// stateRank orders known states from best to worst.
var stateRank = map[GroupState]int{
	StateRedundant: 0, StateDegraded: 1, StateNoRedundancy: 2, StateRedundancyLost: 3, StateDown: 4,
}

// verdict applies the margin rules of the model.
func verdict(working, required int, failures bool) GroupState {
	margin := working - required
	switch {
	case margin < 0:
		return StateDown
	case margin == 0 && failures:
		return StateRedundancyLost
	case margin == 0:
		return StateNoRedundancy
	case failures:
		return StateDegraded
	}
	return StateRedundant
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
	sev := c.Severity
	if sev == 0 {
		sev = DefaultSeverity(c.Code)
	}
	return Finding{Code: c.Code, Severity: sev, Group: group, Member: c.Member, Summary: c.Summary, Details: c.Details}
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
