// Package packaging holds what ships beside the binary: the nfpm config,
// systemd unit, default config, Prometheus rules and the Grafana dashboard.
// These tests check them against the code they describe (finding codes,
// config schema, exported metric names) and against promtool, the real
// PromQL parser and rule evaluator.
package packaging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/spof"
)

const (
	rulesFile     = "prometheus/spofwatch.rules.yml"
	rulesTestFile = "prometheus/spofwatch.rules.test.yml"
	metricsFile   = "prometheus/metrics.txt"
	dashboardFile = "grafana/spofwatch.json"
)

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var all []rule
	for _, g := range rf.Groups {
		all = append(all, g.Rules...)
	}
	return all
}

// promtool runs the real promtool; a missing promtool is a failure, not a
// skip (scripts/apt-packages.txt installs it).
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus, make deps): %v", err)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesCheckAndUnitTests(t *testing.T) {
	promtool(t, "check", "rules", rulesFile)
	promtool(t, "test", "rules", rulesTestFile)
}

// Every finding code has an alert named as the agent names its own alerts,
// selecting exactly that code.
func TestRulesAlertOnEveryFindingCode(t *testing.T) {
	byName := map[string]rule{}
	for _, r := range loadRules(t) {
		if r.Alert != "" {
			byName[r.Alert] = r
		}
	}
	for _, ci := range spof.Codes {
		name := ci.Code.AlertName()
		r, ok := byName[name]
		if !ok {
			t.Errorf("no alert %s for finding code %s", name, ci.Code)
			continue
		}
		// An accepted finding (config accept:) must not alert from the
		// rules either: the agent's own alerts leave it out too.
		if want := fmt.Sprintf(`spofwatch_finding{code=%q} == 1 unless on(instance, job, code, group, member) spofwatch_finding_accepted == 1`, ci.Code); strings.TrimSpace(r.Expr) != want {
			t.Errorf("alert %s: expr %q, want %q", name, r.Expr, want)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("alert %s: needs summary and description annotations", name)
		}
		// The finding's own severity label is the alert's severity; a rule
		// label would override a condition's severity override.
		if _, ok := r.Labels["severity"]; ok {
			t.Errorf("alert %s sets severity; the finding series carries it", name)
		}
	}
	for _, name := range []string{"SpofwatchDown", "SpofwatchAbsent", "SpofwatchCollectorDown", "SpofPowerFeedFailure", "SpofRackPowerFailure"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("alert %s missing", name)
		}
	}
}

// Every alert has at least one promtool test that expects it to fire.
func TestRulesTestsCoverEveryAlert(t *testing.T) {
	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert != "" && !fires[r.Alert] {
			t.Errorf("alert %s has no promtool test in which it fires", r.Alert)
		}
	}
}

// exportedMetrics reads the one list of metric names the agent exports.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.Fields(line)[0]] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatalf("%s lists no metrics", metricsFile)
	}
	return m
}

var (
	reString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	reMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression selects. It works
// on tokens, after promtool has accepted the expression: strings, label
// matchers, ranges and grouping label lists are removed; an identifier
// followed by "(" is a function or aggregation; keywords are skipped; what
// is left are metric names.
func metricNames(expr string) []string {
	s := reString.ReplaceAllString(expr, `""`)
	s = reMatchers.ReplaceAllString(s, "{}")
	s = reRange.ReplaceAllString(s, "")
	s = reGrouping.ReplaceAllString(s, "")
	var names []string
	for _, loc := range reIdent.FindAllStringIndex(s, -1) {
		if loc[0] > 0 {
			prev := s[loc[0]-1]
			if prev >= '0' && prev <= '9' || prev == '.' { // 5m, 1e3
				continue
			}
		}
		tok := s[loc[0]:loc[1]]
		if keywords[strings.ToLower(tok)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue
		}
		names = append(names, tok)
	}
	return names
}

func TestMetricNamesExtraction(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="spofwatch"} == 0`, []string{"up"}},
		{`absent(up{job="x"})`, []string{"up"}},
		{`count by (kind, state) (max by (instance) (spofwatch_group_state{state!="redundant"} == 1))`, []string{"spofwatch_group_state"}},
		{`label_replace(spofwatch_finding{code=~"a|b"}, "kind", "$1", "group", "([^/]+)/.*")`, []string{"spofwatch_finding"}},
		{`a * on (instance, job) group_left (rack) b_info`, []string{"a", "b_info"}},
		{`time() - x_seconds offset 5m > 1e3`, []string{"x_seconds"}},
		{`rate(foo_total[5m]) / 0.5 and bar`, []string{"foo_total", "bar"}},
		{`rule:level:name >= 2`, []string{"rule:level:name"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// The rules name only exported metrics, Prometheus' own `up`, and the
// recording rules they define.
func TestRulesNameOnlyExportedMetrics(t *testing.T) {
	known := exportedMetrics(t)
	known["up"] = true
	rules := loadRules(t)
	for _, r := range rules {
		if r.Record != "" {
			known[r.Record] = true
		}
	}
	for _, r := range rules {
		for _, m := range metricNames(r.Expr) {
			if !known[m] {
				t.Errorf("rule %s%s uses %q, which the agent does not export (%s)", r.Alert, r.Record, m, metricsFile)
			}
		}
	}
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource any    `json:"datasource"`
	Targets    []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

var reLabelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_]+\)$`)

