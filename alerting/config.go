package alerting

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/spof"
)

// Defaults for keys left out of the configuration.
const (
	DefaultOutboxDir      = "/var/lib/spofwatch/outbox"
	DefaultRepeatInterval = 4 * time.Hour
	DefaultKeepFiringFor  = time.Minute
	DefaultWebhookTimeout = 10 * time.Second
	DefaultResendInterval = time.Minute
	// ResolvedPosts is how many consecutive pushes to Alertmanager carry a
	// resolved alert (endsAt = resolution time) before it is forgotten.
	ResolvedPosts = 3
)

// DefaultFor is the pending time by severity when `for` does not name it.
var DefaultFor = map[spof.Severity]time.Duration{
	spof.SeverityCritical: 0,
	spof.SeverityWarning:  time.Minute,
	spof.SeverityInfo:     time.Minute,
}

// Receiver types.
const (
	TypeWebhook      = "webhook"
	TypeAlertmanager = "alertmanager"
)

// Config is the `alerting:` section of spofwatch.yml. The YAML keys are a
// public interface: never rename one.
type Config struct {
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

// Validate checks the configuration without touching files or network.
func (c *Config) Validate() error {
	if c.MinSeverity != "" {
		if _, err := spof.ParseSeverity(c.MinSeverity); err != nil {
			return fmt.Errorf("alerting.min_severity: %w", err)
		}
	}
	if c.OutboxMaxEntries < 0 {
		return fmt.Errorf("alerting.outbox_max_entries: must not be negative")
	}
	for k, d := range c.For {
		if _, err := spof.ParseSeverity(k); err != nil {
			return fmt.Errorf("alerting.for: %w", err)
		}
		if d < 0 {
			return fmt.Errorf("alerting.for.%s: must not be negative", k)
		}
	}
	for k, d := range c.ForCode {
		if !knownCode(spof.Code(k)) {
			return fmt.Errorf("alerting.for_code: unknown finding code %q", k)
		}
		if d < 0 {
			return fmt.Errorf("alerting.for_code.%s: must not be negative", k)
		}
	}
	if c.KeepFiringFor != nil && *c.KeepFiringFor < 0 {
		return errors.New("alerting.keep_firing_for: must not be negative")
	}
	if c.RepeatInterval < 0 {
		return errors.New("alerting.repeat_interval: must not be negative")
	}
	if c.ExternalURL != "" {
		if err := checkURL(c.ExternalURL); err != nil {
			return fmt.Errorf("alerting.external_url: %w", err)
		}
	}
	names := map[string]bool{}
	for i, r := range c.Receivers {
		if err := r.validate(); err != nil {
			return fmt.Errorf("alerting.receivers[%d]: %w", i, err)
		}
		if names[r.Name] {
			return fmt.Errorf("alerting.receivers[%d]: duplicate name %q", i, r.Name)
		}
		names[r.Name] = true
	}
	return nil
}

func (r *Receiver) validate() error {
	if r.Name == "" {
		return errors.New("name is required")
	}
	webhookOnly := r.URL != "" || r.SecretFile != "" || r.BearerTokenFile != "" || r.BasicAuth != nil || len(r.Headers) > 0 || r.MaxAlerts != 0
	switch r.Type {
	case TypeWebhook:
		if r.URL == "" {
			return fmt.Errorf("receiver %q: url is required", r.Name)
		}
		if err := checkURL(r.URL); err != nil {
			return fmt.Errorf("receiver %q: url: %w", r.Name, err)
		}
		if len(r.URLs) > 0 || r.ResendInterval != 0 {
			return fmt.Errorf("receiver %q: urls and resend_interval belong to type alertmanager", r.Name)
		}
		if r.BearerTokenFile != "" && r.BasicAuth != nil {
			return fmt.Errorf("receiver %q: bearer_token_file and basic_auth are exclusive", r.Name)
		}
		if r.BasicAuth != nil && (r.BasicAuth.Username == "" || r.BasicAuth.PasswordFile == "") {
			return fmt.Errorf("receiver %q: basic_auth needs username and password_file", r.Name)
		}
		if r.MaxAlerts < 0 {
			return fmt.Errorf("receiver %q: max_alerts must not be negative", r.Name)
		}
	case TypeAlertmanager:
		if len(r.URLs) == 0 {
			return fmt.Errorf("receiver %q: urls is required", r.Name)
		}
		for _, u := range r.URLs {
			if err := checkURL(u); err != nil {
				return fmt.Errorf("receiver %q: urls: %w", r.Name, err)
			}
		}
		if webhookOnly {
			return fmt.Errorf("receiver %q: url, secret_file, bearer_token_file, basic_auth, headers and max_alerts belong to type webhook", r.Name)
		}
		if r.ResendInterval < 0 {
			return fmt.Errorf("receiver %q: resend_interval must not be negative", r.Name)
		}
	default:
		return fmt.Errorf("receiver %q: type must be webhook or alertmanager, not %q", r.Name, r.Type)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("receiver %q: timeout must not be negative", r.Name)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the input in its error: keep a password out.
		return errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an absolute http or https URL", u.Redacted())
	}
	return nil
}

func knownCode(c spof.Code) bool {
	return slices.ContainsFunc(spof.Codes, func(ci spof.CodeInfo) bool { return ci.Code == c })
}

func (c *Config) minSeverity() spof.Severity {
	if s, err := spof.ParseSeverity(c.MinSeverity); err == nil {
		return s
	}
	return spof.SeverityWarning
}

// pendingFor returns how long a finding must stay active before firing.
func (c *Config) pendingFor(code spof.Code, sev spof.Severity) time.Duration {
	if d, ok := c.ForCode[string(code)]; ok {
		return time.Duration(d)
	}
	if d, ok := c.For[sev.String()]; ok {
		return time.Duration(d)
	}
	return DefaultFor[sev]
}

func (c *Config) keepFiringFor() time.Duration {
	if c.KeepFiringFor == nil {
		return DefaultKeepFiringFor
	}
	return time.Duration(*c.KeepFiringFor)
}

func (c *Config) repeatInterval() time.Duration {
	if c.RepeatInterval == 0 {
		return DefaultRepeatInterval
	}
	return time.Duration(c.RepeatInterval)
}

func (r *Receiver) resendInterval() time.Duration {
	if r.ResendInterval == 0 {
		return DefaultResendInterval
	}
	return time.Duration(r.ResendInterval)
}

func (r *Receiver) timeout() time.Duration {
	if r.Timeout == 0 {
		return DefaultWebhookTimeout
	}
	return time.Duration(r.Timeout)
}
