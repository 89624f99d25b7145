// Package tlsfrag hands a TLS server the client's first record, the
// ClientHello, cut into small records.
//
// Why: crypto/tls reads records into a buffer it keeps for the life of the
// connection, and the buffer grows to the largest record it has read. On a
// server connection that is the ClientHello, and a client that offers a
// post-quantum key share (X25519MLKEM768, the default of Go, OpenSSL 3.5,
// BoringSSL and the browsers) sends a ClientHello of 1.5 KB or more. Every
// idle session would then keep a 2.3 KB buffer for a message read once.
// Read as records of at most MaxFragment bytes, the same ClientHello leaves
// a buffer of 576 bytes, which the small records of a chat session fit.
//
// The handshake is the one the client sent: RFC 8446 §5.1 lets a handshake
// message span several records, and the handshake transcript covers the
// messages, not the records. Only a first record that is a well-formed
// handshake record is cut; anything else passes through untouched, for
// crypto/tls to refuse as it would have.
package tlsfrag

import (
	"encoding/binary"
	"io"
	"net"
)

// MaxFragment is the most handshake bytes one re-cut record carries. A
// record of MaxFragment bytes and its header fit the 576-byte buffer
// crypto/tls allocates for its first read.
const MaxFragment = 512

const (
	headerLen       = 5
	typeHandshake   = 22
	maxPlaintextLen = 1 << 14 // RFC 8446 §5.1: TLSPlaintext.length
)

// Conn is a server-side connection whose first TLS record is handed out
// re-cut. Everything but Read is the underlying connection's.
type Conn struct {
	net.Conn
	// While the first record is handed out: payload is what is left of its
	// payload, out the current record's bytes still to return, and stage
	// (header first) where each re-cut record is built. All three are
	// dropped after, so a long-lived connection keeps none of them.
	payload []byte
	out     []byte
	stage   []byte
	done    bool // the first record is handed out (or was not cut): pass through
}

// Server wraps nc for tls.Server.
func Server(nc net.Conn) *Conn { return &Conn{Conn: nc} }

// Read returns, until the first record is handed out, at most one re-cut
// record per call, so the reader's buffer never holds parts of two; after
// that it is the connection's Read.
func (c *Conn) Read(p []byte) (int, error) {
	if c.done {
		return c.Conn.Read(p)
	}
	if c.stage == nil {
		if err := c.readFirst(); err != nil {
			// crypto/tls ends the handshake at a read error; should
			// anyone read on, they get the connection as it is.
			c.finish()
			return 0, err
		}
	}
	if len(c.out) == 0 {
		c.cut()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 && len(c.payload) == 0 {
		c.finish()
	}
	return n, nil
}

// readFirst reads the first record. A record that is not a handshake
// record of a legal length is handed out as it came, in one piece.
func (c *Conn) readFirst() error {
	c.stage = make([]byte, headerLen+MaxFragment)
	h := c.stage[:headerLen]
	if _, err := io.ReadFull(c.Conn, h); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(h[3:]))
	if h[0] != typeHandshake || h[1] != 3 || n == 0 || n > maxPlaintextLen {
		c.out = h
		return nil
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.Conn, payload); err != nil {
		return err
	}
	c.payload = payload
	return nil
}

// cut makes the next re-cut record of the first record's payload.
func (c *Conn) cut() {
	n := min(len(c.payload), MaxFragment)
	binary.BigEndian.PutUint16(c.stage[3:], uint16(n)) // type and version stay
	copy(c.stage[headerLen:], c.payload[:n])
	c.payload = c.payload[n:]
	c.out = c.stage[:headerLen+n]
}

// finish drops what the re-cutting held; reads pass through from now on.
func (c *Conn) finish() {
	c.done, c.payload, c.out, c.stage = true, nil, nil, nil
}
