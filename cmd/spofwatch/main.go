// Command spofwatch answers "which single failure would take this host down
// now?". Without a subcommand it runs the daemon; `check` collects once and
// exits the Nagios way; `version` prints the build.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/spofwatch/spofwatch/config"
	"github.com/spofwatch/spofwatch/report"
)

// DefaultListenAddress is outside the Prometheus exporter port range
// 9100-9999, which is fully allocated, and below Linux's ephemeral ports.
const DefaultListenAddress = ":19847"

// DefaultConfigFile is used when --config.file is not given; its absence is
// not an error (every option has a working default).
const DefaultConfigFile = "/etc/spofwatch/spofwatch.yml"

// ExitConfig is the daemon's exit status for a configuration it refuses
// (EX_CONFIG from sysexits.h): the unit does not restart on it
// (RestartPreventExitStatus), since restarting cannot fix the file.
const ExitConfig = 78

// DefaultStateDir is where the daemon keeps its history.
const DefaultStateDir = "/var/lib/spofwatch"

// options are the parsed command-line flags.
type options struct {
	configFile     string
	configExplicit bool
	paths          paths
	enabled        map[string]*bool
	textfile       string
	web            *web.FlagConfig
	log            *promslog.Config
	checkFormat    string
	checkTimeout   time.Duration
	reportFormat   string
	reportSince    promDuration
}

// promDuration is a flag value in Prometheus' duration form (90d, 4w).
type promDuration time.Duration

func (d *promDuration) Set(s string) error {
	v, err := model.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("want a positive duration, got %q", s)
	}
	*d = promDuration(v)
	return nil
}

