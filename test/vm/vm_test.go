package vm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/test/vm/scenario"
)

// pendingCollectors are collectors that have not landed on main yet. The
// default run keeps their scenarios' setup, faults and kernel waits (which
// prove the harness) but leaves out the spofwatch assertions and latency
// measurements, which cannot pass without the collector. Set
// SPOFWATCH_VM_PENDING=1 to run them in full: they then fail with a message
// naming the missing collector. Delete an entry when its collector merges.
//
// Empty since md, bonding and ipmi merged; keep the mechanism for the next
// area (e.g. "zfs": "zfs collector (branch ..., issue N)").
var pendingCollectors = map[string]string{}

// knownFailures are scenarios that fail on main because of a bug outside
// the harness, left out of the default run (SPOFWATCH_VM_PENDING=1 runs
// them). Delete an entry when the bug is fixed.
var knownFailures = map[string]string{}

// harnessScenarios prove the harness itself: spofwatch runs in the guest,
// its JSON reaches the host and parses, the daemon's API answers.
var harnessScenarios = []scenario.Scenario{
	{
		Name: "harness/spofwatch",
		Steps: []scenario.Step{
			{Name: "version", Sh: []string{guestSpofwatch + " version"}},
			{Name: "check prints JSON", Check: &scenario.Check{}},
			{Name: "daemon API answers", Daemon: "start", Check: &scenario.Check{API: true}},
		},
	},
}

// allScenarios is every scenario, in boot order. Add new areas here.
func allScenarios() []scenario.Scenario {
	var all []scenario.Scenario
	for _, s := range [][]scenario.Scenario{harnessScenarios, raidScenarios, bondingScenarios, ipmiScenarios, drillMdScenarios, drillBondScenarios, smartctlScenarios, diskhealthScenarios, multipathScenarios} {
		all = append(all, s...)
	}
	return all
}

// machineImages and machineExtra gather each area's extra devices (NVMe,
// SCSI, AHCI); areas add theirs here, after the ones already listed, so
// devices keep their order.
func machineImages() map[string]Disk {
	all := map[string]Disk{}
	for _, m := range []map[string]Disk{testImages, smartctlImages, multipathImages} {
		for name, d := range m {
			all[name] = d
		}
	}
	return all
}

func machineExtra() []string {
	var all []string
	for _, e := range [][]string{testExtra, smartctlExtra, multipathExtra} {
		all = append(all, e...)
	}
	return all
}

const (
	guestSpofwatch = "/usr/bin/spofwatch"
	guestAPI       = "127.0.0.1:9847"
	// guestDiskhealthTest is the diskhealth package's test binary: the
	// disk health scenario runs its device test and benchmark in the guest
	// (the raw log page for fixtures, the cost of one real ioctl).
	guestDiskhealthTest = "/bin/diskhealth.test"
)

