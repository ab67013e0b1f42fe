package ups

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// deniedFS answers every Open of name with a permission error, as
// /etc/nut/nut.conf (0640 root:nut) does for an agent outside group nut.
type deniedFS struct {
	fstest.MapFS
	name string
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if name == d.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.MapFS.Open(name)
}

func TestLocalServerConfigured(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	server := fstest.MapFS{"etc/nut/upsd.conf": file("LISTEN 127.0.0.1\n"), "etc/nut/ups.conf": file("[a]\n")}
	with := func(extra fstest.MapFS) fstest.MapFS {
		m := fstest.MapFS{}
		for k, v := range server {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		fsys fs.FS
		want bool
		why  string // part of the explanation
	}{
		{"no NUT at all", fstest.MapFS{}, false, "no nut.conf"},
		{"Debian default MODE=none", with(fstest.MapFS{"etc/nut/nut.conf": file("# comment\nMODE=none\n")}), false, `MODE="none"`},
		{"standalone", with(fstest.MapFS{"etc/nut/nut.conf": file("MODE=standalone\n")}), true, "MODE=standalone"},
		{"netserver quoted, comment", with(fstest.MapFS{"etc/nut/nut.conf": file("MODE=\"netserver\" # upsd for the rack\n")}), true, "MODE=netserver"},
		{"last assignment wins", with(fstest.MapFS{"etc/nut/nut.conf": file("MODE=standalone\nMODE=netclient\n")}), false, `MODE="netclient"`},
		{"client-only install", fstest.MapFS{"etc/nut/nut.conf": file("MODE=standalone\n"), "etc/nut/upsmon.conf": file("")}, false, "no upsd.conf or ups.conf"},
		{"Fedora etc/ups", fstest.MapFS{"etc/ups/nut.conf": file("MODE=standalone\n"), "etc/ups/ups.conf": file("")}, true, "etc/ups/ups.conf"},
		{"no MODE line", with(fstest.MapFS{"etc/nut/nut.conf": file("# nothing\n")}), false, `MODE=""`},
		{"nut.conf unreadable, server files", deniedFS{with(fstest.MapFS{"etc/nut/nut.conf": file("MODE=none\n")}), "etc/nut/nut.conf"}, true, "unreadable"},
		{"nut.conf unreadable, no server files", deniedFS{fstest.MapFS{"etc/nut/nut.conf": file("")}, "etc/nut/nut.conf"}, false, "no upsd.conf"},
		{"line too long", with(fstest.MapFS{"etc/nut/nut.conf": file(strings.Repeat("x", 5000) + "\nMODE=standalone\n")}), false, "nut.conf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := LocalServerConfigured(tc.fsys)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("= %v, %q; want %v, containing %q", got, why, tc.want, tc.why)
			}
		})
	}
}

func FuzzParseNUTMode(f *testing.F) {
	for _, s := range []string{"MODE=none\n", "MODE=\"standalone\" # x\n", "# MODE=netserver\nMODE = 'netclient'\n", "MODE=\n", "\"", "MODE=\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		mode, err := ParseNUTMode(strings.NewReader(in))
		if err != nil {
			return
		}
		if strings.Contains(mode, "\n") || len(mode) > len(in) {
			t.Fatalf("mode %q from %q", mode, in)
		}
	})
}
