package spof

import (
	"fmt"
	"path"
	"time"
)

// ProofResult is the outcome of one proof of a group's redundancy.
type ProofResult string

const (
	ProofPassed ProofResult = "passed"
	ProofFailed ProofResult = "failed"
)

// Proof is evidence that a group's redundancy was exercised: a completed md
// check, a ZFS scrub, a UPS self-test. At is when it finished (or, where the
// source records no time, when the agent saw it finished).
type Proof struct {
	At     time.Time
	Method string
	Result ProofResult
	// Detail says what the proof found ("0 errors", "mismatch_cnt 128").
	Detail string
}

// Provability says whether a group's redundancy can be proven on this host.
// The zero value is "not provable here", so a group whose adapter says
// nothing never raises redundancy_untested.
type Provability int

const (
	NotProvable Provability = iota
	Provable
)

// ProofPolicy is how old a provable group's last proof may be.
type ProofPolicy struct {
	// MaxAge applies when no override matches; zero means DefaultProofMaxAge.
	MaxAge time.Duration
	// Kinds override MaxAge per group kind.
	Kinds map[Kind]time.Duration
	// Groups override per group ID glob (path.Match); the first match wins
	// and beats a kind override.
	Groups []GroupProofMaxAge
}

// GroupProofMaxAge is one per-group override of the proof policy.
type GroupProofMaxAge struct {
	Group  string
	MaxAge time.Duration
}

// DefaultProofMaxAge is "test failover at least quarterly".
const DefaultProofMaxAge = 90 * 24 * time.Hour

// MaxAgeFor returns the maximum proof age for a group.
func (p ProofPolicy) MaxAgeFor(g Group) time.Duration {
	for _, o := range p.Groups {
		if ok, _ := path.Match(o.Group, g.ID); ok {
			return o.MaxAge
		}
	}
	if d, ok := p.Kinds[g.Kind]; ok {
		return d
	}
	if p.MaxAge > 0 {
		return p.MaxAge
	}
	return DefaultProofMaxAge
}

// untestedFinding returns a redundancy_untested finding when a provable
// group's last proof (or, never proven, the time the agent first saw it) is
// older than its policy. A failed proof counts as no proof: its age is that
// of the last passing one, which the caller does not have, so the failed
// proof's time stands in for it.
func untestedFinding(g Group, policy ProofPolicy, firstSeen, now time.Time) (Finding, bool) {
	if g.Provable != Provable || now.IsZero() {
		return Finding{}, false
	}
	maxAge := policy.MaxAgeFor(g)
	since := firstSeen
	what := "never proven"
	if g.Proof != nil && !g.Proof.At.IsZero() {
		since = g.Proof.At
		what = fmt.Sprintf("last proven %s by %s (%s)", g.Proof.At.UTC().Format(time.DateOnly), g.Proof.Method, g.Proof.Result)
	}
	if since.IsZero() || now.Sub(since) <= maxAge {
		return Finding{}, false
	}
	return Finding{
		Code:     CodeRedundancyUntested,
		Severity: DefaultSeverity(CodeRedundancyUntested),
		Group:    g.ID,
		Summary:  fmt.Sprintf("%s: redundancy %s, older than the %s policy", g.Function, what, formatDays(maxAge)),
		Details:  "A redundancy that has never been exercised is a hypothesis: run a check, scrub or self-test to prove it.",
	}, true
}

func formatDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
