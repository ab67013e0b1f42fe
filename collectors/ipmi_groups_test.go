package collectors_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/collectors"
	"github.com/spofwatch/spofwatch/ipmi"
	"github.com/spofwatch/spofwatch/spof"
)

// Sensor records as the simulator's SDRs describe them (ipmi/testdata/sim).
func psuSensor(name string, n uint8, states uint16) ipmi.SensorState {
	return ipmi.SensorState{SDR: ipmi.SDR{Name: name, Number: n, OwnerID: 0x20, SensorType: ipmi.SensorTypePowerSupply,
		ReadingType: ipmi.ReadingTypeSensorSpecific, ReadingMask: 0x0f}, Reading: ipmi.Reading{States: states}}
}

func redundancySensor(name string, n, typ uint8, states uint16) ipmi.SensorState {
	return ipmi.SensorState{SDR: ipmi.SDR{Name: name, Number: n, OwnerID: 0x20, SensorType: typ,
		ReadingType: ipmi.ReadingTypeRedundancy}, Reading: ipmi.Reading{States: states}}
}

func fanSensor(name string, n uint8, thresholds uint16) ipmi.SensorState {
	return ipmi.SensorState{SDR: ipmi.SDR{Name: name, Number: n, OwnerID: 0x20, SensorType: ipmi.SensorTypeFan,
		ReadingType: ipmi.ReadingTypeThreshold}, Reading: ipmi.Reading{Raw: 60, States: thresholds}}
}