// dashboardExprs returns every PromQL expression in the dashboard, named by
// where it is, with Grafana's variables replaced by values so that the
// expression is plain PromQL.
func dashboardExprs(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
		"${instance}", "host:19847", "$instance", "host:19847", "${job}", "spofwatch", "$job", "spofwatch")
	exprs := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				exprs[fmt.Sprintf("panel %q target %d", p.Title, i)] = vars.Replace(tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		// label_values(<selector>, label): the selector is PromQL.
		sm := reLabelValues.FindStringSubmatch(q)
		if sm == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		exprs["variable "+v.Name] = vars.Replace(sm[1])
	}
	return exprs
}

// Every PromQL expression in the dashboard parses (promtool check rules on
// a generated rules file: the real Prometheus parser, without importing
// prometheus/prometheus into go.mod) and names only exported metrics.
func TestDashboardPromQL(t *testing.T) {
	d := loadDashboard(t)
	exprs := dashboardExprs(t, d)
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions found in %s", len(exprs), dashboardFile)
	}
	where := slices.Sorted(func(yield func(string) bool) {
		for k := range exprs {
			if !yield(k) {
				return
			}
		}
	})
	var rf struct {
		Groups []map[string]any `yaml:"groups"`
	}
	var rules []map[string]string
	for i, w := range where {
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard_expr_%d", i), "expr": exprs[w]})
	}
	rf.Groups = []map[string]any{{"name": "dashboard", "rules": rules}}
	b, err := yaml.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, "check", "rules", path)
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(out, want) {
		t.Errorf("promtool check rules: want %q in\n%s", want, out)
	}

	known := exportedMetrics(t)
	known["up"] = true
	for _, w := range where {
		names := metricNames(exprs[w])
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", w, exprs[w])
		}
		for _, m := range names {
			if !known[m] {
				t.Errorf("%s uses %q, which the agent does not export (%s)", w, m, metricsFile)
			}
		}
	}
}

