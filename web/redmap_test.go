package web

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/report"
	"github.com/spofwatch/spofwatch/spof"
)

var mapNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// The sizes the map must read well at: one group, a 24-disk host, and
// 2 bonds + 4 PSUs + 2 UPSes.
func mapFixtures() map[string][]spof.Group {
	disks := func(prefix string, n int, ctrl string) []spof.Member {
		var ms []spof.Member
		for i := range n {
			d := fmt.Sprintf("%s%c", prefix, 'a'+i)
			ms = append(ms, spof.Member{Name: d + "1", State: spof.MemberOK, Domains: map[string]string{"disk": d, "controller": ctrl}})
		}
		return ms
	}
	big := disks("sd", 22, "0000:3b:00.0")
	big[5].State = spof.MemberFailed
	big[9].State = spof.MemberFailed
	boot := []spof.Member{
		{Name: "nvme0n1p1", State: spof.MemberOK, Domains: map[string]string{"disk": "nvme0n1", "controller": "0000:01:00.0"}},
		{Name: "nvme0n1p2", State: spof.MemberOK, Domains: map[string]string{"disk": "nvme0n1", "controller": "0000:01:00.0"}},
	}
	psu := func(name, feed string, st spof.MemberState) spof.Member {
		return spof.Member{Name: name, State: st, Domains: map[string]string{"feed": feed}}
	}
	return map[string][]spof.Group{
		"one-group": {{ID: "storage/mount/root", Kind: spof.KindStorage, Function: "root filesystem /", Required: 1,
			Members: []spof.Member{{Name: "vda1", State: spof.MemberOK, Domains: map[string]string{"disk": "vda"}}}}},
		"24-disks": {
			{ID: "storage/md/md0", Kind: spof.KindStorage, Function: "raid1 md0", Required: 1, Members: boot},
			{ID: "storage/md/md1", Kind: spof.KindStorage, Function: "raid6 md1", Required: 20, Members: big},
		},
		"bonds-psus-upses": {
			{ID: "network/bond/bond0", Kind: spof.KindNetwork, Function: "bond bond0", Required: 1, Members: []spof.Member{
				{Name: "eno1", State: spof.MemberOK, Domains: map[string]string{"nic_card": "0000:18:00"}},
				{Name: "eno2", State: spof.MemberOK, Domains: map[string]string{"nic_card": "0000:18:00"}}}},
			{ID: "network/bond/bond1", Kind: spof.KindNetwork, Function: "bond bond1", Required: 1, Members: []spof.Member{
				{Name: "ens1f0", State: spof.MemberOK, Domains: map[string]string{"nic_card": "0000:3b:00"}},
				{Name: "ens2f0", State: spof.MemberOK, Domains: map[string]string{"nic_card": "0000:5e:00"}}}},
			{ID: "power/ipmi/psu", Kind: spof.KindPower, Function: "power supplies", Required: 2, Members: []spof.Member{
				psu("PSU1", "ups-a", spof.MemberOK), psu("PSU2", "ups-a", spof.MemberOK), psu("PSU3", "ups-b", spof.MemberOK), psu("PSU4", "ups-b", spof.MemberFailed)}},
			{ID: "ups/nut/ups-a", Kind: spof.KindUPS, Function: "UPS ups-a", Required: 1, Members: []spof.Member{{Name: "mains", State: spof.MemberOK}, {Name: "battery", State: spof.MemberOK}}},
			{ID: "ups/nut/ups-b", Kind: spof.KindUPS, Function: "UPS ups-b", Required: 1, Members: []spof.Member{{Name: "mains", State: spof.MemberFailed}, {Name: "battery", State: spof.MemberOK}}},
		},
	}
}

func mapServer(t *testing.T, groups []spof.Group, accs []spof.Acceptance) *httptest.Server {
	t.Helper()
	snap := &agent.Snapshot{Taken: mapNow, Evaluation: spof.Evaluate(spof.Input{Groups: groups, Now: mapNow, Acceptances: accs})}
	srv := httptest.NewServer(Handler(Options{Host: "map-test", Source: staticSource{snap}, Ready: func() bool { return true }}))
	t.Cleanup(srv.Close)
	return srv
}

var (
	nodeRE = regexp.MustCompile(`<g class="node (group|member|domain)([^"]*)" data-id="([^"]*)"`)
)

type drawnNode struct {
	kind, class, id string
}

func drawnNodes(dom string) []drawnNode {
	var out []drawnNode
	for _, m := range nodeRE.FindAllStringSubmatch(dom, -1) {
		out = append(out, drawnNode{m[1], m[2], m[3]})
	}
	return out
}

