package drill

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lacpFixture puts a /proc/net/bonding sample from bonding/testdata under
// a procfs root as bond0, with an empty sysfs root (the reader then uses
// /proc alone, as on a kernel without the bonding sysfs files).
func lacpFixture(t *testing.T, file string) Method {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "bonding", "testdata", "proc", file))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	p := filepath.Join(root, "proc", "net", "bonding", "bond0")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	return NewLACPState(filepath.Join(root, "sys"), filepath.Join(root, "proc"), "bond0")
}

func TestLACPState(t *testing.T) {
	tests := []struct {
		file   string
		result Result
		failed map[string]string
		reason string
	}{
		{file: "magpie-8023ad.txt", result: ResultPassed, reason: "every port of bond0 (eno3, eno1) is collecting and distributing with partner 02:01:00:00:01:01 in aggregator 1"},
		{file: "magpie-split-aggregator.txt", result: ResultFailed,
			failed: map[string]string{"enp197s0f2": "in aggregator 1, not the active aggregator 2"}},
		{file: "qemu-6.1-8023ad-link-down.txt", result: ResultFailed, failed: map[string]string{"eth1": "link is down"}},
		{file: "lacp-not-negotiated-constructed.txt", result: ResultFailed, failed: map[string]string{
			"enp145s0f0": "no LACPDUs from a partner (actor state 69: defaulted)",
			"enp145s0f1": "in aggregator 2, not the active aggregator 1"}},
		{file: "telegraf-8023ad-no-active-aggregator.txt", result: ResultFailed, failed: map[string]string{
			"eth1": "bond0 has no active aggregator", "eth2": "bond0 has no active aggregator"}},
		// Read without CAP_NET_ADMIN: no port states, no partner. Unknown
		// is not proven.
		{file: "unprivileged-8023ad.txt", result: ResultRefused, reason: "active aggregator unreadable"},
		{file: "qemu-6.1-active-backup-failover.txt", result: ResultRefused, reason: "not 802.3ad"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := lacpFixture(t, tt.file)
			if m.Disruptive() {
				t.Error("lacp-state says it is disruptive")
			}
			out := m.Run(context.Background(), true, nil)
			if out.Result != tt.result {
				t.Fatalf("result %s (%s), want %s", out.Result, out.Reason, tt.result)
			}
			if tt.reason != "" && !strings.Contains(out.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", out.Reason, tt.reason)
			}
			if len(out.FailedMembers) != len(tt.failed) {
				t.Errorf("failed members %v, want %v", out.FailedMembers, tt.failed)
			}
			for n, why := range tt.failed {
				if out.FailedMembers[n] != why {
					t.Errorf("member %s: %q, want %q", n, out.FailedMembers[n], why)
				}
			}
		})
	}
}

func TestLACPStatePlan(t *testing.T) {
	steps, err := lacpFixture(t, "magpie-8023ad.txt").Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(steps, "\n"); !strings.Contains(text, "(eno3, eno1)") || !strings.Contains(text, "active aggregator (1)") {
		t.Errorf("plan:\n%s", text)
	}
	if _, err := lacpFixture(t, "telegraf-active-backup.txt").Plan(context.Background()); err == nil {
		t.Error("Plan on an active-backup bond: no refusal")
	}
}