func TestDashboardLayout(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != "spofwatch" || d.Title == "" {
		t.Errorf("uid %q title %q: want uid spofwatch and a title (links use /d/spofwatch)", d.UID, d.Title)
	}
	var rows []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if ds, _ := json.Marshal(p.Datasource); !strings.Contains(string(ds), "${datasource}") {
			t.Errorf("panel %q: datasource %s, want the ${datasource} variable", p.Title, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "Fleet") || !strings.HasPrefix(rows[1], "Host") {
		t.Errorf("rows %q: want a fleet overview row, then a host drill-down row", rows)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Equal(vars, []string{"datasource", "job", "instance"}) {
		t.Errorf("variables %q, want datasource, job, instance", vars)
	}
}

// The shipped config loads as it is (everything commented: all defaults).
func TestDefaultConfigLoads(t *testing.T) {
	if _, err := config.Load("spofwatch.yml"); err != nil {
		t.Fatal(err)
	}
}

// Uncommenting every option gives a document whose keys the config schema
// knows: the commented file documents real options with the right types.
func TestDefaultConfigOptionsAreReal(t *testing.T) {
	b, err := os.ReadFile("spofwatch.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Option lines are "#key: ..." or "#  key: ..." / "#  - key": a hash
	// directly followed by YAML. Prose comments are "# text".
	reOption := regexp.MustCompile(`^#(\S| {2,})`)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if reOption.MatchString(l) {
			l = l[1:]
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				continue // a comment inside a commented block
			}
			lines = append(lines, l)
		}
	}
	doc := strings.Join(lines, "\n")
	var top map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &top); err != nil {
		t.Fatalf("uncommented options are not YAML: %v\n%s", err, doc)
	}
	var cfg config.Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true) // as config.Parse: unknown keys are errors
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("uncommented spofwatch.yml does not match config.Config: %v\n%s", err, doc)
	}
	for _, want := range []string{"host_labels", "collectors", "mounts", "raid", "ipmi", "ups", "power_feeds", "alerting"} {
		if _, ok := top[want]; !ok {
			t.Errorf("spofwatch.yml does not show the %s option", want)
		}
	}
	for _, name := range config.CollectorNames {
		if _, ok := cfg.Collectors[name]; !ok {
			t.Errorf("spofwatch.yml does not show the schedule of collector %s", name)
		}
	}

	// And the reverse: every option of config.Config appears.
	var shown any
	if err := yaml.Unmarshal([]byte(doc), &shown); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	yamlPaths(shown, "", have)
	for _, p := range configPaths(reflect.TypeOf(config.Config{}), "") {
		if !have[p] {
			t.Errorf("spofwatch.yml does not show option %s", p)
		}
	}
}

// configPaths lists the dotted YAML paths of every option of a config type;
// map keys and list items are "*".
func configPaths(typ reflect.Type, prefix string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	switch typ.Kind() {
	case reflect.Struct:
		if typ.NumField() == 0 || typ.PkgPath() == "time" {
			return nil
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			p := prefix + name
			out = append(out, p)
			out = append(out, configPaths(f.Type, p+".")...)
		}
	case reflect.Map, reflect.Slice:
		if typ.Elem().Kind() == reflect.Struct || typ.Elem().Kind() == reflect.Pointer {
			out = append(out, configPaths(typ.Elem(), prefix+"*.")...)
		}
	}
	return out
}

// yamlPaths records the dotted paths present in a decoded YAML value, with
// map keys under a map-typed option and list items also recorded as "*".
func yamlPaths(v any, prefix string, have map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			have[prefix+k] = true
			yamlPaths(sub, prefix+k+".", have)
			yamlPaths(sub, prefix+"*.", have)
		}
	case []any:
		for _, sub := range v {
			yamlPaths(sub, prefix+"*.", have)
		}
	}
}

// The unit keeps the hardening the issue asks for; a drop-in is where a
// site relaxes it, not this file.
func TestUnitHardening(t *testing.T) {
	b, err := os.ReadFile("systemd/spofwatch.service")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			have[k] = append(have[k], v)
		}
	}
	for k, v := range map[string]string{
		"User": "spofwatch", "Group": "spofwatch", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "ReadWritePaths": "/var/lib/spofwatch",
		"DeviceAllow": "/dev/ipmi0 rw", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"SystemCallFilter":        "@system-service", "DevicePolicy": "closed",
		"ExecStart": "/usr/bin/spofwatch $ARGS",
	} {
		if !slices.Contains(have[k], v) {
			t.Errorf("%s=%s missing (have %q)", k, v, have[k])
		}
	}
}

// The package version comes from the newest changelog entry, the binary's
// from VERSION: bumping one without the other would ship a package whose
// version and changelog disagree with `spofwatch version`.
func TestChangelogMatchesVERSION(t *testing.T) {
	v, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("changelog.yml")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Semver string `yaml:"semver"`
		Date   string `yaml:"date"`
	}
	if err := yaml.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("changelog.yml has no entry")
	}
	upstream, rev, ok := strings.Cut(entries[0].Semver, "-")
	if !ok || rev == "" {
		t.Errorf("newest changelog entry %q: want <version>-<revision>", entries[0].Semver)
	}
	if want := strings.TrimSpace(string(v)); upstream != want {
		t.Errorf("newest changelog entry is %s, VERSION is %s: add a changelog entry", upstream, want)
	}
}

