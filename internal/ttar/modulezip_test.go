package ttar

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Go module zips accept only these characters in file names
// (golang.org/x/mod/module.CheckFilePath). A fixture path with ':' or '*'
// would make `go install github.com/spofwatch/spofwatch/cmd/spofwatch@…`
// fail for everyone, so trees holding such paths must be ttar archives.
var moduleSafe = regexp.MustCompile(`^[A-Za-z0-9!#$%&()+,\-.=@\[\]^_{}~ ]+$`)

func TestRepositoryPathsFitInAModuleZip(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && (name == ".git" || name == "bin" || name == "dist" || name == "work") && p != root {
			return filepath.SkipDir
		}
		if p != root && !moduleSafe.MatchString(name) {
			t.Errorf("%s: name not allowed in a Go module zip; archive the tree with internal/ttar", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPackExtractRoundTrip(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sys/devices/pci0000:00/0000:00:17.0/block/sda"), 0o755))
	must(os.WriteFile(filepath.Join(src, "sys/devices/pci0000:00/0000:00:17.0/block/sda/size"), []byte("100\n"), 0o644))
	must(os.MkdirAll(filepath.Join(src, "sys/class/block"), 0o755))
	must(os.Symlink("../../devices/pci0000:00/0000:00:17.0/block/sda", filepath.Join(src, "sys/class/block/sda")))
	var buf bytes.Buffer
	must(Pack(src, &buf))
	arch := filepath.Join(t.TempDir(), "a.ttar")
	must(os.WriteFile(arch, buf.Bytes(), 0o644))
	dst := Extract(t, arch)
	b, err := os.ReadFile(filepath.Join(dst, "sys/class/block/sda/size"))
	if err != nil || string(b) != "100\n" {
		t.Errorf("through the symlink: %q %v", b, err)
	}
	if err := ExtractTo(writeTemp(t, "Path: ../escape\nLines: 0\n"), t.TempDir()); err == nil {
		t.Error("an archive path leaving the tree must be refused")
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "x.ttar")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
