package ups

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		line    string
		want    []string
		wantErr bool
	}{
		{`VAR ups-a ups.status "OL"`, []string{"VAR", "ups-a", "ups.status", "OL"}, false},
		{`VAR ups-a ups.status "OB LB"`, []string{"VAR", "ups-a", "ups.status", "OB LB"}, false},
		{`UPS ups-b "lab UPS B (on battery, low battery)"`, []string{"UPS", "ups-b", "lab UPS B (on battery, low battery)"}, false},
		{`VAR u x "say \"hi\""`, []string{"VAR", "u", "x", `say "hi"`}, false},
		{`VAR u x "a\\b"`, []string{"VAR", "u", "x", `a\b`}, false},
		{`VAR u x ""`, []string{"VAR", "u", "x", ""}, false},
		{"a\t b  c", []string{"a", "b", "c"}, false},
		{`VAR u x "open`, nil, true},
		{`VAR u x trailing\`, nil, true},
		{``, nil, false},
		{`   `, nil, false},
	}
	for _, tc := range tests {
		got, err := splitWords(tc.line)
		if (err != nil) != tc.wantErr {
			t.Errorf("splitWords(%q) error = %v, wantErr %v", tc.line, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestQuoteWordRoundTrip(t *testing.T) {
	for _, s := range []string{"ups-a", "pass word", `q"uote`, `back\slash`, "hash#in", "", "ünï"} {
		q, err := quoteWord(s)
		if err != nil {
			t.Fatalf("quoteWord(%q): %v", s, err)
		}
		words, err := splitWords(q)
		if err != nil || len(words) != 1 || words[0] != s {
			t.Errorf("quoteWord(%q) = %s, splits back to %q (%v)", s, q, words, err)
		}
		if strings.Contains(q, "#") && !strings.Contains(q, `\#`) {
			t.Errorf("quoteWord(%q) = %s leaves # unescaped", s, q)
		}
	}
	for _, s := range []string{"a\nb", "a\rb", "a\x00b"} {
		if _, err := quoteWord(s); err == nil {
			t.Errorf("quoteWord(%q) accepted a line break or NUL", s)
		}
	}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "responses", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadListVarFixtures(t *testing.T) {
	tests := []struct {
		file, ups string
		want      map[string]string
		n         int
		wantErr   error
	}{
		{"list-var-ups-a.txt", "ups-a", map[string]string{"ups.status": "OL", "battery.charge": "100", "device.model": "Dummy 1500", "battery.date": "2021/03/15"}, 25, nil},
		{"list-var-ups-b.txt", "ups-b", map[string]string{"ups.status": "OB LB", "ups.alarm": "Replace battery!", "input.voltage": "0.0"}, 24, nil},
		{"err-data-stale.txt", "ups-a", nil, 0, ErrDataStale},
		{"err-driver-not-connected.txt", "ups-b", nil, 0, ErrDriverNotConnected},
		{"err-unknown-ups.txt", "nope", nil, 0, ErrUnknownUPS},
		// a list for another UPS than asked is a protocol violation
		{"list-var-ups-a.txt", "ups-b", nil, 0, ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.ups, func(t *testing.T) {
			lr := newLineReader(bytes.NewReader(fixture(t, tc.file)), DefaultMaxLineBytes)
			got, err := readListVar(lr, tc.ups, DefaultMaxResponseBytes)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Vars) != tc.n || len(got.Malformed) != 0 {
				t.Errorf("got %d vars, %d malformed; want %d, 0", len(got.Vars), len(got.Malformed), tc.n)
			}
			for k, v := range tc.want {
				if got.Vars[k] != v {
					t.Errorf("%s = %q, want %q", k, got.Vars[k], v)
				}
			}
		})
	}
}

func TestReadListVarTolerant(t *testing.T) {
	in := "BEGIN LIST VAR u\r\nVAR u a \"1\"\r\nVAR u broken \"open\nVAR other b \"2\"\nGARBAGE\nVAR u c \"3\"\nEND LIST VAR u\n"
	got, err := readListVar(newLineReader(strings.NewReader(in), 64), "u", 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "c": "3"}
	if !reflect.DeepEqual(got.Vars, want) {
		t.Errorf("vars = %v, want %v", got.Vars, want)
	}
	if len(got.Malformed) != 3 {
		t.Errorf("malformed = %q, want 3 lines", got.Malformed)
	}
}

func TestReadListUPSFixture(t *testing.T) {
	got, err := readListUPS(newLineReader(bytes.NewReader(fixture(t, "list-ups.txt")), 1024), 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{{"ups-a", "lab UPS A (online)"}, {"ups-b", "lab UPS B (on battery, low battery)"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReaderBounds(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		maxResp int
		want    error
	}{
		{"line too long", "BEGIN LIST VAR u\nVAR u x \"" + strings.Repeat("x", 200) + "\"\nEND LIST VAR u\n", 64, 1 << 20, ErrLineTooLong},
		{"reply too large", "BEGIN LIST VAR u\n" + strings.Repeat("VAR u x \"1\"\n", 100) + "END LIST VAR u\n", 64, 500, ErrResponseTooLarge},
		{"truncated list", "BEGIN LIST VAR u\nVAR u x \"1\"\n", 64, 1024, io.ErrUnexpectedEOF},
		{"truncated line", "BEGIN LIST VAR u\nVAR u x", 64, 1024, io.ErrUnexpectedEOF},
		{"wrong header", "BEGIN LIST UPS\nEND LIST UPS\n", 64, 1024, ErrProtocol},
		{"err inside list", "BEGIN LIST VAR u\nERR DATA-STALE\n", 64, 1024, ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readListVar(newLineReader(strings.NewReader(tc.in), tc.maxLine), "u", tc.maxResp)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestServerErrorIs(t *testing.T) {
	err := checkErr("ERR DATA-STALE extra words")
	if !errors.Is(err, ErrDataStale) || errors.Is(err, ErrDriverNotConnected) {
		t.Fatalf("errors.Is mismatch for %v", err)
	}
	se, ok := IsServerError(err)
	if !ok || se.Code != CodeDataStale || se.Detail != "extra words" {
		t.Errorf("got %+v", se)
	}
	if checkErr("OK") != nil || checkErr("ERRATIC") != nil {
		t.Error("non-ERR lines taken as errors")
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct{ in, ups, addr string }{
		{"ups-a", "ups-a", "localhost:3493"},
		{"ups-a@10.0.0.5", "ups-a", "10.0.0.5:3493"},
		{"ups-a@10.0.0.5:13493", "ups-a", "10.0.0.5:13493"},
		{"ups-a@[::1]:3493", "ups-a", "[::1]:3493"},
		{"ups-a@[::1]", "ups-a", "[::1]:3493"},
		{"ups-a@nut.example", "ups-a", "nut.example:3493"},
	}
	for _, tc := range tests {
		u, a, err := ParseTarget(tc.in)
		if err != nil || u != tc.ups || a != tc.addr {
			t.Errorf("ParseTarget(%q) = %q, %q, %v; want %q, %q", tc.in, u, a, err, tc.ups, tc.addr)
		}
	}
	for _, bad := range []string{"", "@host", "a b@host", "ups@host:", "u\"x@h"} {
		if _, _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}
