package alerting

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/spofwatch/spofwatch/alerting/outbox"
	"github.com/spofwatch/spofwatch/internal/redact"
)

// Delivery is one notification and what became of it, for the status page
// and API.
type Delivery struct {
	ID       uint64    `json:"id"`
	Queued   time.Time `json:"queued"`
	Receiver string    `json:"receiver"`
	URL      string    `json:"url,omitempty"`
	// Status is firing when any alert in it fires, else resolved.
	Status string `json:"status"`
	// Alerts names the alerts carried: "SpofRedundancyLost power/ipmi/psu PSU2 (firing)".
	Alerts []string `json:"alerts"`
	// State is queued, retrying, delivered, failed (rejected by the
	// receiver), dropped (outbox full) or merged (an Alertmanager push
	// folded into a newer one for the same instance).
	State    string    `json:"state"`
	Attempts int       `json:"attempts"`
	Updated  time.Time `json:"updated"`
	Error    string    `json:"error,omitempty"`
}

// deliveryFor describes an entry; an Alertmanager's URL comes from the
// configuration (redacted), as entries do not hold it.
func (e *Engine) deliveryFor(en outbox.Entry, state string) Delivery {
	var u string
	if t := e.byKey[en.Target()]; t != nil && t.url != "" {
		u = redact.URL(t.url)
	}
	d := Delivery{ID: en.ID, Queued: en.Created, Receiver: en.Receiver, URL: u, Status: "resolved", State: state, Updated: en.Created}
	for _, a := range en.Alerts {
		if a.Status == "firing" {
			d.Status = "firing"
		}
		name := a.Labels["alertname"] + " " + a.Labels["group"]
		if m := a.Labels["member"]; m != "" {
			name += " " + m
		}
		d.Alerts = append(d.Alerts, name+" ("+a.Status+")")
	}
	return d
}

// recentLog keeps the last n deliveries.
type recentLog struct {
	mu sync.Mutex
	n  int
	ds []Delivery
}

func newRecentLog(n int) *recentLog { return &recentLog{n: n} }

func (r *recentLog) add(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ds = append(r.ds, d)
	if len(r.ds) > r.n {
		r.ds = slices.Delete(r.ds, 0, len(r.ds)-r.n)
	}
}

func (r *recentLog) update(id uint64, state string, attempts int, errText string) {
	r.updateAll([]uint64{id}, state, attempts, errText)
}

func (r *recentLog) updateAll(ids []uint64, state string, attempts int, errText string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for i := range r.ds {
		if slices.Contains(ids, r.ds[i].ID) {
			r.ds[i].State, r.ds[i].Error, r.ds[i].Updated = state, errText, now
			if attempts > 0 {
				r.ds[i].Attempts = attempts
			}
		}
	}
}

// Recent returns the latest notifications, newest first.
func (e *Engine) Recent() []Delivery {
	if e == nil {
		return nil
	}
	e.recent.mu.Lock()
	defer e.recent.mu.Unlock()
	out := make([]Delivery, len(e.recent.ds))
	for i, d := range e.recent.ds {
		d.Alerts = slices.Clone(d.Alerts)
		out[len(out)-1-i] = d
	}
	return out
}

// apiAlert is one alert in the /api/v1/alerts answer.
type apiAlert struct {
	Fingerprint string            `json:"fingerprint"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	ActiveAt    time.Time         `json:"activeAt"`
	FiredAt     *time.Time        `json:"firedAt,omitempty"`
	ResolvedAt  *time.Time        `json:"resolvedAt,omitempty"`
}

type apiOutbox struct {
	Dir                string  `json:"dir"`
	Entries            int     `json:"entries"`
	OldestAgeSeconds   float64 `json:"oldest_age_seconds"`
	Dropped            uint64  `json:"dropped"`
	QuarantinedEntries uint64  `json:"quarantined"`
}

// Handler serves GET /api/v1/alerts: current alerts, recent notifications
// with their delivery state, and the outbox.
func (e *Engine) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var doc struct {
			Alerts        []apiAlert `json:"alerts"`
			Notifications []Delivery `json:"notifications"`
			Outbox        apiOutbox  `json:"outbox"`
		}
		doc.Alerts = []apiAlert{}
		for _, a := range e.Alerts() {
			aa := apiAlert{Fingerprint: a.Fingerprint, State: a.State, Labels: a.Labels, Annotations: a.Annotations, ActiveAt: a.ActiveAt}
			if !a.FiredAt.IsZero() {
				aa.FiredAt = &a.FiredAt
			}
			if !a.ResolvedAt.IsZero() {
				aa.ResolvedAt = &a.ResolvedAt
			}
			doc.Alerts = append(doc.Alerts, aa)
		}
		doc.Notifications = e.Recent()
		s := e.outbox.Stats()
		doc.Outbox = apiOutbox{Dir: e.outbox.Dir(), Entries: s.Entries, Dropped: s.Dropped, QuarantinedEntries: s.Quarantined}
		if !s.Oldest.IsZero() {
			doc.Outbox.OldestAgeSeconds = max(e.now().Sub(s.Oldest).Seconds(), 0)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	})
}
