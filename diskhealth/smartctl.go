package diskhealth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/internal/boundedexec"
)

// SATA and SAS disks are read through `smartctl --json` (smartmontools 7
// or later): smartctl knows the vendor attribute formats (its drive
// database) and every transport (SAT, USB bridges, SCSI log pages), which a
// native reader would have to reimplement. docs/ARCHITECTURE.md says why.

// MaxSmartctlJSON bounds the JSON ParseSmartctlJSON accepts and the output
// ReadSmartctl keeps. `smartctl -i -H -A --json` prints 5–30 KiB; even
// `-x` on a SAS disk stays well under this.
const MaxSmartctlJSON = 1 << 20

// DefaultSmartctlTimeout bounds one smartctl run when the caller's context
// has no earlier deadline. A healthy disk answers in well under a second;
// a dying one can hang each command for the kernel's SCSI timeout (30 s).
const DefaultSmartctlTimeout = 60 * time.Second

// SmartctlExit is smartctl's exit status, a bit mask (smartctl(8), RETURN
// VALUES). The JSON carries it as smartctl.exit_status.
type SmartctlExit uint8

const (
	// ExitCommandLine: the command line did not parse (or the device type
	// could not be detected).
	ExitCommandLine SmartctlExit = 1 << iota
	// ExitDeviceOpen: the device could not be opened, did not return its
	// IDENTIFY data, or is in a low-power mode (-n).
	ExitDeviceOpen
	// ExitCommandFailed: a SMART or other command to the disk failed, or
	// a SMART data structure had a checksum error.
	ExitCommandFailed
	// ExitDiskFailing: the SMART status command said "DISK FAILING".
	ExitDiskFailing
	// ExitPrefailBelowThreshold: a pre-failure attribute is at or below
	// its threshold now.
	ExitPrefailBelowThreshold
	// ExitBelowThresholdInPast: some attribute was at or below its
	// threshold in the past.
	ExitBelowThresholdInPast
	// ExitErrorLog: the device error log has errors (only with -l error).
	ExitErrorLog
	// ExitSelfTestLog: the self-test log has errors (only with -l selftest).
	ExitSelfTestLog
)

var exitBitNames = [...]string{
	"command line did not parse",
	"device open failed",
	"SMART command failed",
	"SMART status says DISK FAILING",
	"pre-failure attribute at or below threshold",
	"attribute below threshold in the past",
	"error log has errors",
	"self-test log has errors",
}

// Has reports whether every bit of b is set.
func (e SmartctlExit) Has(b SmartctlExit) bool { return e&b == b }

func (e SmartctlExit) String() string {
	if e == 0 {
		return "ok"
	}
	var parts []string
	for i, name := range exitBitNames {
		if e&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, ", ")
}

// The part of smartctl's JSON we read. Numbers that a disk reports are
// decoded wide and range-checked, so one odd value cannot fail the whole
// document.
type smartctlDoc struct {
	Smartctl *struct {
		Version    []int `json:"version"`
		ExitStatus *int  `json:"exit_status"`
		Messages   []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
	} `json:"smartctl"`
	Device struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Protocol string `json:"protocol"`
	} `json:"device"`
	ModelName     string `json:"model_name"`
	SCSIModelName string `json:"scsi_model_name"`
	SerialNumber  string `json:"serial_number"`
	SmartStatus   *struct {
		Passed *bool `json:"passed"`
	} `json:"smart_status"`
	ATAAttributes *struct {
		Table []ataAttribute `json:"table"`
	} `json:"ata_smart_attributes"`
	SCSIGrownDefectList *uint64 `json:"scsi_grown_defect_list"`
	NVMeLog             *struct {
		CriticalWarning         *uint64 `json:"critical_warning"`
		AvailableSpare          *uint64 `json:"available_spare"`
		AvailableSpareThreshold *uint64 `json:"available_spare_threshold"`
		PercentageUsed          *uint64 `json:"percentage_used"`
		MediaErrors             *uint64 `json:"media_errors"`
	} `json:"nvme_smart_health_information_log"`
	Temperature *struct {
		Current *float64 `json:"current"`
	} `json:"temperature"`
	PowerOnTime *struct {
		Hours *uint64 `json:"hours"`
	} `json:"power_on_time"`
}

