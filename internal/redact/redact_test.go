package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ops:hunter2@am1:9093":            "https://am1:9093",
		"https://ops@am1:9093/prefix":             "https://am1:9093/prefix",
		"http://am2:9093/":                        "http://am2:9093/",
		"https://hooks.example/x?token=hunter2#f": "https://hooks.example/x",
		"http://a b:%zz@x":                        "(unparseable URL)",
	} {
		got := URL(in)
		if got != want || strings.Contains(got, "hunter2") || strings.Contains(got, "ops") {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}
