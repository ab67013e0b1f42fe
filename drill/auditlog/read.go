package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The audit log reader. It is read by the unprivileged daemon and by
// `check` on every collection, so it is bounded, cheap when nothing
// changed, and forgiving of what a crash leaves behind:
//
//   - at most maxBytes are read (the newest); the partial line where the
//     window starts is skipped;
//   - an incomplete last line (a record being written, or a writer killed
//     mid-write) is not consumed and not an error;
//   - a line that is not a record is reported with its line number in a
//     *CorruptLogError, returned together with the good records: a bad line
//     never hides the records around it;
//   - a record glued to a torn one (the writer appended after a line a
//     SIGKILL cut short) is recovered from where its own object starts;
//   - a missing file is "no drills yet": no records, no error.
//
// This file imports nothing of ours: the daemon's adapter needs only it
// and Record.

// DefaultLogReadBytes bounds one read of the audit log. At a few hundred
// bytes a record it holds years of weekly drills of every group.
const DefaultLogReadBytes int64 = 4 << 20

// maxCorruptLines bounds how many bad lines an error lists; the rest are
// counted.
const maxCorruptLines = 10

// CorruptLine is one line of the audit log that is not a record.
type CorruptLine struct {
	// Line is the line's number in the file, from 1; 0 when unknown (the
	// read started past the file's beginning).
	Line int64
	// Offset is the byte offset where the line starts.
	Offset int64
	Err    error
}

func (c CorruptLine) String() string {
	if c.Line > 0 {
		return fmt.Sprintf("line %d: %v", c.Line, c.Err)
	}
	return fmt.Sprintf("line at byte %d: %v", c.Offset, c.Err)
}

// CorruptLogError says which lines of the audit log could not be read.
// The records around them were read and are returned beside it.
type CorruptLogError struct {
	Path  string
	Lines []CorruptLine // the first maxCorruptLines
	Total int           // how many lines in all
}

func (e *CorruptLogError) Error() string {
	parts := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		parts[i] = l.String()
	}
	more := ""
	if e.Total > len(e.Lines) {
		more = fmt.Sprintf(" (and %d more)", e.Total-len(e.Lines))
	}
	return fmt.Sprintf("drill audit log %s: %d unreadable line(s) skipped: %s%s", e.Path, e.Total, strings.Join(parts, "; "), more)
}

// add records one bad line, keeping the first maxCorruptLines.
func (e *CorruptLogError) add(l CorruptLine) {
	e.Total++
	if len(e.Lines) < maxCorruptLines {
		e.Lines = append(e.Lines, l)
	}
}

// ReadLog reads the audit log at path: the records of its last maxBytes
// (DefaultLogReadBytes when maxBytes <= 0), oldest first. A missing file
// gives no records and no error. Bad lines give the good records and a
// *CorruptLogError (errors.As); any other error means the log could not be
// read, and no records are returned.
func ReadLog(path string, maxBytes int64) ([]Record, error) {
	var f LogFollower
	f.Path, f.MaxBytes = path, maxBytes
	recs, _, err := f.Poll()
	return recs, err
}

// LogFollower reads an audit log as it grows, for the daemon: each Poll
// returns the records appended since the previous one. Poll costs one
// stat when nothing changed. It notices when the log was rotated,
// compacted or rewritten (another file, a shorter one, or different bytes
// where the last read ended) and then reads it afresh and says so. Not
// safe for concurrent use.
type LogFollower struct {
	Path     string
	MaxBytes int64 // per Poll; DefaultLogReadBytes when <= 0

	known   bool
	dev     uint64
	ino     uint64
	size    int64
	mtime   time.Time
	offset  int64  // just past the last complete line consumed
	line    int64  // number of the next line; 0 when unknown
	tailSum []byte // the bytes just before offset, to notice a rewrite
}

// tailCheck is how many bytes before the read offset are compared on each
// read, to notice a log rewritten in place rather than appended to.
const tailCheck = 64

// Poll returns the records appended since the last Poll, oldest first.
// fresh is true when they are read from the log's beginning (the first
// Poll, or the log was replaced, truncated or rewritten): the caller drops
// what it built from earlier records. A missing file is fresh with no
// records. Bad lines come with a *CorruptLogError beside the good records;
// each is reported once, by the Poll that first reads it.
func (f *LogFollower) Poll() (recs []Record, fresh bool, err error) {
	maxBytes := f.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultLogReadBytes
	}
	file, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		fresh = f.known
		f.reset()
		return nil, fresh, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open the drill audit log: %w", err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat the drill audit log: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, false, fmt.Errorf("drill audit log %s is not a regular file (%s)", f.Path, st.Mode().Type())
	}
	dev, ino := fileID(st)
	size, mtime := st.Size(), st.ModTime()
	if f.known && dev == f.dev && ino == f.ino && size == f.size && mtime.Equal(f.mtime) {
		return nil, false, nil
	}
	sameFile := f.known && dev == f.dev && ino == f.ino && size >= f.offset
	if sameFile && size == f.size && !mtime.Equal(f.mtime) {
		sameFile = false // same length, new bytes: rewritten in place
	}
	if sameFile && len(f.tailSum) > 0 {
		got := make([]byte, len(f.tailSum))
		if _, err := file.ReadAt(got, f.offset-int64(len(got))); err != nil || !bytes.Equal(got, f.tailSum) {
			sameFile = false
		}
	}
	if !sameFile {
		fresh = true
		f.reset()
		f.known = true
	}
	f.dev, f.ino, f.size, f.mtime = dev, ino, size, mtime
	recs, err = f.readFrom(file, size, maxBytes)
	var corrupt *CorruptLogError
	if err != nil && !errors.As(err, &corrupt) {
		// Nothing was consumed: forget the file, so the next Poll reads it
		// afresh instead of taking an unchanged stat for "read".
		f.reset()
		return nil, false, err
	}
	return recs, fresh, err
}

