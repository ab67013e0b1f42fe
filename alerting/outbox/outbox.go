// Package outbox is a durable, bounded, on-disk queue of notifications.
//
// Every entry is one file in <dir>/queue, written to a temporary file,
// fsynced, renamed into place and made durable with an fsync of the
// directory, so a crash leaves either the whole entry or none of it. File
// names carry a sequence number that orders delivery. An entry that cannot
// be decoded (truncated, corrupted, oversized, from a future version) is
// moved to <dir>/quarantine with a log line and never blocks the others.
// The queue holds at most MaxEntries; beyond that the oldest entry is
// dropped, logged and counted.
//
// One Outbox owns its directory at a time (an exclusive flock held until
// Close), so two engines can never number entries independently or
// overwrite each other's files.
//
// When the disk cannot be written (full, read-only, missing), entries can
// still be held in memory (Hold) so alerts go out at least on a best-effort
// basis; WriteErr reports the condition until a write succeeds again.
package outbox

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/internal/redact"
)

// DefaultMaxEntries bounds the queue when Options.MaxEntries is zero.
const DefaultMaxEntries = 10000

// DefaultMaxEntryBytes bounds one entry file read at start. A push of the
// whole active set to Alertmanager is about 1 KiB per alert, so this is
// thousands of alerts; a larger file is not ours (or is a sparse file left
// by a broken disk) and is quarantined instead of read into memory.
const DefaultMaxEntryBytes = 16 << 20

const (
	queueDir      = "queue"
	quarantineDir = "quarantine"
	entrySuffix   = ".entry"
	tmpSuffix     = ".tmp"
	probeName     = "probe"
)

// Entry is one notification for one delivery target.
type Entry struct {
	// ID orders entries; assigned by Enqueue.
	ID uint64 `json:"id"`
	// Receiver is the configured receiver name.
	Receiver string `json:"receiver"`
	// Instance picks one of the receiver's URLs (1-based) for receivers
	// with several (Alertmanager HA); 0 for webhooks. Entries name their
	// destination by this reference, resolved from the running
	// configuration at delivery time, so a password in a URL never reaches
	// the disk.
	Instance int `json:"instance,omitempty"`
	// URL is how entries written by earlier versions named the instance.
	// It is read for upgrades (the engine maps it to Instance with
	// Retarget) and never written.
	URL     string         `json:"url,omitempty"`
	Created time.Time      `json:"created"`
	Alerts  []notify.Alert `json:"alerts"`
}

// Target identifies the delivery queue an entry belongs to. Entries of one
// target are delivered in ID order.
func (e Entry) Target() string {
	if e.URL != "" {
		// An old-format entry not yet retargeted: matches no target.
		return e.Receiver + " " + e.URL
	}
	return Target(e.Receiver, e.Instance)
}

// Target builds a target key from a receiver name and instance number
// (1-based; 0 for receivers with one destination).
func Target(receiver string, instance int) string {
	if instance == 0 {
		return receiver
	}
	return receiver + " #" + strconv.Itoa(instance)
}

// FS is what the outbox writes through. The default is the real file
// system; tests inject a disk that is full, read-only or stalls in fsync.
type FS interface {
	// Write writes all of b to f, a new file in the outbox.
	Write(f *os.File, b []byte) error
	// Sync flushes f (a file or a directory) to stable storage.
	Sync(f *os.File) error
}

type osFS struct{}

func (osFS) Write(f *os.File, b []byte) error { _, err := f.Write(b); return err }
func (osFS) Sync(f *os.File) error            { return f.Sync() }

// Options configure Open.
type Options struct {
	Dir        string
	MaxEntries int
	// MaxEntryBytes bounds an entry file read at start (DefaultMaxEntryBytes
	// when zero).
	MaxEntryBytes int64
	Logger        *slog.Logger
	// OnDrop is called (with the lock held: keep it short) for every entry
	// dropped to make room.
	OnDrop func(Entry)
	// FS is the file system writes go through; the real one when nil.
	FS FS
}