// TestVM boots one Debian kernel under QEMU and runs every scenario in it.
//
// Environment knobs: SPOFWATCH_VM_BINARY (a prebuilt static spofwatch
// instead of building ./cmd/spofwatch), SPOFWATCH_VM_ONLY (regexp on
// scenario names), SPOFWATCH_VM_PENDING=1 (see pendingCollectors),
// SPOFWATCH_VM_WORKDIR (keep disks, console and QEMU logs there),
// SPOFWATCH_VM_TIMINGS (write the timings as JSON to this file),
// SPOFWATCH_VM_ACCEL=kvm|tcg (skip the KVM probe), SPOFWATCH_VM_KVM_DEVICE
// (the device the KVM probe opens; /dev/null acts out a broken KVM).
func TestVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM (about a minute or more under TCG); not part of -short")
	}
	plan, pending := buildPlan(t)
	dir := os.Getenv("SPOFWATCH_VM_WORKDIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Unix socket paths must stay short (108 bytes).
	sockDir, err := os.MkdirTemp("", "vm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })

	tBuild := time.Now()
	kver, err := LatestKernel()
	if err != nil {
		t.Fatal(err)
	}
	spofwatch := os.Getenv("SPOFWATCH_VM_BINARY")
	if spofwatch == "" {
		spofwatch = filepath.Join(dir, "spofwatch")
		goBuild(t, spofwatch, "./cmd/spofwatch")
	}
	agent := filepath.Join(dir, "vmguest")
	goBuild(t, agent, "./test/vm/guest")
	dhTest := filepath.Join(dir, "diskhealth.test")
	goTestBuild(t, dhTest, "./diskhealth")
	mdadm, err := exec.LookPath("mdadm")
	if err != nil {
		t.Fatal("mdadm not found: install mdadm")
	}
	smartctl := hostSmartctl(t)
	dmsetup, err := exec.LookPath("dmsetup")
	if err != nil {
		t.Fatal("dmsetup not found: install dmsetup")
	}
	planJSON, err := json.MarshalIndent(plan, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	nics := map[string]string{}
	for _, n := range testNICs {
		nics[n.MAC] = n.ID
	}
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	err = Initramfs{
		KernelVersion: kver,
		Modules:       DefaultModules,
		Static:        map[string]string{guestSpofwatch: spofwatch, "/bin/vmguest": agent, guestDiskhealthTest: dhTest},
		Dynamic:       map[string]string{"/sbin/mdadm": mdadm, "/sbin/smartctl": smartctl, "/sbin/dmsetup": dmsetup},
		Files:         map[string][]byte{"/etc/vm/plan.json": planJSON},
		NICs:          nics,
	}.Build(initrd)
	if err != nil {
		t.Fatal(err)
	}
	buildTime := time.Since(tBuild)

	ctx := context.Background()
	simDir := filepath.Join(dir, "ipmi")
	if err := os.MkdirAll(simDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sim, err := StartIPMISim(ctx, simDir, abs(t, "testdata/ipmi/vm.emu"), abs(t, "testdata/ipmi/vm.sdrs"))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()

	m := &Machine{
		Kernel: "/boot/vmlinuz-" + kver, Initrd: initrd, Dir: sockDir,
		Disks: testDisks, NICs: testNICs, IPMI: sim,
		Images: machineImages(), Extra: machineExtra(),
		Timeout: 10 * time.Minute, Logf: t.Logf,
		Accel: os.Getenv("SPOFWATCH_VM_ACCEL"), KVMDevice: os.Getenv("SPOFWATCH_VM_KVM_DEVICE"),
	}
	out, runErr := m.Run(ctx)
	if keep := os.Getenv("SPOFWATCH_VM_WORKDIR"); keep != "" {
		for _, f := range []string{"console.log", "qemu.log"} {
			if b, err := os.ReadFile(filepath.Join(sockDir, f)); err == nil {
				os.WriteFile(filepath.Join(keep, f), b, 0o644)
			}
		}
	}
	if out == nil {
		t.Fatalf("boot: %v", runErr)
	}
	if keep := os.Getenv("SPOFWATCH_VM_WORKDIR"); keep != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		os.WriteFile(filepath.Join(keep, "outcome.json"), b, 0o644)
	}
	if runErr != nil {
		t.Errorf("boot: %v\nconsole tail:\n%s\nipmi_sim log tail:\n%s", runErr, out.ConsoleTail(6000), tailString(sim.Log(), 1000))
	}
	judge(t, plan, out)
	judgeSmartctl(t, plan, out)
	timings := reportTimings(t, out, buildTime)
	if f := os.Getenv("SPOFWATCH_VM_TIMINGS"); f != "" {
		b, _ := json.MarshalIndent(timings, "", "  ")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, p := range pending {
		t.Logf("NOT ASSERTED: %s", p)
	}
}

// buildPlan selects the scenarios and strips the assertions that depend on
// pending collectors (unless SPOFWATCH_VM_PENDING=1).
func buildPlan(t *testing.T) (scenario.Plan, []string) {
	only := os.Getenv("SPOFWATCH_VM_ONLY")
	var re *regexp.Regexp
	if only != "" {
		var err error
		if re, err = regexp.Compile(only); err != nil {
			t.Fatalf("SPOFWATCH_VM_ONLY: %v", err)
		}
	}
	full := os.Getenv("SPOFWATCH_VM_PENDING") == "1"
	plan := scenario.Plan{
		Spofwatch:  guestSpofwatch,
		DaemonArgs: []string{"--web.listen-address=" + guestAPI},
		APIURL:     "http://" + guestAPI + "/api/v1/findings",
	}
	var pending []string
	for _, sc := range allScenarios() {
		if re != nil && !re.MatchString(sc.Name) {
			continue
		}
		if why, ok := knownFailures[sc.Name]; ok && !full {
			pending = append(pending, fmt.Sprintf("%s: left out, known failure: %s", sc.Name, why))
			continue
		}
		var missing []string
		for _, n := range sc.Needs {
			if why, ok := pendingCollectors[n]; ok {
				missing = append(missing, why)
			}
		}
		if len(missing) > 0 && !full {
			pending = append(pending, fmt.Sprintf("%s: needs %s", sc.Name, strings.Join(missing, ", ")))
			sc = withoutAssertions(sc)
		}
		plan.Scenarios = append(plan.Scenarios, sc)
	}
	if len(plan.Scenarios) == 0 {
		t.Fatalf("SPOFWATCH_VM_ONLY=%q matches no scenario", only)
	}
	return plan, pending
}

// withoutAssertions keeps a scenario's setup, faults and kernel waits.
func withoutAssertions(sc scenario.Scenario) scenario.Scenario {
	out := sc
	out.Needs = nil
	out.Steps = nil
	for _, st := range sc.Steps {
		st.Check = nil
		if st.Latency != nil {
			// One round of fault and repair, without the API.
			l := *st.Latency
			st.Latency = nil
			st.Sh = append(append([]string{}, st.Sh...), l.Fault.Sh...)
			for _, argv := range l.Fault.Exec {
				st.Sh = append(st.Sh, strings.Join(argv, " "))
			}
			st.Host = append(append([]string{}, st.Host...), l.Fault.Host...)
			st.Wait = append(append([]scenario.FileCond{}, st.Wait...), l.Fault.Wait...)
		}
		if st.Daemon == "start" {
			st.Daemon = "" // the daemon is only needed for the API assertions
		}
		out.Steps = append(out.Steps, st)
	}
	return out
}

// judge re-checks every reported step against the plan: the guest polls
// until its expectations hold, the host decides.
func judge(t *testing.T, plan scenario.Plan, out *Outcome) {
	results := map[string]scenario.StepResult{}
	for _, r := range out.Steps {
		results[r.Scenario+"\x00"+r.Step] = r
	}
	for _, sc := range plan.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			for _, st := range sc.Steps {
				r, ok := results[sc.Name+"\x00"+st.Name]
				if !ok {
					t.Errorf("step %q: no result from the guest (did it crash? see the console)", st.Name)
					continue
				}
				// Figures the step printed for docs/PERFORMANCE.md.
				for _, l := range strings.Split(r.Log, "\n") {
					if f, ok := strings.CutPrefix(l, "# figure: "); ok {
						t.Logf("step %q: %s", st.Name, f)
					}
				}
				if r.Err != "" {
					t.Errorf("step %q: %s\nguest log:\n%s\nlast spofwatch output (exit %d):\n%s", st.Name, r.Err, r.Log, r.ExitCode, tailString(r.Output, 3000))
					continue
				}
				if st.Check != nil {
					rep, err := scenario.ParseReport([]byte(r.Output))
					if err != nil {
						t.Errorf("step %q: %v", st.Name, err)
						continue
					}
					if miss := rep.MissingCollectors(sc.Needs); len(miss) > 0 {
						t.Errorf("step %q: spofwatch has no collector %v", st.Name, miss)
					}
					for _, e := range scenario.Verify(rep, st.Check.Expect) {
						t.Errorf("step %q: %s", st.Name, e)
					}
				}
				for _, l := range strings.Split(r.Log, "\n") {
					// Figures a step measured in the guest (benchmarks).
					if strings.HasPrefix(l, "FIGURE ") || strings.HasPrefix(l, "Benchmark") {
						t.Logf("step %q: %s", st.Name, l)
					}
				}
				if st.Latency != nil {
					for _, l := range strings.Split(r.Log, "\n") {
						if strings.Contains(l, "initial state took") {
							t.Logf("step %q: %s", st.Name, strings.TrimPrefix(l, "# "))
						}
					}
					judgeLatency(t, *st.Latency, out)
				}
			}
		})
	}
}

