package auditlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"unicode/utf8"
)

// LogFile is the audit log's name in the state directory.
const LogFile = "drills.jsonl"

// LogPath is the audit log in a state directory.
func LogPath(stateDir string) string { return filepath.Join(stateDir, LogFile) }

// MaxRecordSize bounds one audit line (JSON and newline). A reader can
// then read the log line by line with a fixed buffer, and one record is
// one write(2), which O_APPEND places whole.
const MaxRecordSize = 16 << 10

// Bounds of a record's parts, before MaxRecordSize is checked.
const (
	maxReason        = 1024
	maxDetails       = 32
	maxDetail        = 256
	maxFailedMembers = 32
	maxName          = 256
)

// AppendLog appends one record to the audit log at path as a JSON line,
// creating the file (0640, the state directory's group) if needed, and syncs it to disk before
// returning, and the directory too when the file was created, so a record
// that AppendLog accepted survives a crash or a SIGKILL right after. The
// record is cut to MaxRecordSize (long reasons and details shortened, the
// cut said in the record).
func AppendLog(path string, r Record) error {
	line, err := encodeRecord(r)
	if err != nil {
		return err
	}
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open the drill audit log: %w", err)
	}
	if created {
		shareGroup(f, filepath.Dir(path))
	} else if endsTorn(path) {
		// A writer killed mid-line left a fragment: start on a line of
		// our own, or the reader would see this record glued to it.
		line = append([]byte{'\n'}, line...)
	}
	// One write: appenders never interleave inside a line.
	_, werr := f.Write(line)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("append to the drill audit log %s: %w", path, err)
	}
	if created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
		}
	}
	return nil
}

// endsTorn says whether the log's last byte is not a newline (a record cut
// short). Drills hold the lock, so no other appender races this check.
func endsTorn(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return false
	}
	return last[0] != '\n'
}

// shareGroup gives a new log the state directory's group, as a setgid
// directory would: root runs the drills, and the daemon, which reads the
// log, runs as the directory's owner (spofwatch:spofwatch 0750). Where we
// may not chown (not root), the file keeps our group.
func shareGroup(f *os.File, dir string) {
	st, err := os.Stat(dir)
	if err != nil {
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Gid) != os.Getegid() {
		_ = f.Chown(-1, int(sys.Gid))
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// encodeRecord is the record's JSON line, bounded.
func encodeRecord(r Record) ([]byte, error) {
	r = boundRecord(r)
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode drill record: %w", err)
	}
	if len(b)+1 > MaxRecordSize {
		// Only details can still be this large: keep the verdict.
		r.Details = []string{fmt.Sprintf("(%d details dropped: the record would exceed %d bytes)", len(r.Details), MaxRecordSize)}
		if b, err = json.Marshal(r); err != nil {
			return nil, fmt.Errorf("encode drill record: %w", err)
		}
	}
	return append(b, '\n'), nil
}

// boundRecord shortens what a method or the environment may have made
// long: the reason, each detail, the number of details and failed members.
func boundRecord(r Record) Record {
	r.ID, r.Group, r.Method, r.User = cut(r.ID, maxName), cut(r.Group, maxName), cut(r.Method, maxName), cut(r.User, maxName)
	r.Reason = cut(r.Reason, maxReason)
	if len(r.Details) > 0 {
		n := min(len(r.Details), maxDetails)
		details := make([]string, 0, n+1)
		for _, d := range r.Details[:n] {
			details = append(details, cut(d, maxDetail))
		}
		if len(r.Details) > n {
			details = append(details, fmt.Sprintf("(%d more details not kept)", len(r.Details)-n))
		}
		r.Details = details
	}
	if len(r.FailedMembers) > 0 {
		names := make([]string, 0, len(r.FailedMembers))
		for m := range r.FailedMembers {
			names = append(names, m)
		}
		sort.Strings(names)
		fm := make(map[string]string, min(len(names), maxFailedMembers))
		for _, m := range names[:min(len(names), maxFailedMembers)] {
			fm[cut(m, maxName)] = cut(r.FailedMembers[m], maxDetail)
		}
		r.FailedMembers = fm
	}
	return r
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
