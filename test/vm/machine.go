// Package vm is spofwatch's real-kernel test harness: it builds an
// initramfs (busybox, mdadm, Debian kernel modules, spofwatch and the guest
// agent), boots it under qemu-system-x86_64 (TCG is enough), and runs
// scenarios written as data (package scenario) inside the guest. The host
// injects the faults only it can make (QMP set_link, ipmi_sim sensor
// changes) when the guest asks, and judges the JSON the guest reports.
package vm

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spofwatch/spofwatch/test/vm/scenario"
)

// Disk is a virtio-blk disk; the guest sees them as vda, vdb, ... in order.
type Disk struct {
	SizeMiB int
	// Partitions, when set, get an MBR partition table with one primary
	// partition per size (MiB), so the guest sees vdX1, vdX2, ...
	Partitions []int
}

// NIC is a virtio-net NIC. The guest renames it to ID, which is also the
// QEMU netdev name for set_link. NICs on one Hub are wired together.
type NIC struct {
	ID  string
	Hub int
	MAC string
}

// Machine is one guest boot.
type Machine struct {
	Kernel string // /boot/vmlinuz-<version>
	Initrd string
	Dir    string // work directory (disks, sockets, console log)
	MemMiB int
	SMP    int
	Disks  []Disk
	NICs   []NIC
	// IPMI, when set, connects an ipmi-bmc-extern BMC (KCS) to this
	// running ipmi_sim; its console takes "ipmisim" host requests.
	IPMI *IPMISim
	// Accel forces the accelerator, "kvm" or "tcg". Empty: KVM when
	// KVMProbe passes, else TCG.
	Accel string
	// KVMDevice is the device the probe checks (default /dev/kvm); a
	// test points it at /dev/null to act out a broken KVM.
	KVMDevice string
	// Images are extra raw disk images made in Dir before the boot, by
	// name; Extra arguments refer to them as {dir}/<name>.
	Images map[string]Disk
	// Extra are QEMU arguments appended as given, "{dir}" replaced by
	// Dir: NVMe controllers and subsystems, SCSI HBAs and disks.
	Extra []string
	// Timeout bounds the whole boot.
	Timeout time.Duration
	// Logf receives progress lines (t.Logf).
	Logf func(format string, args ...any)
}

// chooseAccel honours a forced accelerator or probes KVM.
func (m *Machine) chooseAccel(ctx context.Context, qemu string) (Accel, error) {
	switch m.Accel {
	case "kvm", "tcg":
		return Accel{Name: m.Accel, Reason: "forced (Machine.Accel)"}, nil
	case "":
		return KVMProbe{Device: m.KVMDevice, Qemu: qemu, Kernel: m.Kernel}.Choose(ctx), nil
	}
	return Accel{}, fmt.Errorf("accelerator %q: want kvm, tcg or empty (probe)", m.Accel)
}

// HostLatency is a fault timed on the host: from the QMP/console action
// returning to the guest's "changed" message arriving.
type HostLatency struct {
	Name   string
	HostID int
	Millis float64
}

// Mark is a timing point: host seconds since QEMU started, guest uptime.
type Mark struct {
	Name   string
	Host   float64
	Uptime float64
}

// Outcome is what one boot produced.
type Outcome struct {
	Steps         []scenario.StepResult
	Latencies     []scenario.LatencyResult
	HostLatencies []HostLatency
	Marks         []Mark
	// Done is true when the guest agent finished its plan.
	Done bool
	// Console is the path of the serial console log.
	Console string
	Wall    time.Duration
	// Accel is the accelerator the boot used, and why.
	Accel Accel
}

// ConsoleTail returns the last n bytes of the console log.
func (o *Outcome) ConsoleTail(n int) string {
	b, _ := os.ReadFile(o.Console)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Mark returns the named mark.
func (o *Outcome) Mark(name string) (Mark, bool) {
	for _, m := range o.Marks {
		if m.Name == name {
			return m, true
		}
	}
	return Mark{}, false
}

func (m *Machine) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}

