package report

import (
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

func mapFixture(accept bool) spof.Result {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	groups := []spof.Group{
		{ID: "storage/md/md0", Kind: spof.KindStorage, Required: 1, Members: []spof.Member{
			{Name: "sda1", State: spof.MemberOK, Domains: map[string]string{"disk": "sda", "controller": "0000:00:17.0"}},
			{Name: "sda2", State: spof.MemberOK, Domains: map[string]string{"disk": "sda", "controller": "0000:00:17.0"}}}},
		{ID: "power/ipmi/psu", Kind: spof.KindPower, Required: 1, Members: []spof.Member{
			{Name: "PSU1", State: spof.MemberOK, Domains: map[string]string{"feed": "ups-a"}},
			{Name: "PSU2", State: spof.MemberFailed, Domains: map[string]string{"feed": "ups-b"}}}},
		{ID: "storage/mount/root", Kind: spof.KindStorage, Required: 1, Members: []spof.Member{
			{Name: "nvme0n1p2", State: spof.MemberOK, Domains: map[string]string{"disk": "nvme0n1"}}}},
	}
	var accs []spof.Acceptance
	if accept {
		accs = []spof.Acceptance{{ID: "accept[0]", Code: spof.CodeNoRedundancy, Group: "storage/mount/root", Reason: "stateless", Until: now.Add(time.Hour)}}
	}
	return spof.Evaluate(spof.Input{Groups: groups, Now: now, Acceptances: accs})
}

func TestBuildMap(t *testing.T) {
	m := BuildMap(mapFixture(false))
	count := map[NodeKind]int{}
	for _, n := range m.Nodes {
		count[n.Kind]++
	}
	// 3 groups, 5 members; domains: disk=sda (shared by two legs) and the
	// controller they share; single-user domains (feed=ups-a, disk=nvme0n1)
	// are not drawn.
	if count[NodeGroup] != 3 || count[NodeMember] != 5 || count[NodeDomain] != 2 {
		t.Fatalf("nodes by kind = %v: %+v", count, m.Nodes)
	}
	for _, c := range []struct {
		id       string
		spof     bool
		severity string
	}{
		{"d:disk=sda", true, "warning"},                     // the one-disk mirror
		{"m:power/ipmi/psu#PSU1", true, "critical"},         // the PSU left
		{"m:power/ipmi/psu#PSU2", false, ""},                // failed already: not the single point
		{"m:storage/mount/root#nvme0n1p2", true, "warning"}, // root on one disk
		{"m:storage/md/md0#sda1", false, ""},
	} {
		n, ok := m.Node(c.id)
		if !ok {
			t.Errorf("no node %q", c.id)
			continue
		}
		if n.SPOF != c.spof || n.Severity != c.severity {
			t.Errorf("%q: spof=%v severity=%q, want %v %q (why %v)", c.id, n.SPOF, n.Severity, c.spof, c.severity, n.Why)
		}
	}
	edges := 0
	for _, e := range m.Edges {
		if e.To == "d:disk=sda" {
			edges++
		}
	}
	if edges != 2 {
		t.Errorf("disk=sda has %d edges, want 2", edges)
	}
}

func TestBuildMapAccepted(t *testing.T) {
	m := BuildMap(mapFixture(true))
	n, _ := m.Node("m:storage/mount/root#nvme0n1p2")
	if !n.SPOF || !n.Accepted {
		t.Errorf("accepted single point: %+v", n)
	}
	if n, _ := m.Node("m:power/ipmi/psu#PSU1"); n.Accepted {
		t.Error("an unaccepted single point is drawn as accepted")
	}
}

func TestWriteDot(t *testing.T) {
	var b strings.Builder
	if err := WriteDot(&b, "db-07\"\x1b[31m", BuildMap(mapFixture(true))); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"digraph spofwatch {",
		`label="spofwatch on db-07\"[31m"`,
		`"m:power/ipmi/psu` + "#",
		`fillcolor="#f4a6a6"`,
		`style="rounded,filled,dashed"`,
		`"g:storage/md/md0" -> "m:storage/md/md0`,
		`-> "d:disk=sda";`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dot lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Error("control character reached the dot output")
	}
}
