package vm

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// cpioEntry is one file, directory or symlink of an initramfs.
type cpioEntry struct {
	mode uint32 // file type and permission bits
	data []byte // file content, or the symlink target
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
)

// cpioArchive is an in-memory "newc" cpio archive, the format the kernel
// unpacks into its rootfs. Writing it ourselves avoids depending on cpio(1)
// and keeps the archive reproducible (no host timestamps or owners).
type cpioArchive struct {
	entries map[string]cpioEntry
}

func newCPIO() *cpioArchive { return &cpioArchive{entries: map[string]cpioEntry{}} }

// add stores an entry and creates its parent directories.
func (a *cpioArchive) add(path string, e cpioEntry) {
	path = strings.TrimPrefix(path, "/")
	for d := parentDir(path); d != ""; d = parentDir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = cpioEntry{mode: cpioDir | 0o755}
		}
	}
	a.entries[path] = e
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func (a *cpioArchive) dir(path string) { a.add(path, cpioEntry{mode: cpioDir | 0o755}) }
func (a *cpioArchive) file(path string, b []byte, perm uint32) {
	a.add(path, cpioEntry{mode: cpioFile | perm, data: b})
}
func (a *cpioArchive) symlink(path, target string) {
	a.add(path, cpioEntry{mode: cpioSymlink | 0o777, data: []byte(target)})
}

// writeTo writes the archive; parents sort before their children.
func (a *cpioArchive) writeTo(w io.Writer) error {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	for _, n := range names {
		e := a.entries[n]
		nlink := uint32(1)
		if e.mode&cpioDir != 0 {
			nlink = 2
		}
		if err := writeCPIORecord(w, ino, e.mode, nlink, n, e.data); err != nil {
			return err
		}
		ino++
	}
	return writeCPIORecord(w, 0, 0, 1, "TRAILER!!!", nil)
}

func writeCPIORecord(w io.Writer, ino, mode, nlink uint32, name string, data []byte) error {
	// newc: magic + 13 eight-digit hex fields, name NUL-terminated, name and
	// data each padded to a multiple of 4 bytes.
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8+len(data)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	buf = append(buf, data...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write cpio record %s: %w", name, err)
	}
	return nil
}