type ataAttribute struct {
	ID         int    `json:"id"`
	Name       string `json:"name"`
	Value      int    `json:"value"`
	Thresh     int    `json:"thresh"`
	WhenFailed string `json:"when_failed"`
	Flags      struct {
		Prefailure bool `json:"prefailure"`
	} `json:"flags"`
	Raw struct {
		Value  uint64 `json:"value"`
		String string `json:"string"`
	} `json:"raw"`
}

// ATA attribute ids whose raw value is a sector count that predicts
// failure (the ones smartd watches with -C and -U, plus reallocations).
const (
	attrReallocated          = 5
	attrPending              = 197
	attrOfflineUncorrectable = 198
)

// NVMe critical warning bits (NVMe base spec, SMART / Health log byte 0).
const (
	nvmeSpareBelow       = 1 << 0
	nvmeTemperature      = 1 << 1
	nvmeReliability      = 1 << 2
	nvmeReadOnly         = 1 << 3
	nvmeVolatileBackup   = 1 << 4
	nvmePersistentMemory = 1 << 5
)

// needsPrivilege is the reason's hint when the kernel refused smartctl.
const needsPrivilege = "smartctl needs read access to the disk (root or the disk group) and CAP_SYS_RAWIO for SMART pass-through commands"

// ParseSmartctlJSON reads the JSON of `smartctl --json -i -H -A` for one
// disk. The error is for input that is not smartctl's JSON; everything
// smartctl itself reports (an open failure, a sleeping disk, no SMART
// support) is a Health with VerdictUnknown and the Reason.
//
// Verdict, worst first:
//   - failing: the SMART overall-health status is FAILED (ATA, SCSI), a
//     pre-failure attribute is at or below its threshold now (the drive's
//     own prediction of failure; smartctl exit bit 4), or an NVMe drive
//     went read-only;
//   - degraded: reallocated (5), pending (197) or offline-uncorrectable
//     (198) sectors, an old-age attribute at or below its threshold now, a
//     SCSI grown defect list that is not empty, any other NVMe critical
//     warning;
//   - unknown: no health status and nothing bad read;
//   - ok otherwise.
//
// An attribute that failed only "in the past" is history, not state: it
// would keep a disk degraded forever with nothing to clear it, so it is
// not a problem.
func ParseSmartctlJSON(b []byte) (Health, error) {
	if len(b) > MaxSmartctlJSON {
		return Health{}, fmt.Errorf("smartctl JSON of %d bytes is over the %d byte limit", len(b), MaxSmartctlJSON)
	}
	var doc smartctlDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return Health{}, fmt.Errorf("smartctl JSON: %w", err)
	}
	if doc.Smartctl == nil {
		return Health{}, errors.New("smartctl JSON: no \"smartctl\" object: not smartctl --json output")
	}
	h := Health{
		Disk:     kernelName(doc.Device.Name),
		Protocol: protocolOf(doc.Device.Protocol),
		Model:    firstNonEmpty(doc.ModelName, doc.SCSIModelName),
		Serial:   doc.SerialNumber,
	}
	var exit SmartctlExit
	if doc.Smartctl.ExitStatus != nil {
		exit = SmartctlExit(*doc.Smartctl.ExitStatus)
	}
	var msgs []string
	for _, m := range doc.Smartctl.Messages {
		if m.String != "" && len(msgs) < 3 {
			msgs = append(msgs, clip(strings.TrimSpace(m.String), 200))
		}
	}
	if mode, ok := lowPowerMode(msgs); ok {
		h.Verdict = VerdictUnknown
		h.Reason = fmt.Sprintf("in %s mode, not read: smartctl -n standby does not spin the disk up", mode)
		return h, nil
	}
	if exit&(ExitCommandLine|ExitDeviceOpen) != 0 {
		h.Verdict = VerdictUnknown
		h.Reason = openFailureReason(exit, msgs)
		return h, nil
	}

	failing, degraded := readFacts(&doc, &h)
	switch {
	case failing:
		h.Verdict = VerdictFailing
	case degraded:
		h.Verdict = VerdictDegraded
	case doc.SmartStatus == nil || doc.SmartStatus.Passed == nil:
		h.Verdict = VerdictUnknown
		h.Reason = "smartctl read no SMART health status"
		if len(msgs) > 0 {
			h.Reason += ": " + strings.Join(msgs, "; ")
		}
		if exit != 0 {
			h.Reason += " (exit status: " + exit.String() + ")"
		}
	default:
		h.Verdict = VerdictOK
	}
	return h, nil
}

