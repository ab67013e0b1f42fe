// Package spof holds the redundancy model and Evaluate, the pure function
// that turns redundancy groups into findings. It does no I/O and never reads
// the clock: time comes in through Input.Now, so every verdict can be
// reproduced in a table test.
package spof

import "time"

// Kind is the function a group provides.
type Kind string

const (
	KindPower   Kind = "power"
	KindCooling Kind = "cooling"
	KindStorage Kind = "storage"
	KindNetwork Kind = "network"
	KindUPS     Kind = "ups"
)

// MemberState is the state of one interchangeable part.
type MemberState string

const (
	MemberOK         MemberState = "ok"
	MemberDegraded   MemberState = "degraded"   // working, but at risk
	MemberRebuilding MemberState = "rebuilding" // being resynced: not yet a working copy
	MemberFailed     MemberState = "failed"
	MemberMissing    MemberState = "missing"
	MemberUnknown    MemberState = "unknown"
)

// MemberStates lists every member state, in a stable order (metrics, docs).
var MemberStates = []MemberState{MemberOK, MemberDegraded, MemberRebuilding, MemberFailed, MemberMissing, MemberUnknown}

// Working reports whether a member in this state provides the function.
func (s MemberState) Working() bool { return s == MemberOK || s == MemberDegraded }

// GroupState is the verdict on a whole group.
type GroupState string

const (
	StateRedundant      GroupState = "redundant"
	StateDegraded       GroupState = "degraded"
	StateRedundancyLost GroupState = "redundancy_lost"
	StateNoRedundancy   GroupState = "no_redundancy"
	StateDown           GroupState = "down"
	StateUnknown        GroupState = "unknown"
)

// GroupStates lists every group state, in a stable order (metrics state set).
var GroupStates = []GroupState{StateRedundant, StateDegraded, StateRedundancyLost, StateNoRedundancy, StateDown, StateUnknown}

// Failure-domain keys in common use. Any key may be used; these are the ones
// the built-in collectors set.
const (
	DomainDisk       = "disk"
	DomainController = "controller"
	DomainNICCard    = "nic_card"
	DomainFeed       = "feed"
)

// Member is one part of a group: a PSU, a disk, a bond slave, a UPS.
type Member struct {
	Name  string      `json:"name"`
	State MemberState `json:"state"`
	// Domains names what the member depends on, e.g. {"disk": "sda"}.
	Domains map[string]string `json:"domains"`
	// Detail says why the member is in its state, in the operator's words
	// ("predictive failure", "recovery 42.0%, 3m left").
	Detail string `json:"-"`
}

// Attribute is a source fact shown beside a group (level, mode, active slave).
type Attribute struct {
	Key   string
	Value string
}

// Condition is a source-specific fact that Evaluate turns into a finding,
// for what member counts cannot express: a bond that cannot detect link loss,
// a UPS on battery, a rebuild with its ETA.
//
// A condition without Member that carries a State, or the code of a group
// state (group_down, redundancy_lost, redundancy_degraded, no_redundancy), is
// a source's own verdict on the whole group: a BMC redundancy sensor, a RAID
// controller's array state. Evaluate weighs it against the member count (see
// Worse); the adapter never does.
type Condition struct {
	Code Code
	// State is a source's verdict on the whole group, for verdicts that have
	// no finding code of their own (a BMC sensor saying Fully Redundant).
	// Evaluate sets the finding code from the state.
	State   GroupState
	Member  string
	Summary string
	Details string
	// Severity overrides the code's default severity when set; used for
	// info-level facts and for codes such as an FSD that are always critical.
	Severity Severity
}

