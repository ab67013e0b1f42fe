package ups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// nutConfDirs are where NUT's configuration lives, relative to the root:
// Debian and most builds use etc/nut, Fedora and RHEL etc/ups.
var nutConfDirs = []string{"etc/nut", "etc/ups"}

// maxNUTConfBytes bounds the read of nut.conf (Debian's is under 2 KiB).
const maxNUTConfBytes = 64 << 10

// LocalServerConfigured reports whether NUT is set up to run upsd on this
// host, reading fsys (the host's root, or --path.rootfs): port 3493 is
// unprivileged, so without this anyone on the host could answer there and
// be believed. why says what was found, for a log line.
//
// Of etc/nut and etc/ups, the first with a nut.conf decides:
//   - nut.conf must set MODE=standalone or MODE=netserver (the modes that
//     start upsd; none, netclient, controlled and manual do not), and
//   - upsd.conf or ups.conf must exist beside it (they come with the
//     server package; a client-only install has neither).
//
// nut.conf is mode 0640 root:nut on Debian, so an agent outside group nut
// cannot read MODE: then the two server files alone decide, which still
// tells a server install from a client-only one or no NUT at all.
func LocalServerConfigured(fsys fs.FS) (ok bool, why string) {
	for _, dir := range nutConfDirs {
		conf := path.Join(dir, "nut.conf")
		mode, err := readNUTMode(fsys, conf)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		server := ""
		for _, f := range []string{"upsd.conf", "ups.conf"} {
			if _, serr := fs.Stat(fsys, path.Join(dir, f)); serr == nil {
				server = path.Join(dir, f)
				break
			}
		}
		switch {
		case err != nil && !errors.Is(err, fs.ErrPermission):
			return false, fmt.Sprintf("%s: %v", conf, err)
		case err != nil && server == "":
			return false, fmt.Sprintf("%s is unreadable (%v) and there is no upsd.conf or ups.conf beside it", conf, err)
		case err != nil:
			return true, fmt.Sprintf("%s is unreadable (%v), but %s exists", conf, err, server)
		case mode != "standalone" && mode != "netserver":
			return false, fmt.Sprintf("%s sets MODE=%q: no local upsd", conf, mode)
		case server == "":
			return false, fmt.Sprintf("%s sets MODE=%s but there is no upsd.conf or ups.conf beside it", conf, mode)
		default:
			return true, fmt.Sprintf("%s sets MODE=%s and %s exists", conf, mode, server)
		}
	}
	return false, fmt.Sprintf("no nut.conf in %s", strings.Join(nutConfDirs, " or "))
}

// readNUTMode returns the last MODE= of a nut.conf (a shell fragment: the
// last assignment wins), without quotes; "" when there is none.
func readNUTMode(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ParseNUTMode(io.LimitReader(f, maxNUTConfBytes))
}

// ParseNUTMode returns the value of the last MODE assignment in nut.conf
// text, "" when there is none. It reads what upsd's own wrapper reads: a
// shell-style KEY=value line, value optionally quoted, # comments.
func ParseNUTMode(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	mode := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) != "MODE" {
			continue
		}
		val = strings.TrimSpace(val)
		if i := strings.Index(val, " #"); i >= 0 {
			val = strings.TrimSpace(val[:i])
		}
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		mode = strings.TrimSpace(val)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read nut.conf: %w", err)
	}
	return mode, nil
}
