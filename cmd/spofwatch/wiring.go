package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/spofwatch/spofwatch/collectors"
	"github.com/spofwatch/spofwatch/config"
)

type paths struct {
	proc, sys, root string
}

// collectorSpec is one row of the collector table: how to build a collector
// from the config, and its default schedule.
type collectorSpec struct {
	name     string
	interval time.Duration
	timeout  time.Duration
	build    func(cfg *config.Config, p paths, log *slog.Logger) collectors.Collector
	// watch, when set, blocks until ctx ends and calls notify on every
	// source event (md events, netlink link changes) for an immediate
	// collection.
	watch func(ctx context.Context, p paths, log *slog.Logger, notify func()) error
}

// watcher is an event source to start beside the scheduler.
type watcher struct {
	name string
	run  func(ctx context.Context) error
}

// collectorTable is every collector spofwatch has, in one visible place.
// Nothing registers itself from an init function.
var collectorTable = []collectorSpec{
	{name: "mounts", interval: 30 * time.Second, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) collectors.Collector {
		return collectors.NewMounts(collectors.MountsOptions{ProcPath: p.proc, SysPath: p.sys, Extra: cfg.Mounts.Extra, Logger: log})
	}},
	{name: "uplink", interval: 30 * time.Second, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) collectors.Collector {
		return collectors.NewUplink(collectors.UplinkOptions{ProcPath: p.proc, SysPath: p.sys, Logger: log})
	}},
}

// hostSpec is the host facts collector: always on, not a user choice.
var hostSpec = collectorSpec{name: "host", interval: 10 * time.Minute, timeout: 5 * time.Second, build: func(cfg *config.Config, p paths, log *slog.Logger) collectors.Collector {
	return collectors.NewHost(collectors.HostOptions{ProcPath: p.proc, SysPath: p.sys, RootPath: p.root, Logger: log})
}}

// buildEntries builds the enabled collectors with their schedules, and the
// event watchers that trigger them.
func buildEntries(cfg *config.Config, o options, logger *slog.Logger) ([]collectors.Entry, []watcher) {
	var entries []collectors.Entry
	var watchers []watcher
	for _, spec := range append([]collectorSpec{hostSpec}, collectorTable...) {
		if on, ok := o.enabled[spec.name]; ok && !*on {
			continue
		}
		log := logger.With("collector", spec.name)
		iv, to := cfg.Schedule(spec.name, spec.interval, spec.timeout)
		sched := collectors.Schedule{Interval: iv, Timeout: to}
		if spec.watch != nil {
			trigger := make(chan struct{}, 1)
			sched.Trigger = trigger
			watch, p := spec.watch, o.paths
			watchers = append(watchers, watcher{name: spec.name, run: func(ctx context.Context) error {
				return watch(ctx, p, log, func() { collectors.Notify(trigger) })
			}})
		}
		entries = append(entries, collectors.Entry{Collector: spec.build(cfg, o.paths, log), Schedule: sched})
	}
	return entries, watchers
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
