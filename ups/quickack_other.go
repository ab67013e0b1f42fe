//go:build !linux

package ups

import "net"

// quickAckConn is a plain TCP connection where TCP_QUICKACK does not exist.
type quickAckConn struct{ *net.TCPConn }