// TestRedundancyMapInChromium loads the page in headless Chromium: the DOM
// holds the SVG with one node per member and per shared domain, the single
// points are marked, and a screenshot of each size is kept as an artifact
// (go test -artifacts) for a person to look at.
func TestRedundancyMapInChromium(t *testing.T) {
	browser := chromium(t)
	accept := []spof.Acceptance{{ID: "accept[0]", Code: spof.CodeSharedFailureDomain, Group: "network/bond/bond0", Reason: "second card on order", By: "ops", Until: mapNow.Add(30 * 24 * time.Hour)}}
	for name, groups := range mapFixtures() {
		t.Run(name, func(t *testing.T) {
			srv := mapServer(t, groups, accept)
			dom := runChromium(t, browser, "--dump-dom", srv.URL+"/")
			if !strings.Contains(dom, `<svg id="redundancy-map"`) {
				t.Fatal("no redundancy map in the DOM")
			}
			nodes := drawnNodes(dom)
			wantMembers := 0
			for _, g := range groups {
				wantMembers += len(g.Members)
			}
			count := map[string]int{}
			marked := map[string]string{}
			for _, n := range nodes {
				count[n.kind]++
				if strings.Contains(n.class, " spof") {
					marked[n.id] = n.class
				}
			}
			if count["member"] != wantMembers || count["group"] != len(groups) {
				t.Errorf("drawn %d members and %d groups, want %d and %d", count["member"], count["group"], wantMembers, len(groups))
			}
			switch name {
			case "one-group":
				if count["domain"] != 0 {
					t.Errorf("a domain used once is drawn: %d", count["domain"])
				}
				if c := marked["m:storage/mount/root#vda1"]; !strings.Contains(c, "sev-warning") {
					t.Errorf("root on one disk is not marked: %q", c)
				}
			case "24-disks":
				// Shared: disk=nvme0n1 (both boot legs), the NVMe controller,
				// and the HBA behind all 22 data disks.
				if count["domain"] != 3 {
					t.Errorf("drawn %d domains, want 3", count["domain"])
				}
				if c := marked["d:disk=nvme0n1"]; !strings.Contains(c, "sev-warning") {
					t.Errorf("the one-disk mirror's disk is not marked: %q", c)
				}
				if len(marked) < 21 {
					t.Errorf("a RAID6 down to its last 20 legs marks each of them: %d marked", len(marked))
				}
			case "bonds-psus-upses":
				if c := marked["d:nic_card=0000:18:00"]; !strings.Contains(c, "accepted") {
					t.Errorf("the accepted shared card is not drawn as accepted: %q", c)
				}
				if c := marked["d:feed=ups-a"]; c != "" && strings.Contains(c, "accepted") {
					t.Errorf("feed ups-a drawn as accepted: %q", c)
				}
				if _, ok := marked["d:nic_card=0000:3b:00"]; ok {
					t.Error("a card used by one slave only is marked")
				}
				if c := marked["g:ups/nut/ups-b"] + marked["m:ups/nut/ups-b#battery"]; !strings.Contains(c, "sev-critical") {
					t.Errorf("the UPS on battery is not marked critical: %q", c)
				}
			}
			shot := filepath.Join(t.ArtifactDir(), "redundancy-map-"+name+".png")
			runChromium(t, browser, "--screenshot="+shot, "--window-size=1000,2600", "--hide-scrollbars", srv.URL+"/")
			st, err := os.Stat(shot)
			if err != nil || st.Size() < 1000 {
				t.Fatalf("no screenshot at %s: %v", shot, err)
			}
			t.Logf("screenshot: %s (%d bytes)", shot, st.Size())
		})
	}
}

func runChromium(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile := t.TempDir()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// Group and member names come from peers (sysfs, a BMC's SDR, upsd): the
// SVG escapes them, stays well-formed XML, and carries no control bytes.
func TestRedundancyMapEscapesPeerNames(t *testing.T) {
	evil := `storage/md/<script>alert(1)</script>`
	groups := []spof.Group{{ID: evil, Kind: spof.KindStorage, Required: 1, Members: []spof.Member{
		{Name: `"><svg onload=alert(2)>` + "\x1b[31m", State: spof.MemberOK, Domains: map[string]string{"disk": `a"b<c>`}},
		{Name: "leg&2", State: spof.MemberOK, Domains: map[string]string{"disk": `a"b<c>`}}}}}
	svg := string(RedundancyMap(report.BuildMap(spof.Evaluate(spof.Input{Groups: groups, Now: mapNow}))))
	for _, bad := range []string{"<script", "<svg onload", "\x1b", `a"b`} {
		if strings.Contains(svg, bad) {
			t.Errorf("peer text survives raw as %q", bad)
		}
	}
	dec := xml.NewDecoder(strings.NewReader(svg))
	nodes := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the map is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			nodes++
		}
	}
	if nodes != 4 { // the group, two members, the shared disk
		t.Errorf("%d nodes, want 4", nodes)
	}
}
