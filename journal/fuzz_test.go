package journal

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	f.Add(`{"at":"2026-09-01T00:00:00Z","kind":"group_state","group":"a","to":"redundant"}` + "\n")
	f.Add("{not json\n\n" + `{"at":"2026-09-01T00:00:00Z","kind":"finding_start","group":"a","code":"redundancy_lost","severity":"critical"}`)
	f.Add(strings.Repeat("x", MaxLineBytes+1))
	f.Fuzz(func(t *testing.T, in string) {
		events, skipped := parse(bufio.NewReader(strings.NewReader(in)), false)
		if len(events)+skipped > strings.Count(in, "\n")+1 {
			t.Fatalf("%d events + %d skipped from %d lines", len(events), skipped, strings.Count(in, "\n")+1)
		}
		for i := 1; i < len(events); i++ {
			if events[i].At.Before(events[i-1].At) {
				t.Fatal("events out of order")
			}
		}
		_ = Summarize(events, events0(events), events0(events).Add(1))
		_ = Replay(events)
	})
}

func events0(e []Event) (t0 time.Time) {
	if len(e) > 0 {
		return e[0].At
	}
	return t0
}
