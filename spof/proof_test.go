package spof

import (
	"strings"
	"testing"
	"time"
)

func TestRedundancyUntested(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	md := func(prov Provability, proof *Proof) Group {
		return Group{ID: "storage/md/md0", Kind: KindStorage, Function: "md0 (raid1)", Required: 1,
			Members: []Member{m("sda1", MemberOK), m("sdb1", MemberOK)}, Provable: prov, Proof: proof}
	}
	passed := func(age time.Duration) *Proof {
		return &Proof{At: now.Add(-age), Method: "md check", Result: ProofPassed}
	}
	tests := []struct {
		name      string
		group     Group
		policy    ProofPolicy
		firstSeen time.Duration // age; 0 = not known
		want      bool
		contains  string
	}{
		{"proof younger than the default policy", md(Provable, passed(89*day)), ProofPolicy{}, 0, false, ""},
		{"proof older than the default policy", md(Provable, passed(91*day)), ProofPolicy{}, 0, true, "last proven 2026-09-04 by md check (passed), older than the 90d policy"},
		{"policy shorter than the evidence's age", md(Provable, passed(8*day)), ProofPolicy{MaxAge: 7 * day}, 0, true, "7d policy"},
		{"policy longer than the evidence's age", md(Provable, passed(8*day)), ProofPolicy{MaxAge: 9 * day}, 0, false, ""},
		{"kind override", md(Provable, passed(8*day)), ProofPolicy{Kinds: map[Kind]time.Duration{KindStorage: 7 * day}}, 0, true, "7d policy"},
		{"other kind's override does not apply", md(Provable, passed(8*day)), ProofPolicy{MaxAge: 30 * day, Kinds: map[Kind]time.Duration{KindPower: 7 * day}}, 0, false, ""},
		{"group glob beats kind", md(Provable, passed(8*day)), ProofPolicy{Kinds: map[Kind]time.Duration{KindStorage: 7 * day}, Groups: []GroupProofMaxAge{{"storage/md/*", 10 * day}}}, 0, false, ""},
		{"never proven, first seen long ago", md(Provable, nil), ProofPolicy{}, 100 * day, true, "never proven"},
		{"never proven, first seen recently", md(Provable, nil), ProofPolicy{}, 10 * day, false, ""},
		{"never proven, first seen unknown", md(Provable, nil), ProofPolicy{}, 0, false, ""},
		{"failed proof ages like any proof", md(Provable, &Proof{At: now.Add(-100 * day), Method: "md check", Result: ProofFailed}), ProofPolicy{}, 0, true, "(failed)"},
		{"not provable here never raises", md(NotProvable, nil), ProofPolicy{MaxAge: time.Hour}, 1000 * day, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Groups: []Group{tc.group}, ProofPolicy: tc.policy, Now: now}
			if tc.firstSeen > 0 {
				in.FirstSeen = map[string]time.Time{tc.group.ID: now.Add(-tc.firstSeen)}
			}
			var got *Finding
			for _, f := range Evaluate(in).Findings {
				if f.Code == CodeRedundancyUntested {
					got = &f
				}
			}
			if (got != nil) != tc.want {
				t.Fatalf("redundancy_untested raised = %v, want %v (finding %+v)", got != nil, tc.want, got)
			}
			if got == nil {
				return
			}
			if got.Severity != SeverityWarning || got.Group != tc.group.ID {
				t.Errorf("finding = %+v, want a warning on %s", got, tc.group.ID)
			}
			if !strings.Contains(got.Summary, tc.contains) {
				t.Errorf("summary %q does not contain %q", got.Summary, tc.contains)
			}
		})
	}
}
