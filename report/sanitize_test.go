package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/spof"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"On battery", "On battery"},
		{"", ""},
		{"naïve ¦ café", "naïve ¦ café"},
		{"\x1b[2J\x1b[31mREPLACE BATTERY", `\x1b[2J\x1b[31mREPLACE BATTERY`},
		{"line1\nline2\r\tx", `line1\x0aline2\x0d\x09x`},
		{"bell\x07 nul\x00", `bell\x07 nul\x00`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b31m osc\u009d", `csi\u009b31m osc\u009d`},
		{"bad\xffutf8\xc3", "bad\uFFFDutf8\uFFFD"},
		{"a|b", "a|b"}, // only Nagios output rewrites the bar
	} {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// hostile is a snapshot whose peer text carries terminal escapes, line
// breaks and Nagios bars in every field that reaches the output.
func hostile(summary string) *agent.Snapshot {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	res := spof.Result{
		Groups: []spof.GroupResult{{Group: spof.Group{ID: "ups/nut/" + summary, Required: 1,
			Members: []spof.Member{{Name: "m" + summary, State: spof.MemberFailed}, {Name: "ok" + summary, State: spof.MemberOK}}},
			State: spof.StateRedundancyLost, Working: 1, Total: 2}},
		Findings: []spof.Finding{
			{Code: spof.CodeUPSOnBattery, Severity: spof.SeverityCritical, Group: "ups/nut/x", Summary: "UPS alarm: " + summary, Since: now},
			{Code: spof.CodeNotice, Severity: spof.SeverityWarning, Summary: summary, Since: now},
		},
	}
	return &agent.Snapshot{Taken: now, Evaluation: res, Outcomes: []agent.Outcome{{Name: "ups", Error: "upsd said " + summary}}}
}

func TestOutputsNeutralisePeerText(t *testing.T) {
	for _, tt := range []struct {
		name, summary string
		text, nagios  string // must appear in the output
	}{
		{"escape sequence", "\x1b]0;owned\x07\x1b[2J", `\x1b]0;owned\x07\x1b[2J`, `\x1b]0;owned\x07\x1b[2J`},
		{"bar", "load 90% | 'x'=1", "load 90% | 'x'=1", "load 90% ¦ 'x'=1"},
		{"newline", "a\nCRITICAL forged", `a\x0aCRITICAL forged`, `a\x0aCRITICAL forged`},
		{"c1", "\u009b2J", `\u009b2J`, `\u009b2J`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := hostile(tt.summary)
			var text, nagios bytes.Buffer
			if err := WriteText(&text, "host\x1b[8m", snap); err != nil {
				t.Fatal(err)
			}
			if err := WriteNagios(&nagios, snap.Evaluation); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), tt.text) || !strings.Contains(text.String(), `host\x1b[8m`) {
				t.Errorf("text lacks %q:\n%s", tt.text, text.String())
			}
			if !strings.Contains(nagios.String(), tt.nagios) {
				t.Errorf("nagios lacks %q:\n%s", tt.nagios, nagios.String())
			}
			checkText(t, text.String())
			checkNagios(t, nagios.String(), 3)
			// JSON keeps the exact text.
			var js bytes.Buffer
			if err := WriteJSON(&js, Build("h", snap)); err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if want := "UPS alarm: " + tt.summary; back.Findings[0].Summary != want {
				t.Errorf("JSON summary %q, want %q", back.Findings[0].Summary, want)
			}
		})
	}
}

// checkText: no control character but the newlines ending lines.
func checkText(t *testing.T, out string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(out, "\n", "") {
		if isControl(r) {
			t.Fatalf("text output carries %U:\n%q", r, out)
		}
	}
}

// checkNagios: lines lines, no control character, and the only `|` is the
// perfdata separator of the status line.
func checkNagios(t *testing.T, out string, lines int) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != lines {
		t.Fatalf("nagios output has %d lines, want %d:\n%q", len(got), lines, out)
	}
	for i, line := range got {
		for _, r := range line {
			if isControl(r) {
				t.Fatalf("nagios line %d carries %U: %q", i, r, line)
			}
		}
		bars := 0
		if i == 0 {
			bars = 1
		}
		if n := strings.Count(line, "|"); n != bars {
			t.Fatalf("nagios line %d has %d '|', want %d: %q", i, n, bars, line)
		}
	}
}

// FuzzPeerText: whatever a peer sends, text output has no control
// character and Nagios output no stray `|` or line break.
func FuzzPeerText(f *testing.F) {
	for _, s := range []string{"", "on battery", "\x1b[31mred\x1b[0m", "a|b||", "x\ny\rz", "\u009b\u0085", "\xff\xfe", "'='|;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		snap := hostile(s)
		var text, nagios bytes.Buffer
		if err := WriteText(&text, s, snap); err != nil {
			t.Fatal(err)
		}
		if err := WriteNagios(&nagios, snap.Evaluation); err != nil {
			t.Fatal(err)
		}
		checkText(t, text.String())
		checkNagios(t, nagios.String(), 3)
		if !utf8.ValidString(text.String()) || !utf8.ValidString(nagios.String()) {
			t.Fatal("output is not UTF-8")
		}
	})
}