// Outbox is safe for concurrent use.
type Outbox struct {
	dir      string
	max      int
	maxBytes int64
	logger   *slog.Logger
	onDrop   func(Entry)
	fs       FS

	// mu guards the fields below and is held across disk writes and
	// fsyncs. Readers that must never wait on the disk (metrics, health)
	// use the atomics instead.
	mu      sync.Mutex
	nextID  uint64
	entries map[uint64]Entry
	held    map[uint64]bool // entries only in memory: not written yet
	lock    *os.File        // the directory, flocked; nil when not owned
	closed  bool

	stats       atomic.Pointer[Stats]
	writeErr    atomic.Pointer[error]
	dropped     atomic.Uint64
	quarantined atomic.Uint64
}

// ErrLocked is returned by Open when another Outbox (in this process or
// another) owns the directory.
var ErrLocked = errors.New("outbox directory is in use by another alert engine")

// Open opens or creates the outbox at opts.Dir, takes ownership of it and
// loads every pending entry, quarantining those that do not decode.
//
// A directory that cannot be created or read does not fail Open: the
// outbox starts in memory only, with WriteErr saying why, so alerts still
// go out. Only a directory owned by someone else (ErrLocked) fails.
func Open(opts Options) (*Outbox, error) {
	if opts.Dir == "" {
		return nil, errors.New("outbox: no directory given")
	}
	o := &Outbox{
		dir:      opts.Dir,
		max:      cmp.Or(opts.MaxEntries, DefaultMaxEntries),
		maxBytes: cmp.Or(opts.MaxEntryBytes, DefaultMaxEntryBytes),
		logger:   opts.Logger,
		onDrop:   opts.OnDrop,
		fs:       opts.FS,
		entries:  map[uint64]Entry{},
		held:     map[uint64]bool{},
		nextID:   1,
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.fs == nil {
		o.fs = osFS{}
	}
	if err := o.own(); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, err
		}
		o.startInMemory(err)
		return o, nil
	}
	if err := o.load(); err != nil {
		o.startInMemory(err)
	}
	o.publishLocked()
	return o, nil
}

// startInMemory runs the outbox without its directory. Numbering starts
// at the clock so entries written once the disk is back sort after, and
// never overwrite, files left from before that this run could not read.
func (o *Outbox) startInMemory(err error) {
	o.logger.Error("outbox unusable; notifications are kept in memory only until it can be written", "dir", o.dir, "err", err)
	o.setWriteErr(err)
	o.nextID = max(o.nextID, uint64(time.Now().UnixNano()))
	o.publishLocked()
}

// own creates the directories and takes the exclusive lock on the outbox
// directory.
func (o *Outbox) own() error {
	if o.lock != nil {
		return nil
	}
	for _, d := range []string{o.dir, o.queuePath(""), filepath.Join(o.dir, quarantineDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("outbox: create %s: %w", d, err)
		}
	}
	f, err := os.Open(o.dir)
	if err != nil {
		return fmt.Errorf("outbox: open %s: %w", o.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("outbox %s: %w", o.dir, ErrLocked)
		}
		return fmt.Errorf("outbox: lock %s: %w", o.dir, err)
	}
	o.lock = f
	return nil
}

