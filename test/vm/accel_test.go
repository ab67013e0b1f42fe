package vm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKVMProbeFallsBackToTCG: a /dev/kvm that is missing, not a KVM device,
// or on a CPU without vmx/svm gives TCG and says why. Before, any
// openable /dev/kvm meant KVM, and QEMU spun for the whole timeout.
func TestKVMProbeFallsBackToTCG(t *testing.T) {
	dir := t.TempDir()
	vmx := writeFile(t, dir, "cpuinfo-vmx", "processor\t: 0\nflags\t\t: fpu vme de pse vmx sse2\n\nprocessor\t: 1\nflags\t\t: fpu vmx\n", 0o644)
	noVirt := writeFile(t, dir, "cpuinfo-novirt", "processor\t: 0\nflags\t\t: fpu vme de pse sse2 hypervisor\n", 0o644)
	noFlags := writeFile(t, dir, "cpuinfo-noflags", "processor\t: 0\nmodel name\t: x\n", 0o644)
	regular := writeFile(t, dir, "kvm", "", 0o666)
	for _, tt := range []struct {
		name, device, cpuinfo string
		reason                []string
	}{
		{"missing device", filepath.Join(dir, "absent"), vmx, []string{"cannot open", "absent", "no such file"}},
		{"regular file, no vmx/svm", regular, noVirt, []string{"no vmx/svm"}},
		{"regular file, no flags line", regular, noFlags, []string{"no CPU flags line"}},
		{"regular file with vmx", regular, vmx, []string{"KVM_GET_API_VERSION", "inappropriate ioctl"}},
		{"/dev/null with vmx", "/dev/null", vmx, []string{"/dev/null: KVM_GET_API_VERSION"}},
		{"unreadable cpuinfo", "/dev/null", filepath.Join(dir, "absent"), []string{"cannot read CPU flags"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := KVMProbe{Device: tt.device, CPUInfo: tt.cpuinfo}.Choose(context.Background())
			if a.Name != "tcg" {
				t.Fatalf("accel %+v, want tcg", a)
			}
			for _, w := range tt.reason {
				if !strings.Contains(strings.ToLower(a.Reason), strings.ToLower(w)) {
					t.Errorf("reason %q lacks %q", a.Reason, w)
				}
			}
		})
	}
}

// TestKVMBootShowsLife: the last check boots; a QEMU that prints on the
// serial console passes, one that spins or fails does not. The QEMUs are
// stub scripts acting out each case.
func TestKVMBootShowsLife(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, script string
		ok           bool
		reason       string
	}{
		{"prints", "echo 'Linux version 6.1'; exec sleep 60", true, ""},
		{"spins", "echo 'qemu-system-x86_64: warning: host does not support requested feature' >&2; exec sleep 60", false, "printed nothing on the serial console within 1s; qemu: qemu-system-x86_64: warning"},
		{"fails", "echo 'qemu-system-x86_64: failed to initialize kvm: Permission denied' >&2; exit 1", false, "ended without serial output"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			qemu := writeFile(t, dir, tt.name, "#!/bin/sh\n"+tt.script+"\n", 0o755)
			// BootWait bounds the spinning case; nothing asserts how fast.
			reason, ok := KVMProbe{Qemu: qemu, Kernel: "/nonexistent", BootWait: time.Second}.bootShowsLife(context.Background())
			if ok != tt.ok || !strings.Contains(reason, tt.reason) {
				t.Errorf("bootShowsLife = %q, %v; want %v with %q", reason, ok, tt.ok, tt.reason)
			}
		})
	}
}

func TestMachineAccelChoice(t *testing.T) {
	for _, tt := range []struct {
		accel, device string
		want          string
		reason        string
	}{
		{"tcg", "", "tcg", "forced"},
		{"kvm", "/dev/null", "kvm", "forced"},
		{"", "/dev/null", "tcg", ""}, // the reason depends on this CPU: flags or ioctl
		{"hvf", "", "", ""},
	} {
		m := &Machine{Accel: tt.accel, KVMDevice: tt.device, Kernel: "/nonexistent"}
		a, err := m.chooseAccel(context.Background(), "/nonexistent/qemu")
		if tt.want == "" {
			if err == nil {
				t.Errorf("Accel %q: no error", tt.accel)
			}
			continue
		}
		if err != nil || a.Name != tt.want || a.Reason == "" || !strings.Contains(a.Reason, tt.reason) {
			t.Errorf("Accel %q device %q: %+v, %v; want %s with %q", tt.accel, tt.device, a, err, tt.want, tt.reason)
		}
	}
}
