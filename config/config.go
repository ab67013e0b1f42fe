// Package config loads spofwatch's YAML configuration. Unknown keys and
// type errors are rejected with the file and line; secrets are read from
// the files the config names, never from the config itself.
package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spofwatch/spofwatch/internal/secretfile"
	"github.com/spofwatch/spofwatch/ups"
)

// CollectorNames are the collectors a user can enable or disable, in the
// order they are documented.
var CollectorNames = []string{"mounts", "uplink", "md", "zfs", "megaraid", "bonding", "ipmi", "ups", "diskhealth", "multipath"}

// Config is the whole configuration file.
type Config struct {
	// HostLabels are added to spofwatch_host_info and to every alert.
	HostLabels map[string]string `yaml:"host_labels"`
	// Collectors overrides interval and timeout per collector.
	Collectors map[string]CollectorConfig `yaml:"collectors"`
	Mounts     MountsConfig               `yaml:"mounts"`
	RAID       RAIDConfig                 `yaml:"raid"`
	IPMI       *IPMIConfig                `yaml:"ipmi"`
	UPS        []UPSConfig                `yaml:"ups"`
	// PowerFeeds maps a PSU member name ("PSU1 Status") to the UPS or feed
	// label it is plugged into.
	PowerFeeds map[string]string `yaml:"power_feeds"`
	// Alerting configures the alert engine and its receivers.
	Alerting Alerting `yaml:"alerting"`
	// Accept lists accepted risks: known single points of failure marked
	// accepted until a date.
	Accept []AcceptConfig `yaml:"accept"`
	// AcceptMaxAhead bounds how far ahead an acceptance's until may be
	// (default one year).
	AcceptMaxAhead Duration `yaml:"accept_max_ahead"`
	// Proof is the policy for redundancy_untested: how old a group's last
	// proof of redundancy may be.
	Proof ProofConfig `yaml:"proof"`
	// Drill configures the root `spofwatch drill` command.
	Drill DrillConfig `yaml:"drill"`

	// File is the path the config was loaded from ("" for defaults).
	File string `yaml:"-"`
	// Warnings are problems that do not stop the config from working
	// (file:line: message), for the caller to log once per load.
	Warnings []string `yaml:"-"`
}

// CollectorConfig is a collector's schedule.
type CollectorConfig struct {
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
}

// MountsConfig configures the mounts collector.
type MountsConfig struct {
	// Extra mountpoints watched beside /, /boot, /boot/efi and /var.
	Extra []string `yaml:"extra"`
}

// RAIDConfig configures the zfs and megaraid collectors.
type RAIDConfig struct {
	ZpoolPath   string `yaml:"zpool_path"`
	StorcliPath string `yaml:"storcli_path"`
}

