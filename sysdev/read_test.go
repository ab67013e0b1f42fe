package sysdev

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readTree lays out a root with the cases the reader must tell apart, and
// a sibling directory outside it.
func readTree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	files := map[string]string{
		"root/class/net/eth0/operstate": "up\n",
		"root/devices/big":              strings.Repeat("x", MaxAttrSize+1),
		"root/devices/page":             strings.Repeat("y", firstReadSize) + "z\n",
		"outside/secret":                "outside\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(top, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"root/class/net/eth1": "eth0",                        // stays inside
		"root/escape":         "../outside/secret",           // relative, leaves
		"root/absolute":       filepath.Join(top, "outside"), // absolute, leaves
		"root/rd0":            "dev-sda1",
	} {
		if err := os.Symlink(target, filepath.Join(top, link)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(top, "root")
}

func TestDirRead(t *testing.T) {
	tests := []struct {
		rel     string
		want    string
		wantErr string // substring; "" for success
		notExst bool
	}{
		{rel: "class/net/eth0/operstate", want: "up"},
		{rel: "class/net/eth1/operstate", want: "up"},
		{rel: "devices/page", want: strings.Repeat("y", firstReadSize) + "z"},
		{rel: "devices/big", wantErr: "larger than"},
		{rel: "class/net/eth0/carrier", wantErr: "no such file", notExst: true},
		{rel: "escape", wantErr: "outside"},
		{rel: "absolute/secret", wantErr: "outside"},
		{rel: "../outside/secret", wantErr: "outside"},
	}
	for _, fallback := range []bool{false, true} {
		root := readTree(t)
		d, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		// The os.Root path is what kernels before 5.6 take.
		d.noOpenat2 = fallback
		for _, tt := range tests {
			got, err := d.Read(tt.rel)
			name := tt.rel
			if fallback {
				name += " (os.Root)"
			}
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("%s: %.20q, %v; want %.20q", name, got, err, tt.want)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: %.20q, %v; want an error with %q", name, got, err, tt.wantErr)
				continue
			}
			if !strings.Contains(err.Error(), filepath.Join(root, tt.rel)) {
				t.Errorf("%s: error %q does not name the path", name, err)
			}
			if errors.Is(err, fs.ErrNotExist) != tt.notExst {
				t.Errorf("%s: errors.Is(ErrNotExist) = %v, want %v", name, !tt.notExst, tt.notExst)
			}
		}
		sub, err := d.OpenDir("class/net/eth1")
		if err != nil {
			t.Fatalf("OpenDir through an inside link: %v", err)
		}
		if v, err := sub.Read("operstate"); err != nil || v != "up" {
			t.Errorf("read in sub dir = %q, %v", v, err)
		}
		if _, err := sub.Read("../eth0/operstate"); err == nil {
			t.Error("a sub dir must confine to itself, not only to the root")
		}
		sub.Close()
		if _, err := d.OpenDir("absolute"); err == nil {
			t.Error("OpenDir out of the root must fail")
		}
	}
}

func TestDirNamesAndReadlink(t *testing.T) {
	d, err := Open(readTree(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 2 { // a second listing rewinds
		names, err := d.Names()
		slices.Sort(names)
		if want := []string{"absolute", "class", "devices", "escape", "rd0"}; err != nil || !slices.Equal(names, want) {
			t.Errorf("Names = %v, %v; want %v", names, err, want)
		}
	}
	if v, err := d.Readlink("rd0"); err != nil || v != "dev-sda1" {
		t.Errorf("Readlink(rd0) = %q, %v", v, err)
	}
	if _, err := d.Readlink("class/net/eth1"); err == nil {
		t.Error("Readlink takes entry names only")
	}
}

func TestSysReadAttr(t *testing.T) {
	s := New(readTree(t))
	if v, err := s.ReadAttr("class/net/eth1/operstate"); err != nil || v != "up" {
		t.Errorf("ReadAttr = %q, %v", v, err)
	}
	if _, err := s.ReadAttr("escape"); err == nil {
		t.Error("ReadAttr out of the root must fail")
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing")).ReadAttr("x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v, want ErrNotExist", err)
	}
}
