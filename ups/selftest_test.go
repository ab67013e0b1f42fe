package ups

import (
	"testing"
	"time"
)

func TestSelfTest(t *testing.T) {
	for _, tc := range []struct {
		result string
		want   TestOutcome
	}{
		{"Done and passed", TestPassed},
		{"OK", TestPassed},
		{"Done and warning", TestFailed},
		{"Done and error", TestFailed},
		{"Battery failed", TestFailed},
		{"Failed", TestFailed},
		{"No test initiated", TestNone},
		{"In progress", TestNone},
		{"Aborted", TestNone},
		{"No test results", TestNone},
		{"", TestNone},
	} {
		if got := (State{TestResult: tc.result}).SelfTest(); got != tc.want {
			t.Errorf("SelfTest(%q) = %d, want %d", tc.result, got, tc.want)
		}
	}
}

func TestParseTestDate(t *testing.T) {
	want := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"2026/11/01", "2026-11-01", "11/01/26", "11/01/2026", " 2026/11/01 "} {
		if got, ok := ParseTestDate(v, time.UTC); !ok || !got.Equal(want) {
			t.Errorf("ParseTestDate(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "unknown", "2026/13/45"} {
		if got, ok := ParseTestDate(v, time.UTC); ok {
			t.Errorf("ParseTestDate(%q) = %v, want not ok", v, got)
		}
	}
}

func TestParseStateSelfTest(t *testing.T) {
	s := ParseState(VarList{Vars: map[string]string{VarStatus: "OL", VarTestResult: "Done and passed", VarTestDate: "2026/11/01"}})
	if s.TestResult != "Done and passed" || s.TestDate != "2026/11/01" || s.SelfTest() != TestPassed {
		t.Errorf("state = %+v", s)
	}
}