func (f *LogFollower) reset() {
	*f = LogFollower{Path: f.Path, MaxBytes: f.MaxBytes, line: 1}
}

// readFrom reads the complete lines between f.offset and size, at most
// maxBytes of them (the newest), and moves f.offset past them.
func (f *LogFollower) readFrom(file *os.File, size, maxBytes int64) ([]Record, error) {
	start := f.offset
	skipPartial := false
	if size-start > maxBytes {
		start = size - maxBytes
		// The window starts inside a line unless the byte before it ends
		// one.
		var b [1]byte
		if _, err := file.ReadAt(b[:], start-1); err != nil || b[0] != '\n' {
			skipPartial = true
		}
		f.line = 0
	}
	data := make([]byte, size-start)
	if n, err := file.ReadAt(data, start); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size-start) {
		return nil, fmt.Errorf("read the drill audit log: %w", err)
	}
	if skipPartial {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, nil // one line longer than the window: nothing whole yet
		}
		data, start = data[i+1:], start+int64(i+1)
	}
	res := parseLog(data, start, f.line)
	f.offset = start + int64(res.consumed)
	if f.line > 0 {
		f.line += int64(res.lines)
	}
	consumed := data[:res.consumed]
	f.tailSum = append([]byte(nil), consumed[max(0, len(consumed)-tailCheck):]...)
	if len(res.corrupt) > 0 {
		e := &CorruptLogError{Path: f.Path}
		for _, c := range res.corrupt {
			e.add(c)
		}
		return res.records, e
	}
	return res.records, nil
}

// parsed is what parseLog made of a buffer.
type parsed struct {
	records []Record
	corrupt []CorruptLine
	// consumed is how many bytes of complete lines were read; the rest is
	// an incomplete last line.
	consumed int
	lines    int
}

// recordStart is how every record line begins (Record's first field), so
// a record glued to the fragment of a torn one can be found.
var recordStart = []byte(`{"id":`)

// parseLog parses the complete lines of data, which starts at byte offset
// base and line number line (0: unknown). Blank lines are skipped.
func parseLog(data []byte, base, line int64) parsed {
	var p parsed
	for {
		i := bytes.IndexByte(data[p.consumed:], '\n')
		if i < 0 {
			return p
		}
		raw := data[p.consumed : p.consumed+i]
		at := base + int64(p.consumed)
		num := int64(0)
		if line > 0 {
			num = line + int64(p.lines)
		}
		p.consumed += i + 1
		p.lines++
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		rec, err := decodeRecord(raw)
		if err == nil {
			p.records = append(p.records, rec)
			continue
		}
		// A torn record followed by a whole one on the same line: keep
		// the whole one, report the fragment.
		if j := bytes.LastIndex(raw, recordStart); j > 0 {
			if rec, rerr := decodeRecord(raw[j:]); rerr == nil {
				p.records = append(p.records, rec)
				err = fmt.Errorf("%d bytes of a torn record before a whole one", j)
			}
		}
		p.corrupt = append(p.corrupt, CorruptLine{Line: num, Offset: at, Err: err})
	}
}

// decodeRecord decodes one line into a record and checks what the reader
// relies on: an ID, a group, a known result and a start time.
func decodeRecord(raw []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	switch {
	case r.ID == "":
		return Record{}, errors.New("record without id")
	case r.Group == "":
		return Record{}, errors.New("record without group")
	case r.Started.IsZero():
		return Record{}, errors.New("record without started time")
	}
	switch r.Result {
	case ResultPassed, ResultFailed, ResultRefused, ResultStarted:
	default:
		return Record{}, fmt.Errorf("record with unknown result %q", r.Result)
	}
	return r, nil
}

// fileID is the device and inode of a file, to tell a rotated log from
// the one read before.
func fileID(st fs.FileInfo) (dev, ino uint64) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Dev), s.Ino
	}
	return 0, 0
}

// IsFinal reports whether a record ends a drill: passed, failed, refused,
// or started when the drill was left running on its own (a scrub not
// followed with --wait), which has its finish time set. The record a drill
// writes as it starts has none.
func (r Record) IsFinal() bool {
	return r.Result != ResultStarted || !r.Finished.IsZero()
}

// EndedAt is when a record's drill ended, or started if it has not.
func (r Record) EndedAt() time.Time {
	if !r.Finished.IsZero() {
		return r.Finished
	}
	return r.Started
}

// Latest returns each group's newest drill that passed or failed: its
// standing. Refused drills changed nothing and leave it as it was, and a
// drill left running on its own has not ended. Among records of one group
// the one that ended last wins; at equal times the later in the log.
func Latest(records []Record) map[string]Record {
	out := map[string]Record{}
	for _, r := range records {
		if r.Result != ResultPassed && r.Result != ResultFailed {
			continue
		}
		if cur, ok := out[r.Group]; ok && r.EndedAt().Before(cur.EndedAt()) {
			continue
		}
		out[r.Group] = r
	}
	return out
}

// Interrupted returns the drills that wrote their start and no end,
// oldest first: killed (SIGKILL, power loss) or still running. The log
// alone cannot tell the two apart; the drill lock can.
func Interrupted(records []Record) []Record {
	ended := map[string]bool{}
	for _, r := range records {
		if r.IsFinal() {
			ended[r.ID] = true
		}
	}
	var out []Record
	seen := map[string]bool{}
	for _, r := range records {
		if r.IsFinal() || ended[r.ID] || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}
