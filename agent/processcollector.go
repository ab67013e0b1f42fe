package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// ProcessCollector exports the process_* metrics of client_golang's process
// collector, with the same names, help, types and sources, for this
// process, at a fraction of the cost per scrape: that collector reads and
// parses /proc/stat (every CPU and interrupt counter) for the boot time on
// every scrape, parses /proc/self/limits with regular expressions and
// /proc/self/net/netstat into a map of every counter; about 320 µs and
// 100 kB a scrape, the most expensive part of a /metrics response. Here the
// start time is read once (it cannot change), the limits come from
// getrlimit, and the two files that change are scanned in a pooled buffer.
type ProcessCollector struct {
	cpuTotal, openFDs, maxFDs, vsize, maxVsize, rss, startTime, inBytes, outBytes *prometheus.Desc

	// start is the process start time, or startErr why it is unknown.
	start    float64
	startErr error
	buffers  sync.Pool // of *[]byte, procFileLimit long
}

// procFileLimit bounds a read of /proc/self/stat or net/netstat; both are a
// few kilobytes.
const procFileLimit = 64 << 10

// userHZ is the unit of the clock ticks in /proc/<pid>/stat, fixed at 100
// on Linux whatever the kernel's HZ (as procfs assumes).
const userHZ = 100

// NewProcessCollector reads the process start time once and returns the
// collector.
func NewProcessCollector() *ProcessCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	c := &ProcessCollector{
		cpuTotal:  d("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
		openFDs:   d("process_open_fds", "Number of open file descriptors."),
		maxFDs:    d("process_max_fds", "Maximum number of open file descriptors."),
		vsize:     d("process_virtual_memory_bytes", "Virtual memory size in bytes."),
		maxVsize:  d("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes."),
		rss:       d("process_resident_memory_bytes", "Resident memory size in bytes."),
		startTime: d("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
		inBytes:   d("process_network_receive_bytes_total", "Number of bytes received by the process over the network."),
		outBytes:  d("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network."),
	}
	c.buffers.New = func() any { b := make([]byte, procFileLimit); return &b }
	c.start, c.startErr = c.readStartTime()
	return c
}

// Describe implements prometheus.Collector.
func (c *ProcessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpuTotal, c.openFDs, c.maxFDs, c.vsize, c.maxVsize, c.rss, c.startTime, c.inBytes, c.outBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Like client_golang's collector
// without ReportErrors, it leaves out what it cannot read.
func (c *ProcessCollector) Collect(ch chan<- prometheus.Metric) {
	bp := c.buffers.Get().(*[]byte)
	defer c.buffers.Put(bp)
	buf := *bp
	if st, err := readStat(buf); err == nil {
		ch <- prometheus.MustNewConstMetric(c.cpuTotal, prometheus.CounterValue, float64(st.utime+st.stime)/userHZ)
		ch <- prometheus.MustNewConstMetric(c.vsize, prometheus.GaugeValue, float64(st.vsize))
		ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(st.rss*uint64(os.Getpagesize())))
		if c.startErr == nil {
			ch <- prometheus.MustNewConstMetric(c.startTime, prometheus.GaugeValue, c.start)
		}
	}
	if n, err := countOpenFDs(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.openFDs, prometheus.GaugeValue, float64(n))
	}
	var nofile, as syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile) == nil && syscall.Getrlimit(syscall.RLIMIT_AS, &as) == nil {
		ch <- prometheus.MustNewConstMetric(c.maxFDs, prometheus.GaugeValue, float64(nofile.Cur))
		ch <- prometheus.MustNewConstMetric(c.maxVsize, prometheus.GaugeValue, float64(as.Cur))
	}
	if in, out, err := readIPOctets(buf); err == nil {
		ch <- prometheus.MustNewConstMetric(c.inBytes, prometheus.CounterValue, in)
		ch <- prometheus.MustNewConstMetric(c.outBytes, prometheus.CounterValue, out)
	}
}

