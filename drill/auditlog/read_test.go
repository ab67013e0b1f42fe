package auditlog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func rec(id, group string, res Result, startMin, endMin int) Record {
	r := Record{ID: id, Group: group, Method: "bond-failover", Result: res, Started: t0.Add(time.Duration(startMin) * time.Minute), User: "alice", UID: 1000, PID: 42}
	if endMin >= 0 {
		r.Finished = t0.Add(time.Duration(endMin) * time.Minute)
	}
	return r
}

func line(t testing.TB, r Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func writeLog(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "drills.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func appendLog(t *testing.T, p, content string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func ids(rs []Record) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.ID+":"+string(r.Result))
	}
	return strings.Join(s, ",")
}

func TestReadLog(t *testing.T) {
	a1 := rec("a", "network/bond/bond0", ResultStarted, 0, -1)
	a2 := rec("a", "network/bond/bond0", ResultFailed, 0, 1)
	b1 := rec("b", "storage/md/md0", ResultRefused, 5, 5)
	cases := []struct {
		name     string
		content  string
		maxBytes int64
		want     string
		corrupt  []int64 // line numbers reported
	}{
		{"empty", "", 0, "", nil},
		{"two drills", line(t, a1) + line(t, a2) + line(t, b1), 0, "a:started,a:failed,b:refused", nil},
		{"torn last line is not an error", line(t, a1) + line(t, a2) + line(t, b1)[:30], 0, "a:started,a:failed", nil},
		{"blank lines skipped", "\n" + line(t, a1) + "  \n" + line(t, a2), 0, "a:started,a:failed", nil},
		{"corrupt middle line keeps the rest", line(t, a1) + "garbage\n" + line(t, a2) + `{"id":"x"}` + "\n" + line(t, b1), 0, "a:started,a:failed,b:refused", []int64{2, 4}},
		{"unknown result is corrupt", line(t, a1) + strings.Replace(line(t, a2), `"failed"`, `"maybe"`, 1), 0, "a:started", []int64{2}},
		{"record glued to a torn one is recovered", line(t, a1)[:40] + line(t, a2) + line(t, b1), 0, "a:failed,b:refused", []int64{1}},
		{"window skips the partial first line", line(t, a1) + line(t, a2) + line(t, b1), int64(len(line(t, b1)) + 10), "b:refused", nil},
		{"window on a line boundary keeps that line", line(t, a1) + line(t, a2) + line(t, b1), int64(len(line(t, b1))), "b:refused", nil},
		{"line longer than the window", line(t, a1), 10, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeLog(t, t.TempDir(), c.content)
			got, err := ReadLog(p, c.maxBytes)
			if ids(got) != c.want {
				t.Errorf("records = %q, want %q", ids(got), c.want)
			}
			var ce *CorruptLogError
			if len(c.corrupt) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CorruptLogError", err)
			}
			if ce.Total != len(c.corrupt) {
				t.Errorf("total = %d, want %d (%v)", ce.Total, len(c.corrupt), err)
			}
			for i, n := range c.corrupt {
				if ce.Lines[i].Line != n {
					t.Errorf("corrupt line %d = %d, want %d", i, ce.Lines[i].Line, n)
				}
			}
			if !strings.Contains(err.Error(), "line "+strconv.FormatInt(c.corrupt[0], 10)) {
				t.Errorf("error %q does not name line %d", err, c.corrupt[0])
			}
		})
	}
}

func TestReadLogMissingIsNoDrills(t *testing.T) {
	got, err := ReadLog(filepath.Join(t.TempDir(), "drills.jsonl"), 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("missing log: %v, %v; want no records, no error", got, err)
	}
}

func TestReadLogUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the log should be: cannot be read as a log.
	if err := os.Mkdir(filepath.Join(dir, "drills.jsonl"), 0o750); err != nil {
		t.Fatal(err)
	}
	_, err := ReadLog(filepath.Join(dir, "drills.jsonl"), 0)
	var ce *CorruptLogError
	if err == nil || errors.As(err, &ce) {
		t.Fatalf("err = %v, want a read error that is not a corrupt-lines error", err)
	}
}

func TestLogFollower(t *testing.T) {
	dir := t.TempDir()
	a1 := rec("a", "g1", ResultStarted, 0, -1)
	a2 := rec("a", "g1", ResultPassed, 0, 1)
	b1 := rec("b", "g2", ResultFailed, 2, 3)
	p := writeLog(t, dir, line(t, a1))
	f := LogFollower{Path: p}

	step := func(name, want string, wantFresh bool) {
		t.Helper()
		got, fresh, err := f.Poll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ids(got) != want || fresh != wantFresh {
			t.Errorf("%s: records %q fresh %v, want %q fresh %v", name, ids(got), fresh, want, wantFresh)
		}
	}
	step("first poll", "a:started", true)
	step("unchanged", "", false)
	// A record being written: its first half is not consumed...
	half := line(t, a2)
	appendLog(t, p, half[:20])
	step("torn tail", "", false)
	// ...and read whole once the rest arrives.
	appendLog(t, p, half[20:])
	step("completed", "a:passed", false)
	appendLog(t, p, line(t, b1))
	step("appended", "b:failed", false)

	// Rotation: a new file at the path.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	writeLog(t, dir, line(t, b1))
	step("rotated", "b:failed", true)

	// Rewritten in place, longer than before, with other bytes where the
	// last read ended: read afresh.
	content := line(t, a2) + line(t, b1)
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	step("rewritten", "a:passed,b:failed", true)

	// Truncated (compaction to nothing).
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	step("truncated", "", true)

	// Removed: fresh, nothing.
	appendLog(t, p, line(t, a1))
	step("after truncation", "a:started", false)
	os.Remove(p)
	step("removed", "", true)
	step("still removed", "", false)
}

