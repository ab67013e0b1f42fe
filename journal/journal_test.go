package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

func result(states map[string]spof.GroupState, findings ...spof.Finding) spof.Result {
	var r spof.Result
	for id, st := range states {
		r.Groups = append(r.Groups, spof.GroupResult{Group: spof.Group{ID: id}, State: st})
	}
	r.Findings = findings
	return r
}

func lost(group string) spof.Finding {
	return spof.Finding{Code: spof.CodeRedundancyLost, Severity: spof.SeverityCritical, Group: group, Summary: group + ": redundancy lost"}
}

func TestDiff(t *testing.T) {
	base := NewBaseline()
	// First sight: every group is recorded, with no From.
	ev, base := Diff(base, result(map[string]spof.GroupState{"storage/md/md0": spof.StateRedundant}), t0)
	if len(ev) != 1 || ev[0].Kind != KindGroupState || ev[0].From != "" || ev[0].To != spof.StateRedundant {
		t.Fatalf("first sight: %+v", ev)
	}
	// Nothing changed: no event, since kept.
	ev, base = Diff(base, result(map[string]spof.GroupState{"storage/md/md0": spof.StateRedundant}), t0.Add(time.Minute))
	if len(ev) != 0 || !base.Groups["storage/md/md0"].Since.Equal(t0) {
		t.Fatalf("unchanged: %+v since %v", ev, base.Groups["storage/md/md0"].Since)
	}
	// A leg fails: a state change and a finding start.
	t1 := t0.Add(time.Hour)
	ev, base = Diff(base, result(map[string]spof.GroupState{"storage/md/md0": spof.StateRedundancyLost}, lost("storage/md/md0")), t1)
	if len(ev) != 2 || ev[0].Kind != KindFindingStart || ev[1].Kind != KindGroupState || ev[1].From != spof.StateRedundant {
		t.Fatalf("failure: %+v", ev)
	}
	// The group is absent (its collector has not run after a restart): no
	// event, the finding is not ended, and the state is kept.
	ev, base = Diff(base, result(nil), t1.Add(time.Minute))
	if len(ev) != 0 || base.Groups["storage/md/md0"].State != spof.StateRedundancyLost || len(base.Findings) != 1 {
		t.Fatalf("absent group: %+v %+v", ev, base)
	}
	// Repaired: the finding ends, the state changes back.
	t2 := t1.Add(2 * time.Hour)
	ev, base = Diff(base, result(map[string]spof.GroupState{"storage/md/md0": spof.StateRedundant}), t2)
	if len(ev) != 2 || ev[0].Kind != KindFindingEnd || ev[1].To != spof.StateRedundant {
		t.Fatalf("repair: %+v", ev)
	}
	if got := base.Groups["storage/md/md0"]; got.State != spof.StateRedundant || !got.Since.Equal(t2) {
		t.Fatalf("baseline after repair: %+v", got)
	}
}

// A collector_unavailable finding is on collector/<name>, a group no
// evaluation lists: it must still end when it clears.
func TestDiffEndsFindingsOnUnlistedGroups(t *testing.T) {
	f := spof.Finding{Code: spof.CodeCollectorUnavailable, Severity: spof.SeverityWarning, Group: "collector/ipmi", Summary: "bmc down"}
	_, base := Diff(NewBaseline(), spof.Result{Findings: []spof.Finding{f}}, t0)
	ev, base := Diff(base, spof.Result{}, t0.Add(time.Minute))
	if len(ev) != 1 || ev[0].Kind != KindFindingEnd || len(base.Findings) != 0 {
		t.Errorf("collector_unavailable did not end: %+v", ev)
	}
}

func TestStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := s.Baseline()
	for i, st := range []spof.GroupState{spof.StateRedundant, spof.StateRedundancyLost, spof.StateRedundant} {
		var fs []spof.Finding
		if st == spof.StateRedundancyLost {
			fs = append(fs, lost("power/ipmi/psu"))
		}
		var ev []Event
		ev, base = Diff(base, result(map[string]spof.GroupState{"power/ipmi/psu": st}, fs...), t0.Add(time.Duration(i)*time.Hour))
		if err := s.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Events(time.Time{})); n != 5 {
		t.Fatalf("reopened journal holds %d events, want 5", n)
	}
	b := s.Baseline()
	if got := b.Groups["power/ipmi/psu"]; got.State != spof.StateRedundant || !got.Since.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("state since after restart = %+v", got)
	}
	if len(b.Findings) != 0 {
		t.Errorf("ended finding still active after restart: %+v", b.Findings)
	}
	if got := s.Events(t0.Add(90 * time.Minute)); len(got) != 2 {
		t.Errorf("Events(since) = %d events, want the 2 of the last change", len(got))
	}
}