func (o *Outbox) load() error {
	des, err := os.ReadDir(o.queuePath(""))
	if err != nil {
		return fmt.Errorf("outbox: read %s: %w", o.queuePath(""), err)
	}
	var ids []uint64
	names := map[uint64]string{}
	for _, de := range des {
		name := de.Name()
		path := o.queuePath(name)
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			// A write interrupted before its rename: never visible, never
			// promised to anyone. Remove it.
			o.logger.Info("removing interrupted outbox write", "path", path)
			if err := os.Remove(path); err != nil {
				o.logger.Warn("cannot remove interrupted outbox write", "path", path, "err", err)
			}
			continue
		case !strings.HasSuffix(name, entrySuffix):
			o.quarantine(name, "not an outbox entry name")
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, entrySuffix), 10, 64)
		if err != nil || id == 0 {
			o.quarantine(name, "entry name is not a sequence number")
			continue
		}
		ids = append(ids, id)
		names[id] = name
	}
	// The bound applies before anything is read: a directory holding far
	// more entries than outbox_max_entries (a copied-in backlog, another
	// writer) costs the newest max reads, not all of them. The oldest go,
	// counted as dropped, as they would have when enqueued.
	slices.Sort(ids)
	if extra := len(ids) - o.max; o.max > 0 && extra > 0 {
		o.logger.Error("outbox holds more entries than outbox_max_entries; dropping the oldest unread", "dir", o.dir, "entries", len(ids), "dropped", extra)
		for _, id := range ids[:extra] {
			if err := os.Remove(o.queuePath(names[id])); err != nil {
				o.logger.Warn("cannot remove outbox entry", "path", o.queuePath(names[id]), "err", err)
			}
			o.dropped.Add(1)
		}
		ids = ids[extra:]
	}
	for _, id := range ids {
		name := names[id]
		path := o.queuePath(name)
		b, err := o.readEntry(path)
		if err != nil {
			o.quarantine(name, err.Error())
			continue
		}
		e, err := Decode(b)
		if err == nil && e.ID != id {
			err = fmt.Errorf("entry id %d does not match its file name", e.ID)
		}
		if err != nil {
			o.quarantine(name, err.Error())
			continue
		}
		o.entries[id] = e
		o.nextID = max(o.nextID, id+1)
	}
	return nil
}

// readEntry reads one entry file, refusing files over the size limit
// before reading them.
func (o *Outbox) readEntry(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > o.maxBytes {
		return nil, fmt.Errorf("entry is %d bytes, over the %d-byte limit for one entry", fi.Size(), o.maxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, o.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > o.maxBytes {
		return nil, fmt.Errorf("entry is over the %d-byte limit for one entry", o.maxBytes)
	}
	return b, nil
}

func (o *Outbox) queuePath(name string) string { return filepath.Join(o.dir, queueDir, name) }

func (o *Outbox) quarantine(name, reason string) {
	from := o.queuePath(name)
	to := filepath.Join(o.dir, quarantineDir, name+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	o.quarantined.Add(1)
	if err := os.Rename(from, to); err != nil {
		o.logger.Error("cannot quarantine corrupt outbox entry", "path", from, "reason", reason, "err", err)
		return
	}
	o.logger.Error("quarantined corrupt outbox entry", "path", from, "quarantine", to, "reason", reason)
}

func entryName(id uint64) string { return fmt.Sprintf("%020d%s", id, entrySuffix) }

// Enqueue durably stores entries, assigning their IDs in order, and returns
// them. When it returns nil every entry survives a crash. When it fails,
// nothing is stored (see Hold). When the queue is full the oldest entries
// are dropped to make room.
func (o *Outbox) Enqueue(entries ...Entry) ([]Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errors.New("outbox: closed")
	}
	if o.lock == nil {
		// Started in memory: try to take the directory over now.
		if err := o.own(); err != nil {
			o.setWriteErr(err)
			return nil, err
		}
	}
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		e.ID = o.nextID
		o.nextID++
		out = append(out, e)
	}
	if err := o.writeLocked(out); err != nil {
		o.nextID -= uint64(len(out))
		o.setWriteErr(err)
		return nil, err
	}
	o.setWriteErr(nil)
	for _, e := range out {
		o.entries[e.ID] = e
	}
	o.trimLocked()
	o.publishLocked()
	return out, nil
}

// writeLocked writes entries (IDs assigned) and fsyncs the directory; on
// error it removes what it wrote.
func (o *Outbox) writeLocked(entries []Entry) error {
	var written []string
	for _, e := range entries {
		b, err := Encode(e)
		if err != nil {
			o.removeFiles(written)
			return fmt.Errorf("outbox: encode entry for %s: %w", e.Receiver, err)
		}
		name := entryName(e.ID)
		if err := o.writeFileSync(o.queuePath(name), b); err != nil {
			o.removeFiles(written)
			return fmt.Errorf("outbox: %w", err)
		}
		written = append(written, name)
	}
	if err := o.syncDir(o.queuePath("")); err != nil {
		o.removeFiles(written)
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Hold stores entries in memory only, for when Enqueue failed: they are
// delivered like any other (best effort: lost if the agent stops) and
// written out by Flush once the disk takes writes again.
func (o *Outbox) Hold(entries ...Entry) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		e.ID = o.nextID
		o.nextID++
		o.entries[e.ID] = e
		o.held[e.ID] = true
		out = append(out, e)
	}
	o.trimLocked()
	o.publishLocked()
	return out
}

// Held returns copies of the entries kept only in memory (not written to
// disk), oldest first: what a successor must take over when this outbox is
// closed while its disk refuses writes.
func (o *Outbox) Held() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(o.held))
	for id := range o.held {
		out = append(out, o.entries[id])
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Flush writes held entries to disk, or when there are none and the last
// write failed, probes the disk with a scratch file. A nil error clears
// WriteErr.
func (o *Outbox) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("outbox: closed")
	}
	err := o.own()
	if err == nil {
		var held []Entry
		for id := range o.held {
			held = append(held, o.entries[id])
		}
		slices.SortFunc(held, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
		if len(held) > 0 {
			err = o.writeLocked(held)
		} else {
			err = o.probeLocked()
		}
		if err == nil {
			clear(o.held)
			o.publishLocked()
			o.logger.Info("outbox writable again", "dir", o.dir, "entries_written", len(held))
		}
	}
	o.setWriteErr(err)
	return err
}