// A corrupt line is reported by the poll that reads it, and the records
// after it are still returned; later polls do not repeat it.
func TestLogFollowerCorruptOnce(t *testing.T) {
	dir := t.TempDir()
	p := writeLog(t, dir, line(t, rec("a", "g", ResultPassed, 0, 1))+"{oops\n"+line(t, rec("b", "g", ResultFailed, 2, 3)))
	f := LogFollower{Path: p}
	got, _, err := f.Poll()
	var ce *CorruptLogError
	if !errors.As(err, &ce) || ce.Lines[0].Line != 2 || ids(got) != "a:passed,b:failed" {
		t.Fatalf("got %q, %v; want both records and line 2 reported", ids(got), err)
	}
	appendLog(t, p, line(t, rec("c", "g", ResultPassed, 4, 5)))
	got, _, err = f.Poll()
	if err != nil || ids(got) != "c:passed" {
		t.Fatalf("next poll: %q, %v", ids(got), err)
	}
	// Line numbers keep counting across polls.
	appendLog(t, p, "bad\n")
	_, _, err = f.Poll()
	if !errors.As(err, &ce) || ce.Lines[0].Line != 5 {
		t.Fatalf("err = %v, want line 5", err)
	}
}

func TestLatestAndInterrupted(t *testing.T) {
	records := []Record{
		rec("a", "g1", ResultStarted, 0, -1),
		rec("a", "g1", ResultFailed, 0, 1),
		rec("b", "g1", ResultRefused, 2, 2),  // refused: g1 stays failed
		rec("c", "g2", ResultStarted, 3, -1), // killed: interrupted
		rec("d", "g2", ResultPassed, 4, 6),
		rec("e", "g2", ResultStarted, 7, 7), // a scrub left running: final, no standing
		rec("f", "g3", ResultStarted, 8, -1),
		rec("f", "g3", ResultStarted, 8, 9), // started, then left running
		rec("g", "g4", ResultPassed, 10, 20),
		rec("h", "g4", ResultFailed, 11, 12), // ended before g: g stands
		rec("i", "g5", ResultStarted, 30, -1),
	}
	latest := Latest(records)
	want := map[string]string{"g1": "a:failed", "g2": "d:passed", "g4": "g:passed"}
	if len(latest) != len(want) {
		t.Errorf("latest = %v", latest)
	}
	for g, w := range want {
		if r := latest[g]; r.ID+":"+string(r.Result) != w {
			t.Errorf("latest[%s] = %s:%s, want %s", g, r.ID, r.Result, w)
		}
	}
	if got := ids(Interrupted(records)); got != "c:started,i:started" {
		t.Errorf("interrupted = %q", got)
	}
}

// FuzzParseLog: any bytes parse without panic; complete lines are
// consumed whole, every record read is valid, and corrupt plus records
// never exceed the lines.
func FuzzParseLog(f *testing.F) {
	f.Add([]byte(line(f, rec("a", "g", ResultStarted, 0, -1)) + line(f, rec("a", "g", ResultFailed, 0, 1))))
	f.Add([]byte("garbage\n{\"id\":\"x\"}\n\n"))
	f.Add([]byte(line(f, rec("a", "g", ResultPassed, 0, 1))[:17] + line(f, rec("b", "g", ResultPassed, 0, 1))))
	f.Add([]byte(`{"id":"a","group":"g","result":"passed","started":"2026-01-01T00:00:00Z","failed_members":{"x":"y"}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := parseLog(data, 0, 1)
		if p.consumed > len(data) || (p.consumed > 0 && data[p.consumed-1] != '\n') {
			t.Fatalf("consumed %d of %d, not at a line end", p.consumed, len(data))
		}
		if strings.Contains(string(data[p.consumed:]), "\n") {
			t.Fatalf("a complete line was left unconsumed")
		}
		if len(p.records) > p.lines || len(p.corrupt) > p.lines {
			t.Fatalf("%d records, %d corrupt of %d lines", len(p.records), len(p.corrupt), p.lines)
		}
		for _, r := range p.records {
			if r.ID == "" || r.Group == "" || r.Started.IsZero() {
				t.Fatalf("invalid record accepted: %+v", r)
			}
		}
		for _, c := range p.corrupt {
			if c.Line < 1 || c.Line > int64(p.lines) {
				t.Fatalf("corrupt line number %d outside 1..%d", c.Line, p.lines)
			}
		}
	})
}
