package layering

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/spofwatch/spofwatch/"

// deps lists every package pkg depends on, directly or not, through the
// go tool itself, so the rule sees exactly what the compiler sees.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	var all []string
	for _, p := range strings.Fields(string(out)) {
		if p != module+pkg {
			all = append(all, p)
		}
	}
	return all
}

// ours reports whether p is one of this module's packages.
func ours(p string) bool { return strings.HasPrefix(p, module) }

// under reports whether p is root or a package below it.
func under(p, root string) bool {
	return p == module+root || strings.HasPrefix(p, module+root+"/")
}

// Hardware libraries belong to the sources and their adapters only.
var hardwareLibraries = []string{
	"github.com/bougou/go-ipmi",
	"github.com/vishvananda/netlink",
	"github.com/shirou/gopsutil",
	// Not procfs: client_golang's process collector needs it everywhere.
}

func isHardwareLibrary(p string) bool {
	return slices.ContainsFunc(hardwareLibraries, func(lib string) bool { return p == lib || strings.HasPrefix(p, lib+"/") })
}

// Sources read one kind of hardware or daemon and return typed state; they
// know nothing of groups, the agent or the adapters.
var sources = []string{"bonding", "diskhealth", "ipmi", "raid", "ups", "sysdev", "multipath"}

func isSource(p string) bool {
	return slices.ContainsFunc(sources, func(s string) bool { return under(p, s) })
}

type rule struct {
	pkg    string
	why    string
	banned func(dep string) bool
}

func allRules() []rule {
	rules := []rule{
		{"spof", "spof is pure: it imports nothing of ours", ours},
		{"agent", "the agent core knows no source, adapter, alerting or config, and no hardware library", func(d string) bool {
			return isSource(d) || under(d, "collectors") || under(d, "alerting") || under(d, "config") || isHardwareLibrary(d)
		}},
		{"web", "outputs depend on the core and spof, never on collectors, a source or a hardware library", func(d string) bool {
			return under(d, "collectors") || isSource(d) || isHardwareLibrary(d)
		}},
		{"report", "outputs depend on the core and spof, never on collectors, a source or a hardware library", func(d string) bool {
			return under(d, "collectors") || isSource(d) || isHardwareLibrary(d)
		}},
		{"alerting", "alerting and collectors never import each other; alerting needs no hardware library", func(d string) bool { return under(d, "collectors") || isHardwareLibrary(d) }},
		{"config", "config owns the schema: alerting imports config, never the reverse", func(d string) bool { return under(d, "alerting") || under(d, "collectors") || under(d, "agent") }},
		{"journal", "the history depends on the model only", func(d string) bool {
			return ours(d) && !under(d, "spof")
		}},
		{"collectors", "alerting and collectors never import each other", func(d string) bool { return under(d, "alerting") || under(d, "config") }},
		// The daemon reads the drill audit log through collectors.Drills, so
		// drill (run as root by `spofwatch drill`) must never need the
		// adapters, the alert path or the web outputs.
		{"drill", "collectors read the drill audit log: drill never imports collectors, alerting or web", func(d string) bool {
			return under(d, "collectors") || under(d, "alerting") || under(d, "web")
		}},
		// collectors read the log through drill/auditlog, not drill: the
		// methods pull in config and the sources, which adapters must not.
		{"drill/auditlog", "the audit log is read by the daemon: it imports nothing of ours", ours},
	}
	for _, s := range sources {
		rules = append(rules, rule{s, "a source returns typed state: it never imports spof, the agent core or the adapters", func(d string) bool {
			return under(d, "spof") || under(d, "agent") || under(d, "collectors") || under(d, "alerting")
		}})
	}
	return rules
}

func TestDependencyDirections(t *testing.T) {
	for _, r := range allRules() {
		t.Run(r.pkg, func(t *testing.T) {
			for _, d := range deps(t, r.pkg) {
				if r.banned(d) {
					t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
				}
			}
		})
	}
}

// The rules must bite: each banned edge is recognised for what it is.
func TestRulesRecogniseBannedEdges(t *testing.T) {
	find := func(pkg string) rule {
		for _, r := range allRules() {
			if r.pkg == pkg {
				return r
			}
		}
		t.Fatalf("no rule for %s", pkg)
		return rule{}
	}
	cases := []struct {
		pkg, dep string
		banned   bool
	}{
		{"spof", module + "agent", true},
		{"spof", "fmt", false},
		{"raid", module + "spof", true},
		{"raid", module + "sysdev", false},
		{"ups", module + "collectors", true},
		{"web", "github.com/bougou/go-ipmi", true},
		{"web", "github.com/shirou/gopsutil/v4/host", true},
		{"web", module + "agent", false},
		{"report", module + "raid", true},
		{"alerting", module + "collectors", true},
		{"collectors", module + "alerting/notify", true},
		{"agent", module + "collectors", true},
		{"agent", module + "spof", false},
		{"config", module + "alerting", true},
		{"config", module + "ups", false},
		{"drill", module + "collectors", true},
		{"drill", module + "raid", false},
	}
	for _, c := range cases {
		if got := find(c.pkg).banned(c.dep); got != c.banned {
			t.Errorf("%s -> %s banned = %v, want %v", c.pkg, c.dep, got, c.banned)
		}
	}
}
