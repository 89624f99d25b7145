//go:build !unix

package c2s

import "syscall"

// parkSupported: without a way to peek at a socket, readers never park.
const parkSupported = false

func awaitReadable(syscall.RawConn) {}