// readFacts fills the counters and Problems of h from doc and says whether
// a fact makes the disk failing or degraded.
func readFacts(doc *smartctlDoc, h *Health) (failing, degraded bool) {
	if doc.Temperature != nil && doc.Temperature.Current != nil {
		h.TemperatureCelsius = ptr(*doc.Temperature.Current)
	}
	if doc.PowerOnTime != nil && doc.PowerOnTime.Hours != nil {
		h.PowerOnHours = ptr(*doc.PowerOnTime.Hours)
	}
	statusFailed := doc.SmartStatus != nil && doc.SmartStatus.Passed != nil && !*doc.SmartStatus.Passed

	if h.Protocol == ProtocolNVMe {
		// smartctl derives an NVMe drive's "passed" from the critical
		// warning byte; the bits say what, so they decide.
		if doc.NVMeLog != nil {
			return readNVMeLog(doc, h)
		}
		if statusFailed {
			h.Problems = append(h.Problems, "smartctl reports the NVMe health as failed (no health log read)")
			return false, true
		}
		return false, false
	}
	if statusFailed {
		h.Problems = append(h.Problems, "SMART overall-health self-assessment: FAILED")
		failing = true
	}
	if doc.ATAAttributes != nil {
		table := doc.ATAAttributes.Table
		if len(table) > 255 { // one byte of attribute ids; more is not smartctl
			table = table[:255]
		}
		for _, a := range table {
			if a.WhenFailed == "now" {
				kind := "old-age"
				if a.Flags.Prefailure {
					kind = "pre-failure"
					failing = true
				} else {
					degraded = true
				}
				h.Problems = append(h.Problems, fmt.Sprintf("%s attribute %d %s is at or below its threshold (value %d, threshold %d)",
					kind, a.ID, clip(a.Name, 40), a.Value, a.Thresh))
			}
			var field **uint64
			var what string
			switch a.ID {
			case attrReallocated:
				field, what = &h.ReallocatedSectors, "reallocated sector"
			case attrPending:
				field, what = &h.PendingSectors, "pending sector"
			case attrOfflineUncorrectable:
				field, what = &h.OfflineUncorrectable, "offline uncorrectable sector"
			default:
				continue
			}
			if *field != nil {
				continue // a repeated id: the first one counts
			}
			n := sectorCount(a)
			*field = ptr(n)
			if n > 0 {
				degraded = true
				h.Problems = append(h.Problems, plural(n, what))
			}
		}
	}
	if doc.SCSIGrownDefectList != nil {
		n := *doc.SCSIGrownDefectList
		h.ReallocatedSectors = ptr(n)
		if n > 0 {
			degraded = true
			h.Problems = append(h.Problems, plural(n, "grown defect")+" (SCSI grown defect list)")
		}
	}
	return failing, degraded
}

