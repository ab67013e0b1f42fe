package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spofwatch/spofwatch/spof"
)

// AcceptConfig is one accepted risk: a known single point of failure an
// operator has decided to live with until a date (config `accept:`).
type AcceptConfig struct {
	Code string `yaml:"code"`
	// Group and Member are shell-style globs (path.Match).
	Group  string `yaml:"group"`
	Member string `yaml:"member"`
	Reason string `yaml:"reason"`
	// Until is a date (2027-06-30: through the end of that day, UTC) or an
	// RFC 3339 time.
	Until Date   `yaml:"until"`
	By    string `yaml:"by"`
}

// Date is a YAML date or timestamp whose errors carry their line.
type Date time.Time

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a date such as 2027-06-30", n.Line)
	}
	if t, err := time.Parse(time.DateOnly, n.Value); err == nil {
		*d = Date(t.AddDate(0, 0, 1)) // through the end of that day
		return nil
	}
	t, err := time.Parse(time.RFC3339, n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a date (want 2027-06-30 or an RFC 3339 time)", n.Line, n.Value)
	}
	*d = Date(t)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Date) MarshalYAML() (any, error) { return time.Time(d).Format(time.RFC3339), nil }

// ID names an acceptance in metrics and notices; it is made of what the
// acceptance matches, so it stays the same when entries are reordered.
func (a AcceptConfig) ID() string {
	id := a.Code + ":" + a.Group
	if a.Member != "" {
		id += ":" + a.Member
	}
	return id
}

// Acceptance is the model's form of the entry.
func (a AcceptConfig) Acceptance() spof.Acceptance {
	return spof.Acceptance{ID: a.ID(), Code: spof.Code(a.Code), Group: a.Group, Member: a.Member, Reason: strings.TrimSpace(a.Reason), By: a.By, Until: time.Time(a.Until)}
}

// Acceptances returns the configured acceptances in the model's form.
func (c *Config) Acceptances() []spof.Acceptance {
	out := make([]spof.Acceptance, 0, len(c.Accept))
	for _, a := range c.Accept {
		out = append(out, a.Acceptance())
	}
	return out
}

// MaxAcceptance is how far ahead `until` may be (accept_max_ahead,
// default one year).
func (c *Config) MaxAcceptance() time.Duration {
	if c.AcceptMaxAhead > 0 {
		return time.Duration(c.AcceptMaxAhead)
	}
	return spof.DefaultMaxAcceptance
}

// validateAccept applies the model's guard rails (spof.Acceptance.Validate)
// to every entry, each error at its entry's line.
func (c *Config) validateAccept(v *validator) {
	if c.AcceptMaxAhead < 0 {
		v.failf([]string{"accept_max_ahead"}, "must not be negative")
	}
	seen := map[string]bool{}
	for i, a := range c.Accept {
		at := []string{"accept", strconv.Itoa(i)}
		untilLine := lineOf(v.root, append(slices.Clone(at), "until"))
		if err := a.Acceptance().Validate(v.now, c.MaxAcceptance()); err != nil {
			for _, e := range unjoin(err) {
				if strings.HasPrefix(e.Error(), "until is required") && v.reported(untilLine) {
					continue // a bad date, already reported at its line
				}
				v.failf(at, "%v", e)
			}
		}
		if acc := a.Acceptance(); acc.Expired(v.now) {
			v.warnings = append(v.warnings, (&Error{File: v.file, Line: lineOf(v.root, at), Msg: fmt.Sprintf(
				"%s: acceptance of %s on %s expired on %s: its findings are back at their severity; renew it with a reason or remove it",
				strings.Join(at, "."), a.Code, a.Group, spof.FormatUntil(acc.Until))}).Error())
		}
		if seen[a.ID()] {
			v.failf(at, "duplicate acceptance of %s", a.ID())
		}
		seen[a.ID()] = true
	}
}

// reported says whether an error was already recorded at the line.
func (v *validator) reported(line int) bool {
	return slices.ContainsFunc(v.errs, func(e *Error) bool { return e.Line == line })
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
