package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The keys of the issue and of docs; the config package embeds Config
// under `alerting:` and decodes strictly, as done here.
const sampleYAML = `
alerting:
  outbox_dir: /var/lib/spofwatch/outbox
  outbox_max_entries: 5000
  min_severity: warning
  for: {critical: 0s, warning: 1m}
  for_code: {redundancy_degraded: 5m}
  keep_firing_for: 2m
  repeat_interval: 4h
  external_url: http://host1:9899/
  runbook_url: https://runbooks.example/spof/
  receivers:
    - name: ops
      type: webhook
      url: "https://hooks.example/spof"
      secret_file: /etc/spofwatch/hook.secret
      bearer_token_file: /etc/spofwatch/hook.token
      headers: {X-Team: storage}
      tls: {ca_file: /etc/spofwatch/ca.pem, insecure_skip_verify: false}
      timeout: 5s
      max_alerts: 20
    - name: legacy
      type: webhook
      url: "http://hooks.example/legacy"
      basic_auth: {username: spof, password_file: /etc/spofwatch/legacy.pw}
    - {name: am, type: alertmanager, urls: ["http://am1:9093", "http://am2:9093"], resend_interval: 1m}
`

func decodeStrict(t *testing.T, s string) (Config, error) {
	t.Helper()
	var doc struct {
		Alerting Config `yaml:"alerting"`
	}
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	err := dec.Decode(&doc)
	return doc.Alerting, err
}

func TestConfigYAML(t *testing.T) {
	c, err := decodeStrict(t, sampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.PendingFor("redundancy_degraded", 2) != 5*time.Minute || c.PendingFor("shared_failure_domain", 2) != time.Minute || c.PendingFor("group_down", 3) != 0 {
		t.Errorf("pending times: %v %v", c.For, c.ForCode)
	}
	if c.EffectiveKeepFiringFor() != 2*time.Minute || c.EffectiveRepeatInterval() != 4*time.Hour || c.OutboxMaxEntries != 5000 {
		t.Errorf("keep_firing_for %s repeat %s max %d", c.EffectiveKeepFiringFor(), c.EffectiveRepeatInterval(), c.OutboxMaxEntries)
	}
	r := c.Receivers
	if len(r) != 3 || r[0].Timeout != model.Duration(5*time.Second) || r[0].MaxAlerts != 20 || r[0].TLS.CAFile == "" || r[0].Headers["X-Team"] != "storage" ||
		r[1].BasicAuth == nil || r[1].BasicAuth.Username != "spof" || len(r[2].URLs) != 2 || r[2].EffectiveResendInterval() != time.Minute {
		t.Errorf("receivers %+v", r)
	}

	// Defaults when keys are left out.
	d, err := decodeStrict(t, "alerting:\n  receivers: [{name: ops, type: webhook, url: 'http://x/'}]\n")
	if err != nil {
		t.Fatal(err)
	}
	if d.EffectiveKeepFiringFor() != DefaultKeepFiringFor || d.EffectiveRepeatInterval() != DefaultRepeatInterval || d.PendingFor("redundancy_lost", 3) != 0 || d.PendingFor("no_redundancy", 2) != time.Minute || d.Receivers[0].EffectiveTimeout() != DefaultWebhookTimeout {
		t.Errorf("defaults not applied: %+v", d)
	}
	// keep_firing_for: 0s turns damping off (not the default).
	z, _ := decodeStrict(t, "alerting:\n  keep_firing_for: 0s\n")
	if z.EffectiveKeepFiringFor() != 0 {
		t.Errorf("keep_firing_for 0s gives %s", z.EffectiveKeepFiringFor())
	}

	for _, bad := range []string{
		"alerting:\n  outbox: /tmp\n",
		"alerting:\n  receivers: [{name: a, type: webhook, url: 'http://x/', secret: abc}]\n",
		"alerting:\n  receivers: [{name: a, type: webhook, url: 'http://x/', tls: {ca: x}}]\n",
		"alerting:\n  repeat_interval: often\n",
	} {
		if _, err := decodeStrict(t, bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
