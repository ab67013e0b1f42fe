package auditlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readLog parses every line of an audit log (the test's own reader: the
// daemon's is ReadLog).
func readLog(t *testing.T, path string) []Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, MaxRecordSize), MaxRecordSize)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("log does not end in a newline: %q", b)
	}
	return recs
}

func TestAppendLog(t *testing.T) {
	dir := t.TempDir()
	path := LogPath(dir)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := Record{ID: "a", Group: "storage/md/md0", Method: "md-check", Result: ResultStarted, Started: t0, User: "ops", UID: 0, PID: 42}
	second := first
	second.Result, second.Reason, second.Finished = ResultFailed, "mismatch_cnt 128 after check", t0.Add(time.Minute)
	second.FailedMembers = map[string]string{"sdb1": "unreadable"}
	for _, r := range []Record{first, second} {
		if err := AppendLog(path, r); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&^0o640 != 0 {
		t.Errorf("mode %v, want at most 0640", st.Mode().Perm())
	}
	got := readLog(t, path)
	if len(got) != 2 || got[0].Result != ResultStarted || got[1].Result != ResultFailed || got[1].ID != "a" ||
		got[1].Reason != second.Reason || got[1].FailedMembers["sdb1"] != "unreadable" || !got[1].Finished.Equal(second.Finished) {
		t.Errorf("log = %+v", got)
	}
	if !got[0].Finished.IsZero() {
		t.Errorf("started record has a finish time: %v", got[0].Finished)
	}
}

// A method's or an environment's long text is cut; the record stays one
// bounded, parseable line with its verdict.
func TestAppendLogBoundsRecords(t *testing.T) {
	path := LogPath(t.TempDir())
	long := strings.Repeat("é", 10000) // 2 bytes each: cuts must land on rune boundaries
	r := Record{ID: "b", Group: long, Method: "md-check", Result: ResultFailed, Reason: long, FailedMembers: map[string]string{}}
	for i := range 200 {
		r.Details = append(r.Details, long)
		r.FailedMembers[strings.Repeat("m", i+1)] = long
	}
	if err := AppendLog(path, r); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) > MaxRecordSize {
		t.Errorf("record is %d bytes, more than %d", len(b), MaxRecordSize)
	}
	got := readLog(t, path)
	if len(got) != 1 || got[0].Result != ResultFailed || !strings.HasSuffix(got[0].Reason, "…") || len(got[0].Reason) > maxReason {
		t.Fatalf("bounded record: result %q, reason %d bytes", got[0].Result, len(got[0].Reason))
	}
	if len(got[0].FailedMembers) > maxFailedMembers || len(got[0].Details) > maxDetails+1 {
		t.Errorf("%d failed members, %d details kept", len(got[0].FailedMembers), len(got[0].Details))
	}
	for _, s := range append(got[0].Details, got[0].Reason, got[0].Group) {
		if strings.ContainsRune(s, '\uFFFD') {
			t.Errorf("a cut split a rune: %q", s[len(s)-8:])
		}
	}
}

func TestAppendLogUnwritable(t *testing.T) {
	// A directory where the file should be: no user, root included, can
	// open it for writing.
	path := LogPath(t.TempDir())
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := AppendLog(path, Record{ID: "c"}); err == nil {
		t.Error("append to a directory succeeded")
	}
}

// A new log takes the state directory's group, so the daemon (the
// directory's owner group) can read what root's drill wrote.
func TestAppendLogTakesDirectoryGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another group needs root")
	}
	dir := t.TempDir()
	const gid = 4242
	if err := os.Chown(dir, -1, gid); err != nil {
		t.Fatal(err)
	}
	if err := AppendLog(LogPath(dir), Record{ID: "g"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(LogPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Sys().(*syscall.Stat_t).Gid; got != gid {
		t.Errorf("log group %d, want the directory's %d", got, gid)
	}
}

// A writer killed mid-line leaves a fragment; the next record starts on a
// line of its own, so the reader loses only the fragment.
func TestAppendLogAfterTornLine(t *testing.T) {
	path := LogPath(t.TempDir())
	whole := Record{ID: "a", Group: "storage/md/md0", Method: "md-check", Result: ResultStarted, Started: time.Unix(1, 0).UTC()}
	if err := AppendLog(path, whole); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"b","group":"storage/md/m`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	next := whole
	next.ID, next.Result = "c", ResultPassed
	if err := AppendLog(path, next); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], `{"id":"c"`) {
		t.Fatalf("log lines = %q, want the new record on a line of its own", lines)
	}
	recs, err := ReadLog(path, 1<<20)
	var corrupt *CorruptLogError
	if !errors.As(err, &corrupt) || corrupt.Total != 1 {
		t.Errorf("ReadLog error = %v, want one corrupt line (the fragment)", err)
	}
	if len(recs) != 2 || recs[1].ID != "c" || recs[1].Result != ResultPassed {
		t.Errorf("records = %+v, want a and c", recs)
	}
}
