package ipmi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/ipmi"
	"github.com/spofwatch/spofwatch/ipmi/ipmisim"
)

func newSimBMC(t *testing.T, sim *ipmisim.Sim) *ipmi.BMC {
	t.Helper()
	b, err := ipmi.New(ipmi.Options{
		Interface: ipmi.InterfaceLanplus, Host: sim.Host, Port: sim.Port,
		Username: ipmisim.Username, Password: ipmisim.Password, CipherSuite: 3,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func poll(t *testing.T, b *ipmi.BMC) *ipmi.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.Poll(ctx)
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return st
}

func sensor(t *testing.T, st *ipmi.State, name string) ipmi.SensorState {
	t.Helper()
	for _, s := range st.Sensors {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("sensor %q not read; have %v", name, st.Sensors)
	return ipmi.SensorState{}
}

// TestSimPoll reads the simulator's sensors of interest and decodes injected
// PSU and redundancy states.
func TestSimPoll(t *testing.T) {
	sim := ipmisim.Start(t)
	b := newSimBMC(t, sim)
	st := poll(t, b)
	if !st.SDRRead {
		t.Error("first poll did not read the SDR repository")
	}
	var names []string
	for _, s := range st.Sensors {
		names = append(names, s.Name)
	}
	if got, want := strings.Join(names, ","), "PSU1 Status,PSU2 Status,PS Redundancy,Fan Redundancy,FAN1,FAN2,FAN3"; got != want {
		t.Fatalf("sensors of interest = %s, want %s", got, want)
	}
	for _, s := range st.Sensors {
		if !s.Known() {
			t.Errorf("%s unknown: %s", s.Name, s.Why())
		}
	}
	if st.Chassis == nil || st.Chassis.RestorePolicy != ipmi.RestoreAlwaysOff {
		t.Errorf("chassis = %+v (%s), want restore policy always-off as ipmi_sim reports", st.Chassis, st.ChassisErr)
	}

	sim.Inject("psu2-fail")
	sim.Inject("ps-red-lost")
	st = poll(t, b)
	if st.SDRRead {
		t.Error("SDR repository re-read although unchanged")
	}
	p := ipmi.DecodePSU(sensor(t, st, "PSU2 Status").SDR, sensor(t, st, "PSU2 Status").Reading)
	if !p.Present || !p.Failure || p.PredictiveFailure {
		t.Errorf("PSU2 = %+v, want present with failure", p)
	}
	if r := ipmi.DecodeRedundancy(sensor(t, st, "PS Redundancy").Reading); r != ipmi.RedundancyLost {
		t.Errorf("PS Redundancy = %s, want redundancy_lost", r)
	}
	var texts []string
	for _, e := range st.Events[len(st.Events)-st.NewEvents:] {
		texts = append(texts, e.Sensor+": "+e.Text)
	}
	got := strings.Join(texts, "; ")
	for _, want := range []string{"PSU2 Status: Failure detected asserted", "PS Redundancy: Redundancy Lost asserted"} {
		if !strings.Contains(got, want) {
			t.Errorf("new SEL events %q lack %q", got, want)
		}
	}

	// A poll with no new events reads only the repository info, each
	// sensor of interest, chassis status and SEL info.
	st = poll(t, b)
	if want := uint64(3 + len(st.Sensors)); st.Commands != want {
		t.Errorf("steady poll sent %d commands, want %d", st.Commands, want)
	}
	if st.NewEvents != 0 {
		t.Errorf("steady poll reported %d new events", st.NewEvents)
	}
	if b.Connects() != 1 {
		t.Errorf("opened %d sessions, want 1 reused", b.Connects())
	}
}

// TestSimSDRChangeAndUnknownSensor adds an SDR at runtime: the repository
// info changes, the cache is re-read, and the new sensor, which the BMC
// cannot read, is unknown on its own without failing the poll.
func TestSimSDRChangeAndUnknownSensor(t *testing.T) {
	sim := ipmisim.Start(t)
	b := newSimBMC(t, sim)
	poll(t, b)
	// Compact PSU sensor 0x14 "PSU3 Status" with no sensor behind it.
	if err := sim.Exec("main_sdr_add 0x20 0x09 0x00 0x51 0x02 0x26 0x20 0x00 0x14 0x0a 0x03 0x67 0x40 0x08 0x6f 0x0f 0x00 0x0f 0x00 0x0f 0x00 0xc0 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0xcb 0x50 0x53 0x55 0x33 0x20 0x53 0x74 0x61 0x74 0x75 0x73"); err != nil {
		t.Fatal(err)
	}
	st := poll(t, b)
	if !st.SDRRead {
		t.Fatal("SDR repository not re-read after it changed")
	}
	psu3 := sensor(t, st, "PSU3 Status")
	if psu3.Known() || !strings.Contains(psu3.Why(), "completion code") {
		t.Errorf("PSU3 = %+v, want unknown with the BMC's completion code", psu3)
	}
	if !sensor(t, st, "PSU1 Status").Known() {
		t.Error("PSU1 unknown after another sensor failed")
	}
}

// TestSimReconnect kills and restarts the BMC: polls fail while it is gone
// and the session comes back by itself at the first poll after the restart.
func TestSimReconnect(t *testing.T) {
	sim := ipmisim.Start(t)
	b := newSimBMC(t, sim)
	poll(t, b)
	sim.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := b.Poll(ctx)
	cancel()
	if err == nil {
		t.Fatal("poll of a killed BMC succeeded")
	}
	sim.Restart()
	// The dead session is replaced within the same poll: a BMC reset costs
	// no poll once the BMC answers again.
	start := time.Now()
	st := poll(t, b)
	t.Logf("first poll after restart took %s", time.Since(start))
	if b.Connects() != 2 {
		t.Errorf("sessions opened = %d, want 2", b.Connects())
	}
	if !sensor(t, st, "PSU2 Status").Known() {
		t.Error("PSU2 unknown after reconnect")
	}

	// A reset between two polls: the reused session is dead, the poll
	// opens a new one and succeeds.
	sim.Restart()
	sim.Inject("psu2-fail")
	st = poll(t, b)
	if b.Connects() != 3 {
		t.Errorf("sessions opened = %d, want 3", b.Connects())
	}
	if p := ipmi.DecodePSU(sensor(t, st, "PSU2 Status").SDR, sensor(t, st, "PSU2 Status").Reading); !p.Failure {
		t.Errorf("PSU2 after the reset = %+v, want the injected failure", p)
	}
}

// BenchmarkPoll measures one poll over the reused session against ipmi_sim.
func BenchmarkPoll(b *testing.B) {
	sim := ipmisim.Start(b)
	bmc, err := ipmi.New(ipmi.Options{Interface: ipmi.InterfaceLanplus, Host: sim.Host, Port: sim.Port,
		Username: ipmisim.Username, Password: ipmisim.Password})
	if err != nil {
		b.Fatal(err)
	}
	defer bmc.Close()
	if _, err := bmc.Poll(context.Background()); err != nil {
		b.Fatal(err)
	}
	before := bmc.Commands()
	b.ResetTimer()
	for b.Loop() {
		if _, err := bmc.Poll(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bmc.Commands()-before)/float64(b.N), "requests/poll")
}

// TestSimSDRMaxAge: without a repository change the SDRs are re-read once
// they are older than SDRMaxAge, and not before.
func TestSimSDRMaxAge(t *testing.T) {
	sim := ipmisim.Start(t)
	for _, tc := range []struct {
		maxAge time.Duration
		reread bool
	}{{time.Nanosecond, true}, {time.Hour, false}} {
		b, err := ipmi.New(ipmi.Options{Interface: ipmi.InterfaceLanplus, Host: sim.Host, Port: sim.Port,
			Username: ipmisim.Username, Password: ipmisim.Password, SDRMaxAge: tc.maxAge})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, b)
		if st := poll(t, b); st.SDRRead != tc.reread {
			t.Errorf("SDRMaxAge %s: second poll re-read SDRs = %v, want %v", tc.maxAge, st.SDRRead, tc.reread)
		}
		b.Close()
	}
}