func readNVMeLog(doc *smartctlDoc, h *Health) (failing, degraded bool) {
	l := doc.NVMeLog
	byteOf := func(v *uint64) *uint8 {
		if v == nil || *v > 255 {
			return nil
		}
		return ptr(uint8(*v))
	}
	h.CriticalWarning = byteOf(l.CriticalWarning)
	h.AvailableSpare = byteOf(l.AvailableSpare)
	h.SpareThreshold = byteOf(l.AvailableSpareThreshold)
	h.PercentageUsed = byteOf(l.PercentageUsed)
	if l.MediaErrors != nil {
		h.MediaErrors = ptr(*l.MediaErrors)
	}
	if h.CriticalWarning == nil {
		return false, false
	}
	cw := *h.CriticalWarning
	if cw&nvmeSpareBelow != 0 {
		if h.AvailableSpare != nil && h.SpareThreshold != nil {
			h.Problems = append(h.Problems, fmt.Sprintf("available spare %d%% is below its threshold %d%%", *h.AvailableSpare, *h.SpareThreshold))
		} else {
			h.Problems = append(h.Problems, "available spare is below its threshold")
		}
	}
	for _, w := range []struct {
		bit  uint8
		what string
	}{
		{nvmeTemperature, "temperature is outside its thresholds"},
		{nvmeReliability, "NVM subsystem reliability is degraded"},
		{nvmeReadOnly, "media is read-only"},
		{nvmeVolatileBackup, "volatile memory backup failed"},
		{nvmePersistentMemory, "persistent memory region is unreliable"},
	} {
		if cw&w.bit != 0 {
			h.Problems = append(h.Problems, "critical warning: "+w.what)
		}
	}
	if cw&^0x3f != 0 {
		h.Problems = append(h.Problems, fmt.Sprintf("critical warning 0x%02x (reserved bits)", cw))
	}
	return cw&nvmeReadOnly != 0, cw != 0
}

// sectorCount is the count smartctl shows for the attribute: the leading
// decimal number of raw.string. That string is formatted through
// smartctl's drive database, so a vendor-packed raw value (the raw16(raw16)
// format 50 drive families use for attribute 5: count in the low word,
// vendor data above) yields the count, where raw.value is all 48 bits.
// When the string is not a plain number (a hex format), the low 32 bits
// of raw.value: no disk has 4 billion bad sectors, while packed vendor
// bytes live above them.
func sectorCount(a ataAttribute) uint64 {
	s := a.Raw.String
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end > 0 && (end == len(s) || s[end] == ' ') {
		if n, err := strconv.ParseUint(s[:end], 10, 64); err == nil {
			return n
		}
	}
	return a.Raw.Value & 0xffff_ffff
}

// lowPowerMode finds smartctl's "Device is in STANDBY mode, exit(2)" (-n).
func lowPowerMode(msgs []string) (string, bool) {
	for _, m := range msgs {
		rest, ok := strings.CutPrefix(m, "Device is in ")
		if !ok {
			continue
		}
		if mode, _, ok := strings.Cut(rest, " mode, exit("); ok && mode != "" {
			return mode, true
		}
	}
	return "", false
}

func openFailureReason(exit SmartctlExit, msgs []string) string {
	r := "smartctl could not read the disk"
	if len(msgs) > 0 {
		r = "smartctl: " + strings.Join(msgs, "; ")
	} else {
		r += " (exit status: " + exit.String() + ")"
	}
	joined := strings.Join(msgs, " ")
	if strings.Contains(joined, "Permission denied") || strings.Contains(joined, "Operation not permitted") {
		r += ": " + needsPrivilege
	}
	return r
}

func protocolOf(p string) Protocol {
	switch strings.ToLower(p) {
	case "ata":
		return ProtocolATA
	case "scsi":
		return ProtocolSCSI
	case "nvme":
		return ProtocolNVMe
	}
	return ""
}

// kernelName is "sda" for "/dev/sda"; empty for paths that do not name a
// kernel block device directly (/dev/bus/0 behind a MegaRAID).
func kernelName(dev string) string {
	name, ok := strings.CutPrefix(dev, "/dev/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return clip(name, 64)
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatUint(n, 10) + " " + what + "s"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return clip(v, 100)
		}
	}
	return ""
}

// clip bounds a string taken from the disk or smartctl before it reaches a
// label, a log line or a reason.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func ptr[T any](v T) *T { return &v }