// Run boots the guest and serves its requests until it powers off, the
// timeout passes or ctx ends.
func (m *Machine) Run(ctx context.Context) (*Outcome, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("qemu-system-x86_64 not found: install qemu-system-x86")
	}
	if m.Timeout == 0 {
		m.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	out := &Outcome{Console: filepath.Join(m.Dir, "console.log")}
	qmpSock := filepath.Join(m.Dir, "qmp.sock")
	ctlSock := filepath.Join(m.Dir, "ctl.sock")
	accel, err := m.chooseAccel(ctx, qemu)
	if err != nil {
		return nil, err
	}
	out.Accel = accel
	m.logf("accelerator %s: %s", accel.Name, accel.Reason)
	mem, smp := m.MemMiB, m.SMP
	if mem == 0 {
		mem = 256
	}
	if smp == 0 {
		smp = 1
	}
	args := []string{
		"-machine", "pc", "-accel", accel.Name, "-m", fmt.Sprint(mem), "-smp", fmt.Sprint(smp),
		"-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", m.Kernel, "-initrd", m.Initrd,
		"-append", "console=ttyS0 panic=1 loglevel=4",
		"-chardev", "file,id=ser0,path=" + out.Console, "-serial", "chardev:ser0",
		"-qmp", "unix:" + qmpSock + ",server=on,wait=off",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=ctl,path=" + ctlSock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=ctl,name=spofwatch.ctl",
	}
	for i, d := range m.Disks {
		p := filepath.Join(m.Dir, fmt.Sprintf("disk%d.img", i))
		if err := makeDisk(p, d); err != nil {
			return nil, err
		}
		args = append(args, "-drive", "file="+p+",if=virtio,format=raw,cache=unsafe")
	}
	if len(m.NICs) > 0 {
		// The NICs sit behind their own PCI bridge: the root bus has 32
		// slots and the disks and NICs together outgrew it. The guest
		// names NICs by MAC, so their PCI addresses do not matter.
		args = append(args, "-device", "pci-bridge,id=nicbr,chassis_nr=1")
	}
	for i, n := range m.NICs {
		args = append(args,
			"-netdev", fmt.Sprintf("hubport,id=%s,hubid=%d", n.ID, n.Hub),
			// speed/duplex: without them 802.3ad never negotiates.
			"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,id=nic%d,bus=nicbr,speed=1000,duplex=full,mac=%s", n.ID, i, n.MAC))
	}
	for name, d := range m.Images {
		if err := makeDisk(filepath.Join(m.Dir, name), d); err != nil {
			return nil, err
		}
	}
	for _, a := range m.Extra {
		args = append(args, strings.ReplaceAll(a, "{dir}", m.Dir))
	}
	if m.IPMI != nil {
		args = append(args,
			"-chardev", fmt.Sprintf("socket,id=ipmichr,host=127.0.0.1,port=%d,reconnect=10", m.IPMI.VMPort),
			"-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmichr",
			"-device", "isa-ipmi-kcs,bmc=bmc0")
	}
	cmd := exec.Command(qemu, args...)
	// If the test binary dies (timeout panic), QEMU goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	qlog, err := os.Create(filepath.Join(m.Dir, "qemu.log"))
	if err != nil {
		return nil, err
	}
	defer qlog.Close()
	cmd.Stdout, cmd.Stderr = qlog, qlog
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	// exited is closed when QEMU is gone; qemuErr is its exit status.
	exited := make(chan struct{})
	var qemuErr error
	go func() { qemuErr = cmd.Wait(); close(exited) }()
	defer func() {
		// Only our own QEMU, by its process handle.
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		out.Wall = time.Since(start)
	}()

	ctl, err := dialUnix(ctx, ctlSock, exited)
	if err != nil {
		b, _ := os.ReadFile(qlog.Name())
		return out, fmt.Errorf("control channel: %w; qemu: %s", err, b)
	}
	defer ctl.Close()
	h := &hostSide{m: m, out: out, start: start, qmpSock: qmpSock, ctl: ctl, actions: map[int]time.Time{}}
	defer h.close()
	msgs := make(chan scenario.Message)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(ctl)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var msg scenario.Message
			if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
				m.logf("control: bad line %q: %v", sc.Text(), err)
				continue
			}
			select {
			case msgs <- msg:
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	for {
		select {
		case msg := <-msgs:
			h.handle(ctx, msg)
		case <-exited:
			// Drain what the guest wrote before powering off.
			for {
				select {
				case msg := <-msgs:
					h.handle(ctx, msg)
					continue
				case <-time.After(200 * time.Millisecond):
				}
				break
			}
			if !out.Done {
				return out, fmt.Errorf("qemu exited (%v) before the guest finished its plan", qemuErr)
			}
			return out, nil
		case <-readErr:
			readErr = nil // the guest closed the port: wait for QEMU to exit
		case <-ctx.Done():
			return out, fmt.Errorf("guest did not finish within %s: %w", m.Timeout, ctx.Err())
		}
	}
}

type hostSide struct {
	m       *Machine
	out     *Outcome
	start   time.Time
	qmpSock string
	qmp     *qmpClient
	ctl     net.Conn
	actions map[int]time.Time // host request ID -> when the action returned
}

func (h *hostSide) close() {
	if h.qmp != nil {
		h.qmp.close()
	}
}

func (h *hostSide) since() float64 { return time.Since(h.start).Seconds() }

