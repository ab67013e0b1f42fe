// Package ttar packs and unpacks sysfs/procfs fixture trees for tests.
//
// Trees are kept as text archives in the ttar format of prometheus/procfs
// (records "Directory:", "Path:" with "Lines:" and "Mode:", or "Path:" with
// "SymlinkTo:"), because real sysfs paths contain ':' (PCI addresses),
// which Go module zips reject, and symlinks, which some checkouts lose.
package ttar

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Extract unpacks the archive into a fresh temporary directory and returns
// the directory; the tree holds sys/ and proc/ roots.
func Extract(t testing.TB, archive string) string {
	t.Helper()
	dir := t.TempDir()
	if err := ExtractTo(archive, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ExtractTo unpacks the archive below dir.
func ExtractTo(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	target := func(p string) (string, error) {
		clean := filepath.Clean(p)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return "", fmt.Errorf("%s:%d: path %q leaves the tree", archive, line, p)
		}
		return filepath.Join(dir, clean), nil
	}
	for {
		l, ok := next()
		if !ok {
			break
		}
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "Mode:"):
		case strings.HasPrefix(l, "Directory: "):
			p, err := target(strings.TrimPrefix(l, "Directory: "))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case strings.HasPrefix(l, "Path: "):
			p, err := target(strings.TrimPrefix(l, "Path: "))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			kind, ok := next()
			if !ok {
				return fmt.Errorf("%s:%d: record ends after Path", archive, line)
			}
			switch {
			case strings.HasPrefix(kind, "SymlinkTo: "):
				if err := os.Symlink(strings.TrimPrefix(kind, "SymlinkTo: "), p); err != nil {
					return err
				}
			case strings.HasPrefix(kind, "Lines: "):
				n, err := strconv.Atoi(strings.TrimPrefix(kind, "Lines: "))
				if err != nil {
					return fmt.Errorf("%s:%d: %w", archive, line, err)
				}
				var b strings.Builder
				for i := 0; i < n; i++ {
					c, ok := next()
					if !ok {
						return fmt.Errorf("%s:%d: file %s cut short", archive, line, p)
					}
					b.WriteString(c + "\n")
				}
				if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s:%d: unexpected %q", archive, line, kind)
			}
		default:
			return fmt.Errorf("%s:%d: unexpected %q", archive, line, l)
		}
	}
	return sc.Err()
}

// Pack writes the tree below dir as a ttar archive: directories, regular
// files (as lines) and symlinks, in lexical order so archives diff well.
func Pack(dir string, w io.Writer) error {
	bw := bufio.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "Path: %s\nSymlinkTo: %s\n", rel, target)
		case d.IsDir():
			fmt.Fprintf(bw, "Directory: %s\n", rel)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if len(b) > 0 && b[len(b)-1] != '\n' {
				return fmt.Errorf("%s: ttar keeps whole lines; the file must end in a newline", p)
			}
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(b) == 0 {
				lines = nil
			}
			fmt.Fprintf(bw, "Path: %s\nLines: %d\n", rel, len(lines))
			for _, l := range lines {
				fmt.Fprintln(bw, l)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}
