package alerting

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// singleMetric exposes one metric of the engine's collector by name, for
// testutil.ToFloat64.
type singleMetric struct {
	e    *Engine
	name string
}

func (s *singleMetric) Describe(ch chan<- *prometheus.Desc) { s.e.metrics.Describe(ch) }

func (s *singleMetric) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 64)
	go func() { s.e.metrics.Collect(all); close(all) }()
	for m := range all {
		if desc := m.Desc().String(); strings.Contains(desc, `"`+s.name+`"`) {
			ch <- m
		}
	}
}

func registry(t testing.TB, e *Engine) *prometheus.Registry {
	r := prometheus.NewRegistry()
	if err := r.Register(e.Collector()); err != nil {
		t.Fatal(err)
	}
	return r
}