func judgeLatency(t *testing.T, l scenario.Latency, out *Outcome) {
	var guest, host []float64
	for _, r := range out.Latencies {
		if r.Name == l.Name && r.Err == "" {
			guest = append(guest, r.GuestMillis)
		}
	}
	for _, h := range out.HostLatencies {
		if h.Name == l.Name {
			host = append(host, h.Millis)
		}
	}
	if len(guest) < l.Rounds {
		t.Errorf("latency %s: %d good rounds, want %d", l.Name, len(guest), l.Rounds)
		return
	}
	t.Logf("latency %s (guest clock, fault returned -> API changed): %s", l.Name, summary(guest))
	p50 := percentile(guest, 50)
	if len(host) > 0 {
		// The host measures from its own QMP action: it includes the
		// control channel both ways, so it is the honest upper bound.
		t.Logf("latency %s (host clock, set_link returned -> guest reported): %s", l.Name, summary(host))
		p50 = percentile(host, 50)
	}
	// Speed is measured, not asserted: the target is a figure for
	// PERFORMANCE.md (bench runs on a quiet machine), and a TCG guest on a
	// shared 2-core CI machine can miss it without anything being wrong.
	// What the test does assert is that detection is event-driven: a
	// median beyond eventDrivenBound means the watcher fell back to the
	// collector's periodic poll (30 s), which is a real defect.
	if l.TargetP50Millis > 0 && p50 > l.TargetP50Millis {
		t.Logf("latency %s: p50 %.1f ms MISSES the target < %.0f ms (load average %s)", l.Name, p50, l.TargetP50Millis, loadAverage())
	}
	if p50 > eventDrivenBound.Seconds()*1000 {
		t.Errorf("latency %s: p50 %.1f ms: detection is not event-driven (bound %s)", l.Name, p50, eventDrivenBound)
	}
}