func (o *Outbox) probeLocked() error {
	p := o.queuePath(probeName)
	if err := o.writeFileSync(p, []byte("probe\n")); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("outbox: remove %s: %w", p, err)
	}
	return nil
}

// WriteErr is the last write error, nil once a write succeeded again. It
// never waits on the disk.
func (o *Outbox) WriteErr() error {
	if p := o.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (o *Outbox) setWriteErr(err error) {
	if err == nil {
		o.writeErr.Store(nil)
		return
	}
	o.writeErr.Store(&err)
}

// trimLocked drops the oldest entries beyond the bound.
func (o *Outbox) trimLocked() {
	for len(o.entries) > o.max {
		oldest := slices.Min(slices.Collect(mapsKeys(o.entries)))
		e := o.entries[oldest]
		o.removeLocked(oldest)
		o.dropped.Add(1)
		o.logger.Warn("outbox full, dropped oldest notification", "receiver", e.Receiver, "instance", e.Instance, "id", e.ID, "created", e.Created, "alerts", len(e.Alerts), "max_entries", o.max)
		if o.onDrop != nil {
			o.onDrop(e)
		}
	}
}

func mapsKeys(m map[uint64]Entry) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (o *Outbox) removeFiles(names []string) {
	for _, n := range names {
		os.Remove(o.queuePath(n))
	}
}

// writeFileSync writes b to path through a temporary file: write, fsync,
// rename. The caller fsyncs the directory.
func (o *Outbox) writeFileSync(path string, b []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := o.fs.Write(f, b); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := o.fs.Sync(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// WriteFile durably writes a whole file in the outbox directory (temp
// file, fsync, rename, fsync of the directory), through the same file
// system as the queue. The alert state file uses it.
func (o *Outbox) WriteFile(name string, b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("outbox: closed")
	}
	if o.lock == nil {
		if err := o.own(); err != nil {
			return err
		}
	}
	path := filepath.Join(o.dir, name)
	if err := o.writeFileSync(path, b); err != nil {
		return err
	}
	return o.syncDir(o.dir)
}

func (o *Outbox) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := o.fs.Sync(d); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Pending returns the entries of one target in delivery order.
func (o *Outbox) Pending(target string) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Entry
	for _, e := range o.entries {
		if e.Target() == target {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// All returns every pending entry in ID order.
func (o *Outbox) All() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Collect(func(yield func(Entry) bool) {
		for _, e := range o.entries {
			if !yield(e) {
				return
			}
		}
	})
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Remove deletes delivered (or abandoned) entries. It does not fsync the
// directory: a crash just after a delivery may deliver that entry again,
// which at-least-once allows.
func (o *Outbox) Remove(ids ...uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		o.removeLocked(id)
	}
	o.publishLocked()
}

func (o *Outbox) removeLocked(id uint64) {
	if _, ok := o.entries[id]; !ok {
		return
	}
	delete(o.entries, id)
	if o.held[id] {
		delete(o.held, id)
		return
	}
	if o.closed || o.lock == nil {
		// The directory belongs to someone else now: leave its files alone.
		return
	}
	p := o.queuePath(entryName(id))
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		o.logger.Warn("cannot remove outbox entry", "path", p, "err", err)
	}
}

// Stats describe the queue for metrics.
type Stats struct {
	Entries     int
	Oldest      time.Time // zero when empty
	Dropped     uint64
	Quarantined uint64
	// Held counts entries kept in memory only (the disk refused them).
	Held int
}

// publishLocked refreshes the snapshot Stats returns, so a reader never
// takes mu, which is held across fsyncs.
func (o *Outbox) publishLocked() {
	s := Stats{Entries: len(o.entries), Held: len(o.held)}
	for _, e := range o.entries {
		if s.Oldest.IsZero() || e.Created.Before(s.Oldest) {
			s.Oldest = e.Created
		}
	}
	o.stats.Store(&s)
}

// Stats returns the current depth, oldest entry time and counters. It never
// waits on the disk.
func (o *Outbox) Stats() Stats {
	var s Stats
	if p := o.stats.Load(); p != nil {
		s = *p
	}
	s.Dropped, s.Quarantined = o.dropped.Load(), o.quarantined.Load()
	return s
}

// Dir returns the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Quarantine moves a loaded entry out of the queue, for entries that decode
// but can no longer be delivered (their receiver left the configuration).
// An old-format entry's URL is redacted on the way, so the quarantine
// holds no password.
func (o *Outbox) Quarantine(id uint64, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.entries[id]
	if !ok {
		return
	}
	delete(o.entries, id)
	defer o.publishLocked()
	if o.held[id] {
		delete(o.held, id)
		return
	}
	if e.URL != "" && o.lock != nil {
		e.URL = redact.URL(e.URL)
		if b, err := Encode(e); err == nil {
			if err := o.writeFileSync(o.queuePath(entryName(id)), b); err != nil {
				o.logger.Warn("cannot redact the URL of an old-format outbox entry", "id", id, "err", err)
			}
		}
	}
	o.quarantine(entryName(id), reason)
}

// Retarget rewrites an old-format entry (one naming its Alertmanager by
// URL) to name it by instance number, so the URL and any password in it
// leave the disk.
func (o *Outbox) Retarget(id uint64, instance int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.entries[id]
	if !ok {
		return fmt.Errorf("outbox: no entry %d", id)
	}
	e.URL, e.Instance = "", instance
	if !o.held[id] && o.lock != nil {
		b, err := Encode(e)
		if err != nil {
			return fmt.Errorf("outbox: encode entry %d: %w", id, err)
		}
		if err := o.writeFileSync(o.queuePath(entryName(id)), b); err != nil {
			// Keep delivering it from memory; the file stays as it was.
			o.logger.Warn("cannot rewrite old-format outbox entry", "id", id, "err", err)
		} else if err := o.syncDir(o.queuePath("")); err != nil {
			o.logger.Warn("cannot rewrite old-format outbox entry", "id", id, "err", err)
		}
	}
	o.entries[id] = e
	return nil
}

// Close gives up the directory: the lock is released and later calls no
// longer touch files, so another Outbox may open it.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	if o.lock == nil {
		return nil
	}
	err := o.lock.Close() // closing the descriptor releases the flock
	o.lock = nil
	return err
}
