// Receiver setup: delivery targets, HTTP clients, auth headers and secrets
// built from the receiver configuration.

package alerting

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/internal/secretfile"
)

// target is one delivery queue: a webhook, or one Alertmanager instance.
type target struct {
	key      string
	receiver string
	// instance numbers an Alertmanager's URLs from 1 (0 for a webhook);
	// outbox entries name their target by it, never by URL.
	instance int
	url      string
	kind     string
	send     func(context.Context, []notify.Alert) error
	timeout  time.Duration
	maxDelay time.Duration
	wake     chan struct{}
}

// buildTargets creates one delivery target per webhook and per Alertmanager
// instance, reading the receivers' secret files.
func (e *Engine) buildTargets() error {
	groupLabels := map[string]string{"instance": e.instance}
	for _, r := range e.cfg.Receivers {
		client, header, secret, err := httpSetup(r)
		if err != nil {
			return fmt.Errorf("alerting: receiver %q: %w", r.Name, err)
		}
		switch r.Type {
		case TypeWebhook:
			w := &notify.Webhook{Receiver: r.Name, URL: r.URL, ExternalURL: e.cfg.ExternalURL, GroupLabels: groupLabels, Secret: secret, Header: header, Client: client, Now: e.now}
			e.addTarget(&target{receiver: r.Name, kind: r.Type, send: w.Notify, timeout: r.EffectiveTimeout(), maxDelay: e.backoffMax})
		case TypeAlertmanager:
			for i, u := range r.URLs {
				am := &notify.Alertmanager{URL: u, Client: client, Now: e.now}
				// Retry no slower than the resend interval so a restarted
				// Alertmanager has its alerts back within that interval.
				e.addTarget(&target{receiver: r.Name, instance: i + 1, url: u, kind: r.Type, send: am.Notify, timeout: r.EffectiveTimeout(), maxDelay: min(e.backoffMax, r.EffectiveResendInterval()/2)})
			}
		}
	}
	return nil
}

func (e *Engine) addTarget(t *target) {
	t.key = outbox.Target(t.receiver, t.instance)
	t.wake = make(chan struct{}, 1)
	e.targets = append(e.targets, t)
	e.byKey[t.key] = t
}

// httpSetup builds a receiver's client and static headers and reads its
// secret files.
func httpSetup(r Receiver) (*http.Client, http.Header, []byte, error) {
	header := http.Header{}
	for k, v := range r.Headers {
		header.Set(k, v)
	}
	var secret []byte
	if r.SecretFile != "" {
		b, err := readSecret(r.SecretFile)
		if err != nil {
			return nil, nil, nil, err
		}
		secret = b
	}
	if r.BearerTokenFile != "" {
		b, err := readSecret(r.BearerTokenFile)
		if err != nil {
			return nil, nil, nil, err
		}
		header.Set("Authorization", "Bearer "+string(b))
	}
	if r.BasicAuth != nil {
		b, err := readSecret(r.BasicAuth.PasswordFile)
		if err != nil {
			return nil, nil, nil, err
		}
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(r.BasicAuth.Username+":"+string(b))))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: r.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if r.TLS.CAFile != "" {
		pool, err := secretfile.CertPool(r.TLS.CAFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: r.EffectiveTimeout()}, header, secret, nil
}

// readSecret reads a secret file by the project's one rule (bounded,
// trailing whitespace trimmed, empty refused).
func readSecret(path string) ([]byte, error) {
	s, err := secretfile.Read(path)
	return s.Value, err
}
