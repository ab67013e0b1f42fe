package outbox

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneOwner: a second Outbox on a directory in use is refused, until
// the first is closed; a closed Outbox no longer touches the files.
func TestOneOwner(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := o.Enqueue(sampleEntries()[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	o.Close()
	o2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer o2.Close()
	o.Remove(stored[0].ID)
	if _, err := o.Enqueue(sampleEntries()[0]); err == nil {
		t.Fatal("Enqueue on a closed outbox succeeded")
	}
	if got := o2.All(); len(got) != 1 || got[0].ID != stored[0].ID {
		t.Fatalf("new owner sees %+v; the closed outbox removed or added files", got)
	}
}

// TestOversizeEntryIsQuarantined: a huge (sparse) entry file is not read
// into memory; it goes to quarantine with the reason.
func TestOversizeEntryIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, queueDir)
	os.MkdirAll(q, 0o700)
	f, err := os.Create(filepath.Join(q, entryName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(200 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	good, _ := Encode(Entry{ID: 2, Receiver: "ops", Created: t0, Alerts: sampleEntries()[0].Alerts})
	os.WriteFile(filepath.Join(q, entryName(2)), good, 0o600)

	var logs strings.Builder
	o, err := Open(Options{Dir: dir, MaxEntryBytes: 1 << 20, Logger: newTextLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if all := o.All(); len(all) != 1 || all[0].ID != 2 {
		t.Fatalf("loaded %+v, want only entry 2", all)
	}
	if s := o.Stats(); s.Quarantined != 1 {
		t.Fatalf("quarantined %d, want 1", s.Quarantined)
	}
	if !strings.Contains(logs.String(), "limit") {
		t.Fatalf("log does not give the size limit as reason: %s", logs.String())
	}
}

// TestHoldAndFlush: entries the disk refused are delivered from memory
// and written once the disk takes writes again.
func TestHoldAndFlush(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	q := filepath.Join(dir, queueDir)
	os.RemoveAll(q)
	os.WriteFile(q, nil, 0o600) // fails for root too
	if _, err := o.Enqueue(sampleEntries()[0]); err == nil {
		t.Fatal("Enqueue into a broken queue succeeded")
	}
	if o.WriteErr() == nil {
		t.Fatal("WriteErr nil after a failed write")
	}
	held := o.Hold(sampleEntries()[0])
	if p := o.Pending("ops"); len(p) != 1 || p[0].ID != held[0].ID || o.Stats().Held != 1 {
		t.Fatalf("held entry not pending: %+v", p)
	}
	if err := o.Flush(); err == nil {
		t.Fatal("Flush succeeded on a broken queue")
	}
	os.Remove(q)
	os.MkdirAll(q, 0o700)
	if err := o.Flush(); err != nil || o.WriteErr() != nil || o.Stats().Held != 0 {
		t.Fatalf("Flush after repair: %v, WriteErr %v, held %d", err, o.WriteErr(), o.Stats().Held)
	}
	if _, err := os.Stat(filepath.Join(q, entryName(held[0].ID))); err != nil {
		t.Fatalf("held entry not written: %v", err)
	}
}

func newTextLogger(w *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
