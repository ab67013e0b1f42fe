package raid

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWatchMdstatMissingFile(t *testing.T) {
	called := false
	err := WatchMdstat(context.Background(), filepath.Join(t.TempDir(), "mdstat"), func() { called = true })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if called {
		t.Error("notify called for a missing file")
	}
}

// A regular file never signals POLLPRI: the watcher waits and returns nil
// once ctx ends, without notifying.
func TestWatchMdstatRegularFileStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mdstat")
	if err := os.WriteFile(path, []byte("Personalities : [raid1]\nunused devices: <none>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	notified := make(chan struct{}, 1)
	go func() { done <- WatchMdstat(ctx, path, func() { notified <- struct{}{} }) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("err = %v, want nil after cancel", err)
	}
	select {
	case <-notified:
		t.Error("notify called for a regular file")
	default:
	}
}
