package alerting

import (
	"context"

	"github.com/spofwatch/spofwatch/agent"
	"github.com/spofwatch/spofwatch/spof"
)

// SelfCheckName is the self-check collector's name.
const SelfCheckName = "alerting"

// SelfCheck returns a collector that reports the engine's own health as a
// host-wide alerting_degraded finding, so a broken alert path shows on
// every output (/metrics, the API, the page, the textfile) even when the
// alert about it cannot be sent.
func (e *Engine) SelfCheck() agent.Collector { return selfCheck{e} }

type selfCheck struct{ e *Engine }

func (selfCheck) Name() string { return SelfCheckName }

func (c selfCheck) Collect(context.Context) (agent.Result, error) {
	ok, reason := c.e.Health()
	if ok {
		return agent.Result{}, nil
	}
	return agent.Result{HostConditions: []spof.Condition{{Code: spof.CodeAlertingDegraded, Summary: "alerting degraded: " + reason}}}, nil
}
