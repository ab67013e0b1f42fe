package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spofwatch/spofwatch/spof"
)

// NodeKind is what a node of the redundancy map stands for.
type NodeKind string

const (
	NodeGroup  NodeKind = "group"
	NodeMember NodeKind = "member"
	NodeDomain NodeKind = "domain"
)

// Node is one box of the redundancy map.
type Node struct {
	ID    string // unique: "g:<group>", "m:<group>\x00<member>", "d:<key>=<value>"
	Kind  NodeKind
	Label string
	// State is the group's or member's state; empty for domains.
	State string
	// SPOF is set when a single failure of this node would take its
	// function down: Severity is the finding's, Accepted its acceptance.
	SPOF     bool
	Severity string
	Accepted bool
	// Why lists the findings that mark the node.
	Why []string
	// Group is the group a member belongs to.
	Group string
}

// Edge joins a group to a member, or a member to a domain it depends on.
type Edge struct{ From, To string }

// Map is the host's redundancy map: groups, their members and the failure
// domains members share, with every single point of failure marked.
type Map struct {
	Nodes []Node
	Edges []Edge
}

// Node returns the node with the ID, or false.
func (m Map) Node(id string) (Node, bool) {
	i := slices.IndexFunc(m.Nodes, func(n Node) bool { return n.ID == id })
	if i < 0 {
		return Node{}, false
	}
	return m.Nodes[i], true
}

func groupNodeID(g string) string     { return "g:" + g }
func memberNodeID(g, m string) string { return "m:" + g + "#" + m }
func domainNodeID(kv string) string   { return "d:" + kv }

// BuildMap draws the evaluation as a map. A domain is drawn when two or
// more members depend on it (it is shared, whether or not it is a single
// point yet) or when a finding names it. Findings mark nodes:
//   - shared_failure_domain marks the domain it names;
//   - no_redundancy and redundancy_lost mark the group's working members:
//     each is the one thing left;
//   - member findings (member_degraded, …) mark their member;
//   - other group findings (group_down, ups_on_battery, …) mark the group.
//
// Info findings that are not accepted do not mark anything.
func BuildMap(res spof.Result) Map {
	var m Map
	index := map[string]int{}
	// add appends a node once: two sources claiming one ID, or a member
	// name repeated in a group, make one node.
	add := func(n Node) bool {
		if _, dup := index[n.ID]; dup {
			return false
		}
		index[n.ID] = len(m.Nodes)
		m.Nodes = append(m.Nodes, n)
		return true
	}
	users := map[string][]string{}   // domain "k=v" -> member node IDs
	working := map[string][]string{} // group -> its working members' node IDs
	for _, gr := range res.Groups {
		g := gr.Group
		if !add(Node{ID: groupNodeID(g.ID), Kind: NodeGroup, Label: g.ID, State: string(gr.State), Group: g.ID}) {
			continue
		}
		for _, mem := range g.Members {
			id := memberNodeID(g.ID, mem.Name)
			if !add(Node{ID: id, Kind: NodeMember, Label: mem.Name, State: string(mem.State), Group: g.ID}) {
				continue
			}
			m.Edges = append(m.Edges, Edge{groupNodeID(g.ID), id})
			if mem.State.Working() {
				working[g.ID] = append(working[g.ID], id)
			}
			for _, k := range slices.Sorted(maps.Keys(mem.Domains)) {
				kv := k + "=" + mem.Domains[k]
				users[kv] = append(users[kv], id)
			}
		}
	}
	named := map[string]bool{}
	for _, f := range res.Findings {
		if f.Code == spof.CodeSharedFailureDomain {
			named[f.Member] = true
		}
	}
	for _, kv := range slices.Sorted(maps.Keys(users)) {
		if len(users[kv]) < 2 && !named[kv] {
			continue
		}
		add(Node{ID: domainNodeID(kv), Kind: NodeDomain, Label: kv})
		for _, u := range users[kv] {
			m.Edges = append(m.Edges, Edge{u, domainNodeID(kv)})
		}
	}
	for _, f := range res.Findings {
		if f.Accepted == nil && f.Severity <= spof.SeverityInfo {
			continue
		}
		var targets []string
		switch {
		case f.Code == spof.CodeSharedFailureDomain:
			targets = []string{domainNodeID(f.Member)}
		case f.Code == spof.CodeNoRedundancy || f.Code == spof.CodeRedundancyLost:
			targets = working[f.Group]
			if len(targets) == 0 {
				targets = []string{groupNodeID(f.Group)}
			}
		case f.Member != "":
			targets = []string{memberNodeID(f.Group, f.Member)}
		default:
			targets = []string{groupNodeID(f.Group)}
		}
		for _, t := range targets {
			i, ok := index[t]
			if !ok {
				continue
			}
			n := &m.Nodes[i]
			accepted := f.Accepted != nil
			// The worst unaccepted finding decides; accepted only when every
			// finding on the node is accepted.
			switch {
			case !n.SPOF:
				n.SPOF, n.Severity, n.Accepted = true, f.Severity.String(), accepted
			case n.Accepted && !accepted:
				n.Severity, n.Accepted = f.Severity.String(), false
			case n.Accepted == accepted && severityRank(f.Severity.String()) > severityRank(n.Severity):
				n.Severity = f.Severity.String()
			}
			why := fmt.Sprintf("%s: %s", f.Code, f.Summary)
			if accepted {
				why += " (accepted: " + f.Accepted.Reason + ")"
			}
			n.Why = append(n.Why, why)
		}
	}
	return m
}

