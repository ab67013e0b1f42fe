package alerting

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spofwatch/spofwatch/alerting/notify"
	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/spof"
)

// Alert states.
const (
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Alert is the engine's memory of one alert, keyed by its label
// fingerprint. It is persisted in <outbox_dir>/alerts.json so a restart
// neither re-fires what receivers already know nor forgets a resolve.
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Code        spof.Code         `json:"code"`
	Severity    spof.Severity     `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	// ActiveAt is when the finding was first seen; it is the alert's startsAt.
	ActiveAt time.Time `json:"activeAt"`
	FiredAt  time.Time `json:"firedAt,omitzero"`
	// ClearedAt is when a firing alert's finding vanished (keep_firing_for).
	ClearedAt  time.Time `json:"clearedAt,omitzero"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	// Notified is the last status handed to the webhook receivers' outbox
	// ("", firing or resolved) and LastSent when; they drive repeat_interval
	// and make sure a resolve goes out exactly when a firing did.
	Notified string    `json:"notified,omitempty"`
	LastSent time.Time `json:"lastSent,omitzero"`
	// ResolvedPosts counts pushes to Alertmanager that carried the resolve.
	ResolvedPosts int `json:"resolvedPosts,omitempty"`
}

// labelsFor builds an alert's labels. An empty member is left out, as
// Prometheus does with empty label values, so the fingerprint matches what
// Alertmanager computes.
func (e *Engine) labelsFor(f spof.Finding) map[string]string {
	l := make(map[string]string, len(e.hostLabels)+5)
	for k, v := range e.hostLabels {
		l[k] = v
	}
	l["alertname"] = f.Code.AlertName()
	l["severity"] = f.Severity.String()
	l["instance"] = e.instance
	l["group"] = f.Group
	if f.Member != "" {
		l["member"] = f.Member
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

func fingerprint(labels map[string]string) string {
	return model.LabelSet(toLabelSet(labels)).Fingerprint().String()
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// advice says what to do about each code, for the description annotation.
var advice = map[spof.Code]string{
	spof.CodeGroupDown:            "The function is out now: restore a member (replace or reseat the failed part) and check the services that depend on it.",
	spof.CodeRedundancyLost:       "One more failure is an outage: replace the failed member now and avoid maintenance on the remaining one until redundancy is back.",
	spof.CodeRedundancyDegraded:   "Spare capacity is reduced: replace the failed member at the next opportunity.",
	spof.CodeNoRedundancy:         "The group has no spare by design: add a member (second PSU, mirror disk, bond slave) or accept the risk explicitly.",
	spof.CodeSharedFailureDomain:  "All working members depend on one part: move a member onto an independent disk, NIC card, controller or power feed.",
	spof.CodeFailureUndetectable:  "A failure would not trigger failover: enable link monitoring (miimon or arp_interval) on the bond.",
	spof.CodeMemberDegraded:       "The member still works but is at risk: plan its replacement.",
	spof.CodeRebuildInProgress:    "Wait for the rebuild to finish; avoid load and maintenance on the remaining members until it does.",
	spof.CodeUPSOnBattery:         "Mains power is lost: restore the feed or prepare an orderly shutdown before the battery runs out.",
	spof.CodeUPSLowBattery:        "The UPS battery is nearly exhausted: shut down cleanly now or restore mains power.",
	spof.CodeUPSBypass:            "The UPS passes mains through unprotected: return it to online mode.",
	spof.CodeUPSOverload:          "The UPS carries more than its rating: shed load or move it to another UPS.",
	spof.CodeCollectorUnavailable: "spofwatch cannot read this source, so its state is unknown, not healthy: check the source (BMC, UPS daemon, RAID tool) and spofwatch's log.",
}

func (e *Engine) annotationsFor(f spof.Finding) map[string]string {
	var d strings.Builder
	d.WriteString(f.Summary)
	if f.Details != "" {
		d.WriteString(". ")
		d.WriteString(f.Details)
	}
	if a, ok := advice[f.Code]; ok {
		d.WriteString(" What to do: ")
		d.WriteString(a)
	}
	ann := map[string]string{"summary": f.Summary, "description": d.String()}
	if e.cfg.RunbookURL != "" {
		ann["runbook_url"] = e.cfg.RunbookURL + string(f.Code)
	}
	return ann
}

func (e *Engine) generatorURL(group string) string {
	if e.cfg.ExternalURL == "" {
		return ""
	}
	return strings.TrimRight(e.cfg.ExternalURL, "/") + "/?group=" + url.QueryEscape(group)
}

// webhookAlert renders an alert for a webhook message with the given status.
func (e *Engine) webhookAlert(a *Alert, status string) notify.Alert {
	n := notify.Alert{
		Status:       status,
		Labels:       a.Labels,
		Annotations:  a.Annotations,
		StartsAt:     a.ActiveAt.UTC(),
		GeneratorURL: e.generatorURL(a.Labels["group"]),
		Fingerprint:  a.Fingerprint,
	}
	if status == notify.StatusResolved {
		n.EndsAt = a.ResolvedAt.UTC()
	}
	return n
}

// pushAlert renders an alert for Alertmanager: firing alerts end in the
// future (4 × resend interval), so Alertmanager resolves them on its own if
// this agent disappears; resolved ones end when they resolved.
func (e *Engine) pushAlert(a *Alert, now time.Time, resend time.Duration) notify.Alert {
	n := e.webhookAlert(a, notify.StatusFiring)
	if a.State == StateResolved {
		n.Status = notify.StatusResolved
		n.EndsAt = a.ResolvedAt.UTC()
	} else {
		n.EndsAt = now.Add(4 * resend).UTC()
	}
	return n
}

// checkHostLabels applies the one host-label rule set (config's).
func checkHostLabels(hl map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(hl)) {
		if err := config.CheckHostLabelName(k); err != nil {
			return err
		}
	}
	return nil
}