// eventDrivenBound is far below every collector's periodic interval (30 s)
// and far above any event-driven detection, even under TCG and load.
const eventDrivenBound = 5 * time.Second

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func summary(v []float64) string {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("n=%d p50=%.1f ms p90=%.1f ms max=%.1f ms [%s]", len(s), percentile(s, 50), percentile(s, 90), s[len(s)-1], strings.Join(parts, " "))
}

// percentile is nearest-rank.
func percentile(v []float64, p float64) float64 {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s))*p/100+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

// Timings is the boot's timing record (docs/PERFORMANCE.md).
type Timings struct {
	BuildSeconds     float64              `json:"build_seconds"`
	AgentStartHost   float64              `json:"agent_start_host_seconds"`
	AgentStartUptime float64              `json:"agent_start_guest_uptime"`
	WallSeconds      float64              `json:"wall_seconds"`
	ScenarioSeconds  map[string]float64   `json:"scenario_seconds"`
	LatencyGuestMs   map[string][]float64 `json:"latency_guest_ms"`
	LatencyHostMs    map[string][]float64 `json:"latency_host_ms"`
}

func reportTimings(t *testing.T, out *Outcome, build time.Duration) Timings {
	tm := Timings{BuildSeconds: build.Seconds(), WallSeconds: out.Wall.Seconds(), ScenarioSeconds: map[string]float64{},
		LatencyGuestMs: map[string][]float64{}, LatencyHostMs: map[string][]float64{}}
	if m, ok := out.Mark("agent-start"); ok {
		tm.AgentStartHost, tm.AgentStartUptime = m.Host, m.Uptime
	}
	starts := map[string]float64{}
	for _, m := range out.Marks {
		if n, ok := strings.CutPrefix(m.Name, "scenario-start "); ok {
			starts[n] = m.Host
		}
		if n, ok := strings.CutPrefix(m.Name, "scenario-end "); ok {
			tm.ScenarioSeconds[n] = m.Host - starts[n]
		}
	}
	for _, l := range out.Latencies {
		if l.Err == "" {
			tm.LatencyGuestMs[l.Name] = append(tm.LatencyGuestMs[l.Name], l.GuestMillis)
		}
	}
	for _, h := range out.HostLatencies {
		tm.LatencyHostMs[h.Name] = append(tm.LatencyHostMs[h.Name], h.Millis)
	}
	t.Logf("timings: build %.1fs, guest agent up at %.2fs host (%.2fs guest uptime), whole boot %.1fs", tm.BuildSeconds, tm.AgentStartHost, tm.AgentStartUptime, tm.WallSeconds)
	names := make([]string, 0, len(tm.ScenarioSeconds))
	for n := range tm.ScenarioSeconds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("timings: scenario %-36s %6.2fs", n, tm.ScenarioSeconds[n])
	}
	return tm
}

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// goTestBuild compiles a package's tests into a static binary for the guest.
func goTestBuild(t *testing.T, out, pkg string) {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c %s: %v\n%s", pkg, err, b)
	}
}

func abs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
