// Package stubcmd writes stand-in commands for tests of code that runs
// helper programs (zpool, storcli): a shell script with a given body.
package stubcmd

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes an executable /bin/sh script named name with body into a
// temporary directory of t and returns its path.
func Write(t testing.TB, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