// SmartctlOption adjusts one ReadSmartctl run.
type SmartctlOption func(*smartctlRun)

type smartctlRun struct {
	deviceType string
	timeout    time.Duration
}

// SmartctlDeviceType passes `--device=t` ("sat", "megaraid,3", "scsi")
// for disks whose type smartctl cannot detect from the path.
func SmartctlDeviceType(t string) SmartctlOption {
	return func(r *smartctlRun) { r.deviceType = t }
}

// SmartctlTimeout replaces DefaultSmartctlTimeout.
func SmartctlTimeout(d time.Duration) SmartctlOption {
	return func(r *smartctlRun) { r.timeout = d }
}

// SmartctlArgs is the command line ReadSmartctl runs, without the program:
// identity (-i), overall health (-H) and attributes (-A: the ATA
// attribute table, the SCSI grown defect list, the NVMe health log), and
// `-n standby` so a disk that sleeps stays asleep.
func SmartctlArgs(devPath string, opts ...SmartctlOption) []string {
	r := runOf(opts)
	args := []string{"--json=c", "--info", "--health", "--attributes", "--nocheck=standby"}
	if r.deviceType != "" {
		args = append(args, "--device="+r.deviceType)
	}
	return append(args, devPath)
}

func runOf(opts []SmartctlOption) smartctlRun {
	r := smartctlRun{timeout: DefaultSmartctlTimeout}
	for _, o := range opts {
		o(&r)
	}
	return r
}

// ReadSmartctl runs smartctl (a path, or a name looked up in PATH) on
// devPath and returns the disk's health. It never returns an error: a disk
// that cannot be read is VerdictUnknown with the Reason, never healthy.
// The run is bounded in time (the context, and DefaultSmartctlTimeout or
// SmartctlTimeout) and output (MaxSmartctlJSON), in its own process group.
func ReadSmartctl(ctx context.Context, smartctl, devPath string, opts ...SmartctlOption) Health {
	unknown := func(reason string) Health {
		return Health{Disk: kernelName(devPath), Verdict: VerdictUnknown, Reason: reason}
	}
	if devPath == "" || strings.HasPrefix(devPath, "-") {
		return unknown(fmt.Sprintf("smartctl: %q is not a device path", devPath))
	}
	path, err := exec.LookPath(smartctl)
	if err != nil {
		return unknown(fmt.Sprintf("smartctl not found (install smartmontools 7 or later): %v", err))
	}
	r := runOf(opts)
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	out, runErr := boundedexec.Cmd{
		Path:      path,
		Args:      SmartctlArgs(devPath, opts...),
		Env:       []string{"LC_ALL=C"},
		MaxOutput: MaxSmartctlJSON,
	}.Run(ctx)
	var exitErr *exec.ExitError
	switch {
	case errors.Is(runErr, boundedexec.ErrOutputLimit):
		return unknown(fmt.Sprintf("smartctl %s: %v", devPath, runErr)) // truncated: do not parse
	case runErr != nil && ctx.Err() != nil:
		return unknown(fmt.Sprintf("smartctl %s did not finish: %v", devPath, runErr))
	case runErr != nil && !errors.As(runErr, &exitErr):
		return unknown(fmt.Sprintf("smartctl %s: %v", devPath, runErr))
	}
	// smartctl's exit status is a bit mask that is non-zero for a failing
	// disk too; the JSON carries it, so parse whatever came.
	h, err := ParseSmartctlJSON(out.Stdout)
	if err != nil {
		detail := firstLine(out.Stderr)
		if detail == "" {
			detail = firstLine(out.Stdout)
		}
		return unknown(fmt.Sprintf("smartctl %s printed no JSON (smartmontools 7 or later needed): %v: %s", devPath, err, detail))
	}
	if name := kernelName(devPath); name != "" {
		h.Disk = name
	}
	if h.Verdict == VerdictUnknown && !strings.Contains(h.Reason, devPath) {
		h.Reason = devPath + ": " + h.Reason
	}
	return h
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return clip(string(line), 200)
}