func severityRank(s string) int {
	sev, _ := spof.ParseSeverity(s)
	return int(sev)
}

// WriteDot writes the map as a Graphviz digraph, for people who render or
// diff it themselves. Single points of failure are filled in the finding's
// colour; accepted ones are dashed.
func WriteDot(w io.Writer, host string, m Map) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph spofwatch {\n  label=%s;\n  rankdir=LR;\n  node [shape=box, style=\"rounded\", fontname=\"sans-serif\"];\n", dotQuote("spofwatch on "+host))
	nodes := slices.Clone(m.Nodes)
	slices.SortStableFunc(nodes, func(a, b Node) int { return cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)) })
	for _, n := range nodes {
		attrs := []string{"label=" + dotQuote(n.Label+stateSuffix(n))}
		switch n.Kind {
		case NodeGroup:
			attrs = append(attrs, "shape=folder")
		case NodeDomain:
			attrs = append(attrs, "shape=ellipse")
		}
		if n.SPOF {
			style := "rounded,filled,bold"
			if n.Accepted {
				style = "rounded,filled,dashed"
			}
			attrs = append(attrs, "style="+dotQuote(style), "fillcolor="+dotQuote(SeverityColour(n.Severity, n.Accepted)), "tooltip="+dotQuote(strings.Join(n.Why, "; ")))
		}
		fmt.Fprintf(&b, "  %s [%s];\n", dotQuote(n.ID), strings.Join(attrs, ", "))
	}
	for _, e := range m.Edges {
		fmt.Fprintf(&b, "  %s -> %s;\n", dotQuote(e.From), dotQuote(e.To))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func kindOrder(k NodeKind) int {
	switch k {
	case NodeGroup:
		return 0
	case NodeMember:
		return 1
	}
	return 2
}

func stateSuffix(n Node) string {
	if n.State == "" {
		return ""
	}
	return "\n" + n.State
}

// SeverityColour is the fill of a marked node, shared by the page and dot.
func SeverityColour(severity string, accepted bool) string {
	if accepted {
		return "#d9d2e9"
	}
	switch severity {
	case "critical":
		return "#f4a6a6"
	case "warning":
		return "#ffd27f"
	}
	return "#cfe0ff"
}

// dotQuote quotes s as a DOT string: backslash and quote escaped, control
// characters (peer text) dropped.
func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
