package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/internal/redact"
	"github.com/spofwatch/spofwatch/spof"
)

// Defaults for keys of the alerting section left out of the configuration.
const (
	DefaultOutboxDir      = "/var/lib/spofwatch/outbox"
	DefaultRepeatInterval = 4 * time.Hour
	DefaultKeepFiringFor  = time.Minute
	DefaultWebhookTimeout = 10 * time.Second
	DefaultResendInterval = time.Minute
)

// DefaultFor is the pending time of a severity that `for` does not name:
// a critical finding fires at once, anything else after a minute.
func DefaultFor(sev spof.Severity) time.Duration {
	if sev == spof.SeverityCritical {
		return 0
	}
	return time.Minute
}

// Receiver types.
const (
	TypeWebhook      = "webhook"
	TypeAlertmanager = "alertmanager"
)

// Alerting is the `alerting:` section of spofwatch.yml. The YAML keys are a
// public interface: never rename one.
type Alerting struct {
	// OutboxDir holds the durable queue and the alert state.
	OutboxDir string `yaml:"outbox_dir"`
	// OutboxMaxEntries bounds the queue; the oldest entry is dropped (and
	// counted) beyond it. 0 means outbox.DefaultMaxEntries.
	OutboxMaxEntries int `yaml:"outbox_max_entries"`
	// MinSeverity is the lowest finding severity that alerts (default warning).
	MinSeverity string `yaml:"min_severity"`
	// For is how long a finding must stay active before its alert fires,
	// by severity name. Severities left out take DefaultFor.
	For map[string]model.Duration `yaml:"for"`
	// ForCode overrides For per finding code, e.g. {redundancy_degraded: 5m}.
	ForCode map[string]model.Duration `yaml:"for_code"`
	// KeepFiringFor damps flapping: a firing alert whose finding clears is
	// resolved only after the finding stayed clear this long; if it comes
	// back meanwhile the alert just keeps firing. Defaults to 1m; 0 turns
	// damping off.
	KeepFiringFor *model.Duration `yaml:"keep_firing_for"`
	// RepeatInterval re-sends still-firing alerts to webhooks (default 4h).
	RepeatInterval model.Duration `yaml:"repeat_interval"`
	// ExternalURL is this agent's URL: externalURL and generatorURL base.
	ExternalURL string `yaml:"external_url"`
	// RunbookURL is a base; the runbook_url annotation is base + code.
	RunbookURL string     `yaml:"runbook_url"`
	Receivers  []Receiver `yaml:"receivers"`
}

