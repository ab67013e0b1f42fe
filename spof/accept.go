package spof

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Acceptance is an operator's decision to live with a known single point
// of failure until a date (config `accept:`). A matching finding stays
// visible everywhere, marked accepted, but counts as info for exit codes
// and alerts until the acceptance expires.
type Acceptance struct {
	// ID identifies the acceptance in metrics and notices (its position in
	// the configuration, e.g. "accept[0]").
	ID   string
	Code Code
	// Group and Member are shell-style globs (path.Match); an empty Member
	// matches any member.
	Group, Member string
	Reason, By    string
	Until         time.Time
	// LastMatched is when the acceptance last matched a finding, kept by
	// the caller across evaluations (Result.AcceptancesMatched); zero means
	// "not tracked yet".
	LastMatched time.Time
}

// Accepted is the mark on an accepted finding (JSON "accepted").
type Accepted struct {
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
	By     string    `json:"by,omitempty"`
	ID     string    `json:"-"`
}

// StaleAcceptanceAfter is how long an acceptance may match nothing before
// it is reported as stale, so that waivers do not outlive their reason.
const StaleAcceptanceAfter = 24 * time.Hour

// DefaultMaxAcceptance is how far ahead `until` may be by default: an
// acceptance that never expires is a silent alarm.
const DefaultMaxAcceptance = 365 * 24 * time.Hour

// unacceptable codes are never waived: an unreadable source would then be
// reported as fine, and a broken alert path would silence itself.
var unacceptable = []Code{CodeCollectorUnavailable, CodeAlertingDegraded}

// Matches reports whether the acceptance covers the finding (ignoring
// expiry).
func (a Acceptance) Matches(f Finding) bool {
	if f.Code != a.Code {
		return false
	}
	if ok, _ := path.Match(a.Group, f.Group); !ok {
		return false
	}
	if a.Member == "" {
		return true
	}
	ok, _ := path.Match(a.Member, f.Member)
	return ok
}

// Validate checks an acceptance's guard rails at now:
//   - code is a known finding code, and never collector_unavailable or
//     alerting_degraded;
//   - reason and until are given; until is at most maxAhead away (a past
//     until is not an error: see Expired);
//   - group is given and is a valid glob whose kind (the first path
//     segment) is literal, so no glob spans every kind ("*", "*/*/*");
//   - a critical code names its group exactly (no glob): one accepted
//     critical finding must never hide another group's.
func (a Acceptance) Validate(now time.Time, maxAhead time.Duration) error {
	var errs []error
	switch {
	case a.Code == "":
		errs = append(errs, errors.New("code is required"))
	case !slices.ContainsFunc(Codes, func(c CodeInfo) bool { return c.Code == a.Code }):
		errs = append(errs, fmt.Errorf("unknown code %q", a.Code))
	case slices.Contains(unacceptable, a.Code):
		errs = append(errs, fmt.Errorf("code %s cannot be accepted: unknown and a broken alert path are never waived", a.Code))
	}
	if strings.TrimSpace(a.Reason) == "" {
		errs = append(errs, errors.New("reason is required"))
	}
	switch {
	case a.Until.IsZero():
		errs = append(errs, errors.New("until is required (an acceptance that never expires is a silent alarm)"))
	case maxAhead > 0 && a.Until.Sub(now) > maxAhead+24*time.Hour: // a date is stored as the next midnight
		errs = append(errs, fmt.Errorf("until %s is more than %s ahead", FormatUntil(a.Until), fmtDays(maxAhead)))
	}
	if a.Group == "" {
		errs = append(errs, errors.New("group is required"))
	} else if _, err := path.Match(a.Group, ""); err != nil {
		errs = append(errs, fmt.Errorf("bad group glob %q: %w", a.Group, err))
	} else {
		kind, _, _ := strings.Cut(a.Group, "/")
		if isGlob(kind) || kind == "" {
			errs = append(errs, fmt.Errorf("group %q must start with a literal kind (power/, storage/, ...): a glob across every kind would accept too much", a.Group))
		}
		if a.Code != "" && DefaultSeverity(a.Code) == SeverityCritical && isGlob(a.Group) {
			errs = append(errs, fmt.Errorf("code %s is critical: name the group exactly, without a glob", a.Code))
		}
	}
	if a.Member != "" {
		if _, err := path.Match(a.Member, ""); err != nil {
			errs = append(errs, fmt.Errorf("bad member glob %q: %w", a.Member, err))
		}
	}
	return errors.Join(errs...)
}

// FormatUntil shows an acceptance's end as the operator wrote it: a date
// means through the end of that day (UTC), stored as the next midnight.
func FormatUntil(t time.Time) string {
	t = t.UTC()
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.AddDate(0, 0, -1).Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// Expired says whether the acceptance's until has passed at now. An expired
// entry stays in force as a notice rather than failing the configuration:
// a config error would stop the agent (and every reload) on the day a
// waiver runs out, which is exactly when its finding must come back.
func (a Acceptance) Expired(now time.Time) bool { return !a.Until.IsZero() && !now.Before(a.Until) }

func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func fmtDays(d time.Duration) string { return fmt.Sprintf("%d days", int(d.Hours()/24)) }

// applyAcceptances marks accepted findings, adds a notice for each expired
// acceptance that still matches, and one for each acceptance that matched
// nothing for StaleAcceptanceAfter. It returns the IDs that matched now.
func applyAcceptances(findings []Finding, accs []Acceptance, now time.Time) ([]Finding, []string) {
	if len(accs) == 0 {
		return findings, nil
	}
	matched := map[string]bool{}
	var notices []Finding
	expiredOn := map[string]bool{} // acceptance ID + group: one notice each
	for i := range findings {
		f := &findings[i]
		if f.Code == CodeNotice {
			continue
		}
		var expired []Acceptance
		for _, a := range accs {
			if !a.Matches(*f) {
				continue
			}
			matched[a.ID] = true
			if !a.Expired(now) {
				if f.Accepted == nil {
					f.Accepted = &Accepted{Reason: a.Reason, Until: a.Until, By: a.By, ID: a.ID}
				}
				continue
			}
			expired = append(expired, a)
		}
		if f.Accepted != nil {
			continue // a renewed acceptance covers it: no expiry notice
		}
		for _, a := range expired {
			if key := a.ID + "\x00" + f.Group; !expiredOn[key] {
				expiredOn[key] = true
				notices = append(notices, Finding{
					Code: CodeNotice, Severity: SeverityInfo, Group: f.Group, Member: "acceptance " + a.ID,
					Summary: fmt.Sprintf("acceptance of %s expired on %s (%s): the finding is back at its severity", a.Code, FormatUntil(a.Until), a.Reason),
				})
			}
		}
	}
	for _, a := range accs {
		if matched[a.ID] || a.LastMatched.IsZero() || now.Sub(a.LastMatched) < StaleAcceptanceAfter || a.Expired(now) {
			continue
		}
		notices = append(notices, Finding{
			Code: CodeNotice, Severity: SeverityInfo, Member: "acceptance " + a.ID,
			Summary: fmt.Sprintf("stale acceptance %s: %s on %s has matched nothing since %s; remove it if its reason is gone", a.ID, a.Code, a.Group, a.LastMatched.Format(time.DateTime)),
		})
	}
	ids := make([]string, 0, len(matched))
	for id := range matched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return append(findings, notices...), ids
}

// EffectiveSeverity is the severity that counts for exit codes and alert
// thresholds: info while the finding is accepted.
func (f Finding) EffectiveSeverity() Severity {
	if f.Accepted != nil {
		return SeverityInfo
	}
	return f.Severity
}
