// Package stubcmd writes stand-in commands for tests of code that runs
// helper programs (zpool, storcli): a shell script with a given body.
package stubcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// WaitPid waits (bounded) until a stub has written a process id into file,
// and returns it.
func WaitPid(t testing.TB, file string) int {
	t.Helper()
	for range 1000 {
		b, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the stub never wrote %s", file)
	return 0
}

// WaitGone waits (bounded) until pid no longer runs: absent, or a zombie
// waiting for init to reap it.
func WaitGone(t testing.TB, pid int, what string) {
	t.Helper()
	for range 1000 {
		if !Running(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s (process %d) still runs", what, pid)
}

// Running reports whether pid is a live process (a zombie is dead).
func Running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