// readStartTime is the boot time from /proc/stat plus the process's start
// in ticks after boot.
func (c *ProcessCollector) readStartTime() (float64, error) {
	st, err := readStat(make([]byte, procFileLimit))
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// btime follows the per-CPU lines and the long intr line.
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			btime, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat btime: %w", err)
			}
			return float64(btime) + float64(st.starttime)/userHZ, nil
		}
	}
	return 0, errors.New("/proc/stat has no btime")
}

// readProcFile reads a small /proc file whole into buf.
func readProcFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return buf[:n], nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	default:
		return nil, fmt.Errorf("%s is over %d bytes", path, len(buf))
	}
}

type procStat struct {
	utime, stime, starttime, vsize, rss uint64
}

// readStat parses /proc/self/stat (proc(5)): the fields after the command
// name, which is in parentheses and may hold spaces.
func readStat(buf []byte) (procStat, error) {
	b, err := readProcFile("/proc/self/stat", buf)
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, error) {
	var err error
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("/proc/self/stat: no command name")
	}
	// fields[0] is field 3 (state) of proc(5).
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 22 {
		return procStat{}, fmt.Errorf("/proc/self/stat: %d fields after the command name", len(fields))
	}
	var st procStat
	for _, f := range []struct {
		dst   *uint64
		field int
	}{{&st.utime, 14}, {&st.stime, 15}, {&st.starttime, 22}, {&st.vsize, 23}} {
		if *f.dst, err = strconv.ParseUint(string(fields[f.field-3]), 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/self/stat field %d: %w", f.field, err)
		}
	}
	// rss can read negative transiently; procfs takes it as an int.
	rss, err := strconv.ParseInt(string(fields[24-3]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/self/stat field 24: %w", err)
	}
	st.rss = uint64(max(rss, 0))
	return st, nil
}

// countOpenFDs counts /proc/self/fd, including the descriptor reading it,
// as procfs does.
func countOpenFDs() (int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(256)
		n += len(names)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read /proc/self/fd: %w", err)
		}
	}
}

// readIPOctets reads the IpExt InOctets and OutOctets counters of the
// process's network namespace from /proc/self/net/netstat: a line of names
// followed by a line of values, both prefixed "IpExt:". A missing counter
// or section reads 0, as in client_golang.
func readIPOctets(buf []byte) (in, out float64, _ error) {
	b, err := readProcFile("/proc/self/net/netstat", buf)
	if err != nil {
		return 0, 0, err
	}
	return parseIPOctets(b)
}

func parseIPOctets(b []byte) (in, out float64, err error) {
	var names []byte
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("IpExt:"))
		if !ok {
			continue
		}
		if names == nil {
			names = rest
			continue
		}
		var ns, vs [32][]byte // IpExt has under 20 counters
		nn, vn := splitFields(ns[:0], names), splitFields(vs[:0], rest)
		if len(nn) != len(vn) {
			return 0, 0, fmt.Errorf("/proc/self/net/netstat: IpExt has %d names and %d values", len(nn), len(vn))
		}
		for i, n := range nn {
			var dst *float64
			switch string(n) {
			case "InOctets":
				dst = &in
			case "OutOctets":
				dst = &out
			default:
				continue
			}
			if *dst, err = strconv.ParseFloat(string(vn[i]), 64); err != nil {
				return 0, 0, fmt.Errorf("/proc/self/net/netstat IpExt %s: %w", n, err)
			}
		}
		return in, out, nil
	}
	return 0, 0, nil
}

// splitFields appends the space-separated fields of b to dst.
func splitFields(dst [][]byte, b []byte) [][]byte {
	for {
		b = bytes.TrimLeft(b, " \t\n")
		if len(b) == 0 {
			return dst
		}
		i := bytes.IndexAny(b, " \t\n")
		if i < 0 {
			return append(dst, b)
		}
		dst = append(dst, b[:i])
		b = b[i:]
	}
}
