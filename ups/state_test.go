package ups

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func TestParseStateFixtures(t *testing.T) {
	read := func(file, ups string) State {
		l, err := readListVar(newLineReader(bytes.NewReader(fixture(t, file)), 1024), ups, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return ParseState(l)
	}
	a := read("list-var-ups-a.txt", "ups-a")
	if !a.StatusKnown || !reflect.DeepEqual(a.Status, []Flag{FlagOnline}) || !a.Has(FlagOnline) || a.Has(FlagOnBattery) {
		t.Errorf("ups-a status = %v", a.Status)
	}
	if a.BatteryCharge != (Reading{100, true}) || a.Load != (Reading{23, true}) || a.InputVoltage != (Reading{230.4, true}) {
		t.Errorf("ups-a readings: charge %+v load %+v input %+v", a.BatteryCharge, a.Load, a.InputVoltage)
	}
	if rt, ok := a.Runtime(); !ok || rt != time.Hour {
		t.Errorf("ups-a runtime = %v %v", rt, ok)
	}
	if a.BatteryDate != "2021/03/15" || a.Model != "Dummy 1500" || a.Alarm != "" || len(a.Problems) != 0 {
		t.Errorf("ups-a: %+v", a)
	}
	b := read("list-var-ups-b.txt", "ups-b")
	if !b.Has(FlagOnBattery) || !b.Has(FlagLowBattery) || b.Alarm != "Replace battery!" || b.BatteryDate != "2016/01/10" {
		t.Errorf("ups-b: %+v", b)
	}
}

func TestParseStatePerItem(t *testing.T) {
	s := ParseState(VarList{Vars: map[string]string{
		"ups.status":       "OL RB  FOO",
		"battery.charge":   "abc",
		"battery.runtime":  "-5",
		"ups.load":         "NaN",
		"output.voltage":   "229.5",
		"battery.mfr.date": "2020/01/01",
	}, Malformed: []string{"VAR x"}})
	if !reflect.DeepEqual(s.Status, []Flag{"OL", "RB", "FOO"}) || !reflect.DeepEqual(s.UnknownFlags, []Flag{"FOO"}) {
		t.Errorf("status %v unknown %v", s.Status, s.UnknownFlags)
	}
	if s.BatteryCharge.Valid || s.BatteryRuntime.Valid || s.Load.Valid || !s.OutputVoltage.Valid {
		t.Errorf("readings: %+v", s)
	}
	if len(s.Problems) != 4 {
		t.Errorf("problems = %q, want 4", s.Problems)
	}
	if s.BatteryDate != "2020/01/01" {
		t.Errorf("battery date falls back to battery.mfr.date, got %q", s.BatteryDate)
	}
	if none := ParseState(VarList{}); none.StatusKnown {
		t.Error("missing ups.status taken as known")
	}
}
