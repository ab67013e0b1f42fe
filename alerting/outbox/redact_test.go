package outbox

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ops:hunter2@am1:9093": "https://ops:xxxxx@am1:9093",
		"http://am2:9093/":             "http://am2:9093/",
		"http://a b:%zz@x":             "(unparseable URL)",
	} {
		got := RedactURL(in)
		if got != want || strings.Contains(got, "hunter2") {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