// TestIPMIGroups covers states ipmi_sim cannot produce over its console:
// unreadable sensors, unscanned fans, chassis faults, power-unit failures,
// duplicate names and power feeds.
func TestIPMIGroups(t *testing.T) {
	policyOn := &ipmi.ChassisStatus{RestorePolicy: ipmi.RestorePrevious}
	unreadable := psuSensor("PSU2 Status", 0x11, 0)
	unreadable.Err = "Get Sensor Reading: completion code 0xcb"
	unscanned := fanSensor("FAN4", 0x23, 0)
	unscanned.Reading.ScanningDisabled = true
	unavailable := psuSensor("PSU2 Status", 0x11, 0)
	unavailable.Reading.Unavailable = true
	cases := []struct {
		name        string
		st          ipmi.State
		psuRequired int
		feeds       map[string]string
		power       spof.GroupState // "" = no power group
		cooling     spof.GroupState
		findings    []string // "code member" of every finding at warning or above
		check       func(t *testing.T, gs []spof.Group)
	}{
		{
			name: "PSU that errors is unknown on its own",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), unreadable,
				redundancySensor("PS Redundancy", 0x12, ipmi.SensorTypePowerUnit, 1)}},
			power:    spof.StateUnknown,
			findings: []string{"collector_unavailable PSU2 Status"},
		},
		{
			name:     "PSU reading not available is unknown",
			st:       ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), unavailable}},
			power:    spof.StateUnknown,
			findings: []string{"collector_unavailable PSU2 Status"},
		},
		{
			name: "unscanned fan header is left out, not unknown",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{fanSensor("FAN1", 0x20, 0), fanSensor("FAN2", 0x21, 0),
				fanSensor("FAN3", 0x22, ipmi.BelowLowerNonCritical), unscanned}},
			cooling:  spof.StateRedundant,
			findings: []string{"member_degraded FAN3"},
			check: func(t *testing.T, gs []spof.Group) {
				if len(gs[0].Members) != 3 || !hasAttr(gs[0], "not_monitored", "FAN4") {
					t.Errorf("fans = %+v", gs[0])
				}
			},
		},
		{
			name: "chassis faults and always-off",
			st: ipmi.State{Chassis: &ipmi.ChassisStatus{PowerFault: true, PowerOverload: true, CoolingFault: true, RestorePolicy: ipmi.RestoreAlwaysOff},
				Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
					fanSensor("FAN1", 0x20, 0), fanSensor("FAN2", 0x21, 0)}},
			power: spof.StateRedundant, cooling: spof.StateRedundant,
			findings: []string{"chassis_power_fault ", "chassis_cooling_fault ", "chassis_power_overload ", "power_restore_always_off "},
		},
		{
			name: "power unit failure",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				{SDR: ipmi.SDR{Name: "Power Unit", Number: 0x30, OwnerID: 0x20, SensorType: ipmi.SensorTypePowerUnit, ReadingType: ipmi.ReadingTypeSensorSpecific},
					Reading: ipmi.Reading{States: 1 << 6}}}},
			power:    spof.StateRedundant,
			findings: []string{"group_down Power Unit"},
		},
		{
			name: "psu_required from config beats the redundancy sensor",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				psuSensor("PSU3 Status", 0x12, 1), redundancySensor("PS Redundancy", 0x13, ipmi.SensorTypePowerSupply, 1)}},
			psuRequired: 1,
			power:       spof.StateRedundant,
			check: func(t *testing.T, gs []spof.Group) {
				if gs[0].Required != 1 {
					t.Errorf("required = %d, want 1 from config", gs[0].Required)
				}
			},
		},
		{
			name: "required inferred N-1 from the redundancy sensor",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				psuSensor("PSU3 Status", 0x12, 1|1<<1), redundancySensor("PS Redundancy", 0x13, ipmi.SensorTypePowerSupply, 1<<1)}},
			power:    spof.StateRedundancyLost,
			findings: []string{"redundancy_lost "},
			check: func(t *testing.T, gs []spof.Group) {
				if gs[0].Required != 2 {
					t.Errorf("required = %d, want 2 (3 PSUs - 1)", gs[0].Required)
				}
			},
		},
		{
			name: "no redundancy sensor and no config: 1 required",
			st:   ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1)}},
			// A single PSU by default is no redundancy.
			power:    spof.StateNoRedundancy,
			findings: []string{"no_redundancy "},
		},
		{
			name:     "power feeds become failure domains",
			st:       ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1)}},
			feeds:    map[string]string{"PSU1 Status": "ups-a", "PSU2 Status": "ups-a"},
			power:    spof.StateRedundant,
			findings: []string{"shared_failure_domain feed=ups-a"},
		},
		{
			name:  "duplicate SDR names get the sensor number",
			st:    ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PS Status", 0x10, 1), psuSensor("PS Status", 0x11, 1)}},
			power: spof.StateRedundant,
			check: func(t *testing.T, gs []spof.Group) {
				if gs[0].Members[0].Name == gs[0].Members[1].Name {
					t.Errorf("members share the name %q", gs[0].Members[0].Name)
				}
			},
		},
		{
			name: "other redundancy sensors are host facts",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				redundancySensor("Mem Redundancy", 0x40, 0x0c, 1<<1)}},
			power:    spof.StateRedundant,
			findings: []string{"redundancy_lost Mem Redundancy"},
		},
		// A redundancy sensor without unit sensors still makes its group,
		// with the sensor's verdict, so the finding names the group.
		{
			name: "fan redundancy sensor without fan sensors",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				redundancySensor("Fan Redundancy", 0x13, ipmi.SensorTypeFan, 1<<2)}},
			power: spof.StateRedundant, cooling: spof.StateDegraded,
			findings: []string{"redundancy_degraded "},
		},
		{
			name: "power redundancy sensor without PSU sensors",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{fanSensor("FAN1", 0x20, 0), fanSensor("FAN2", 0x21, 0),
				redundancySensor("PS Redundancy", 0x12, ipmi.SensorTypePowerUnit, 1<<1)}},
			power: spof.StateRedundancyLost, cooling: spof.StateRedundant,
			findings: []string{"redundancy_lost "},
		},
		{
			name: "fully redundant fan sensor without fan sensors",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				redundancySensor("Fan Redundancy", 0x13, ipmi.SensorTypeFan, 1)}},
			power: spof.StateRedundant, cooling: spof.StateRedundant,
		},
		{
			name: "unreadable fan redundancy sensor without fan sensors is unknown",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				redundancySensor("Fan Redundancy", 0x13, ipmi.SensorTypeFan, 0)}},
			power: spof.StateRedundant, cooling: spof.StateUnknown,
			findings: []string{"collector_unavailable "},
		},
		// With every PSU required, a BMC that says degraded is outvoted by
		// the count's no redundancy: the state's finding is no_redundancy,
		// the sensor an info notice, never a redundancy_degraded beside a
		// no_redundancy state.
		{
			name: "psu_required equal to the PSU count against a degraded BMC sensor",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				redundancySensor("PS Redundancy", 0x12, ipmi.SensorTypePowerUnit, 1<<2)}},
			psuRequired: 2,
			power:       spof.StateNoRedundancy,
			findings:    []string{"no_redundancy "},
		},
		{
			name: "BMC redundancy sensor with nothing asserted is unknown, never fine",
			st: ipmi.State{Chassis: policyOn, Sensors: []ipmi.SensorState{psuSensor("PSU1 Status", 0x10, 1), psuSensor("PSU2 Status", 0x11, 1),
				redundancySensor("PS Redundancy", 0x12, ipmi.SensorTypePowerUnit, 0)}},
			power:    spof.StateRedundant,
			findings: []string{"collector_unavailable PS Redundancy"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			groups, host := collectors.IPMIGroups(&tc.st, tc.psuRequired)
			groups = collectors.ApplyPowerFeeds(groups, tc.feeds) // as the agent composes groups
			r := spof.Evaluate(spof.Input{Groups: groups, HostConditions: host})
			state := func(id string) spof.GroupState {
				for _, g := range r.Groups {
					if g.Group.ID == id {
						return g.State
					}
				}
				return ""
			}
			if got := state(collectors.IPMIPowerGroup); got != tc.power {
				t.Errorf("power = %q, want %q\n%s", got, tc.power, dump(r))
			}
			if got := state(collectors.IPMICoolingGroup); got != tc.cooling {
				t.Errorf("cooling = %q, want %q\n%s", got, tc.cooling, dump(r))
			}
			var got []string
			for _, f := range r.Findings {
				if f.Severity >= spof.SeverityWarning {
					got = append(got, string(f.Code)+" "+f.Member)
				}
			}
			if strings.Join(slices.Sorted(slices.Values(got)), ",") != strings.Join(slices.Sorted(slices.Values(tc.findings)), ",") {
				t.Errorf("findings %q, want %q\n%s", got, tc.findings, dump(r))
			}
			// Every finding about hardware names its group; only the
			// memory redundancy sensor, of a kind with no group, is a
			// host-wide fact.
			for _, f := range r.Findings {
				if f.Group == "" && !spof.HostWide(f.Code) && f.Member != "Mem Redundancy" {
					t.Errorf("finding about hardware without a group: %+v", f)
				}
			}
			if tc.check != nil {
				tc.check(t, groups)
			}
		})
	}
}

func hasAttr(g spof.Group, key, value string) bool {
	for _, a := range g.Attributes {
		if a.Key == key && strings.Contains(a.Value, value) {
			return true
		}
	}
	return false
}
