// Package diskhealth reads whether a physical disk says it is about to
// fail: the NVMe SMART / Health log page (log 0x02) and, for SATA/SAS,
// the SMART health status and the attributes that predict failure. It is
// a source package: it knows disks, not groups; the collectors mark the
// storage members that sit on a disk.
package diskhealth

// Protocol is how the disk is read.
type Protocol string

const (
	ProtocolNVMe Protocol = "nvme"
	ProtocolATA  Protocol = "ata"
	ProtocolSCSI Protocol = "scsi"
)

// Verdict is the disk's own judgement of its health, as we read it.
type Verdict string

const (
	// VerdictOK: the disk reports nothing that predicts failure.
	VerdictOK Verdict = "ok"
	// VerdictDegraded: it works but reports a warning that predicts
	// failure (NVMe critical warning, spare below threshold, SMART
	// attribute past threshold, pending or reallocated sectors).
	VerdictDegraded Verdict = "degraded"
	// VerdictFailing: SMART overall status FAILED, a pre-failure ATA
	// attribute at or below its threshold now, or the NVMe drive is
	// read-only.
	VerdictFailing Verdict = "failing"
	// VerdictUnknown: the health could not be read; Reason says why.
	VerdictUnknown Verdict = "unknown"
)

// Health is one disk's health at one read. Pointer fields are nil when the
// disk does not report the fact.
type Health struct {
	// Disk is the kernel name of the whole disk: "nvme0n1", "sda". For
	// NVMe the controller read is Controller ("nvme0").
	Disk       string
	Controller string
	Protocol   Protocol
	Model      string
	Serial     string
	Verdict    Verdict
	// Problems say what predicts failure and how bad, one per fact, in
	// the operator's words: "available spare 3% is below its threshold
	// 10%", "12 pending sectors". Empty when Verdict is ok.
	Problems []string
	// Reason says why the health is unknown (VerdictUnknown).
	Reason string
	// NoSource: unknown because the device has no health to read by its
	// nature (virtio, loop, a bus we have no reader for), not because a
	// read failed; said once at debug level, not as a warning.
	NoSource bool

	// NVMe SMART / Health log (NVMe base spec, log page 0x02).
	CriticalWarning *uint8
	AvailableSpare  *uint8 // percent
	SpareThreshold  *uint8 // percent
	PercentageUsed  *uint8 // percent of rated life, may exceed 100
	MediaErrors     *uint64

	// ATA SMART attributes (raw values) and SCSI grown defects.
	ReallocatedSectors   *uint64
	PendingSectors       *uint64
	OfflineUncorrectable *uint64

	TemperatureCelsius *float64
	PowerOnHours       *uint64
}
