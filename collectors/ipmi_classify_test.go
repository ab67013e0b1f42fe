package collectors

import (
	"testing"

	"github.com/spofwatch/spofwatch/ipmi"
)

func TestClassifyOnlyStatusPSUSensorsAreMembers(t *testing.T) {
	for _, tt := range []struct {
		name string
		sdr  ipmi.SDR
		want sensorClass
	}{
		{"PSU status", ipmi.SDR{SensorType: ipmi.SensorTypePowerSupply, ReadingType: ipmi.ReadingTypeSensorSpecific}, classPSU},
		{"PSU watts (threshold)", ipmi.SDR{SensorType: ipmi.SensorTypePowerSupply, ReadingType: ipmi.ReadingTypeThreshold}, classOther},
		{"power unit redundancy", ipmi.SDR{SensorType: ipmi.SensorTypePowerUnit, ReadingType: ipmi.ReadingTypeRedundancy}, classPowerRedundancy},
		{"fan redundancy", ipmi.SDR{SensorType: ipmi.SensorTypeFan, ReadingType: ipmi.ReadingTypeRedundancy}, classFanRedundancy},
	} {
		if got := classify(tt.sdr); got != tt.want {
			t.Errorf("%s: class %v, want %v", tt.name, got, tt.want)
		}
	}
}
