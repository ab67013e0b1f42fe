package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/internal/redact"
)

// Webhook signature headers. The signature is HMAC-SHA256 with the
// receiver's secret over timestamp + "." + body, hex encoded.
const (
	HeaderTimestamp = "X-Spofwatch-Timestamp"
	HeaderSignature = "X-Spofwatch-Signature"
)

// WebhookMessage is the Alertmanager webhook payload, version 4, so every
// existing Alertmanager webhook consumer reads it unchanged.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []Alert           `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
}

// NewWebhookMessage builds the payload for alerts. Status is firing when any
// alert fires, as in Alertmanager.
func NewWebhookMessage(receiver, externalURL string, groupLabels map[string]string, alerts []Alert) *WebhookMessage {
	m := &WebhookMessage{
		Version:           "4",
		GroupKey:          GroupKey(receiver, groupLabels),
		Receiver:          receiver,
		Status:            StatusResolved,
		Alerts:            alerts,
		GroupLabels:       orEmpty(groupLabels),
		CommonLabels:      map[string]string{},
		CommonAnnotations: map[string]string{},
		ExternalURL:       externalURL,
	}
	for i, a := range alerts {
		if a.Status == StatusFiring {
			m.Status = StatusFiring
		}
		if i == 0 {
			maps.Copy(m.CommonLabels, a.Labels)
			maps.Copy(m.CommonAnnotations, a.Annotations)
			continue
		}
		intersect(m.CommonLabels, a.Labels)
		intersect(m.CommonAnnotations, a.Annotations)
	}
	return m
}

// GroupKey mirrors Alertmanager's "{route}:{labels}" form with a route that
// names the receiver.
func GroupKey(receiver string, groupLabels map[string]string) string {
	var b strings.Builder
	b.WriteString("{}/spofwatch/")
	b.WriteString(receiver)
	b.WriteString(":{")
	for i, k := range slices.Sorted(maps.Keys(groupLabels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strconv.Quote(groupLabels[k]))
	}
	b.WriteString("}")
	return b.String()
}

func intersect(common, m map[string]string) {
	for k, v := range common {
		if m[k] != v {
			delete(common, k)
		}
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Webhook posts WebhookMessages to one URL.
type Webhook struct {
	Receiver    string
	URL         string
	ExternalURL string
	GroupLabels map[string]string
	// Secret, when set, signs every request (HeaderTimestamp, HeaderSignature).
	Secret []byte
	// Header is added to every request: custom headers and Authorization.
	Header http.Header
	Client *http.Client
	// Now is the clock for signatures and Retry-After; time.Now when nil.
	Now func() time.Time
}

// Notify posts one message holding alerts. A nil error means the receiver
// answered 2xx.
func (w *Webhook) Notify(ctx context.Context, alerts []Alert) error {
	body, err := json.Marshal(NewWebhookMessage(w.Receiver, w.ExternalURL, w.GroupLabels, alerts))
	if err != nil {
		return &Error{Err: fmt.Errorf("encode webhook message: %w", err)}
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return &Error{Err: fmt.Errorf("webhook %s: %w", w.Receiver, err)}
	}
	for k, vs := range w.Header {
		req.Header[k] = slices.Clone(vs)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "spofwatch")
	if len(w.Secret) > 0 {
		ts := strconv.FormatInt(now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(w.Secret, ts, body))
	}
	return do(w.Client, req, redact.URL(w.URL), now)
}

func do(c *http.Client, req *http.Request, peer string, now func() time.Time) error {
	if c == nil {
		c = http.DefaultClient
	}
	// Never follow a redirect: Go re-issues a 301/302/303 as a GET without
	// the body (keeping auth and signature headers), which the receiver
	// answers 200 and the notification would be counted delivered though
	// nobody got it. The 3xx itself becomes the (failed) answer.
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nc.Do(req)
	if err != nil {
		// Network errors and timeouts may heal: retry. The URL is redacted
		// because it may carry a token.
		return &Error{Retryable: true, Err: fmt.Errorf("post %s: %w", peer, stripURL(err))}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return checkResponse(resp, b, peer, now())
}

// Sign returns the X-Spofwatch-Signature value for a request.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a signed request as a receiver should: the
// signature must match and the timestamp must be within tolerance of now
// (replay protection). It is exported for receivers written in Go.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s %s is %s away from now", HeaderTimestamp, timestamp, d)
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return fmt.Errorf("%s does not match the body", HeaderSignature)
	}
	return nil
}
