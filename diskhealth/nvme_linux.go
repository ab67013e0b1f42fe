package diskhealth

import (
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nvmeAdminCmd is struct nvme_passthru_cmd, alias struct nvme_admin_cmd,
// from the kernel uapi header include/uapi/linux/nvme_ioctl.h (72 bytes,
// naturally aligned, no padding).
type nvmeAdminCmd struct {
	Opcode      uint8
	Flags       uint8
	Rsvd1       uint16
	NSID        uint32
	CDW2        uint32
	CDW3        uint32
	Metadata    uint64
	Addr        uint64
	MetadataLen uint32
	DataLen     uint32
	CDW10       uint32
	CDW11       uint32
	CDW12       uint32
	CDW13       uint32
	CDW14       uint32
	CDW15       uint32
	TimeoutMs   uint32
	Result      uint32
}

// nvmeIoctlAdminCmd is NVME_IOCTL_ADMIN_CMD = _IOWR('N', 0x41, struct
// nvme_admin_cmd) from include/uapi/linux/nvme_ioctl.h.
const nvmeIoctlAdminCmd = 0xC0484E41

const (
	nvmeAdminGetLogPage = 0x02       // admin opcode Get Log Page
	nvmeLogSMART        = 0x02       // log identifier SMART / Health Information
	nvmeNSIDAll         = 0xffffffff // the controller-wide log, not one namespace's
)

// The struct must be the kernel's 72 bytes: this fails to compile otherwise.
var _ = [1]struct{}{}[unsafe.Sizeof(nvmeAdminCmd{})-72]

// readNVMeSMARTLog sends Get Log Page 02h (nsid FFFFFFFFh, 512 bytes) to
// the controller's character device, opened read-only. timeout bounds the
// command inside the kernel too (timeout_ms), so a dead controller is
// aborted by the driver rather than held for its default 60 s.
//
// Errors keep their errno (errors.Is(err, unix.EACCES)): the kernel's
// nvme_cmd_allowed() (drivers/nvme/host/ioctl.c) refuses Get Log Page
// without CAP_SYS_ADMIN with EACCES; the node itself is root:root 0600.
func readNVMeSMARTLog(devPath string, timeout time.Duration) ([]byte, error) {
	f, err := os.OpenFile(devPath, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, NVMeSMARTLogSize)
	cmd := nvmeAdminCmd{
		Opcode:  nvmeAdminGetLogPage,
		NSID:    nvmeNSIDAll,
		Addr:    uint64(uintptr(unsafe.Pointer(&buf[0]))),
		DataLen: NVMeSMARTLogSize,
		// CDW10: LID in bits 7:0, NUMDL (number of dwords - 1) in 31:16.
		CDW10:     nvmeLogSMART | (NVMeSMARTLogSize/4-1)<<16,
		TimeoutMs: uint32(max(timeout, time.Millisecond) / time.Millisecond),
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var r1 uintptr
	var errno unix.Errno
	cerr := raw.Control(func(fd uintptr) {
		r1, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, nvmeIoctlAdminCmd, uintptr(unsafe.Pointer(&cmd)))
	})
	runtime.KeepAlive(buf)
	runtime.KeepAlive(&cmd)
	if cerr != nil {
		return nil, cerr
	}
	if errno != 0 {
		return nil, &os.PathError{Op: "ioctl NVME_IOCTL_ADMIN_CMD", Path: devPath, Err: errno}
	}
	if r1 != 0 {
		// A positive return is the NVMe status field of the completion.
		return nil, fmt.Errorf("%s: Get Log Page 02h: controller status 0x%x", devPath, r1)
	}
	return buf, nil
}
