package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// FileName is the journal's file in the state directory.
const FileName = "events.jsonl"

// Defaults and bounds.
const (
	// DefaultMaxBytes bounds the journal file. Past it the oldest events are
	// folded into a baseline (each group's state and the findings then
	// active, with their original times) and dropped, so state_since and
	// open incidents survive compaction.
	DefaultMaxBytes = 4 << 20
	// MaxLineBytes bounds one event line; a longer line is skipped as corrupt.
	MaxLineBytes = 16 << 10
)

// Options configures a Store.
type Options struct {
	// MaxBytes bounds the file (default DefaultMaxBytes).
	MaxBytes int64
}

// Store is the journal file plus an in-memory copy for readers. Readers
// never wait on disk: the copy has its own lock, never held across I/O.
type Store struct {
	path     string
	maxBytes int64

	writeMu     sync.Mutex // held across file I/O
	file        *os.File
	size        int64
	compactErr  error
	nextCompact int64 // after a failed compaction: the size to try again at

	mu      sync.Mutex // guards events only
	events  []Event
	skipped int
}

// Open opens (creating) the journal in dir and reads what it holds. Corrupt
// or oversized lines (a crash mid-write, a disk error) are skipped and
// counted, never fatal: history is kept as far as it can be read.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	s := &Store{path: path, maxBytes: opts.MaxBytes, file: f}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load reads at most the last 2×MaxBytes of the file: a file grown past
// that (written by something else, or a sparse file) cannot cost more.
func (s *Store) load() error {
	st, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("journal: stat %s: %w", s.path, err)
	}
	s.size = st.Size()
	if err := s.dropTornTail(); err != nil {
		return err
	}
	limit := 2 * s.maxBytes
	start := max(int64(0), s.size-limit)
	r := bufio.NewReaderSize(io.NewSectionReader(s.file, start, limit), 64<<10)
	events, skipped := parse(r, start > 0)
	s.events, s.skipped = events, skipped
	return nil
}

// dropTornTail cuts a last line that has no newline (a crash in the
// middle of an append): the next append would otherwise be glued to it and
// lost with it.
func (s *Store) dropTornTail() error {
	if s.size == 0 {
		return nil
	}
	const chunk = 64 << 10
	end := s.size
	buf := make([]byte, chunk)
	for end > 0 {
		start := max(0, end-chunk)
		n, err := s.file.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("journal: read %s: %w", s.path, err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			cut := start + int64(i) + 1
			if cut == s.size {
				return nil
			}
			return s.truncate(cut)
		}
		end = start
		if s.size-end > MaxLineBytes {
			break // no newline in the last line's bound: drop it all
		}
	}
	return s.truncate(end)
}

func (s *Store) truncate(size int64) error {
	if err := s.file.Truncate(size); err != nil {
		return fmt.Errorf("journal: truncate the torn last line of %s: %w", s.path, err)
	}
	s.size = size
	return nil
}

// parse reads JSON lines. A line longer than MaxLineBytes or not an event is
// skipped and counted. partialFirst drops the first line (cut by a seek).
func parse(r *bufio.Reader, partialFirst bool) ([]Event, int) {
	var events []Event
	skipped := 0
	first := partialFirst
	for {
		line, tooLong, err := readLine(r)
		if len(line) > 0 || tooLong {
			switch {
			case first:
			case tooLong:
				skipped++
			default:
				var e Event
				if json.Unmarshal(line, &e) != nil || e.Kind == "" || e.At.IsZero() {
					skipped++
				} else {
					events = append(events, e)
				}
			}
			first = false
		}
		if err != nil {
			break
		}
	}
	slices.SortStableFunc(events, func(a, b Event) int { return a.At.Compare(b.At) })
	return events, skipped
}

// readLine returns one line without its newline, reading at most
// MaxLineBytes of it; the rest of a longer line is discarded.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if len(buf)+len(chunk) > MaxLineBytes {
			tooLong = true
		} else {
			buf = append(buf, chunk...)
		}
		if err != nil {
			return buf, tooLong, err
		}
		if !isPrefix {
			return buf, tooLong, nil
		}
	}
}

// Skipped is how many unreadable lines the journal held when opened.
func (s *Store) Skipped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}

// Events returns the events at or after since, oldest first.
func (s *Store) Events(since time.Time) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.events, since, func(e Event, t time.Time) int { return e.At.Compare(t) })
	return slices.Clone(s.events[i:])
}

// Baseline rebuilds what the journal knew last (group states with their
// since, active findings), for the first Diff after a restart.
func (s *Store) Baseline() Baseline {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Replay(s.events)
}

