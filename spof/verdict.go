package spof

// The one order of group states, from best to worst. Every comparison of
// group states (the member count against a source's own verdict, in Evaluate
// and anywhere else) goes through StateRank or Worse, so a finding and the
// state it explains can never disagree.
//
// The order follows the margin (working − required) first, then whether
// something failed:
//
//	redundant        margin > 0, nothing failed
//	degraded         margin > 0, something failed
//	no_redundancy    margin = 0, by design
//	redundancy_lost  margin = 0, because something failed
//	down             margin < 0
//
// The margin comes first because it answers the question the agent exists
// for: how many more failures the function survives. A degraded group still
// survives one; a group without redundancy survives none, so it ranks worse
// even though nothing in it has failed. At equal margin a failure ranks
// worse than a design choice: it needs a replacement, and it is news.
// Unknown is outside the order: it is never ranked as healthy nor as a
// verdict, and combining anything with it gives unknown.
var stateOrder = []GroupState{StateRedundant, StateDegraded, StateNoRedundancy, StateRedundancyLost, StateDown}

// StateRank places a known group state in the order above: 0 for redundant
// up to 4 for down. It returns -1 for unknown and for anything else that is
// not a verdict.
func StateRank(s GroupState) int {
	for i, o := range stateOrder {
		if o == s {
			return i
		}
	}
	return -1
}

// Worse returns the worse of two group states. If either is unknown (or not
// a state at all), the result is unknown.
func Worse(a, b GroupState) GroupState {
	ra, rb := StateRank(a), StateRank(b)
	switch {
	case ra < 0 || rb < 0:
		return StateUnknown
	case rb > ra:
		return b
	}
	return a
}

// CountVerdict is the verdict of the member count alone, as Evaluate reaches
// it, with the number of working members. Unknown members make the verdict
// unknown only when they decide it: counted as working or as failed, the
// group would be in different states. A required below 1 counts as 1.
func CountVerdict(members []Member, required int) (GroupState, int) {
	pessimistic, optimistic, working := countVerdicts(members, max(required, 1))
	if pessimistic != optimistic {
		return StateUnknown, working
	}
	return pessimistic, working
}

// countVerdicts returns the count's verdict with every unknown member
// counted as failed (pessimistic) and as working (optimistic).
func countVerdicts(members []Member, required int) (pessimistic, optimistic GroupState, working int) {
	failed, unknown := 0, 0
	for _, m := range members {
		switch {
		case m.State.Working():
			working++
		case m.State == MemberUnknown:
			unknown++
		default:
			failed++
		}
	}
	pessimistic = marginVerdict(working, required, failed+unknown > 0)
	optimistic = marginVerdict(working+unknown, required, failed > 0)
	return pessimistic, optimistic, working
}

// marginVerdict applies the margin rules of the model.
func marginVerdict(working, required int, failures bool) GroupState {
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

// stateCode is the finding that explains a group state; redundant and
// unknown have none of their own.
func stateCode(s GroupState) Code {
	switch s {
	case StateDown:
		return CodeGroupDown
	case StateRedundancyLost:
		return CodeRedundancyLost
	case StateDegraded:
		return CodeRedundancyDegraded
	case StateNoRedundancy:
		return CodeNoRedundancy
	}
	return ""
}

// hasFailure reports whether a state says something in the group failed.
func hasFailure(s GroupState) bool {
	return s == StateDegraded || s == StateRedundancyLost || s == StateDown
}

// conditionVerdict says whether a condition is a source's own verdict on the
// whole group, and which state it stands for: a group-level condition (no
// Member) with State set, or with one of the verdict codes.
func conditionVerdict(c Condition) (GroupState, bool) {
	if c.Member != "" {
		return "", false
	}
	if c.State != "" {
		return c.State, StateRank(c.State) >= 0
	}
	for _, s := range stateOrder {
		if c.Code != "" && stateCode(s) == c.Code {
			return s, true
		}
	}
	return "", false
}

// HostWide reports whether findings with this code may stand without a
// group: facts about the host or the agent rather than about a piece of
// hardware. Every other finding names the group it is about.
func HostWide(c Code) bool {
	switch c {
	case CodeCollectorUnavailable, CodeVirtualMachine, CodeNotice, CodeAlertingDegraded:
		return true
	}
	return false
}