// Receiver is one alert destination.
type Receiver struct {
	Name string `yaml:"name"`
	// Type is "webhook" or "alertmanager".
	Type string `yaml:"type"`

	// Webhook keys.
	URL             string            `yaml:"url"`
	SecretFile      string            `yaml:"secret_file"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth        `yaml:"basic_auth"`
	Headers         map[string]string `yaml:"headers"`
	TLS             TLSConfig         `yaml:"tls"`
	// Timeout bounds one request (default 10s).
	Timeout model.Duration `yaml:"timeout"`
	// MaxAlerts caps the alerts in one webhook message; more are split into
	// several messages (never dropped). 0 means no cap.
	MaxAlerts int `yaml:"max_alerts"`

	// Alertmanager keys.
	URLs []string `yaml:"urls"`
	// ResendInterval re-posts active alerts (default 1m); they are posted
	// with endsAt = now + 4 × ResendInterval.
	ResendInterval model.Duration `yaml:"resend_interval"`
}

// BasicAuth takes its password from a file.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// TLSConfig configures HTTPS to a receiver.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// EffectiveMinSeverity is MinSeverity, warning when unset.
func (c *Alerting) EffectiveMinSeverity() spof.Severity {
	if s, err := spof.ParseSeverity(c.MinSeverity); err == nil {
		return s
	}
	return spof.SeverityWarning
}

// PendingFor returns how long a finding must stay active before firing:
// for_code, else for, else DefaultFor.
func (c *Alerting) PendingFor(code spof.Code, sev spof.Severity) time.Duration {
	if d, ok := c.ForCode[string(code)]; ok {
		return time.Duration(d)
	}
	if d, ok := c.For[sev.String()]; ok {
		return time.Duration(d)
	}
	return DefaultFor(sev)
}

// EffectiveKeepFiringFor is KeepFiringFor, DefaultKeepFiringFor when unset.
func (c *Alerting) EffectiveKeepFiringFor() time.Duration {
	if c.KeepFiringFor == nil {
		return DefaultKeepFiringFor
	}
	return time.Duration(*c.KeepFiringFor)
}

// EffectiveRepeatInterval is RepeatInterval, DefaultRepeatInterval when unset.
func (c *Alerting) EffectiveRepeatInterval() time.Duration {
	if c.RepeatInterval == 0 {
		return DefaultRepeatInterval
	}
	return time.Duration(c.RepeatInterval)
}

// EffectiveResendInterval is ResendInterval, DefaultResendInterval when unset.
func (r *Receiver) EffectiveResendInterval() time.Duration {
	if r.ResendInterval == 0 {
		return DefaultResendInterval
	}
	return time.Duration(r.ResendInterval)
}

// EffectiveTimeout is Timeout, DefaultWebhookTimeout when unset.
func (r *Receiver) EffectiveTimeout() time.Duration {
	if r.Timeout == 0 {
		return DefaultWebhookTimeout
	}
	return time.Duration(r.Timeout)
}

// Validate checks the section without touching files or network, and
// reports every problem. Load does this and more (secret and CA files),
// with the line of each problem.
func (c *Alerting) Validate() error {
	v := validator{}
	c.validate(&v, false)
	return v.err()
}

// validate checks the section; with files it also reads every secret and
// CA file it names, as the alert engine will.
func (c *Alerting) validate(v *validator, files bool) {
	at := func(p ...string) []string { return append([]string{"alerting"}, p...) }
	if c.MinSeverity != "" {
		if _, err := spof.ParseSeverity(c.MinSeverity); err != nil {
			v.failf(at("min_severity"), "%v", err)
		}
	}
	if c.OutboxMaxEntries < 0 {
		v.failf(at("outbox_max_entries"), "must not be negative")
	}
	for _, k := range sortedKeys(c.For) {
		if _, err := spof.ParseSeverity(k); err != nil {
			v.failf(at("for", k), "%v", err)
		}
		if c.For[k] < 0 {
			v.failf(at("for", k), "must not be negative")
		}
	}
	for _, k := range sortedKeys(c.ForCode) {
		if !knownCode(spof.Code(k)) {
			v.failf(at("for_code", k), "unknown finding code %q", k)
		}
		if c.ForCode[k] < 0 {
			v.failf(at("for_code", k), "must not be negative")
		}
	}
	if c.KeepFiringFor != nil && *c.KeepFiringFor < 0 {
		v.failf(at("keep_firing_for"), "must not be negative")
	}
	if c.RepeatInterval < 0 {
		v.failf(at("repeat_interval"), "must not be negative")
	}
	if c.ExternalURL != "" {
		if err := checkURL(c.ExternalURL); err != nil {
			v.failf(at("external_url"), "%v", err)
		}
	}
	names := map[string]bool{}
	for i := range c.Receivers {
		r := &c.Receivers[i]
		rat := at("receivers", strconv.Itoa(i))
		r.validate(v, rat, files)
		if r.Name != "" && names[r.Name] {
			v.failf(append(rat, "name"), "duplicate name %q", r.Name)
		}
		names[r.Name] = true
	}
}

func (r *Receiver) validate(v *validator, at []string, files bool) {
	key := func(p ...string) []string { return append(slices.Clone(at), p...) }
	if r.Name == "" {
		v.failf(at, "name is required")
	}
	webhookOnly := r.URL != "" || r.SecretFile != "" || r.BearerTokenFile != "" || r.BasicAuth != nil || len(r.Headers) > 0 || r.MaxAlerts != 0
	switch r.Type {
	case TypeWebhook:
		if r.URL == "" {
			v.failf(at, "receiver %q: url is required", r.Name)
		} else if err := checkURL(r.URL); err != nil {
			v.failf(key("url"), "receiver %q: %v", r.Name, err)
		}
		if len(r.URLs) > 0 || r.ResendInterval != 0 {
			v.failf(at, "receiver %q: urls and resend_interval belong to type alertmanager", r.Name)
		}
		if r.BearerTokenFile != "" && r.BasicAuth != nil {
			v.failf(key("basic_auth"), "receiver %q: bearer_token_file and basic_auth are exclusive", r.Name)
		}
		if r.BasicAuth != nil && (r.BasicAuth.Username == "" || r.BasicAuth.PasswordFile == "") {
			v.failf(key("basic_auth"), "receiver %q: basic_auth needs username and password_file", r.Name)
		}
		if r.MaxAlerts < 0 {
			v.failf(key("max_alerts"), "receiver %q: must not be negative", r.Name)
		}
		for _, name := range sortedKeys(r.Headers) {
			if err := checkHeader(name, r.Headers[name]); err != nil {
				v.failf(key("headers", name), "receiver %q: %v", r.Name, err)
			}
		}
	case TypeAlertmanager:
		if len(r.URLs) == 0 {
			v.failf(at, "receiver %q: urls is required", r.Name)
		}
		for j, u := range r.URLs {
			if err := checkURL(u); err != nil {
				v.failf(key("urls", strconv.Itoa(j)), "receiver %q: %v", r.Name, err)
			}
		}
		if webhookOnly {
			v.failf(at, "receiver %q: url, secret_file, bearer_token_file, basic_auth, headers and max_alerts belong to type webhook", r.Name)
		}
		if r.ResendInterval < 0 {
			v.failf(key("resend_interval"), "receiver %q: must not be negative", r.Name)
		}
	default:
		v.failf(key("type"), "receiver %q: type must be webhook or alertmanager, not %q", r.Name, r.Type)
	}
	if r.Timeout < 0 {
		v.failf(key("timeout"), "receiver %q: must not be negative", r.Name)
	}
	if !files {
		return
	}
	v.secret(key("secret_file"), r.SecretFile)
	v.secret(key("bearer_token_file"), r.BearerTokenFile)
	if r.BasicAuth != nil {
		v.secret(key("basic_auth", "password_file"), r.BasicAuth.PasswordFile)
	}
	v.caFile(key("tls", "ca_file"), r.TLS.CAFile)
}

// checkURL accepts an absolute http or https URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the input in its error: keep a password out.
		return errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an absolute http or https URL", redact.URL(s))
	}
	return nil
}

// checkHeader applies HTTP's rules (RFC 9110, as golang.org/x/net's
// httpguts): a name is a non-empty token, a value has no control character
// but tab. net/http refuses to send anything else, so every delivery would
// fail.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("header name %q: character %q is not allowed in an HTTP header name", name, name[i])
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			// The value may be a credential: name the header, not the value.
			return fmt.Errorf("header %s: value has a control character (%q) at byte %d", name, c, i)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c < 0x80 && slices.Contains([]byte("!#$%&'*+-.^_`|~"), c)
}

func knownCode(c spof.Code) bool {
	return slices.ContainsFunc(spof.Codes, func(ci spof.CodeInfo) bool { return ci.Code == c })
}
