// Package outbox is a durable, bounded, on-disk queue of notifications.
//
// Every entry is one file in <dir>/queue, written to a temporary file,
// fsynced, renamed into place and made durable with an fsync of the
// directory, so a crash leaves either the whole entry or none of it. File
// names carry a sequence number that orders delivery. An entry that cannot
// be decoded (truncated, corrupted, from a future version) is moved to
// <dir>/quarantine with a log line and never blocks the others. The queue
// holds at most MaxEntries; beyond that the oldest entry is dropped, logged
// and counted.
package outbox

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
)

// DefaultMaxEntries bounds the queue when Options.MaxEntries is zero.
const DefaultMaxEntries = 10000

const (
	queueDir      = "queue"
	quarantineDir = "quarantine"
	entrySuffix   = ".entry"
	tmpSuffix     = ".tmp"
)

// Entry is one notification for one delivery target.
type Entry struct {
	// ID orders entries; assigned by Enqueue.
	ID uint64 `json:"id"`
	// Receiver is the configured receiver name.
	Receiver string `json:"receiver"`
	// URL names the instance for receivers with several (Alertmanager HA);
	// empty for webhooks, which use the configured URL.
	URL     string         `json:"url,omitempty"`
	Created time.Time      `json:"created"`
	Alerts  []notify.Alert `json:"alerts"`
}

// Target identifies the delivery queue an entry belongs to. Entries of one
// target are delivered in ID order.
func (e Entry) Target() string { return Target(e.Receiver, e.URL) }

// Target builds a target key from a receiver name and instance URL.
func Target(receiver, url string) string {
	if url == "" {
		return receiver
	}
	return receiver + " " + url
}

// Options configure Open.
type Options struct {
	Dir        string
	MaxEntries int
	Logger     *slog.Logger
	// OnDrop is called (with the lock held: keep it short) for every entry
	// dropped to make room.
	OnDrop func(Entry)
}

// Outbox is safe for concurrent use.
type Outbox struct {
	dir    string
	max    int
	logger *slog.Logger
	onDrop func(Entry)

	mu      sync.Mutex
	nextID  uint64
	entries map[uint64]Entry

	dropped     atomic.Uint64
	quarantined atomic.Uint64
}

// Open opens or creates the outbox at opts.Dir and loads every pending
// entry, quarantining those that do not decode.
func Open(opts Options) (*Outbox, error) {
	if opts.Dir == "" {
		return nil, errors.New("outbox: no directory given")
	}
	o := &Outbox{
		dir:     opts.Dir,
		max:     cmp.Or(opts.MaxEntries, DefaultMaxEntries),
		logger:  opts.Logger,
		onDrop:  opts.OnDrop,
		entries: map[uint64]Entry{},
		nextID:  1,
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{o.dir, o.queuePath(""), filepath.Join(o.dir, quarantineDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("outbox: create %s: %w", d, err)
		}
	}
	des, err := os.ReadDir(o.queuePath(""))
	if err != nil {
		return nil, fmt.Errorf("outbox: read %s: %w", o.queuePath(""), err)
	}
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
		b, err := os.ReadFile(path)
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
	return o, nil
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
// them. When it returns nil every entry survives a crash. When the queue is
// full the oldest entries are dropped to make room.
func (o *Outbox) Enqueue(entries ...Entry) ([]Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(entries))
	var written []string
	for _, e := range entries {
		e.ID = o.nextID
		b, err := Encode(e)
		if err != nil {
			o.removeFiles(written)
			return nil, fmt.Errorf("outbox: encode entry for %s: %w", e.Receiver, err)
		}
		name := entryName(e.ID)
		if err := writeFileSync(o.queuePath(name), b); err != nil {
			o.removeFiles(written)
			return nil, fmt.Errorf("outbox: %w", err)
		}
		o.nextID++
		written = append(written, name)
		out = append(out, e)
	}
	if err := syncDir(o.queuePath("")); err != nil {
		o.removeFiles(written)
		return nil, fmt.Errorf("outbox: %w", err)
	}
	for _, e := range out {
		o.entries[e.ID] = e
	}
	for len(o.entries) > o.max {
		oldest := slices.Min(slices.Collect(mapsKeys(o.entries)))
		e := o.entries[oldest]
		o.removeLocked(oldest)
		o.dropped.Add(1)
		o.logger.Warn("outbox full, dropped oldest notification", "receiver", e.Receiver, "url", notify.RedactURL(e.URL), "id", e.ID, "created", e.Created, "alerts", len(e.Alerts), "max_entries", o.max)
		if o.onDrop != nil {
			o.onDrop(e)
		}
	}
	return out, nil
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
func writeFileSync(path string, b []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
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

// WriteFileAtomic writes a whole file durably (temp file, fsync, rename,
// fsync of the directory). The alert state file uses it too.
func WriteFileAtomic(path string, b []byte) error {
	if err := writeFileSync(path, b); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
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
}

func (o *Outbox) removeLocked(id uint64) {
	if _, ok := o.entries[id]; !ok {
		return
	}
	delete(o.entries, id)
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
}

// Stats returns the current depth, oldest entry time and counters.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := Stats{Entries: len(o.entries), Dropped: o.dropped.Load(), Quarantined: o.quarantined.Load()}
	for _, e := range o.entries {
		if s.Oldest.IsZero() || e.Created.Before(s.Oldest) {
			s.Oldest = e.Created
		}
	}
	return s
}

// Dir returns the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Quarantine moves a loaded entry out of the queue, for entries that decode
// but can no longer be delivered (their receiver left the configuration).
func (o *Outbox) Quarantine(id uint64, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.entries[id]; !ok {
		return
	}
	delete(o.entries, id)
	o.quarantine(entryName(id), reason)
}
