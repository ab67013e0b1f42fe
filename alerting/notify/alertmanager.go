package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/internal/redact"
)

// postableAlert is one element of Alertmanager's POST /api/v2/alerts body.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Alertmanager pushes alerts to one Alertmanager instance. An HA cluster is
// several of these, one per listed URL, so one dead peer does not hold back
// the others.
type Alertmanager struct {
	// URL is the instance's base URL, e.g. http://am1:9093; a path prefix
	// (--web.route-prefix) is kept.
	URL    string
	Client *http.Client
	Now    func() time.Time
}

// Notify posts alerts to /api/v2/alerts. Alerts carry their own endsAt: in
// the future while firing (Alertmanager resolves them itself if we vanish),
// in the past once resolved.
func (a *Alertmanager) Notify(ctx context.Context, alerts []Alert) error {
	body := make([]postableAlert, 0, len(alerts))
	for _, al := range alerts {
		body = append(body, postableAlert{Labels: al.Labels, Annotations: al.Annotations, StartsAt: al.StartsAt, EndsAt: al.EndsAt, GeneratorURL: al.GeneratorURL})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &Error{Err: fmt.Errorf("encode alerts: %w", err)}
	}
	target := strings.TrimRight(a.URL, "/") + "/api/v2/alerts"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return &Error{Err: fmt.Errorf("alertmanager %s: %w", redact.URL(a.URL), err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "spofwatch")
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	return do(a.Client, req, redact.URL(target), now)
}

// stripURL removes the URL (possibly holding credentials) that net/http
// puts in its errors.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
