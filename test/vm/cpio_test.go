package vm

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPIOReadByCpio checks our newc writer against GNU cpio, the same
// format the kernel unpacks.
func TestCPIOReadByCpio(t *testing.T) {
	a := newCPIO()
	a.file("etc/vm/plan.json", []byte(`{"a":1}`), 0o644)
	a.file("bin/tool", []byte("odd length!"), 0o755)
	a.symlink("bin/sh", "busybox")
	var buf bytes.Buffer
	if err := a.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal("cpio not found: install cpio")
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	for path, want := range map[string]string{"etc/vm/plan.json": `{"a":1}`, "bin/tool": "odd length!"} {
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/tool")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/tool mode: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
}

func TestMakeDiskPartitions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.img")
	if err := makeDisk(p, Disk{SizeMiB: 64, Partitions: []int{24, 24}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 64<<20 || b[510] != 0x55 || b[511] != 0xaa {
		t.Fatalf("size %d, signature % x", len(b), b[510:512])
	}
	for i, wantStart := range []uint32{2048, 2048 + 24<<11} {
		e := b[446+16*i:]
		if e[4] != 0x83 || binary.LittleEndian.Uint32(e[8:]) != wantStart || binary.LittleEndian.Uint32(e[12:]) != 24<<11 {
			t.Errorf("partition %d: type %#x start %d sectors %d", i+1, e[4], binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:]))
		}
	}
	if err := makeDisk(p, Disk{SizeMiB: 32, Partitions: []int{24, 24}}); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized partitions: err %v", err)
	}
}
