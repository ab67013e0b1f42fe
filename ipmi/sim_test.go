package ipmi_test

import (
	"context"
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

func TestSimSmoke(t *testing.T) {
	sim := ipmisim.Start(t)
	b := newSimBMC(t, sim)
	st := poll(t, b)
	for _, s := range st.Sensors {
		t.Logf("%#02x %q type %#02x ert %#02x reading %+v err %q -> %s", s.Number, s.Name, s.SensorType, s.ReadingType, s.Reading, s.Err, ipmi.Describe(s.SDR, s.Reading))
	}
	t.Logf("chassis %+v commands %d total %d dur %s sdr %v", st.Chassis, st.Commands, st.CommandsTotal, st.Duration, st.SDRRead)
	sim.Inject("psu2-fail")
	st = poll(t, b)
	t.Logf("commands %d dur %s events %+v", st.Commands, st.Duration, st.Events)
}