func (d *promDuration) String() string { return model.Duration(*d).String() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("spofwatch", "Names the single failure that would take this host down: PSUs, fans, RAID, bonds and UPSes.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	// --help, --help-man and --version print and must then stop, without
	// kingpin calling os.Exit under our feet.
	exited, exitCode := false, 0
	app.Terminate(func(code int) { exited, exitCode = true, code })
	app.HelpFlag.Short('h')
	app.Version(version.Print("spofwatch"))

	var o options
	o.log = &promslog.Config{}
	promslogflag.AddFlags(app, o.log)
	cfgFlag := app.Flag("config.file", "YAML configuration file (receivers, UPS servers, IPMI, power feeds, host labels, thresholds).").
		Default(DefaultConfigFile).IsSetByUser(&o.configExplicit)
	cfgFlag.StringVar(&o.configFile)
	app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(&o.paths.proc)
	app.Flag("path.sysfs", "sysfs mountpoint.").Default("/sys").StringVar(&o.paths.sys)
	app.Flag("path.rootfs", "Root filesystem mountpoint (for a containerised agent).").Default("/").StringVar(&o.paths.root)
	app.Flag("path.state", "State directory: the redundancy history (events.jsonl).").Default(DefaultStateDir).StringVar(&o.paths.state)
	app.Flag("collector.textfile.output", "Also write the spofwatch metrics to this file after every evaluation, atomically, for node_exporter's textfile collector (e.g. /var/lib/node_exporter/textfile_collector/spofwatch.prom).").
		StringVar(&o.textfile)
	o.enabled = map[string]*bool{}
	for _, name := range config.CollectorNames {
		o.enabled[name] = app.Flag("collector."+name, fmt.Sprintf("Enable the %s collector (--no-collector.%s disables it).", name, name)).Default("true").Bool()
	}
	o.web = webflag.AddFlags(app, DefaultListenAddress)

	daemonCmd := app.Command("run", "Run the agent (the default).").Default()
	checkCmd := app.Command("check", "Collect once, print the verdict and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN).")
	checkCmd.Flag("format", "Output format: text, json, nagios, or dot (the redundancy map for Graphviz).").Default("text").EnumVar(&o.checkFormat, "text", "json", "nagios", "dot")
	checkCmd.Flag("timeout", "Give up on collectors after this long.").Default("15s").DurationVar(&o.checkTimeout)
	reportCmd := app.Command("report", "Print the redundancy audit of this host over a window: groups, time in each non-redundant state, incidents, accepted risks, last proof.")
	reportCmd.Flag("format", "Output format.").Default("markdown").EnumVar(&o.reportFormat, "markdown", "json", "html")
	reportCmd.Flag("since", "Window: how far back (e.g. 90d, 4w, 24h).").Default("90d").SetValue(&o.reportSince)
	reportCmd.Flag("timeout", "Give up on collectors after this long.").Default("15s").DurationVar(&o.checkTimeout)
	var do drillOptions
	drillCmd := app.Command("drill", "Prove a group's redundancy by exercising it (as root): md check, ZFS scrub, UPS battery test, bond failover, LACP state. Exit 0 passed, 1 failed, 2 refused, 3 usage or config error.")
	drillListCmd := drillCmd.Command("list", "List each group: whether and how it can be drilled, and its last proof.")
	drillListCmd.Flag("format", "Output format.").Default("text").EnumVar(&do.format, "text", "json")
	drillListCmd.Flag("collect-timeout", "Give up on collectors after this long.").Default("15s").DurationVar(&o.checkTimeout)
	drillRunCmd := drillCmd.Command("run", "Drill GROUP (refused unless it is fully redundant with every member ok, and one drill at a time), or with --scheduled every group the timer may drill.")
	drillRunCmd.Arg("group", "The group ID, e.g. storage/md/md0 (spofwatch drill list shows them).").StringVar(&do.group)
	drillRunCmd.Flag("dry-run", "Print the plan and change nothing (not audited).").BoolVar(&do.dryRun)
	drillRunCmd.Flag("wait", "Follow a long drill (check, scrub) to its end, with progress on stderr.").BoolVar(&do.wait)
	drillRunCmd.Flag("scheduled", "The timer's run: start the non-disruptive drill of every eligible group (and bond drills the config marks scheduled), without following them.").BoolVar(&do.scheduled)
	drillRunCmd.Flag("format", "Output format.").Default("text").EnumVar(&do.format, "text", "json")
	drillRunCmd.Flag("collect-timeout", "Give up on collectors after this long.").Default("15s").DurationVar(&o.checkTimeout)
	versionCmd := app.Command("version", "Print the version and exit.")

	cmd, err := app.Parse(args)
	if exited {
		return exitCode
	}
	if err != nil {
		fmt.Fprintf(stderr, "spofwatch: %v\n", err)
		return report.ExitUnknown
	}
	logger := promslog.New(o.log)
	switch cmd {
	case versionCmd.FullCommand():
		fmt.Fprintln(stdout, version.Print("spofwatch"))
		return 0
	case checkCmd.FullCommand():
		return runCheck(o, stdout, stderr, logger)
	case reportCmd.FullCommand():
		return runReport(o, stdout, stderr, logger)
	case drillListCmd.FullCommand():
		return runDrillList(o, do, stdout, stderr, logger)
	case drillRunCmd.FullCommand():
		return runDrillRun(o, do, stdout, stderr, logger)
	case daemonCmd.FullCommand():
		// Before anything slow: loading the config, probing the sources.
		sig := notifyDaemonSignals()
		defer sig.release()
		cfg, err := loadConfig(o, logger)
		if err != nil {
			// Printed plainly, not as an escaped log field: an operator
			// reads this on the terminal or in the journal.
			fmt.Fprintf(stderr, "spofwatch: invalid configuration, refusing to start:\n%v\n", err)
			return ExitConfig
		}
		if err := runDaemon(cfg, o, logger, sig); err != nil {
			var ce configError
			if errors.As(err, &ce) {
				fmt.Fprintf(stderr, "spofwatch: invalid configuration, refusing to start:\n%v\n", ce.err)
				return ExitConfig
			}
			logger.Error("spofwatch stopped", "err", err)
			return 1
		}
		return 0
	}
	return report.ExitUnknown
}

// configError marks an error found while building collectors from a config
// that parsed: the daemon refuses to start on it like on a parse error.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// loadConfig loads the configured file. The default path may be absent:
// every option has a working default.
func loadConfig(o options, logger *slog.Logger) (*config.Config, error) {
	if !o.configExplicit {
		if _, err := os.Stat(o.configFile); os.IsNotExist(err) {
			logger.Debug("no config file; using defaults", "path", o.configFile)
			return config.Default(), nil
		}
	}
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return nil, err
	}
	// Once per load: at start, on each reload and by check.
	for _, w := range cfg.Warnings {
		logger.Warn("configuration warning", "detail", w)
	}
	return cfg, nil
}
