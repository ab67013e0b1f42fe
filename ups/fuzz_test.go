package ups

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`VAR ups-a ups.status "OB LB"`, `VAR u x "say \"hi\""`, `a\\b "c d" ""`, `"open`, `x\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitWords(line)
		if err != nil {
			return
		}
		// Every word re-quotes and splits back to itself.
		var parts []string
		for _, w := range words {
			q, err := quoteWord(w)
			if err != nil {
				return // words with line breaks cannot be sent
			}
			parts = append(parts, q)
		}
		again, err := splitWords(strings.Join(parts, " "))
		if err != nil || len(again) != len(words) {
			t.Fatalf("re-split of %q: %q, %v", words, again, err)
		}
		for i := range words {
			if again[i] != words[i] {
				t.Fatalf("word %d: %q became %q", i, words[i], again[i])
			}
		}
	})
}

// FuzzReadListVar feeds arbitrary server output to the LIST VAR reader and
// the state parser: no panic, bounded results.
func FuzzReadListVar(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "responses", "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxResp = 4096
		lr := newLineReader(bytes.NewReader(data), 128)
		l, err := readListVar(lr, "ups-a", maxResp)
		if err != nil {
			return
		}
		if len(l.Vars) > maxResp/8 || len(l.Malformed) > maxMalformed {
			t.Fatalf("unbounded result: %d vars, %d malformed", len(l.Vars), len(l.Malformed))
		}
		s := ParseState(l)
		if s.BatteryCharge.Valid && (s.BatteryCharge.Value < 0 || s.BatteryCharge.Value > 100) {
			t.Fatalf("charge %v out of range", s.BatteryCharge.Value)
		}
		lr = newLineReader(bytes.NewReader(data), 128)
		_, _ = readListUPS(lr, maxResp)
	})
}

// FuzzReadCmdReplies feeds arbitrary server output to the LIST CMD,
// INSTCMD and GET TRACKING readers: no panic, bounded results, and a
// command or id only from a well-formed line.
func FuzzReadCmdReplies(f *testing.F) {
	for _, s := range []string{
		"BEGIN LIST CMD ups-a\nCMD ups-a test.battery.start.quick\nCMD ups-a load.off\nEND LIST CMD ups-a\n",
		"OK TRACKING 1bd31808-cb49-4aec-9d75-d056e6f018d2\n", "OK\n", "ERR CMD-NOT-SUPPORTED\n",
		"PENDING\n", "SUCCESS\n", "ERR FAILED\n", "BEGIN LIST CMD ups-a\nCMD ups-a \"a\\\"b\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxResp, maxCmds = 4096, 16
		cmds, err := readListCmd(newLineReader(bytes.NewReader(data), 128), "ups-a", maxResp, maxCmds)
		if err == nil && len(cmds) > maxCmds {
			t.Fatalf("%d commands kept, limit %d", len(cmds), maxCmds)
		}
		for _, c := range cmds {
			if c == "" || strings.ContainsAny(c, "\n\r") {
				t.Fatalf("command %q from a list", c)
			}
		}
		id, err := readInstCmdReply(newLineReader(bytes.NewReader(data), 128), maxResp)
		if err == nil && (!bytes.HasPrefix(data, []byte("OK")) || strings.ContainsAny(id, "\n\r")) {
			t.Fatalf("INSTCMD reply %q accepted with id %q", data, id)
		}
		st, err := readTracking(newLineReader(bytes.NewReader(data), 128), maxResp)
		if err == nil && st != TrackingPending && st != TrackingSuccess {
			t.Fatalf("tracking status %q", st)
		}
	})
}
