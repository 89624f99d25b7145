//go:build !linux

package sockio

import "net"

// Wrap returns c unchanged: the raw calls are written for Linux.
func Wrap(c net.Conn) net.Conn { return c }
