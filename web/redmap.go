package web

import (
	"fmt"
	"html/template"
	"slices"
	"strings"

	"github.com/spofwatch/spofwatch/report"
)

// Layout of the redundancy map: three columns (groups, members, shared
// domains), one band of rows per group. Server-rendered SVG: no script.
const (
	mapRow      = 26 // height of one member row
	mapBoxH     = 20
	mapGap      = 12 // between group bands
	mapColGroup = 8
	mapColMem   = 300
	mapColDom   = 560
	mapGroupW   = 250
	mapMemW     = 200
	mapDomW     = 210
	mapWidth    = mapColDom + mapDomW + 8
	mapTop      = 8
)

type placed struct {
	report.Node
	x, y, w int
}

// RedundancyMap renders the map as inline SVG. Every node is a <g> with
// class "node <kind>" plus "spof sev-<severity>" when it is a single point
// of failure and "accepted" when that is accepted; data-id carries the
// node's ID for tests and links.
func RedundancyMap(m report.Map) template.HTML {
	pos := map[string]placed{}
	y := mapTop
	var groups []report.Node
	members := map[string][]report.Node{}
	var domains []report.Node
	for _, n := range m.Nodes {
		switch n.Kind {
		case report.NodeGroup:
			groups = append(groups, n)
		case report.NodeMember:
			members[n.Group] = append(members[n.Group], n)
		case report.NodeDomain:
			domains = append(domains, n)
		}
	}
	for _, g := range groups {
		ms := members[g.Group]
		rows := max(1, len(ms))
		band := rows * mapRow
		pos[g.ID] = placed{g, mapColGroup, y + (band-mapBoxH)/2, mapGroupW}
		for i, mem := range ms {
			pos[mem.ID] = placed{mem, mapColMem, y + i*mapRow, mapMemW}
		}
		y += band + mapGap
	}
	// A domain sits at the mean height of the members that depend on it,
	// pushed down where it would overlap the one above.
	isDomain := map[string]bool{}
	for _, d := range domains {
		isDomain[d.ID] = true
	}
	users := map[string][]int{}
	for _, e := range m.Edges {
		if p, ok := pos[e.From]; ok && isDomain[e.To] {
			users[e.To] = append(users[e.To], p.y)
		}
	}
	type want struct {
		n report.Node
		y int
	}
	var ws []want
	for _, d := range domains {
		ys := users[d.ID]
		sum := 0
		for _, v := range ys {
			sum += v
		}
		wy := mapTop
		if len(ys) > 0 {
			wy = sum / len(ys)
		}
		ws = append(ws, want{d, wy})
	}
	slices.SortStableFunc(ws, func(a, b want) int { return a.y - b.y })
	next := mapTop
	for _, w := range ws {
		dy := max(w.y, next)
		pos[w.n.ID] = placed{w.n, mapColDom, dy, mapDomW}
		next = dy + mapRow
	}
	height := max(y, next) + mapTop

	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="redundancy-map" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="redundancy map">`, mapWidth, height, mapWidth, height)
	b.WriteString(`<style>.node rect{stroke:#888;fill:#fff}.node text{font:12px sans-serif;fill:#222}.group rect{fill:#f3f3f3}.domain rect{rx:10px}.spof rect{stroke:#333;stroke-width:2}.accepted rect{stroke-dasharray:4 3}.state-failed rect,.state-missing rect,.state-down rect{fill:#f3f3f3;stroke:#c33;stroke-dasharray:2 2}.state-failed text,.state-missing text{fill:#888}.edge{stroke:#bbb;fill:none}.edge.hot{stroke:#c33;stroke-width:1.5}</style>`)
	for _, e := range m.Edges {
		from, ok1 := pos[e.From]
		to, ok2 := pos[e.To]
		if !ok1 || !ok2 {
			continue
		}
		x1, y1 := from.x+from.w, from.y+mapBoxH/2
		x2, y2 := to.x, to.y+mapBoxH/2
		class := "edge"
		if to.SPOF && !to.Accepted && to.Kind == report.NodeDomain {
			class += " hot"
		}
		mid := (x1 + x2) / 2
		fmt.Fprintf(&b, `<path class="%s" d="M%d %d C%d %d %d %d %d %d"/>`, class, x1, y1, mid, y1, mid, y2, x2, y2)
	}
	for _, n := range m.Nodes {
		p, ok := pos[n.ID]
		if !ok {
			continue
		}
		class := "node " + string(n.Kind)
		fill := ""
		if n.SPOF {
			class += " spof sev-" + n.Severity
			if n.Accepted {
				class += " accepted"
			}
			fill = fmt.Sprintf(` style="fill:%s"`, report.SeverityColour(n.Severity, n.Accepted))
		}
		if n.State != "" {
			class += " state-" + n.State
		}
		label := n.Label
		if n.State != "" && n.State != "ok" && n.State != "redundant" {
			label += " (" + n.State + ")"
		}
		if n.Accepted {
			label += " · accepted"
		}
		title := n.Label
		if len(n.Why) > 0 {
			title += "\n" + strings.Join(n.Why, "\n")
		}
		fmt.Fprintf(&b, `<g class="%s" data-id="%s"><title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="3"%s/><text x="%d" y="%d">%s</text></g>`,
			esc(class), esc(n.ID), esc(title), p.x, p.y, p.w, mapBoxH, fill, p.x+6, p.y+14, esc(clip(label, p.w/7)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every peer-provided string above goes through esc
}

// esc escapes text for SVG/HTML and drops control characters (peer text).
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	return template.HTMLEscapeString(s)
}

// clip shortens a label to n runes with an ellipsis; the full text stays in
// the node's <title>.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n || n < 2 {
		return s
	}
	return string(r[:n-1]) + "…"
}
