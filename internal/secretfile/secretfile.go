// Package secretfile reads the files spofwatch takes credentials and trust
// anchors from (passwords, bearer tokens, HMAC keys, CA bundles), with one
// rule for all of them: bounded in size, trailing whitespace trimmed, an
// empty secret refused, and a flag when others may read the file.
package secretfile

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize bounds a secret file. Real secrets are a line; a larger file is a
// wrong path (a log, a device), not a secret.
const MaxSize = 64 << 10

// MaxCASize bounds a CA bundle file (the system bundle is about 220 KiB).
const MaxCASize = 1 << 20

// Secret is a secret read from a file.
type Secret struct {
	// Value is the file's content without trailing whitespace: the newline
	// editors add (and CR, spaces, tabs) is never part of a secret.
	Value []byte
	// Mode is the file's permission bits when read.
	Mode fs.FileMode
}

// ReadableByOthers says whether others (not the owner, not the group) may
// read the file. Group-readable is the packaged setup (root:spofwatch 0640
// for a service running as spofwatch), so it is no reason to warn; a
// world-readable secret is, once when the config is loaded.
func (s Secret) ReadableByOthers() bool { return s.Mode.Perm()&0o004 != 0 }

// Read reads the secret in path. Errors name the file, never its content.
func Read(path string) (Secret, error) {
	b, mode, err := read(path, MaxSize)
	if err != nil {
		return Secret{}, fmt.Errorf("cannot read secret file %s: %w", path, err)
	}
	b = bytes.TrimRight(b, "\r\n\t ")
	if len(b) == 0 {
		return Secret{}, fmt.Errorf("secret file %s is empty", path)
	}
	return Secret{Value: b, Mode: mode}, nil
}

// CertPool reads a PEM CA bundle from path.
func CertPool(path string) (*x509.CertPool, error) {
	b, _, err := read(path, MaxCASize)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA file %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", path)
	}
	return pool, nil
}

// ErrTooLarge is returned (wrapped) for a file beyond its size limit.
var ErrTooLarge = errors.New("file too large")

// read reads at most limit bytes of path, refusing a larger file, and
// returns its permission bits. It reads through a limited reader, so a
// device or pipe that never ends costs limit bytes, not all memory.
func read(path string, limit int64) ([]byte, fs.FileMode, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer before the regular-file check below could refuse it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	// A FIFO or device would block the read (a reload would hang the
	// daemon's main loop) or never end.
	switch t := fi.Mode().Type(); {
	case t.IsRegular():
	case t&fs.ModeDir != 0:
		return nil, 0, errors.New("is a directory")
	case t&fs.ModeNamedPipe != 0:
		return nil, 0, errors.New("is a FIFO, not a regular file")
	case t&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return nil, 0, errors.New("is a device, not a regular file")
	default:
		return nil, 0, fmt.Errorf("is not a regular file (%s)", t)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	if int64(len(b)) > limit {
		return nil, 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, fi.Mode(), nil
}

// unwrapPath drops the *PathError wrapper: the caller names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
