package notify

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleAlerts() []Alert {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	return []Alert{
		{Status: StatusFiring, Labels: map[string]string{"alertname": "SpofRedundancyLost", "instance": "host1", "group": "power/ipmi/psu", "member": "PSU2"}, Annotations: map[string]string{"summary": "a", "runbook_url": "r"}, StartsAt: t0, Fingerprint: "0a1b"},
		{Status: StatusResolved, Labels: map[string]string{"alertname": "SpofGroupDown", "instance": "host1", "group": "storage/md/md0"}, Annotations: map[string]string{"summary": "b", "runbook_url": "r"}, StartsAt: t0, EndsAt: t0.Add(time.Minute), Fingerprint: "2c3d"},
	}
}

func TestWebhookMessage(t *testing.T) {
	m := NewWebhookMessage("ops", "http://host1:9899/", map[string]string{"instance": "host1"}, sampleAlerts())
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"alerts", "commonAnnotations", "commonLabels", "externalURL", "groupKey", "groupLabels", "receiver", "status", "truncatedAlerts", "version"}
	if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, wantKeys) {
		t.Fatalf("keys %v, want %v", got, wantKeys)
	}
	var alerts []map[string]json.RawMessage
	json.Unmarshal(raw["alerts"], &alerts)
	wantAlertKeys := []string{"annotations", "endsAt", "fingerprint", "generatorURL", "labels", "startsAt", "status"}
	if got := slices.Sorted(maps.Keys(alerts[0])); !slices.Equal(got, wantAlertKeys) {
		t.Fatalf("alert keys %v, want %v", got, wantAlertKeys)
	}
	if m.Version != "4" || m.Status != StatusFiring || m.GroupKey != `{}/spofwatch/ops:{instance="host1"}` {
		t.Errorf("version %q status %q groupKey %q", m.Version, m.Status, m.GroupKey)
	}
	if want := map[string]string{"instance": "host1"}; !maps.Equal(m.CommonLabels, want) {
		t.Errorf("commonLabels %v, want %v", m.CommonLabels, want)
	}
	if want := map[string]string{"runbook_url": "r"}; !maps.Equal(m.CommonAnnotations, want) {
		t.Errorf("commonAnnotations %v, want %v", m.CommonAnnotations, want)
	}
	if r := NewWebhookMessage("ops", "", nil, sampleAlerts()[1:]); r.Status != StatusResolved {
		t.Errorf("all-resolved message has status %q", r.Status)
	}
}

func TestResponseClassification(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		wantErr    bool
		retryable  bool
		retryAfter time.Duration
	}{
		{"ok", 200, nil, false, false, 0},
		{"accepted", 202, nil, false, false, 0},
		{"server error", 500, nil, true, true, 0},
		// Redirects are never followed (a GET without body would be
		// answered 200); retried until the URL is corrected.
		{"moved permanently", 301, http.Header{"Location": {"http://x/y"}}, true, true, 0},
		{"temporary redirect", 307, http.Header{"Location": {"http://x/y"}}, true, true, 0},
		{"unavailable with retry-after", 503, http.Header{"Retry-After": {"7"}}, true, true, 7 * time.Second},
		{"too many requests", 429, http.Header{"Retry-After": {"30"}}, true, true, 30 * time.Second},
		{"bad request", 400, nil, true, false, 0},
		// Answered while a receiver is redeployed or its credentials
		// rotate: retried, so a resolved notification is not lost.
		{"unauthorized", 401, nil, true, true, 0},
		{"not found", 404, nil, true, true, 0},
		{"payload too large", 413, nil, true, false, 0},
		{"unprocessable", 422, nil, true, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				maps.Copy(w.Header(), tc.header)
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			for _, n := range []interface {
				Notify(context.Context, []Alert) error
			}{
				&Webhook{Receiver: "ops", URL: srv.URL},
				&Alertmanager{URL: srv.URL},
			} {
				err := n.Notify(context.Background(), sampleAlerts())
				if (err != nil) != tc.wantErr || Retryable(err) != tc.retryable || RetryAfter(err) != tc.retryAfter {
					t.Fatalf("%T: err %v retryable %v retryAfter %s", n, err, Retryable(err), RetryAfter(err))
				}
			}
		})
	}
	// Nothing listening: retryable.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := (&Webhook{Receiver: "ops", URL: url + "/hook?token=secret"}).Notify(context.Background(), sampleAlerts())
	if !Retryable(err) {
		t.Fatalf("connection refused not retryable: %v", err)
	}
	var ne *Error
	if !errors.As(err, &ne) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %q leaks the URL query or is not an *Error", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"Mon, 23 Nov 2026 12:01:30 GMT", 90 * time.Second},
		{"Mon, 23 Nov 2026 11:00:00 GMT", 0},
		{"999999999", 24 * time.Hour},
	}
	for _, tc := range tests {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestSignedWebhook: a receiver verifies X-Spofwatch-Signature; a tampered
// body, a wrong key and a replayed old timestamp all fail.
func TestSignedWebhook(t *testing.T) {
	secret := []byte("k3y")
	var body []byte
	var ts, sig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body = make([]byte, r.ContentLength)
		r.Body.Read(body)
		ts, sig = r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
		if err := VerifySignature(secret, ts, sig, body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	if err := (&Webhook{Receiver: "ops", URL: srv.URL, Secret: secret}).Notify(context.Background(), sampleAlerts()); err != nil {
		t.Fatalf("signed delivery rejected: %v", err)
	}
	now := time.Now()
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)/2] ^= 0x01
	if err := VerifySignature(secret, ts, sig, tampered, now, time.Minute); err == nil {
		t.Fatal("tampered body verified")
	}
	if err := VerifySignature(secret, ts, sig, body, now.Add(10*time.Minute), time.Minute); err == nil {
		t.Fatal("stale timestamp verified")
	}
	if err := VerifySignature(secret, "x"+ts, sig, body, now, time.Minute); err == nil {
		t.Fatal("bad timestamp verified")
	}
	if err := VerifySignature(secret, ts, sig, body, now, time.Minute); err != nil {
		t.Fatalf("untouched body fails: %v", err)
	}
	// A wrong key is rejected (401); it is retried, since a key rotation
	// on the receiver's side answers the same way.
	if err := (&Webhook{Receiver: "ops", URL: srv.URL, Secret: []byte("other")}).Notify(context.Background(), sampleAlerts()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: err %v", err)
	}
}
