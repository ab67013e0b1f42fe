package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

//go:embed init.sh
var guestInit []byte

// Module is a kernel module to load in the guest, with insmod parameters.
type Module struct {
	Name   string // as in modules.dep, "-" and "_" interchangeable
	Params string // e.g. "max_bonds=0"
}

// DefaultModules are what the md, bonding and IPMI scenarios need from
// Debian's linux-image-amd64 (the lab's list plus raid0/raid10 and the
// virtio console that carries the control channel). Dependencies are
// resolved from modules.dep.
var DefaultModules = []Module{
	{Name: "virtio_pci"}, {Name: "virtio_blk"}, {Name: "virtio_net"}, {Name: "virtio_console"},
	{Name: "md-mod"}, {Name: "raid0"}, {Name: "raid1"}, {Name: "raid10"}, {Name: "crc32c_generic"}, {Name: "raid456"},
	// max_bonds=0: no bond0 at load time; scenarios create their bonds.
	{Name: "bonding", Params: "max_bonds=0"},
	{Name: "ipmi_msghandler"}, {Name: "ipmi_devintf"}, {Name: "ipmi_si"},
	// The AHCI disk of the smartctl scenario (libata, libahci and the SCSI
	// core come from modules.dep); sd_mod makes it /dev/sdX, and the
	// checksum drivers t10-pi asks the crypto API for at load.
	{Name: "crct10dif_generic"}, {Name: "crc64_rocksoft_generic"}, {Name: "sd_mod"}, {Name: "ahci"},
	// NVMe over PCI (nvme pulls nvme-core, t10-pi and the CRCs from
	// modules.dep): the disk health scenario's controller.
	{Name: "nvme"},
	// Paths: SCSI disks on virtio-scsi HBAs (nvme and sd_mod above),
	// device-mapper multipath with its round-robin selector.
	{Name: "virtio_scsi"}, {Name: "dm-multipath"}, {Name: "dm-round-robin"},
}

// Initramfs describes the guest's root filesystem.
type Initramfs struct {
	// KernelVersion selects /lib/modules/<v>; empty means the newest
	// installed one.
	KernelVersion string
	Modules       []Module
	// Static are statically linked host binaries: guest path -> host path.
	Static map[string]string
	// Dynamic are dynamically linked host binaries copied with every
	// library ldd reports: guest path -> host path.
	Dynamic map[string]string
	// Files are extra files: guest path -> content.
	Files map[string][]byte
	// NICs are renamed by MAC in the guest: MAC -> interface name.
	NICs map[string]string
}

// LatestKernel returns the newest kernel version under /lib/modules that
// has a matching /boot/vmlinuz.
func LatestKernel() (string, error) {
	ents, err := os.ReadDir("/lib/modules")
	if err != nil {
		return "", fmt.Errorf("list kernels: %w (install linux-image-amd64)", err)
	}
	var vs []string
	for _, e := range ents {
		if _, err := os.Stat("/boot/vmlinuz-" + e.Name()); err == nil {
			vs = append(vs, e.Name())
		}
	}
	if len(vs) == 0 {
		return "", fmt.Errorf("no /boot/vmlinuz-* with /lib/modules/*: install linux-image-amd64")
	}
	sort.Strings(vs)
	return vs[len(vs)-1], nil
}

