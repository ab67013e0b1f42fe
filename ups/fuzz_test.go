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
