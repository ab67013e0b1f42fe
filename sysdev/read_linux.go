package sysdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxAttrSize bounds one attribute read. A sysfs attribute is at most one
// page (64 KiB on 64K-page kernels); anything larger is not an attribute.
const MaxAttrSize = 64 << 10

// firstReadSize covers every attribute of a 4K-page kernel in one read(2).
const firstReadSize = 4096

// Dir is an open directory whose files are read confined beneath it: a
// path (or a symlink on it) that leads out of the directory is refused, so
// a reader given --path.sysfs never reads outside it. Not safe for
// concurrent use (it reuses one buffer); Close releases it.
type Dir struct {
	fd   int
	path string
	buf  []byte
	// listed is set after Names: the next listing rewinds first.
	listed bool
	// noOpenat2 is set once the kernel refused openat2 (before 5.6, or a
	// seccomp filter); reads then resolve through os.Root instead.
	noOpenat2 bool
}

// Open opens a directory as the root for confined reads.
func Open(path string) (*Dir, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{fd: fd, path: path}, nil
}

// Path is the directory's path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// OpenDir opens a directory beneath d (symlinks followed while they stay
// beneath d).
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	fd, err := d.openBeneath(rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &Dir{fd: fd, path: filepath.Join(d.path, rel), noOpenat2: d.noOpenat2}, nil
}

// Read reads one attribute beneath d: one open, normally one read, one
// close (os.ReadFile costs twice the system calls), with surrounding white
// space trimmed. Errors are *fs.PathError naming the full path; a missing
// file matches fs.ErrNotExist. A file larger than MaxAttrSize is an error.
func (d *Dir) Read(rel string) (string, error) {
	path := filepath.Join(d.path, rel)
	fd, err := d.openBeneath(rel, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if d.buf == nil {
		d.buf = make([]byte, firstReadSize)
	}
	n, err := retryEINTR(func() (int, error) { return unix.Read(fd, d.buf) })
	if err != nil {
		return "", &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if n < len(d.buf) {
		// sysfs and seq_file hand over all they have in one read when it
		// fits: a short read is the whole attribute.
		return strings.TrimSpace(string(d.buf[:n])), nil
	}
	data := append([]byte(nil), d.buf[:n]...)
	for {
		if len(data) > MaxAttrSize {
			return "", &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", MaxAttrSize)}
		}
		n, err = retryEINTR(func() (int, error) { return unix.Read(fd, d.buf) })
		if err != nil {
			return "", &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return strings.TrimSpace(string(data)), nil
		}
		data = append(data, d.buf[:n]...)
	}
}

// Names lists the directory (unsorted, without . and ..).
func (d *Dir) Names() ([]string, error) {
	if d.listed {
		if _, err := unix.Seek(d.fd, 0, 0); err != nil {
			return nil, &fs.PathError{Op: "seek", Path: d.path, Err: err}
		}
	}
	d.listed = true
	buf := make([]byte, 8192)
	var names []string
	for {
		n, err := retryEINTR(func() (int, error) { return unix.ReadDirent(d.fd, buf) })
		if err != nil {
			return names, &fs.PathError{Op: "readdirent", Path: d.path, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// Readlink reads a symlink that is a direct entry of d (an md rdN slot
// link); its target is returned as is, not followed.
func (d *Dir) Readlink(name string) (string, error) {
	path := filepath.Join(d.path, name)
	if !isName(name) {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: errors.New("not a directory entry name")}
	}
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(d.fd, name, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 4096 { // PATH_MAX
			return "", &fs.PathError{Op: "readlink", Path: path, Err: errors.New("target longer than PATH_MAX")}
		}
		buf = make([]byte, 2*len(buf))
	}
}

func isName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// openBeneath opens rel relative to d with the kernel refusing any
// resolution that leaves d (RESOLVE_BENEATH: no absolute paths or symlinks,
// no ".." above d) and magic /proc links.
func (d *Dir) openBeneath(rel string, flags int) (int, error) {
	path := filepath.Join(d.path, rel)
	if !d.noOpenat2 {
		how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := retryEINTR(func() (int, error) { return unix.Openat2(d.fd, rel, &how) })
		switch {
		case err == nil:
			return fd, nil
		case err == unix.ENOSYS || err == unix.EPERM:
			// Kernel before 5.6 or openat2 filtered: fall back below.
			// (EPERM is also a real permission error; the fallback then
			// reports it again.)
			d.noOpenat2 = true
		case err == unix.EXDEV:
			return -1, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("leads outside %s", d.path)}
		default:
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
	return d.openInRoot(rel, flags)
}

// openInRoot is openBeneath through os.Root, which resolves each path
// component itself and refuses those that leave the root: more system
// calls, same confinement.
func (d *Dir) openInRoot(rel string, flags int) (int, error) {
	path := filepath.Join(d.path, rel)
	// Re-open the directory through its descriptor so os.Root confines to
	// the very directory d holds, not whatever d.path names now.
	r, err := os.OpenRoot(fmt.Sprintf("/proc/self/fd/%d", d.fd))
	if err != nil {
		r, err = os.OpenRoot(d.path)
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: d.path, Err: errors.Unwrap(err)}
	}
	defer r.Close()
	f, err := r.OpenFile(rel, flags&^unix.O_DIRECTORY, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if strings.Contains(fmt.Sprint(err), "escapes") {
			err = fmt.Errorf("leads outside %s", d.path)
		}
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if flags&unix.O_DIRECTORY != 0 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return -1, &fs.PathError{Op: "open", Path: path, Err: unix.ENOTDIR}
		}
	}
	return fd, nil
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}
