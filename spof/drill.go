package spof

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DrillOutcome is a group's latest drill that passed or failed, as the
// drill audit log records it. Refused drills changed nothing and are not
// outcomes.
type DrillOutcome struct {
	Group  string
	Method string
	// Result is passed or failed.
	Result ProofResult
	Reason string
	// At is when the drill ended.
	At time.Time
	// FailedMembers are members the drill found unable to carry the load,
	// with the reason for each (a backup slave that cannot reach the
	// gateway). They are failed until the group's next passing drill.
	FailedMembers map[string]string
}

// latestDrills keeps the newest outcome per group; of equal times, the
// later in the list.
func latestDrills(ds []DrillOutcome) map[string]DrillOutcome {
	if len(ds) == 0 {
		return nil
	}
	out := make(map[string]DrillOutcome, len(ds))
	for _, d := range ds {
		if d.Result != ProofPassed && d.Result != ProofFailed {
			continue
		}
		if cur, ok := out[d.Group]; ok && d.At.Before(cur.At) {
			continue
		}
		out[d.Group] = d
	}
	return out
}

// applyDrill returns the group as its latest drill leaves it: the drill is
// its proof when newer than the source's, and after a failed drill the
// members it names are failed, with its reason. Members the group no
// longer has are ignored. The group's member slice is copied: the input
// is never changed.
func applyDrill(g Group, d DrillOutcome) Group {
	if g.Proof == nil || d.At.After(g.Proof.At) {
		g.Proof = &Proof{At: d.At, Method: d.Method, Result: d.Result, Detail: d.Reason}
	}
	if d.Result != ProofFailed || len(d.FailedMembers) == 0 {
		return g
	}
	members := make([]Member, len(g.Members))
	copy(members, g.Members)
	for i, m := range members {
		why, ok := d.FailedMembers[m.Name]
		// A member already out stays as its source says; a working or
		// unreadable one is failed by the drill's evidence.
		if !ok || !(m.State.Working() || m.State == MemberUnknown) {
			continue
		}
		if why == "" {
			why = d.Reason
		}
		members[i].State = MemberFailed
		members[i].Detail = fmt.Sprintf("failed its %s drill on %s: %s", d.Method, d.At.UTC().Format(time.DateOnly), orUnknown(why))
	}
	g.Members = members
	return g
}

// drillFailedFinding names the failed drill's method, reason and the
// members it failed that the group still has.
func drillFailedFinding(g Group, d DrillOutcome) Finding {
	fn := g.Function
	if fn == "" {
		fn = g.ID
	}
	var named []string
	for _, m := range g.Members {
		if _, ok := d.FailedMembers[m.Name]; ok {
			named = append(named, m.Name)
		}
	}
	sort.Strings(named)
	members := ""
	if len(named) > 0 {
		members = fmt.Sprintf(" (%s failed until a passing drill)", strings.Join(named, ", "))
	}
	return Finding{
		Code:     CodeDrillFailed,
		Severity: DefaultSeverity(CodeDrillFailed),
		Group:    g.ID,
		Summary:  fmt.Sprintf("%s: %s drill failed on %s: %s%s", fn, d.Method, d.At.UTC().Format(time.DateOnly), orUnknown(d.Reason), members),
		Details:  "The redundancy did not work when exercised. Fix the cause, then run `spofwatch drill run " + g.ID + "`: a passing drill clears this.",
	}
}
