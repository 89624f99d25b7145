//go:build unix

package c2s

import "syscall"

// parkSupported: sockets can be waited on without reading (awaitReadable).
const parkSupported = true

// awaitReadable waits on the runtime poller until rc's socket is readable
// (or in error, or past its read deadline), without reading.
//
// The first check peeks: the read that timed out before the reader parked
// may have missed bytes that arrived after it, and the poller's readiness
// for them is cleared when this wait begins, so they would otherwise never
// wake it. After that the poller's wake-up is the answer; a spurious one
// costs the read loop one read that waits again.
func awaitReadable(rc syscall.RawConn) {
	first := true
	_ = rc.Read(func(fd uintptr) bool {
		if !first {
			return true
		}
		first = false
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	})
}
