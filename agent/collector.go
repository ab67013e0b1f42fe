// Package agent is the core of the spofwatch agent: the Collector interface,
// the Scheduler that runs every collector on its own schedule in the
// background, the immutable Snapshot, and its Prometheus and textfile exporters.
package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/spof"
)

// ErrNoData tells "nothing of this kind on this host" (no md arrays, no
// zpool binary, no /dev/ipmi0 and nothing configured) apart from "reading
// failed". A collector returning it is quiet: no groups, no
// collector_unavailable. A configured source that fails must return a real
// error instead.
var ErrNoData = errors.New("no data of this kind on this host")

// ErrSourceDisappeared wraps ErrNoData when a source that reported groups
// reports nothing any more (the last pool vanished, a controller lost its
// config): that is a failure, not "nothing here".
var ErrSourceDisappeared = errors.New("source disappeared")

// Collector reads one source and adapts it into groups.
type Collector interface {
	// Name is the collector's flag name: mounts, uplink, md, zfs, megaraid,
	// bonding, ipmi, ups.
	Name() string
	// Collect reads the source once. It must honour ctx; the scheduler also
	// stops waiting at the timeout whether or not it does.
	Collect(ctx context.Context) (Result, error)
}

// Result is what one collection produced.
type Result struct {
	Groups []spof.Group
	// Metrics are source details (battery runtime, sync progress) exported
	// beside the model metrics. Build them with prometheus.NewConstMetric
	// from descriptors declared once per collector.
	Metrics []prometheus.Metric
	// Descs are the descriptors Metrics may use, for registration checks.
	Descs []*prometheus.Desc
	// HostConditions are host-wide facts (running in a VM).
	HostConditions []spof.Condition
	// Drills are the groups' latest drills that passed or failed (the
	// drill audit log's reader). They apply to other collectors' groups,
	// so the scheduler hands them to the evaluation as they are.
	Drills []spof.DrillOutcome
}

// Schedule says when a collector runs.
type Schedule struct {
	Interval time.Duration
	Timeout  time.Duration
	// Trigger, when not nil, asks for an immediate collection (md events,
	// netlink link changes). Sends must not block: use a buffered channel of
	// one and a non-blocking send.
	Trigger <-chan struct{}
}

// Defaults for a Schedule left at its zero values.
const (
	DefaultInterval = 30 * time.Second
	DefaultTimeout  = 10 * time.Second
)

func (s Schedule) interval() time.Duration {
	if s.Interval <= 0 {
		return DefaultInterval
	}
	return s.Interval
}

func (s Schedule) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// Entry is one collector with its schedule, as wired by cmd/spofwatch.
type Entry struct {
	Collector Collector
	Schedule  Schedule
}

// Notify performs a non-blocking send on a trigger channel, coalescing bursts
// of events into one pending collection.
func Notify(trigger chan<- struct{}) {
	select {
	case trigger <- struct{}{}:
	default:
	}
}

// FollowUp returns a notify function that asks for a collection at once
// and again after each of the delays, for sources whose last event can come
// before the state settles (a new md array with a bitmap is still inactive
// at its last md event and starts without another). A new event restarts
// the follow-ups; stop cancels pending ones.
func FollowUp(notify func(), delays ...time.Duration) (event func(), stop func()) {
	var mu sync.Mutex
	var timers []*time.Timer
	stopAll := func() {
		for _, t := range timers {
			t.Stop()
		}
		timers = timers[:0]
	}
	event = func() {
		notify()
		mu.Lock()
		defer mu.Unlock()
		stopAll()
		for _, d := range delays {
			timers = append(timers, time.AfterFunc(d, notify))
		}
	}
	stop = func() {
		mu.Lock()
		defer mu.Unlock()
		stopAll()
	}
	return event, stop
}
