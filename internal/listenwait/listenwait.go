// Package listenwait waits until a process a test started listens on the
// address the test gave it.
//
// Tests pick a free port by listening on port 0 and closing the listener,
// then pass the port to the process they start (slapd, krb5kdc,
// nats-server). Test binaries of other packages run at the same time and
// pick ports the same way, so two of them can be handed the same port.
// The process that loses fails to bind and exits, but a readiness check
// that only dials the address succeeds against the winner, and the test
// goes on talking to another test's server until that one stops. Wait
// therefore asks the kernel which process owns the listening socket.
package listenwait

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrExited is returned when the process ends before it listens.
var ErrExited = errors.New("listenwait: process exited before listening")

// Wait returns nil once process pid holds a socket listening on addr
// (host:port, TCP). It fails with ErrExited when exited is closed first,
// and with an error naming the address when timeout passes; an address
// some other process listens on counts as not listening.
func Wait(pid int, addr string, exited <-chan struct{}, timeout time.Duration) error {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return fmt.Errorf("listenwait: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return ErrExited
		default:
		}
		owned, err := listens(pid, tcp)
		if err != nil {
			return fmt.Errorf("listenwait: %w", err)
		}
		if owned {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("listenwait: process %d is not listening on %s after %v", pid, addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
