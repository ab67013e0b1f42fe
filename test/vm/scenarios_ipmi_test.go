package vm

import . "github.com/spofwatch/spofwatch/test/vm/scenario"

// In-band IPMI (issue 5): QEMU's KCS interface backed by ipmi_sim on the
// host (testdata/ipmi), read by spofwatch through /dev/ipmi0. Sensor 3 is
// "PSU2 Status"; bit 1 is "failure detected".
var ipmiScenarios = []Scenario{
	{
		Name:  "ipmi/in-band-psu",
		Needs: []string{"ipmi"},
		Steps: []Step{
			{Name: "all PSUs ok", TimeoutSeconds: 60,
				Wait: []FileCond{{Path: "/proc/devices", Contains: "ipmidev"}, {Path: "/sys/class/ipmi/ipmi0/dev", Contains: ":"}},
				// Not "no findings at all": ipmi_sim's chassis reports the
				// power restore policy always-off, which is a true finding.
				Check: &Check{Expect: []Expect{{Group: "power/ipmi/psu", State: "redundant", Working: N(2),
					NoFindings: []string{"redundancy_lost", "redundancy_degraded", "group_down", "member_degraded", "collector_unavailable"}}}}},
			{Name: "PSU2 failed", Host: []string{"ipmisim sensor_set_bit 0x20 0 3 1 1 1"},
				Check: &Check{Expect: []Expect{{Group: "power/ipmi/psu", State: "redundancy_lost", Working: N(1),
					Members:  map[string]string{"PSU1 Status": "ok", "PSU2 Status": "failed"},
					Findings: []FindingExpect{{Code: "redundancy_lost", Severity: "critical", Summary: "PSU2"}}}}}},
			{Name: "PSU2 recovered", Host: []string{"ipmisim sensor_set_bit 0x20 0 3 1 0 1"},
				Check: &Check{Expect: []Expect{{Group: "power/ipmi/psu", State: "redundant", Working: N(2), NoFindings: []string{"redundancy_lost"}}}}},
		},
	},
}
