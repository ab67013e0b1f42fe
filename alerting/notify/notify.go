// Package notify holds the integrations that deliver alerts: a webhook that
// speaks the Alertmanager webhook payload (version 4) and a push to
// Alertmanager's /api/v2/alerts. As in Alertmanager's own notify package, an
// integration only builds and sends one message and reports whether a
// failure is worth retrying; retry, backoff and ordering live in the
// delivery stage around it (package alerting).
package notify

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spofwatch/spofwatch/internal/redact"
)

// Alert statuses, as Alertmanager spells them.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is one alert as both Alertmanager APIs carry it.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Error is a failed delivery attempt. Retryable says whether the same
// message may succeed later (network error, 5xx, 429); RetryAfter is the
// peer's Retry-After, zero when absent.
type Error struct {
	Retryable  bool
	RetryAfter time.Duration
	StatusCode int
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err leaves the message worth retrying. Errors
// that are not an *Error (context deadline, dial errors) are retryable.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return err != nil
}

// RetryAfter returns the peer's requested delay, zero when it named none.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// checkResponse classifies an HTTP response: 2xx delivered; 3xx (never
// followed) retryable; 5xx, 429 and the 4xx that a receiver answers while
// it is being deployed or its credentials rotated (401, 403, 404, 408, 425)
// retryable; other 4xx (a payload the receiver will never take) final. Alertmanager's own retrier
// gives up on every 4xx but 429; for an agent that must not lose a resolved
// notification, retrying with capped backoff is the safer side.
func checkResponse(resp *http.Response, body []byte, peer string, now time.Time) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	e := &Error{
		StatusCode: resp.StatusCode,
		Retryable:  resp.StatusCode/100 == 5 || retryable4xx[resp.StatusCode],
		RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	if resp.StatusCode/100 == 3 {
		// A redirect is retried: it means a moved receiver or a URL
		// missing its trailing slash, fixed by a config change; queued
		// entries name their receiver, not the URL, so after the reload
		// they go to the corrected URL instead of being lost.
		e.Retryable = true
		e.Err = fmt.Errorf("post %s: receiver redirects (%s) to %s; redirects are not followed, configure the final URL", peer, resp.Status, redact.URL(resp.Header.Get("Location")))
		return e
	}
	if len(body) > 256 {
		body = body[:256]
	}
	e.Err = fmt.Errorf("post %s: unexpected status %s: %q", peer, resp.Status, body)
	return e
}

var retryable4xx = map[int]bool{
	http.StatusUnauthorized: true, http.StatusForbidden: true, http.StatusNotFound: true,
	http.StatusRequestTimeout: true, http.StatusTooEarly: true, http.StatusTooManyRequests: true,
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3). Unparseable or past values give zero.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}