func (h *hostSide) handle(ctx context.Context, msg scenario.Message) {
	switch msg.Type {
	case "hello":
		h.out.Marks = append(h.out.Marks, Mark{"agent-start", h.since(), msg.Uptime})
		h.m.logf("guest agent up: host %.2fs, guest uptime %.2fs", h.since(), msg.Uptime)
	case "mark":
		h.out.Marks = append(h.out.Marks, Mark{msg.Name, h.since(), msg.Uptime})
	case "host":
		err := h.act(ctx, msg.Cmd)
		done := time.Now()
		h.actions[msg.ID] = done
		ack := scenario.Message{Type: "ack", ID: msg.ID}
		if err != nil {
			ack.Err = err.Error()
		}
		h.m.logf("host %.2fs: %s -> %v", h.since(), msg.Cmd, err)
		b, _ := json.Marshal(ack)
		if _, err := h.ctl.Write(append(b, '\n')); err != nil {
			h.m.logf("control write: %v", err)
		}
	case "changed":
		if t, ok := h.actions[msg.ID]; ok {
			h.out.HostLatencies = append(h.out.HostLatencies, HostLatency{Name: msg.Name, HostID: msg.ID, Millis: float64(time.Since(t).Microseconds()) / 1000})
		}
	case "latency":
		if msg.Lat != nil {
			h.out.Latencies = append(h.out.Latencies, *msg.Lat)
		}
	case "step":
		if msg.Step != nil {
			h.out.Steps = append(h.out.Steps, *msg.Step)
			status := "ok"
			if msg.Step.Err != "" {
				status = "FAIL"
			}
			h.m.logf("step %s / %s: %s (%.2fs)", msg.Step.Scenario, msg.Step.Step, status, msg.Step.Seconds)
		}
	case "done":
		h.out.Done = true
		h.out.Marks = append(h.out.Marks, Mark{"agent-done", h.since(), msg.Uptime})
	}
}

// act performs one host request: "set_link <netdev> on|off", "qmp
// <command> [<JSON arguments>]" (e.g. qom-set, device_del) or "ipmisim
// <console command>".
func (h *hostSide) act(ctx context.Context, req string) error {
	f := strings.Fields(req)
	switch {
	case len(f) == 3 && f[0] == "set_link" && (f[2] == "on" || f[2] == "off"):
		if err := h.dialQMP(); err != nil {
			return err
		}
		return h.qmp.execute("set_link", map[string]any{"name": f[1], "up": f[2] == "on"})
	case len(f) >= 2 && f[0] == "qmp":
		var qargs map[string]any
		if rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(req, "qmp"), " "+f[1])); rest != "" {
			if err := json.Unmarshal([]byte(rest), &qargs); err != nil {
				return fmt.Errorf("qmp %s: arguments %q: %w", f[1], rest, err)
			}
		}
		if err := h.dialQMP(); err != nil {
			return err
		}
		return h.qmp.execute(f[1], qargs)
	case len(f) > 1 && f[0] == "ipmisim":
		if h.m.IPMI == nil {
			return errors.New("no ipmi_sim attached to this machine")
		}
		return h.m.IPMI.Command(strings.TrimPrefix(req, "ipmisim "))
	}
	return fmt.Errorf("unknown host request %q", req)
}

func (h *hostSide) dialQMP() error {
	if h.qmp != nil {
		return nil
	}
	c, err := dialQMP(h.qmpSock)
	if err != nil {
		return err
	}
	h.qmp = c
	return nil
}

func dialUnix(ctx context.Context, path string, exited <-chan struct{}) (net.Conn, error) {
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-exited:
			return nil, errors.New("qemu exited")
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s: %w", path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// qmpClient speaks just enough QMP for set_link.
type qmpClient struct {
	c  net.Conn
	sc *bufio.Scanner
}

func dialQMP(path string) (*qmpClient, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", path, err)
	}
	q := &qmpClient{c: c, sc: bufio.NewScanner(c)}
	if _, err := q.read(); err != nil { // greeting
		c.Close()
		return nil, err
	}
	if err := q.execute("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpClient) close() { q.c.Close() }

func (q *qmpClient) read() (map[string]json.RawMessage, error) {
	for q.sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(q.sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("QMP: %w", err)
		}
		if _, ev := m["event"]; !ev {
			return m, nil
		}
	}
	if err := q.sc.Err(); err != nil {
		return nil, fmt.Errorf("QMP: %w", err)
	}
	return nil, fmt.Errorf("QMP: %w", io.EOF)
}

func (q *qmpClient) execute(cmd string, args map[string]any) error {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	q.c.SetDeadline(time.Now().Add(10 * time.Second))
	defer q.c.SetDeadline(time.Time{})
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", cmd, err)
	}
	m, err := q.read()
	if err != nil {
		return fmt.Errorf("QMP %s: %w", cmd, err)
	}
	if e, ok := m["error"]; ok {
		return fmt.Errorf("QMP %s: %s", cmd, e)
	}
	return nil
}

// makeDisk creates a sparse raw image, with an MBR when partitions are
// asked for.
func makeDisk(path string, d Disk) error {
	size := int64(d.SizeMiB) << 20
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	if len(d.Partitions) == 0 {
		return nil
	}
	if len(d.Partitions) > 4 {
		return fmt.Errorf("disk %s: at most 4 primary partitions", path)
	}
	mbr := make([]byte, 512)
	lba := uint32(2048)
	for i, mib := range d.Partitions {
		e := mbr[446+16*i:]
		sectors := uint32(mib) << 11
		e[4] = 0x83 // Linux
		copy(e[1:4], []byte{0xfe, 0xff, 0xff})
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		binary.LittleEndian.PutUint32(e[8:], lba)
		binary.LittleEndian.PutUint32(e[12:], sectors)
		lba += sectors
	}
	if int64(lba)*512 > size {
		return fmt.Errorf("disk %s: partitions larger than %d MiB", path, d.SizeMiB)
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	_, err = f.WriteAt(mbr, 0)
	return err
}
