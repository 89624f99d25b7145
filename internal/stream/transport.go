// Package stream holds what every kind of XMPP stream (client, server,
// component) shares: the rate-limited transport, the bounded output queue
// with its writer goroutine, stream IDs and stream-error helpers.
package stream

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"syscall"

	"golang.org/x/time/rate"
)

// NewID returns a random stream ID (RFC 6120 §4.7.3: unpredictable, at
// least 128 bits of randomness; dialback keys and digest auth depend on it).
func NewID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RateLimitedConn throttles reads from a connection to a byte rate, like
// jabberd's "karma": a client that floods is slowed down, not disconnected,
// and cannot make the server parse faster than the configured rate. It wraps
// the raw TCP connection, under TLS, so encrypted bytes are what counts.
type RateLimitedConn struct {
	net.Conn
	lim *rate.Limiter
}

// NewRateLimitedConn limits c to bytesPerSec with the given burst. A
// non-positive rate disables limiting.
func NewRateLimitedConn(c net.Conn, bytesPerSec, burst int) net.Conn {
	if bytesPerSec <= 0 {
		return c
	}
	return &RateLimitedConn{Conn: c, lim: rate.NewLimiter(rate.Limit(bytesPerSec), burst)}
}

// SyscallConn returns the socket's raw connection when the wrapped
// connection has one (a TCP socket does): c2s waits on it for an idle
// session's next bytes without reading them.
func (c *RateLimitedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// Read reads at most a burst and then waits until the bytes are paid for, so
// the next read happens no earlier than the rate allows.
func (c *RateLimitedConn) Read(p []byte) (int, error) {
	if len(p) > c.lim.Burst() {
		p = p[:c.lim.Burst()]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		_ = c.lim.WaitN(context.Background(), n)
	}
	return n, err
}