// IPMIConfig configures the BMC connection.
type IPMIConfig struct {
	Interface    string   `yaml:"interface"` // open or lanplus
	Host         string   `yaml:"host"`
	Port         int      `yaml:"port"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	CipherSuite  int      `yaml:"cipher_suite"`
	Timeout      Duration `yaml:"timeout"`
	Interval     Duration `yaml:"interval"`
	PSURequired  int      `yaml:"psu_required"`

	// Password is read from PasswordFile at load time.
	Password string `yaml:"-"`
}

// UPSConfig is one UPS watched through a NUT server.
type UPSConfig struct {
	Name         string   `yaml:"name"`
	Target       string   `yaml:"target"` // upsname@host:port
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	StartTLS     bool     `yaml:"starttls"`
	CAFile       string   `yaml:"ca_file"`
	MinRuntime   Duration `yaml:"min_runtime"`
	MaxLoad      float64  `yaml:"max_load"` // percent

	Password string `yaml:"-"`
}

// Default returns the configuration used when no file is given.
func Default() *Config {
	return &Config{RAID: RAIDConfig{ZpoolPath: "zpool", StorcliPath: "storcli64"}}
}

// MaxFileSize bounds the config file. A real one is a few KiB; the bound
// keeps a wrong path (/dev/zero, a log) from exhausting memory.
const MaxFileSize = 1 << 20

// maxErrors bounds the errors reported for one file: past this many, the
// rest are noise (or a file that is not a spofwatch config at all).
const maxErrors = 50

// Error is a configuration error with its position.
type Error struct {
	File string
	Line int // 0 when not known
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads and validates a config file, including the secret and CA
// files it names; it is the one validation path of `check`, the daemon and
// a reload. A missing file is an error: the caller decides whether an
// absent default path is acceptable. Every problem is reported, each as
// file:line: message, in line order.
func Load(path string) (*Config, error) {
	b, err := readBounded(path, MaxFileSize)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}
	}
	return Parse(path, b)
}

// readBounded reads at most limit bytes, refusing a larger file. It reads
// through a limited reader: /dev/zero or a pipe that never ends costs limit
// bytes, not all memory.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than the %d bytes allowed", limit)
	}
	return b, nil
}

// Parse validates config bytes, reading the secret and CA files they name;
// path is used in messages only.
func Parse(path string, b []byte) (*Config, error) { return parseAt(path, b, time.Now()) }

func parseAt(path string, b []byte, now time.Time) (*Config, error) {
	cfg := Default()
	cfg.File = path
	if len(b) > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config: larger than the %d bytes allowed", MaxFileSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(path, err)
	}
	v := validator{file: path, root: &root, files: true, now: now}
	w := schemaWalker{v: &v, seen: map[walkKey]bool{}}
	w.walk(&root, reflect.TypeFor[Config]())
	// An empty file (or one with only comments) is all defaults.
	if root.Kind != 0 && len(root.Content) > 0 {
		if err := root.Decode(cfg); err != nil {
			v.add(yamlError(path, err))
			return nil, v.err()
		}
	}
	cfg.validate(&v)
	if err := v.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = v.warnings
	return cfg, nil
}

var reLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError rewrites yaml.v3's messages into file:line: message form, one
// error per problem.
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, msg := range te.Errors {
			if m := reLine.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				if strings.HasPrefix(m[2], "cannot unmarshal") {
					m[2] = "wrong type: " + m[2]
				}
				errs = append(errs, &Error{File: path, Line: line, Msg: m[2]})
				continue
			}
			errs = append(errs, &Error{File: path, Msg: msg})
		}
		return errors.Join(errs...)
	}
	if m := reLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Msg: m[2]}
	}
	return &Error{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// section turns a Go type name into the config section it is.
func section(goType string) string {
	switch goType {
	case "Config":
		return "the top level"
	case "CollectorConfig":
		return "collectors.<name>"
	case "MountsConfig":
		return "mounts"
	case "RAIDConfig":
		return "raid"
	case "IPMIConfig":
		return "ipmi"
	case "UPSConfig":
		return "ups[]"
	case "Alerting":
		return "alerting"
	case "Receiver":
		return "alerting.receivers[]"
	case "BasicAuth":
		return "alerting.receivers[].basic_auth"
	case "TLSConfig":
		return "alerting.receivers[].tls"
	case "DrillConfig":
		return "drill"
	case "DrillMDConfig":
		return "drill.md"
	case "DrillBond":
		return "drill.bonds[]"
	case "DrillUPSConfig":
		return "drill.ups"
	}
	return goType
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// validator collects every problem of one file with its line.
type validator struct {
	file string
	root *yaml.Node // nil when validating values without a document
	// files says whether to read the secret and CA files the config names.
	files    bool
	errs     []*Error
	warnings []string
	// now is the load time, for dates (an acceptance's until).
	now time.Time
}

// failf records an error at the line of the key path (keys and list
// indexes as strings: "ups", "1", "password_file").
func (v *validator) failf(path []string, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: lineOf(v.root, path), Msg: strings.Join(path, ".") + ": " + fmt.Sprintf(format, args...)})
}

// errAt records an error at a known line.
func (v *validator) errAt(line int, msg string) {
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Msg: msg})
}

// add records the errors of err (an *Error or a join of them).
func (v *validator) add(err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			v.add(e)
		}
		return
	}
	var ce *Error
	if errors.As(err, &ce) {
		v.errs = append(v.errs, ce)
		return
	}
	v.errs = append(v.errs, &Error{File: v.file, Msg: err.Error()})
}

// err joins the errors in line order (errors without a line first), at
// most maxErrors of them.
func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(v.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, 0, min(len(v.errs), maxErrors)+1)
	for i, e := range v.errs {
		if i == maxErrors {
			errs = append(errs, &Error{File: v.file, Msg: fmt.Sprintf("%d more errors not shown", len(v.errs)-maxErrors)})
			break
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// secret reads the secret file at the key path when files are checked,
// and warns when others may read it.
func (v *validator) secret(path []string, file string) string {
	if file == "" || !v.files {
		return ""
	}
	s, err := secretfile.Read(file)
	if err != nil {
		v.failf(path, "%v", err)
		return ""
	}
	if s.ReadableByOthers() {
		v.warnings = append(v.warnings, (&Error{File: v.file, Line: lineOf(v.root, path), Msg: fmt.Sprintf(
			"%s: secret file %s is readable by every user (mode %04o); chmod o-r it (0640 root:spofwatch, or 0600 owned by the service user)", strings.Join(path, "."), file, s.Mode.Perm())}).Error())
	}
	return string(s.Value)
}

// caFile checks a CA bundle the way its user will load it.
func (v *validator) caFile(path []string, file string) {
	if file == "" || !v.files {
		return
	}
	if _, err := secretfile.CertPool(file); err != nil {
		v.failf(path, "%v", err)
	}
}

// lineOf finds the line of a key path in the parsed document, or the line
// of the deepest part found.
func lineOf(n *yaml.Node, path []string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

func (c *Config) validate(v *validator) {
	for _, k := range sortedKeys(c.HostLabels) {
		if err := CheckHostLabelName(k); err != nil {
			v.failf([]string{"host_labels", k}, "%v", err)
		}
	}
	for _, name := range sortedKeys(c.Collectors) {
		cc := c.Collectors[name]
		if !slices.Contains(CollectorNames, name) {
			v.failf([]string{"collectors", name}, "unknown collector %q (known: %s)", name, strings.Join(CollectorNames, ", "))
		}
		if cc.Interval < 0 || cc.Timeout < 0 {
			v.failf([]string{"collectors", name}, "interval and timeout must not be negative")
		}
		if cc.Interval > 0 && cc.Timeout > cc.Interval {
			v.failf([]string{"collectors", name, "timeout"}, "timeout %s is longer than interval %s", cc.Timeout, cc.Interval)
		}
	}
	for i, p := range c.Mounts.Extra {
		if !strings.HasPrefix(p, "/") {
			v.failf([]string{"mounts", "extra", strconv.Itoa(i)}, "%q is not an absolute path", p)
		}
	}
	if c.IPMI != nil {
		c.IPMI.validate(v)
	}
	names := map[string]bool{}
	for i := range c.UPS {
		u := &c.UPS[i]
		at := []string{"ups", strconv.Itoa(i)}
		u.validate(v, at)
		if names[u.Name] {
			v.failf(append(at, "name"), "duplicate UPS name %q", u.Name)
		}
		names[u.Name] = true
	}
	c.Alerting.validate(v, v.files)
	c.validateAccept(v)
	c.validateProof(v)
	c.validateDrill(v)
	for _, psu := range sortedKeys(c.PowerFeeds) {
		if strings.TrimSpace(c.PowerFeeds[psu]) == "" {
			v.failf([]string{"power_feeds", psu}, "empty feed for %q", psu)
		}
	}
}

func (c *IPMIConfig) validate(v *validator) {
	switch c.Interface {
	case "", "open":
		if c.Host != "" {
			v.failf([]string{"ipmi", "host"}, "host is set but interface is %q; use interface: lanplus for a remote BMC", orDefault(c.Interface, "open"))
		}
	case "lanplus":
		if c.Host == "" {
			v.failf([]string{"ipmi", "host"}, "interface lanplus needs a host")
		}
	default:
		v.failf([]string{"ipmi", "interface"}, "unknown interface %q (want open or lanplus)", c.Interface)
	}
	if c.Port < 0 || c.Port > 65535 {
		v.failf([]string{"ipmi", "port"}, "port %d out of range", c.Port)
	}
	if c.PSURequired < 0 {
		v.failf([]string{"ipmi", "psu_required"}, "must not be negative")
	}
	c.Password = v.secret([]string{"ipmi", "password_file"}, c.PasswordFile)
}

func (u *UPSConfig) validate(v *validator, at []string) {
	if u.Name == "" {
		v.failf(at, "name is required")
	}
	if err := checkUPSTarget(u.Target); err != nil {
		v.failf(append(at, "target"), "%v", err)
	}
	if u.MaxLoad < 0 || u.MaxLoad > 1000 {
		v.failf(append(at, "max_load"), "%v is not a load percentage", u.MaxLoad)
	}
	u.Password = v.secret(append(at, "password_file"), u.PasswordFile)
	v.caFile(append(at, "ca_file"), u.CAFile)
}

// checkUPSTarget checks a target as the ups collector will parse it, plus
// the port range, which ups.ParseTarget leaves to the dialer.
func checkUPSTarget(t string) error {
	_, addr, err := ups.ParseTarget(t)
	if err != nil {
		return err
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("target %q: %w", t, err)
	}
	if port, err := strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("target %q: bad port %q", t, p)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Schedule returns the interval and timeout of a collector, with its
// defaults applied.
func (c *Config) Schedule(name string, defInterval, defTimeout time.Duration) (time.Duration, time.Duration) {
	iv, to := defInterval, defTimeout
	if cc, ok := c.Collectors[name]; ok {
		if cc.Interval > 0 {
			iv = time.Duration(cc.Interval)
		}
		if cc.Timeout > 0 {
			to = time.Duration(cc.Timeout)
		}
	}
	if name == "ipmi" && c.IPMI != nil {
		if c.IPMI.Interval > 0 {
			iv = time.Duration(c.IPMI.Interval)
		}
		if c.IPMI.Timeout > 0 {
			to = time.Duration(c.IPMI.Timeout)
		}
	}
	if to > iv {
		to = iv
	}
	return iv, to
}