// Group is a set of interchangeable members that provide one function.
type Group struct {
	// ID is kind/source/name, e.g. "storage/md/md0".
	ID   string
	Kind Kind
	// Function names what the group provides, for summaries:
	// "power supplies", "md0 (raid1)", "root filesystem /".
	Function string
	// Members may be empty when a source knows the group only as a whole
	// (a BMC fan redundancy sensor without per-fan sensors): the group's
	// state is then its sources' verdict, and unknown without one.
	Members []Member
	// Required is how many working members the function needs.
	Required int
	// UnknownReason, when set, means the group's state could not be read
	// (collector failed, data stale, peer error). Such a group is unknown,
	// never healthy.
	UnknownReason string
	// DownReason, when set, means the group is known to be out whatever its
	// members say (an inactive md array, a bond without an active slave).
	DownReason string
	Attributes []Attribute
	Conditions []Condition
	// Provable says whether this host can prove the group's redundancy
	// (PSUs and fans cannot); Proof is the last evidence, nil when none.
	Provable Provability
	Proof    *Proof
}

// Finding is one active answer to "what would take this host down".
type Finding struct {
	Code     Code      `json:"code"`
	Severity Severity  `json:"severity"`
	Group    string    `json:"group"`
	Member   string    `json:"member"`
	Summary  string    `json:"summary"`
	Details  string    `json:"-"`
	Since    time.Time `json:"since"`
	// Accepted is set while an operator's acceptance covers the finding.
	Accepted *Accepted `json:"accepted,omitempty"`
}

// Key identifies a finding across evaluations; Since is carried over while
// the key stays active.
func (f Finding) Key() string { return string(f.Code) + "\x00" + f.Group + "\x00" + f.Member }

// CollectorStatus is what Evaluate needs to know about one collector.
type CollectorStatus struct {
	Name string
	OK   bool
	// Error is why the last collection failed or why its data is stale.
	Error string
}

// Input is everything one evaluation looks at.
type Input struct {
	Groups     []Group
	Collectors []CollectorStatus
	// HostConditions are host-wide facts (running in a VM) with no group.
	HostConditions []Condition
	// Previous findings keep their Since while they stay active.
	Previous []Finding
	// Acceptances mark matching findings accepted (config `accept:`).
	Acceptances []Acceptance
	// PreviousStates are the groups' states and since of the previous
	// evaluation (or of the history, after a restart): a group whose state
	// is unchanged keeps its StateSince.
	PreviousStates map[string]StateSince
	// ProofPolicy and FirstSeen (group ID -> when the agent first saw it)
	// drive redundancy_untested; a never-proven group ages from FirstSeen.
	ProofPolicy ProofPolicy
	FirstSeen   map[string]time.Time
	// Drills are the groups' latest drills that passed or failed (from the
	// drill audit log): a passed one is a proof, a failed one a proof that
	// failed, a drill_failed finding and the members it names failed. When
	// a group has several, the newest counts.
	Drills []DrillOutcome
	Now    time.Time
}

// GroupResult is the verdict on one group.
type GroupResult struct {
	Group   Group
	State   GroupState
	Working int
	Total   int
	// Since is when the group entered State ("redundant since", "degraded
	// for"), carried from Input.PreviousStates while the state holds.
	Since time.Time
	// LastDrill is the group's latest drill that passed or failed, nil
	// when none.
	LastDrill *DrillOutcome
}

// StateSince is a group's state and when it entered it.
type StateSince struct {
	State GroupState
	Since time.Time
}

// States returns each group's state and since, for the next evaluation's
// PreviousStates.
func (r Result) States() map[string]StateSince {
	out := make(map[string]StateSince, len(r.Groups))
	for _, g := range r.Groups {
		out[g.Group.ID] = StateSince{State: g.State, Since: g.Since}
	}
	return out
}

// Result is the outcome of one evaluation.
type Result struct {
	Groups   []GroupResult
	Findings []Finding
	// AcceptancesMatched are the IDs of acceptances that matched a finding,
	// for the caller to keep each one's LastMatched.
	AcceptancesMatched []string
}

// Worst returns the highest severity among the findings, and false when
// there are none.
func (r Result) Worst() (Severity, bool) {
	var worst Severity
	found := false
	for _, f := range r.Findings {
		if sev := f.EffectiveSeverity(); !found || sev > worst {
			worst, found = sev, true
		}
	}
	return worst, found
}
