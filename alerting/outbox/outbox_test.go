package outbox

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
)

var update = flag.Bool("update", false, "rewrite testdata/entries from sampleEntries")

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func sampleEntries() []Entry {
	firing := notify.Alert{Status: "firing", Labels: map[string]string{"alertname": "SpofRedundancyLost", "severity": "critical", "instance": "host1", "group": "power/ipmi/psu", "member": "PSU2"}, Annotations: map[string]string{"summary": "power supplies: redundancy lost: PSU2 failed, PSU1 left"}, StartsAt: t0, Fingerprint: "5a1e3c1b8a7f9d02"}
	resolved := firing
	resolved.Status, resolved.EndsAt = "resolved", t0.Add(time.Minute)
	return []Entry{
		{ID: 1, Receiver: "ops", Created: t0, Alerts: []notify.Alert{firing}},
		{ID: 2, Receiver: "am", URL: "http://am1:9093", Created: t0, Alerts: []notify.Alert{firing, resolved}},
		{ID: 3, Receiver: "ops", Created: t0.Add(time.Minute), Alerts: []notify.Alert{resolved}},
	}
}

// TestFixtures keeps testdata/entries in the current encoding (go test
// -run TestFixtures -update rewrites them).
func TestFixtures(t *testing.T) {
	for _, e := range sampleEntries() {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "entries", entryName(e.ID))
		if *update {
			os.WriteFile(path, b, 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s differs from Encode output", path)
		}
		got, err := Decode(want)
		if err != nil || got.ID != e.ID || got.Target() != e.Target() || len(got.Alerts) != len(e.Alerts) || !got.Alerts[0].StartsAt.Equal(t0) {
			t.Errorf("Decode(%s) = %+v, %v", path, got, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := Encode(sampleEntries()[0])
	if err != nil {
		t.Fatal(err)
	}
	nl := bytes.IndexByte(good, '\n')
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x20; return b }
	reencode := func(mod func(*Entry)) []byte {
		e := sampleEntries()[0]
		mod(&e)
		b, _ := Encode(e)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no header"},
		{"truncated body", good[:len(good)-10], "truncated"},
		{"truncated header", good[:nl/2], "no header"},
		{"flipped body byte", flip(nl + 20), "checksum"},
		{"bad magic", append([]byte("spofwatch-inbox"), good[len(magic):]...), "bad header"},
		{"future version", bytes.Replace(good, []byte(magic+" 1 "), []byte(magic+" 2 "), 1), "version"},
		{"bad length", bytes.Replace(good, []byte(" "+strings.Fields(string(good[:nl]))[3]+"\n"), []byte(" x\n"), 1), "length"},
		{"no receiver", reencode(func(e *Entry) { e.Receiver = "" }), "no receiver"},
		{"no alerts", reencode(func(e *Entry) { e.Alerts = nil }), "no alerts"},
		{"no id", reencode(func(e *Entry) { e.ID = 0 }), "no id"},
		{"alert without labels", reencode(func(e *Entry) { e.Alerts[0].Labels = nil }), "no labels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode() error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenRecoversAndQuarantines(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var in []Entry
	for _, e := range sampleEntries() {
		e.ID = 0
		in = append(in, e)
	}
	stored, err := o.Enqueue(in...)
	if err != nil {
		t.Fatal(err)
	}
	if ids := []uint64{stored[0].ID, stored[1].ID, stored[2].ID}; !slices.Equal(ids, []uint64{1, 2, 3}) {
		t.Fatalf("ids %v", ids)
	}
	q := filepath.Join(dir, queueDir)
	// Entry 2 truncated, a stray temp file and a file of another name.
	p2 := filepath.Join(q, entryName(2))
	b, _ := os.ReadFile(p2)
	os.WriteFile(p2, b[:len(b)-3], 0o600)
	os.WriteFile(filepath.Join(q, entryName(9)+tmpSuffix), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(q, "notes.txt"), []byte("hello"), 0o600)
	// An entry whose content claims another id than its name.
	b1, _ := os.ReadFile(filepath.Join(q, entryName(1)))
	os.WriteFile(filepath.Join(q, entryName(7)), b1, 0o600)

	o.Close() // a stopped process releases the directory lock
	o2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, e := range o2.All() {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []uint64{1, 3}) {
		t.Fatalf("loaded ids %v, want [1 3]", ids)
	}
	if s := o2.Stats(); s.Quarantined != 3 || s.Entries != 2 || !s.Oldest.Equal(t0) {
		t.Fatalf("stats %+v", s)
	}
	qs, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	if len(qs) != 3 {
		t.Fatalf("quarantine holds %d files, want 3", len(qs))
	}
	if _, err := os.Stat(filepath.Join(q, entryName(9)+tmpSuffix)); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
	// Numbering continues after the highest id seen, so order holds.
	e, err := o2.Enqueue(Entry{Receiver: "ops", Created: t0, Alerts: sampleEntries()[0].Alerts})
	if err != nil || e[0].ID != 4 {
		t.Fatalf("next id %v, %v; want 4", e, err)
	}
	if p := o2.Pending("ops"); len(p) != 3 || p[0].ID != 1 || p[2].ID != 4 {
		t.Fatalf("pending(ops) %+v", p)
	}
	o2.Remove(1, 4)
	if p := o2.Pending("ops"); len(p) != 1 || p[0].ID != 3 {
		t.Fatalf("after remove %+v", p)
	}
}

func TestDropOldest(t *testing.T) {
	var dropped []uint64
	o, err := Open(Options{Dir: t.TempDir(), MaxEntries: 2, OnDrop: func(e Entry) { dropped = append(dropped, e.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := o.Enqueue(Entry{Receiver: "ops", Created: t0, Alerts: sampleEntries()[0].Alerts}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint64
	for _, e := range o.All() {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []uint64{4, 5}) || !slices.Equal(dropped, []uint64{1, 2, 3}) || o.Stats().Dropped != 3 {
		t.Fatalf("kept %v dropped %v (counter %d)", ids, dropped, o.Stats().Dropped)
	}
	files, _ := filepath.Glob(filepath.Join(o.Dir(), queueDir, "*"))
	if len(files) != 2 {
		t.Fatalf("files on disk %v", files)
	}
}

func TestEnqueueFailsOnReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a path under a file instead.
		o, err := Open(Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(o.Dir(), queueDir))
		os.WriteFile(filepath.Join(o.Dir(), queueDir), nil, 0o600)
		if _, err := o.Enqueue(sampleEntries()[0]); err == nil {
			t.Fatal("Enqueue into a broken queue dir succeeded")
		}
		if o.Stats().Entries != 0 {
			t.Fatal("failed entry counted as queued")
		}
		return
	}
	dir := t.TempDir()
	o, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, queueDir), 0o500)
	defer os.Chmod(filepath.Join(dir, queueDir), 0o700)
	if _, err := o.Enqueue(sampleEntries()[0]); err == nil {
		t.Fatal("Enqueue into a read-only dir succeeded")
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// something it accepts again.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "entries", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(magic + " 1 00000000 2\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("accepted entry does not re-encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded entry rejected: %v", err)
		}
	})
}

// A directory with far more entries than the bound is trimmed before it
// is read: the oldest go unread, counted as dropped; the newest are kept.
func TestOpenAppliesTheBoundBeforeReading(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := o.Enqueue(Entry{Receiver: "ops", Created: t0, Alerts: sampleEntries()[0].Alerts}); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()
	// The oldest entry is made unreadable: were it read, it would be
	// quarantined instead of dropped.
	oldest, _ := filepath.Glob(filepath.Join(dir, queueDir, "*1.entry"))
	if len(oldest) != 1 {
		t.Fatalf("oldest entry file: %v", oldest)
	}
	if err := os.WriteFile(oldest[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	o2, err := Open(Options{Dir: dir, MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	var ids []uint64
	for _, e := range o2.All() {
		ids = append(ids, e.ID)
	}
	st := o2.Stats()
	if !slices.Equal(ids, []uint64{8, 9, 10}) || st.Dropped != 7 || st.Quarantined != 0 {
		t.Fatalf("kept %v, stats %+v; want 8..10 kept, 7 dropped unread, none quarantined", ids, st)
	}
}