// The README's Prometheus and Alertmanager snippets are real configs: the
// scrape config loads the shipped rules, and the routes send critical
// spofwatch alerts to the pager and the rest to tickets.
func TestExampleConfigs(t *testing.T) {
	out := promtool(t, "check", "config", "prometheus/prometheus.example.yml")
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Errorf("promtool check config: the example does not load the rules file:\n%s", out)
	}
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatalf("amtool not found (Debian package prometheus-alertmanager, make deps): %v", err)
	}
	const amConfig = "prometheus/alertmanager.example.yml"
	if out, err := exec.Command(amtool, "check-config", amConfig).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=SpofRedundancyLost", "severity=critical", "instance=db1:19847"}, "oncall-pager"},
		{[]string{"alertname=SpofUpsOnBattery", "severity=critical"}, "oncall-pager"},
		{[]string{"alertname=SpofNoRedundancy", "severity=warning"}, "hardware-tickets"},
		{[]string{"alertname=SpofwatchCollectorDown", "severity=warning"}, "hardware-tickets"},
		{[]string{"alertname=NodeFilesystemFull", "severity=critical"}, "default"},
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + amConfig}, tc.labels...)
		out, err := exec.Command(amtool, args...).Output()
		if err != nil {
			t.Fatalf("amtool %s: %v", strings.Join(args, " "), err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%v routes to %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// unitFile reads a systemd unit as section -> key -> values.
func unitFile(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]map[string][]string{}
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s: unparsable line %q", path, l)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	return unit
}

// unitSeconds parses the systemd time spans the unit uses: "300", "5s",
// "2min".
func unitSeconds(t *testing.T, v string) float64 {
	t.Helper()
	s := strings.TrimSpace(v)
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		s += "s"
	}
	d, err := time.ParseDuration(strings.Replace(s, "min", "m", 1))
	if err != nil {
		t.Fatalf("time span %q: %v", v, err)
	}
	return d.Seconds()
}

// A config that fails every start must not be restarted forever: the
// start limit lives in [Unit] (systemd ignores it in [Service] on current
// versions) and is reachable, i.e. Burst restarts RestartSec apart fit in
// the interval.
func TestUnitStartLimit(t *testing.T) {
	unit := unitFile(t, "systemd/spofwatch.service")
	one := func(section, key string) string {
		t.Helper()
		v := unit[section][key]
		if len(v) != 1 {
			t.Fatalf("[%s] %s= set %d times, want once", section, key, len(v))
		}
		return v[0]
	}
	if got := one("Service", "Restart"); got != "on-failure" {
		t.Errorf("Restart=%s, want on-failure", got)
	}
	for _, k := range []string{"StartLimitIntervalSec", "StartLimitBurst", "StartLimitInterval"} {
		if _, ok := unit["Service"][k]; ok {
			t.Errorf("%s= is in [Service]; it belongs in [Unit]", k)
		}
	}
	interval := unitSeconds(t, one("Unit", "StartLimitIntervalSec"))
	burst, err := strconv.Atoi(one("Unit", "StartLimitBurst"))
	if err != nil || burst < 1 {
		t.Fatalf("StartLimitBurst=%q: %v", one("Unit", "StartLimitBurst"), err)
	}
	restartSec := unitSeconds(t, one("Service", "RestartSec"))
	if interval == 0 || float64(burst)*restartSec >= interval {
		t.Errorf("StartLimitBurst=%d starts %gs apart never fill StartLimitIntervalSec=%gs: restarts go on forever", burst, restartSec, interval)
	}
	// A refused config exits 78 (cmd/spofwatch ExitConfig): no restart.
	if got := one("Service", "RestartPreventExitStatus"); got != "78" {
		t.Errorf("RestartPreventExitStatus=%s, want 78 (the daemon's exit status for a refused config)", got)
	}
}

