package multipath_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/spofwatch/spofwatch/multipath"
)

func TestParseDMStatus(t *testing.T) {
	tests := []struct {
		name    string
		params  string
		want    multipath.DMStatus
		wantErr string
	}{
		{
			// dmsetup status of the test/vm map after `dmsetup message
			// mpatha 0 fail_path 8:16` (testdata/PROVENANCE.md).
			name:   "round-robin, one path failed",
			params: "2 1 0 0 1 1 E 0 2 0 8:0 A 0 8:48 F 1 ",
			want: multipath.DMStatus{ActiveGroup: 1, Groups: []multipath.DMPathGroup{{State: "E", Paths: []multipath.DMPathStatus{
				{Dev: "8:0", Active: true}, {Dev: "8:48", Active: false, FailCount: 1}}}}},
		},
		{
			// multipathd's usual shape: queue_if_no_path, an ALUA handler
			// (its args are not shown in status), two groups, service-time
			// with 2 info args per path.
			name:   "two groups, service-time, queue_if_no_path",
			params: "2 1 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 65:16 A 0 0 1",
			want: multipath.DMStatus{ActiveGroup: 1, Groups: []multipath.DMPathGroup{
				{State: "A", Paths: []multipath.DMPathStatus{{Dev: "8:32", Active: true}}},
				{State: "E", Paths: []multipath.DMPathStatus{{Dev: "65:16", Active: true}}}}},
		},
		{
			name:   "bypassed group, queue-length (1 info arg)",
			params: "2 0 0 0 2 2 D 0 1 1 8:0 F 3 0 A 0 1 1 8:16 A 0 5",
			want: multipath.DMStatus{ActiveGroup: 2, Groups: []multipath.DMPathGroup{
				{State: "D", Paths: []multipath.DMPathStatus{{Dev: "8:0", FailCount: 3}}},
				{State: "A", Paths: []multipath.DMPathStatus{{Dev: "8:16", Active: true}}}}},
		},
		{name: "no groups", params: "2 0 0 0 0 0", want: multipath.DMStatus{}},
		{name: "old kernel: group 1 of none", params: "2 0 0 0 0 1", want: multipath.DMStatus{ActiveGroup: 1}},
		{name: "empty", params: "", wantErr: "ends before"},
		{name: "truncated path", params: "2 0 0 0 1 1 A 0 2 0 8:0 A 0 8:16", wantErr: "ends before"},
		{name: "bad path state", params: "2 0 0 0 1 1 A 0 1 0 8:0 X 0", wantErr: "want A or F"},
		{name: "bad group state", params: "2 0 0 0 1 1 Q 0 1 0 8:0 A 0", wantErr: "want A, E or D"},
		{name: "not a device", params: "2 0 0 0 1 1 A 0 1 0 sda A 0", wantErr: "not major:minor"},
		{name: "trailing fields", params: "2 0 0 0 1 1 A 0 1 0 8:0 A 0 junk", wantErr: "unexpected fields"},
		{name: "huge count", params: "99999999999 0", wantErr: "not a number"},
		{name: "count beyond the line", params: "5 0 0", wantErr: "ends inside"},
		{name: "active group beyond", params: "2 0 0 0 1 3 A 0 0 0", wantErr: "active path group 3 of 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := multipath.ParseDMStatus(tc.params)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseDMSetupStatus(t *testing.T) {
	out, err := os.ReadFile("testdata/dmsetup-status-vm.txt")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := multipath.ParseDMSetupStatus(out, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 2 {
		t.Fatalf("maps %v, want mpatha and mpathb", maps)
	}
	a := maps["mpatha"].Paths()
	if len(a) != 2 || !a[0].Active || a[1].Active || a[1].FailCount != 1 {
		t.Errorf("mpatha paths %+v, want the first active, the second failed once", a)
	}
	if b := maps["mpathb"].Paths(); len(b) != 2 || !b[0].Active || !b[1].Active {
		t.Errorf("mpathb paths %+v, want both active", b)
	}

	// One device-mapper device: dmsetup prints no name.
	one, err := multipath.ParseDMSetupStatus([]byte("0 32768 multipath 2 0 0 0 1 1 A 0 2 0 8:0 A 0 8:16 A 0\n"), "mpatha")
	if err != nil || len(one["mpatha"].Paths()) != 2 {
		t.Errorf("single device: %v %v", one, err)
	}
	if _, err := multipath.ParseDMSetupStatus([]byte("0 32768 multipath 2 0 0 0 0 0\n"), ""); err == nil {
		t.Error("a nameless line with several devices must be an error")
	}
	// Other targets (linear LVM volumes) are not ours; "No devices found"
	// is none.
	none, err := multipath.ParseDMSetupStatus([]byte("vg-root: 0 2048 linear \nNo devices found\n"), "")
	if err != nil || len(none) != 0 {
		t.Errorf("non-multipath lines: %v %v", none, err)
	}
	if _, err := multipath.ParseDMSetupStatus([]byte("mpatha: 0 32768 multipath 2 0 0 0 1 1 A 0 1 0 8:0 Z 0\n"), ""); err == nil {
		t.Error("a bad multipath line must be an error")
	}
}

func FuzzParseDMStatus(f *testing.F) {
	for _, s := range []string{"2 0 0 0 1 1 A 0 2 0 8:0 A 0 8:16 F 1", "2 1 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 65:16 A 0 0 1", "", "0 0 0 0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, params string) {
		st, err := multipath.ParseDMStatus(params)
		if err != nil {
			return
		}
		for _, p := range st.Paths() {
			if !strings.Contains(p.Dev, ":") || p.FailCount < 0 {
				t.Fatalf("accepted a bad path %+v from %q", p, params)
			}
		}
	})
}

func FuzzParseDMSetupStatus(f *testing.F) {
	if b, err := os.ReadFile("testdata/dmsetup-status-vm.txt"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("a: b: 0 1 multipath 2 0 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		maps, err := multipath.ParseDMSetupStatus(out, "only")
		if err == nil && len(maps) > len(out) {
			t.Fatalf("%d maps from %d bytes", len(maps), len(out))
		}
	})
}