func TestStoreSkipsCorruptLines(t *testing.T) {
	dir := t.TempDir()
	good := `{"at":"2026-09-01T00:00:00Z","kind":"group_state","group":"a","to":"redundant"}`
	junk := good + "\n" + "{not json\n" + strings.Repeat("x", MaxLineBytes+10) + "\n" + `{"kind":""}` + "\n" + `{"at":"2026-09-01T01:00:00Z","kind":"group_state","group":"a","from":"redundant","to":"degraded"}` + "\n" + `{"at":"2026-09-01T02:00:00Z","ki`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(junk), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Events(time.Time{})); n != 2 {
		t.Errorf("kept %d events, want 2", n)
	}
	// The torn last line is cut off the file, not counted: 3 bad lines.
	if s.Skipped() != 3 {
		t.Errorf("skipped %d lines, want 3", s.Skipped())
	}
	if got := s.Baseline().Groups["a"].State; got != spof.StateDegraded {
		t.Errorf("state = %s", got)
	}
	// The next append must not be glued to the torn line and lost with it.
	if err := s.Append([]Event{{At: t0.Add(3 * time.Hour), Kind: KindGroupState, Group: "a", From: spof.StateDegraded, To: spof.StateRedundant}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := again.Baseline().Groups["a"].State; got != spof.StateRedundant {
		t.Errorf("the append after a torn line was lost: state %q", got)
	}
}

// Past its bound the journal drops old events but keeps their outcome:
// a group that changed long ago keeps its state_since, an incident still
// open keeps its start.
func TestStoreCompactionKeepsBaseline(t *testing.T) {
	dir := t.TempDir()
	const bound = 8 << 10
	s, err := Open(dir, Options{MaxBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.Baseline()
	var ev []Event
	ev, base = Diff(base, result(map[string]spof.GroupState{"steady": spof.StateNoRedundancy, "flappy": spof.StateRedundant}, lost("steady")), t0)
	if err := s.Append(ev); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 400; i++ {
		st := spof.StateRedundant
		if i%2 == 1 {
			st = spof.StateDegraded
		}
		ev, base = Diff(base, result(map[string]spof.GroupState{"steady": spof.StateNoRedundancy, "flappy": st}, lost("steady")), t0.Add(time.Duration(i)*time.Minute))
		if err := s.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > bound {
		t.Errorf("journal is %d bytes, bound %d", st.Size(), bound)
	}
	if n := len(s.Events(time.Time{})); n >= 401 {
		t.Errorf("nothing was compacted: %d events", n)
	}
	// The cut is marked, so a report knows its detail starts there.
	if start := HistoryStart(s.Events(time.Time{})); !start.After(t0) {
		t.Errorf("history start after compaction = %v, want the cut (after %v)", start, t0)
	}
	for _, b := range []Baseline{s.Baseline(), reopen(t, dir, bound).Baseline()} {
		if got := b.Groups["steady"]; got.State != spof.StateNoRedundancy || !got.Since.Equal(t0) {
			t.Errorf("steady group after compaction = %+v, want since %v", got, t0)
		}
		if f, ok := b.Findings[lost("steady").Key()]; !ok || !f.Since.Equal(t0) {
			t.Errorf("open finding after compaction = %+v (present %v)", f, ok)
		}
		if got := b.Groups["flappy"]; got.State != spof.StateRedundant || !got.Since.Equal(t0.Add(400*time.Minute)) {
			t.Errorf("flappy group = %+v", got)
		}
	}
}

func reopen(t *testing.T, dir string, bound int64) *Store {
	t.Helper()
	s, err := Open(dir, Options{MaxBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A journal file grown far past its bound (a sparse file) is read only
// for its tail.
func TestStoreReadsOnlyTheTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(200 << 20); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 2)
	f.WriteString("\n" + `{"at":"2026-09-01T00:00:00Z","kind":"group_state","group":"a","to":"redundant"}` + "\n")
	f.Close()
	s, err := Open(dir, Options{MaxBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Baseline().Groups["a"].State; got != spof.StateRedundant {
		t.Errorf("tail event not read: %q", got)
	}
}

func TestSummarize(t *testing.T) {
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	md := "storage/md/md0"
	events := []Event{
		{At: at(0), Kind: KindGroupState, Group: md, To: spof.StateRedundant},
		{At: at(10), Kind: KindGroupState, Group: md, From: spof.StateRedundant, To: spof.StateRedundancyLost},
		{At: at(10), Kind: KindFindingStart, Group: md, Code: spof.CodeRedundancyLost, Severity: "critical", Summary: "sdb1 failed"},
		{At: at(13), Kind: KindGroupState, Group: md, From: spof.StateRedundancyLost, To: spof.StateRedundant},
		{At: at(13), Kind: KindFindingEnd, Group: md, Code: spof.CodeRedundancyLost},
		{At: at(20), Kind: KindGroupState, Group: md, From: spof.StateRedundant, To: spof.StateDegraded},
		{At: at(20), Kind: KindFindingStart, Group: md, Member: "sdc1", Code: spof.CodeRedundancyDegraded, Severity: "warning"},
		{At: at(5), Kind: KindGroupState, Group: "power/ipmi/psu", To: spof.StateNoRedundancy},
		{At: at(30), Kind: KindGroupState, Group: md, From: spof.StateDegraded, To: spof.StateDown}, // after the window
	}
	cases := []struct {
		name      string
		from, to  time.Time
		mdIn      map[spof.GroupState]time.Duration
		psuNoRed  time.Duration
		incidents int
		firstDur  time.Duration
		lastOpen  bool
		mdCurrent spof.GroupState
		mdSince   time.Time
	}{
		{"whole", at(0), at(24), map[spof.GroupState]time.Duration{spof.StateRedundant: 17 * time.Hour, spof.StateRedundancyLost: 3 * time.Hour, spof.StateDegraded: 4 * time.Hour}, 19 * time.Hour, 2, 3 * time.Hour, true, spof.StateDegraded, at(20)},
		{"window cuts the incident", at(11), at(24), map[spof.GroupState]time.Duration{spof.StateRedundant: 7 * time.Hour, spof.StateRedundancyLost: 2 * time.Hour, spof.StateDegraded: 4 * time.Hour}, 13 * time.Hour, 2, 2 * time.Hour, true, spof.StateDegraded, at(20)},
		{"window after the first incident", at(14), at(24), map[spof.GroupState]time.Duration{spof.StateRedundant: 6 * time.Hour, spof.StateDegraded: 4 * time.Hour}, 10 * time.Hour, 1, 4 * time.Hour, true, spof.StateDegraded, at(20)},
		{"before the second", at(0), at(15), map[spof.GroupState]time.Duration{spof.StateRedundant: 12 * time.Hour, spof.StateRedundancyLost: 3 * time.Hour}, 10 * time.Hour, 1, 3 * time.Hour, false, spof.StateRedundant, at(13)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Summarize(events, c.from, c.to)
			var mdH, psuH GroupHistory
			for _, g := range s.Groups {
				switch g.Group {
				case md:
					mdH = g
				case "power/ipmi/psu":
					psuH = g
				}
			}
			for st, want := range c.mdIn {
				if mdH.TimeIn[st] != want {
					t.Errorf("md0 in %s = %s, want %s", st, mdH.TimeIn[st], want)
				}
			}
			var total time.Duration
			for _, d := range mdH.TimeIn {
				total += d
			}
			if total != c.to.Sub(c.from) {
				t.Errorf("md0 states add up to %s, window is %s", total, c.to.Sub(c.from))
			}
			if psuH.TimeIn[spof.StateNoRedundancy] != c.psuNoRed {
				t.Errorf("psu no_redundancy = %s, want %s", psuH.TimeIn[spof.StateNoRedundancy], c.psuNoRed)
			}
			if mdH.Current != c.mdCurrent || !mdH.Since.Equal(c.mdSince) {
				t.Errorf("md0 current %s since %v", mdH.Current, mdH.Since)
			}
			if len(s.Incidents) != c.incidents {
				t.Fatalf("incidents = %+v", s.Incidents)
			}
			if s.Incidents[0].Duration != c.firstDur {
				t.Errorf("first incident lasted %s in the window, want %s", s.Incidents[0].Duration, c.firstDur)
			}
			if open := s.Incidents[len(s.Incidents)-1].End.IsZero(); open != c.lastOpen {
				t.Errorf("last incident open = %v", open)
			}
		})
	}
}

func TestLastMatches(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	events := []Event{
		{At: at(0), Kind: KindFindingStart, Group: "storage/mount/root", Code: spof.CodeNoRedundancy},
		{At: at(5), Kind: KindFindingEnd, Group: "storage/mount/root", Code: spof.CodeNoRedundancy},
		{At: at(6), Kind: KindFindingStart, Group: "network/uplink/default", Code: spof.CodeNoRedundancy},
		{At: at(9), Kind: KindGroupState, Group: "power/ipmi/psu", To: spof.StateRedundant},
	}
	accs := []spof.Acceptance{
		{ID: "root", Code: spof.CodeNoRedundancy, Group: "storage/mount/*"},
		{ID: "uplink", Code: spof.CodeNoRedundancy, Group: "network/uplink/default"},
		{ID: "never", Code: spof.CodeRedundancyLost, Group: "power/ipmi/psu"},
	}
	got := LastMatches(events, accs)
	if !got["root"].Equal(at(5)) || !got["uplink"].Equal(at(9)) {
		t.Errorf("last matches = %v; want root at its end (%v), uplink still open at the last event (%v)", got, at(5), at(9))
	}
	if _, ok := got["never"]; ok {
		t.Errorf("an acceptance that never matched has a last match: %v", got["never"])
	}
}

func TestFirstSeen(t *testing.T) {
	events := []Event{
		{At: t0.Add(2 * time.Hour), Kind: KindGroupState, Group: "a", From: spof.StateRedundant, To: spof.StateDegraded},
		{At: t0, Kind: KindGroupState, Group: "a", To: spof.StateRedundant},
		{At: t0.Add(time.Hour), Kind: KindFindingStart, Group: "b", Code: spof.CodeNoRedundancy},
	}
	got := FirstSeen(events)
	if !got["a"].Equal(t0) {
		t.Errorf("first seen a = %v, want %v", got["a"], t0)
	}
	if _, ok := got["b"]; ok {
		t.Error("a finding alone counts as a sighting of its group")
	}
}

// A proof only the agent observed is recorded once, comes back from the
// history after a restart, and survives compaction.
func TestProofsAreKept(t *testing.T) {
	proof := spof.Proof{At: t0.Add(-time.Hour), Method: "md check", Result: spof.ProofPassed, Detail: "mismatch_cnt 0"}
	g := spof.GroupResult{Group: spof.Group{ID: "storage/md/md0", Provable: spof.Provable, Proof: &proof}, State: spof.StateRedundant}
	res := spof.Result{Groups: []spof.GroupResult{g}}
	ev, base := Diff(NewBaseline(), res, t0)
	proofs := 0
	for _, e := range ev {
		if e.Kind == KindProof {
			proofs++
		}
	}
	if proofs != 1 {
		t.Fatalf("%d proof events, want 1: %+v", proofs, ev)
	}
	// The source forgets it (a restart of the collector): the baseline keeps it.
	noProof := spof.Result{Groups: []spof.GroupResult{{Group: spof.Group{ID: "storage/md/md0", Provable: spof.Provable}, State: spof.StateRedundant}}}
	ev2, base := Diff(base, noProof, t0.Add(time.Minute))
	if len(ev2) != 0 || base.Proofs["storage/md/md0"] != proof {
		t.Errorf("a forgotten proof changed the history: %+v, baseline %+v", ev2, base.Proofs)
	}
	if got := Replay(ev).Proofs["storage/md/md0"]; got != proof {
		t.Errorf("replayed proof = %+v, want %+v", got, proof)
	}
	if got := Replay(BaselineEvents(Replay(ev))).Proofs["storage/md/md0"]; got != proof {
		t.Errorf("proof after compaction = %+v", got)
	}
}