// The drill service runs the scheduled subset as root with what drills
// need writable (sysfs, the state directory) and the rest hardened; the
// timer is shipped, and no package script enables it.
func TestDrillUnits(t *testing.T) {
	svc := unitFile(t, "systemd/spofwatch-drill.service")
	for k, want := range map[string]string{
		"Type": "oneshot", "ExecStart": "/usr/bin/spofwatch drill run --scheduled $ARGS",
		"ProtectSystem": "strict", "ReadWritePaths": "/var/lib/spofwatch", "NoNewPrivileges": "yes",
		"DevicePolicy": "closed", "DeviceAllow": "/dev/zfs rw", "PrivateTmp": "yes",
	} {
		if !slices.Contains(svc["Service"][k], want) {
			t.Errorf("drill service: %s=%s missing (have %q)", k, want, svc["Service"][k])
		}
	}
	for _, k := range []string{"User", "ProtectKernelTunables", "PrivateNetwork", "PrivateDevices"} {
		// Root, a writable /sys (md sync_action, bond active_slave), the
		// host's network and /dev/zfs are what a drill exercises.
		if v, ok := svc["Service"][k]; ok {
			t.Errorf("drill service sets %s=%q, which stops the drills", k, v)
		}
	}
	if _, ok := svc["Install"]; ok {
		t.Error("drill service has an [Install] section: only the timer is enabled")
	}
	caps := strings.Join(svc["Service"]["CapabilityBoundingSet"], " ")
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_RAW"} {
		if !strings.Contains(caps, c) {
			t.Errorf("CapabilityBoundingSet %q lacks %s", caps, c)
		}
	}
	timer := unitFile(t, "systemd/spofwatch-drill.timer")
	for k, want := range map[string]string{"OnCalendar": "quarterly", "Persistent": "true"} {
		if !slices.Contains(timer["Timer"][k], want) {
			t.Errorf("drill timer: %s=%s missing (have %q)", k, want, timer["Timer"][k])
		}
	}
	if len(timer["Timer"]["RandomizedDelaySec"]) != 1 || !slices.Contains(timer["Install"]["WantedBy"], "timers.target") {
		t.Errorf("drill timer: %v", timer)
	}

	nfpm, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"spofwatch-drill.service", "spofwatch-drill.timer"} {
		for _, dst := range []string{"dst: /lib/systemd/system/" + f, "dst: /usr/lib/systemd/system/" + f} {
			if !bytes.Contains(nfpm, []byte(dst)) {
				t.Errorf("nfpm.yaml does not ship %s", dst)
			}
		}
	}
	scripts, err := filepath.Glob("scripts/*/*")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("package scripts: %v", err)
	}
	reEnable := regexp.MustCompile(`(enable|preset)[^\n]*spofwatch-drill`)
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if m := reEnable.Find(b); m != nil {
			t.Errorf("%s enables the drill timer: %q", s, m)
		}
	}
}

// The disk health grant is a drop-in shipped as an example only (off by
// default), and grants exactly what the health reads need: CAP_SYS_ADMIN
// (NVMe Get Log Page), CAP_SYS_RAWIO (SG_IO ATA pass-through), read access
// to NVMe controllers and SCSI disks, group disk for /dev/sdX.
func TestDiskHealthDropIn(t *testing.T) {
	unit := unitFile(t, "systemd/spofwatch.service.d/disk-health.conf")
	svc := unit["Service"]
	want := map[string][]string{
		"AmbientCapabilities":   {"CAP_SYS_ADMIN CAP_SYS_RAWIO"},
		"CapabilityBoundingSet": {"CAP_SYS_ADMIN CAP_SYS_RAWIO"},
		"SupplementaryGroups":   {"disk"},
		"DeviceAllow":           {"char-nvme r", "block-sd r"},
	}
	if len(unit) != 1 || len(svc) != len(want) {
		t.Errorf("drop-in sets %v, want exactly %v in [Service]", unit, want)
	}
	for k, v := range want {
		if !slices.Equal(svc[k], v) {
			t.Errorf("%s=%q, want %q", k, svc[k], v)
		}
	}
	b, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "dst:") && (strings.Contains(l, "disk-health") || strings.Contains(l, "spofwatch-nvme")) &&
			!strings.Contains(l, "/usr/share/doc/spofwatch/examples/disk-health/") {
			t.Errorf("disk health grant installed where it takes effect: %s", strings.TrimSpace(l))
		}
	}
	if !strings.Contains(string(b), "dst: /usr/share/doc/spofwatch/examples/disk-health/disk-health.conf") {
		t.Error("the drop-in is not shipped as an example")
	}
}
