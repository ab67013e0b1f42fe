package alerting

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	e                 *Engine
	sent              *prometheus.CounterVec
	failed            *prometheus.CounterVec
	outboxWriteErrors prometheus.Counter
	entries           *prometheus.Desc
	oldestAge         *prometheus.Desc
	dropped           *prometheus.Desc
	quarantined       *prometheus.Desc
	alerts            *prometheus.Desc
}

func newMetrics(e *Engine) *metrics {
	m := &metrics{
		e: e,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "spofwatch", Subsystem: "alerting", Name: "notifications_sent_total",
			Help: "Notifications (outbox entries) delivered, by receiver.",
		}, []string{"receiver"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "spofwatch", Subsystem: "alerting", Name: "notifications_failed_total",
			Help: "Failed delivery attempts, by receiver; retryable failures are retried.",
		}, []string{"receiver"}),
		outboxWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "spofwatch", Subsystem: "alerting", Name: "outbox_write_errors_total",
			Help: "Notifications that could not be written to the outbox (retried at the next evaluation).",
		}),
		entries:     prometheus.NewDesc("spofwatch_alerting_outbox_entries", "Notifications waiting in the outbox.", nil, nil),
		oldestAge:   prometheus.NewDesc("spofwatch_alerting_outbox_oldest_entry_age_seconds", "Age of the oldest notification waiting in the outbox; 0 when empty.", nil, nil),
		dropped:     prometheus.NewDesc("spofwatch_alerting_outbox_dropped_total", "Notifications dropped because the outbox was full (oldest first).", nil, nil),
		quarantined: prometheus.NewDesc("spofwatch_alerting_outbox_quarantined_total", "Outbox entries moved to quarantine because they could not be read or delivered.", nil, nil),
		alerts:      prometheus.NewDesc("spofwatch_alerting_alerts", "Alerts by state.", []string{"state"}, nil),
	}
	for _, r := range e.cfg.Receivers {
		m.sent.WithLabelValues(r.Name)
		m.failed.WithLabelValues(r.Name)
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.sent.Describe(ch)
	m.failed.Describe(ch)
	m.outboxWriteErrors.Describe(ch)
	ch <- m.entries
	ch <- m.oldestAge
	ch <- m.dropped
	ch <- m.quarantined
	ch <- m.alerts
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.sent.Collect(ch)
	m.failed.Collect(ch)
	m.outboxWriteErrors.Collect(ch)
	s := m.e.outbox.Stats()
	age := 0.0
	if !s.Oldest.IsZero() {
		age = max(m.e.now().Sub(s.Oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(m.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(m.oldestAge, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(m.quarantined, prometheus.CounterValue, float64(s.Quarantined))
	// Never take e.mu: it is held across fsyncs, and a scrape must not
	// wait on the disk. Alerts and Stats read published snapshots.
	counts := map[string]int{StatePending: 0, StateFiring: 0, StateResolved: 0}
	for _, a := range m.e.Alerts() {
		counts[a.State]++
	}
	for _, st := range []string{StatePending, StateFiring, StateResolved} {
		ch <- prometheus.MustNewConstMetric(m.alerts, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

// Collector returns the engine's metrics for registration:
//
//	spofwatch_alerting_notifications_sent_total{receiver}
//	spofwatch_alerting_notifications_failed_total{receiver}
//	spofwatch_alerting_outbox_write_errors_total
//	spofwatch_alerting_outbox_entries
//	spofwatch_alerting_outbox_oldest_entry_age_seconds
//	spofwatch_alerting_outbox_dropped_total
//	spofwatch_alerting_outbox_quarantined_total
//	spofwatch_alerting_alerts{state}
func (e *Engine) Collector() prometheus.Collector { return e.metrics }