// Append writes events durably (one write, then fsync) and then shows them
// to readers. A failed write leaves readers' view unchanged and returns the
// error, naming the file.
func (s *Store) Append(events []Event) error {
	if len(events) == 0 {
		return nil
	}
	events = slices.Clone(events)
	var buf bytes.Buffer
	for i := range events {
		// A summary that would make the line too long to read back is cut
		// (on a rune boundary), here and in memory alike.
		if len(events[i].Summary) > MaxLineBytes/4 {
			events[i].Summary = strings.ToValidUTF8(events[i].Summary[:MaxLineBytes/4], "")
		}
		b, err := json.Marshal(events[i])
		if err != nil {
			return fmt.Errorf("journal: encode event: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.file == nil {
		return errors.New("journal: closed")
	}
	before := s.size
	n, err := s.file.Write(buf.Bytes())
	s.size += int64(n)
	if err == nil {
		err = s.file.Sync()
	}
	if err != nil {
		// Take back a partial or unsynced write: the caller retries the
		// same events, which must not then stand twice (or after half a
		// line) in the file.
		if terr := s.file.Truncate(before); terr == nil {
			s.size = before
		}
		return fmt.Errorf("journal: write %s: %w", s.path, err)
	}
	s.mu.Lock()
	s.events = append(s.events, events...)
	s.mu.Unlock()
	// The events are on disk: a failed compaction is not a failed append
	// (the caller would write them again). It is kept for CompactErr and
	// tried again only after the file has grown by another half bound.
	if s.size > max(s.maxBytes, s.nextCompact) {
		if err := s.compactLocked(); err != nil {
			s.compactErr = err
			s.nextCompact = s.size + s.maxBytes/2
		} else {
			s.compactErr, s.nextCompact = nil, 0
		}
	}
	return nil
}

// CompactErr is the last compaction's error, nil once one succeeds.
func (s *Store) CompactErr() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.compactErr
}

// compactLocked rewrites the file with the newest events that fit in half
// the bound, preceded by the baseline of the dropped ones, atomically
// (temporary file, fsync, rename, fsync of the directory).
func (s *Store) compactLocked() error {
	s.mu.Lock()
	all := slices.Clone(s.events)
	s.mu.Unlock()
	keepBytes := s.maxBytes / 2
	var used int64
	cut := len(all)
	for cut > 0 {
		b, _ := json.Marshal(all[cut-1])
		if used+int64(len(b))+1 > keepBytes {
			break
		}
		used += int64(len(b)) + 1
		cut--
	}
	kept := BaselineEvents(Replay(all[:cut]))
	if cut > 0 {
		kept = append(kept, Event{At: all[cut-1].At, Kind: KindHistoryStart})
	}
	kept = append(kept, all[cut:]...)
	var buf bytes.Buffer
	for _, e := range kept {
		b, _ := json.Marshal(e)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	tmp := s.path + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("journal: compact %s: %w", s.path, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("journal: compact %s: %w", s.path, err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("journal: reopen %s: %w", s.path, err)
	}
	s.file.Close()
	s.file, s.size = f, int64(buf.Len())
	s.mu.Lock()
	s.events = kept
	s.mu.Unlock()
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BaselineEvents turns a baseline back into events with their original
// times: the state of every group and each finding still active.
func BaselineEvents(b Baseline) []Event {
	var out []Event
	for id, g := range b.Groups {
		out = append(out, Event{At: g.Since, Kind: KindGroupState, Group: id, To: g.State})
	}
	for _, f := range b.Findings {
		out = append(out, Event{At: f.Since, Kind: KindFindingStart, Group: f.Group, Member: f.Member, Code: f.Code, Severity: f.Severity.String(), Summary: f.Summary})
	}
	for id, p := range b.Proofs {
		out = append(out, Event{At: p.At, Kind: KindProof, Group: id, ProvenAt: p.At, Method: p.Method, Result: string(p.Result), Summary: p.Detail})
	}
	slices.SortStableFunc(out, func(a, b Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if a.Group != b.Group {
			if a.Group < b.Group {
				return -1
			}
			return 1
		}
		if a.Kind < b.Kind {
			return 1 // group state before its findings
		}
		return 0
	})
	return out
}

// Close closes the file.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// Read reads the journal in dir without opening it for writing (the
// `report` command, a reader beside the daemon). A missing journal is an
// empty history.
func Read(dir string, opts Options) ([]Event, int, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("journal: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("journal: stat %s: %w", path, err)
	}
	limit := 2 * opts.MaxBytes
	start := max(int64(0), st.Size()-limit)
	events, skipped := parse(bufio.NewReaderSize(io.NewSectionReader(f, start, limit), 64<<10), start > 0)
	return events, skipped, nil
}
