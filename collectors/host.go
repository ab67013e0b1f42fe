package collectors

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/host"

	"github.com/spofwatch/spofwatch/spof"
)

// HostOptions configures the host facts collector.
type HostOptions struct {
	ProcPath string
	SysPath  string
	RootPath string
	Logger   *slog.Logger
}

// Host reports host-wide facts, such as running as a virtual machine, where
// the hypervisor owns hardware redundancy.
type Host struct {
	opts HostOptions
}

// NewHost returns the host facts collector.
func NewHost(opts HostOptions) *Host { return &Host{opts: opts} }

// Name implements Collector.
func (*Host) Name() string { return "host" }

// Collect implements Collector.
func (h *Host) Collect(ctx context.Context) (agent.Result, error) {
	env := common.EnvMap{}
	if h.opts.ProcPath != "" {
		env[common.HostProcEnvKey] = h.opts.ProcPath
	}
	if h.opts.SysPath != "" {
		env[common.HostSysEnvKey] = h.opts.SysPath
	}
	if h.opts.RootPath != "" {
		env[common.HostRootEnvKey] = h.opts.RootPath
	}
	ctx = context.WithValue(ctx, common.EnvKey, env)
	system, role, err := host.VirtualizationWithContext(ctx)
	if err != nil {
		return agent.Result{}, fmt.Errorf("detect virtualization: %w", err)
	}
	return agent.Result{HostConditions: virtualizationConditions(system, role)}, nil
}

func virtualizationConditions(system, role string) []spof.Condition {
	if role != "guest" {
		return nil
	}
	if system == "" {
		system = "an unidentified hypervisor"
	}
	return []spof.Condition{{
		Code:     spof.CodeVirtualMachine,
		Severity: spof.SeverityInfo,
		Summary:  fmt.Sprintf("this host is virtualised (%s): the hypervisor owns hardware redundancy, so single virtual disks and NICs are not an alarm by themselves", system),
	}}
}