// Build writes the gzip-compressed initramfs to out.
func (s Initramfs) Build(out string) error {
	kver := s.KernelVersion
	if kver == "" {
		var err error
		if kver, err = LatestKernel(); err != nil {
			return err
		}
	}
	a := newCPIO()
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "etc", "root", "sbin", "usr/bin", "usr/sbin"} {
		a.dir(d)
	}
	a.file("init", guestInit, 0o755)
	a.file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	a.file("etc/group", []byte("root:x:0:\n"), 0o644)

	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox not found: install busybox-static")
	}
	if err := addHostFile(a, "/bin/busybox", busybox, 0o755); err != nil {
		return err
	}
	a.symlink("bin/sh", "busybox")
	for guest, host := range s.Static {
		if err := addHostFile(a, guest, host, 0o755); err != nil {
			return err
		}
	}
	for guest, host := range s.Dynamic {
		if err := addDynamic(a, guest, host); err != nil {
			return err
		}
	}
	for guest, b := range s.Files {
		a.file(guest, b, 0o644)
	}
	var nics bytes.Buffer
	macs := make([]string, 0, len(s.NICs))
	for m := range s.NICs {
		macs = append(macs, m)
	}
	sort.Strings(macs)
	for _, m := range macs {
		fmt.Fprintf(&nics, "%s %s\n", m, s.NICs[m])
	}
	a.file("etc/vm/nics", nics.Bytes(), 0o644)
	order, err := addModules(a, kver, s.Modules)
	if err != nil {
		return err
	}
	a.file("etc/vm/modules", []byte(order), 0o644)

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err := a.writeTo(zw); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func addHostFile(a *cpioArchive, guest, host string, perm uint32) error {
	b, err := os.ReadFile(host)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	a.file(guest, b, perm)
	return nil
}

var lddLine = regexp.MustCompile(`(?m)(?:=>\s+)?(/\S+)\s+\(0x`)

// addDynamic copies a binary and the libraries ldd lists, at the paths the
// dynamic loader will look them up.
func addDynamic(a *cpioArchive, guest, host string) error {
	if err := addHostFile(a, guest, host, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("ldd", host).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", host, err)
	}
	for _, m := range lddLine.FindAllStringSubmatch(string(out), -1) {
		real, err := filepath.EvalSymlinks(m[1])
		if err != nil {
			return fmt.Errorf("resolve %s (needed by %s): %w", m[1], host, err)
		}
		if err := addHostFile(a, m[1], real, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// addModules copies the modules and their dependencies (from modules.dep)
// and returns the load order, one "guest-path params" line each,
// dependencies first.
func addModules(a *cpioArchive, kver string, mods []Module) (string, error) {
	dir := "/lib/modules/" + kver
	depFile, err := os.Open(dir + "/modules.dep")
	if err != nil {
		return "", fmt.Errorf("read modules.dep: %w (install linux-image-amd64)", err)
	}
	defer depFile.Close()
	deps := map[string][]string{} // relative path -> deps
	byName := map[string]string{} // normalised module name -> relative path
	sc := bufio.NewScanner(depFile)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[moduleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read modules.dep: %w", err)
	}
	seen := map[string]bool{}
	var order bytes.Buffer
	var visit func(rel, params string) error
	visit = func(rel, params string) error {
		if seen[rel] {
			return nil
		}
		seen[rel] = true
		// modules.dep lists the full transitive set, most basic last.
		ds := deps[rel]
		for i := len(ds) - 1; i >= 0; i-- {
			if err := visit(ds[i], ""); err != nil {
				return err
			}
		}
		b, err := readModule(dir + "/" + rel)
		if err != nil {
			return err
		}
		guest := dir + "/" + strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(rel, ".xz"), ".zst"), ".gz")
		a.file(guest, b, 0o644)
		fmt.Fprintf(&order, "%s %s\n", guest, params)
		return nil
	}
	for _, m := range mods {
		rel, ok := byName[moduleName(m.Name)]
		if !ok {
			return "", fmt.Errorf("kernel module %s not in %s/modules.dep (built in? then drop it from the list)", m.Name, dir)
		}
		if err := visit(rel, m.Params); err != nil {
			return "", err
		}
	}
	return order.String(), nil
}

func moduleName(rel string) string {
	base, _, _ := strings.Cut(filepath.Base(rel), ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// readModule returns a module's content, decompressed: busybox insmod
// cannot load compressed modules.
func readModule(path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(path, ".gz"):
		tool = "gzip"
	default:
		return os.ReadFile(path)
	}
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("decompress %s with %s: %w", path, tool, err)
	}
	return out, nil
}
