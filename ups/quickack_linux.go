package ups

import (
	"net"
	"syscall"
)

// quickAckConn sets TCP_QUICKACK before every read. upsd writes a LIST reply
// in many small writes; with Nagle on its side and delayed ACKs on ours,
// every LIST on a reused connection waited about 44 ms for our ACK. Linux
// clears TCP_QUICKACK again after some time, hence before every read.
type quickAckConn struct{ *net.TCPConn }

func (c quickAckConn) Read(b []byte) (int, error) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return c.TCPConn.Read(b)
}
