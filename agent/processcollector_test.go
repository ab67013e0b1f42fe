package agent

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

func gatherOne(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func value(mf *dto.MetricFamily) float64 {
	m := mf.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestProcessCollectorMatchesClientGolang reads this test process with both
// collectors: the same families, help and types, and the same values up to
// what changes between the two reads.
func TestProcessCollectorMatchesClientGolang(t *testing.T) {
	theirs := gatherOne(t, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ours := gatherOne(t, NewProcessCollector())
	if len(ours) != len(theirs) {
		t.Errorf("%d families, client_golang has %d", len(ours), len(theirs))
	}
	for name, want := range theirs {
		got, ok := ours[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if got.GetHelp() != want.GetHelp() || got.GetType() != want.GetType() || len(got.GetMetric()) != 1 {
			t.Errorf("%s: help %q type %v (%d metrics), want help %q type %v", name, got.GetHelp(), got.GetType(), len(got.GetMetric()), want.GetHelp(), want.GetType())
			continue
		}
		g, w := value(got), value(want)
		var ok2 bool
		switch name {
		case "process_max_fds", "process_virtual_memory_max_bytes":
			ok2 = g == w
		case "process_start_time_seconds":
			// /proc/stat's btime is recomputed from the clock on every read.
			ok2 = math.Abs(g-w) <= 1
		case "process_open_fds":
			ok2 = math.Abs(g-w) <= 2
		case "process_cpu_seconds_total", "process_network_receive_bytes_total", "process_network_transmit_bytes_total":
			ok2 = g >= w && g <= w*1.5+1
		default: // memory sizes
			ok2 = g > 0 && math.Abs(g-w) <= w/4
		}
		if !ok2 {
			t.Errorf("%s = %v, client_golang read %v", name, g, w)
		}
	}
	if st, err := os.Stat("/proc/self/net/netstat"); err == nil && st != nil {
		if v := value(ours["process_network_receive_bytes_total"]); v == 0 {
			t.Logf("receive bytes read 0: no IpExt counters in this namespace?")
		}
	}
}

func TestParseStat(t *testing.T) {
	fields := func(head string) string {
		// Fields 3 to 24 of proc(5), numbered by their position.
		f := []string{"S"}
		for i := 4; i <= 52; i++ {
			f = append(f, "1"+strings.Repeat("0", i%3)+string(rune('0'+i%10)))
		}
		return head + " " + strings.Join(f, " ") + "\n"
	}
	for _, tc := range []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"plain", fields("42 (spofwatch)"), false},
		{"command with spaces and parentheses", fields("42 (a) b (c))"), false},
		{"no command", "42 spofwatch S 1 2 3\n", true},
		{"too few fields", "42 (x) S 1 2 3\n", true},
		{"negative rss", strings.Replace(fields("42 (x)"), " 14 ", " -1 ", 1), false},
		{"non-numeric utime", strings.Replace(fields("42 (x)"), " 1004 ", " x ", 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			// Fields 14 15 22 23 24 of the generated line.
			wantRSS := uint64(14)
			if tc.name == "negative rss" {
				wantRSS = 0
			}
			if st.utime != 1004 || st.stime != 15 || st.starttime != 102 || st.vsize != 1003 || st.rss != wantRSS {
				t.Errorf("parsed %+v", st)
			}
		})
	}
}

func TestParseIPOctets(t *testing.T) {
	const tcpExt = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\n"
	for _, tc := range []struct {
		name      string
		in        string
		wantIn    float64
		wantOut   float64
		wantError bool
	}{
		{"both", tcpExt + "IpExt: InNoRoutes InOctets OutOctets InMcastOctets\nIpExt: 0 1234 5678 9\n", 1234, 5678, false},
		{"no IpExt", tcpExt, 0, 0, false},
		{"no OutOctets", "IpExt: InOctets\nIpExt: 77\n", 77, 0, false},
		{"names without values", "IpExt: InOctets OutOctets\n", 0, 0, false},
		{"column count differs", "IpExt: InOctets OutOctets\nIpExt: 1\n", 0, 0, true},
		{"not a number", "IpExt: InOctets OutOctets\nIpExt: x 2\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out, err := parseIPOctets([]byte(tc.in))
			if (err != nil) != tc.wantError {
				t.Fatalf("err = %v, want error %v", err, tc.wantError)
			}
			if in != tc.wantIn || out != tc.wantOut {
				t.Errorf("in %v out %v, want %v %v", in, out, tc.wantIn, tc.wantOut)
			}
		})
	}
}

func FuzzParseProcFiles(f *testing.F) {
	f.Add([]byte("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n"))
	f.Add([]byte("IpExt: InOctets OutOctets\nIpExt: 1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStat(b)
		parseIPOctets(b)
	})
}

// BenchmarkProcessCollector gathers the process metrics with
// client_golang's collector and with ProcessCollector.
func BenchmarkProcessCollector(b *testing.B) {
	for _, c := range []struct {
		name string
		c    prometheus.Collector
	}{{"client_golang", collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, {"agent", NewProcessCollector()}} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c.c)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
