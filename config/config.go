// Package config loads spofwatch's YAML configuration. Unknown keys and
// type errors are rejected with the file and line; secrets are read from
// the files the config names, never from the config itself.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spofwatch/spofwatch/alerting"
)

// CollectorNames are the collectors a user can enable or disable, in the
// order they are documented.
var CollectorNames = []string{"mounts", "uplink", "md", "zfs", "megaraid", "bonding", "ipmi", "ups"}

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
	Alerting alerting.Config `yaml:"alerting"`

	// File is the path the config was loaded from ("" for defaults).
	File string `yaml:"-"`
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

// Error is a configuration error with its position.
type Error struct {
	File string
	Line int // 0 when not known
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads and validates a config file, including the secret files it
// names. A missing file is an error: the caller decides whether an absent
// default path is acceptable.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config: %v", unwrapPath(err))}
	}
	return Parse(path, b)
}

// Parse validates config bytes; path is used in messages and to resolve
// nothing else.
func Parse(path string, b []byte) (*Config, error) {
	cfg := Default()
	cfg.File = path
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: all defaults.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(path, err)
	}
	v := validator{file: path, root: &root}
	cfg.validate(&v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return cfg, nil
}

var (
	reUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	reLine         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// yamlError rewrites yaml.v3's messages into file:line: message form, one
// error per problem.
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, msg := range te.Errors {
			if m := reUnknownField.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				errs = append(errs, &Error{File: path, Line: line, Msg: fmt.Sprintf("unknown key %q in %s", m[2], section(m[3]))})
				continue
			}
			if m := reLine.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				errs = append(errs, &Error{File: path, Line: line, Msg: "wrong type: " + m[2]})
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
	return &Error{File: path, Msg: "invalid YAML: " + err.Error()}
}

// section turns a Go type name from yaml.v3 into the config section it is.
func section(goType string) string {
	switch strings.TrimPrefix(goType, "config.") {
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

type validator struct {
	file string
	root *yaml.Node
	errs []error
}

// failf records an error at the line of the key path (keys and list
// indexes as strings: "ups", "1", "password_file").
func (v *validator) failf(path []string, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: lineOf(v.root, path), Msg: strings.Join(path, ".") + ": " + fmt.Sprintf(format, args...)})
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

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are set by spofwatch on alerts and metrics.
var reservedLabels = map[string]bool{"alertname": true, "severity": true, "instance": true, "group": true, "member": true, "job": true}

func (c *Config) validate(v *validator) {
	for k := range c.HostLabels {
		switch {
		case !labelName.MatchString(k) || strings.HasPrefix(k, "__"):
			v.failf([]string{"host_labels", k}, "%q is not a valid Prometheus label name", k)
		case reservedLabels[k]:
			v.failf([]string{"host_labels", k}, "%q is set by spofwatch itself; choose another name", k)
		}
	}
	for name, cc := range c.Collectors {
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
	if err := c.Alerting.Validate(); err != nil {
		v.failf([]string{"alerting"}, "%v", err)
	}
	for psu, feed := range c.PowerFeeds {
		if strings.TrimSpace(feed) == "" {
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
	if c.PasswordFile != "" {
		pw, err := readSecret(c.PasswordFile)
		if err != nil {
			v.failf([]string{"ipmi", "password_file"}, "%v", err)
		}
		c.Password = pw
	}
}

func (u *UPSConfig) validate(v *validator, at []string) {
	if u.Name == "" {
		v.failf(at, "name is required")
	}
	if _, _, _, err := ParseUPSTarget(u.Target); err != nil {
		v.failf(append(at, "target"), "%v", err)
	}
	if u.MaxLoad < 0 || u.MaxLoad > 1000 {
		v.failf(append(at, "max_load"), "%v is not a load percentage", u.MaxLoad)
	}
	if u.PasswordFile != "" {
		pw, err := readSecret(u.PasswordFile)
		if err != nil {
			v.failf(append(at, "password_file"), "%v", err)
		}
		u.Password = pw
	}
	if u.CAFile != "" {
		if _, err := os.Stat(u.CAFile); err != nil {
			v.failf(append(at, "ca_file"), "%v", err)
		}
	}
}

// ParseUPSTarget splits "upsname@host:port" (host and port optional, as in
// upsc); the port defaults to 3493.
func ParseUPSTarget(t string) (ups, host string, port int, err error) {
	ups, hostport, hasHost := strings.Cut(t, "@")
	if ups == "" {
		return "", "", 0, fmt.Errorf("target %q: want upsname@host[:port]", t)
	}
	host, port = "localhost", 3493
	if hasHost {
		h, p, hasPort := strings.Cut(hostport, ":")
		if strings.HasPrefix(hostport, "[") { // [::1]:3493
			end := strings.Index(hostport, "]")
			if end < 0 {
				return "", "", 0, fmt.Errorf("target %q: unterminated IPv6 address", t)
			}
			h = hostport[1:end]
			p, hasPort = strings.CutPrefix(hostport[end+1:], ":")
		}
		if h != "" {
			host = h
		}
		if hasPort {
			if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
				return "", "", 0, fmt.Errorf("target %q: bad port %q", t, p)
			}
		}
	}
	return ups, host, port, nil
}

// readSecret reads a secret file, trimming one trailing newline. The error
// names the file but never the content.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file %s: %v", path, unwrapPath(err))
	}
	return strings.TrimRight(string(b), "\r\n"), nil
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
