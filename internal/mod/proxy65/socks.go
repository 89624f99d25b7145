package proxy65

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/xmpp/stanza"
)

// SOCKS5 constants (RFC 1928).
const (
	socksVersion     = 5
	methodNoAuth     = 0
	methodNone       = 0xff
	cmdConnect       = 1
	atypDomain       = 3
	repSucceeded     = 0
	repFailure       = 1
	repNotAllowed    = 2
	repCmdNotSupport = 7
	repAtypNotSupp   = 8
)

// pair is the (up to) two connections that asked for the same DST.ADDR.
type pair struct {
	hash      string
	conns     []net.Conn
	activated bool
	timer     *time.Timer
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.h.Log.Warn("proxy65: accept", "err", err)
			continue
		}
		release, ok := p.perIP.Acquire(c.RemoteAddr())
		if !ok {
			p.h.Log.Info("proxy65: too many connections from one address", "remote", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		c = &releasingConn{Conn: c, release: release}
		p.mu.Lock()
		if p.closed || p.npending >= p.cfg.MaxPending {
			full := !p.closed
			p.mu.Unlock()
			if full {
				p.h.Log.Info("proxy65: too many pending connections", "remote", c.RemoteAddr().String())
			}
			_ = c.Close()
			continue
		}
		p.npending++
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.negotiate(c)
		}()
	}
}

// drop forgets a connection that never made it into a relay.
func (p *Proxy) drop(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	if _, ok := p.conns[c]; ok {
		delete(p.conns, c)
		p.npending--
	}
	p.mu.Unlock()
}

// negotiate runs the SOCKS5 method selection and CONNECT request (RFC 1928
// §3, §4) and files the connection under its DST.ADDR. The whole
// negotiation must finish within the activation timeout, and the connection
// is closed if it is not activated within that time from its arrival.
func (p *Proxy) negotiate(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(p.cfg.ActivationTimeout.Duration))
	hash, err := p.socksHandshake(c)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	pr := p.pairs[hash]
	switch {
	case p.closed:
		p.mu.Unlock()
		p.drop(c)
		return
	case pr == nil:
		pr = &pair{hash: hash}
		p.pairs[hash] = pr
		pr.timer = time.AfterFunc(p.cfg.ActivationTimeout.Duration, func() { p.expire(pr) })
	case len(pr.conns) >= 2 || pr.activated:
		// A third party with the same hash: refuse (it cannot join a pair).
		p.mu.Unlock()
		_ = reply(c, repNotAllowed, hash)
		p.drop(c)
		return
	}
	pr.conns = append(pr.conns, c)
	p.mu.Unlock()
	if err := reply(c, repSucceeded, hash); err != nil {
		// The peer went away; the pair's timer cleans up.
		_ = c.Close()
	}
}

// socksHandshake reads the greeting and request and returns DST.ADDR.
func (p *Proxy) socksHandshake(c net.Conn) (string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", err
	}
	if hdr[0] != socksVersion || hdr[1] == 0 {
		return "", errors.New("not SOCKS5")
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return "", err
	}
	ok := false
	for _, m := range methods {
		ok = ok || m == methodNoAuth
	}
	if !ok {
		_, _ = c.Write([]byte{socksVersion, methodNone})
		return "", errors.New("no acceptable method")
	}
	if _, err := c.Write([]byte{socksVersion, methodNoAuth}); err != nil {
		return "", err
	}
	var req [5]byte // VER CMD RSV ATYP LEN
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return "", err
	}
	if req[0] != socksVersion {
		return "", errors.New("bad request version")
	}
	if req[3] != atypDomain {
		_ = reply(c, repAtypNotSupp, "")
		return "", errors.New("address type not supported")
	}
	addr := make([]byte, int(req[4])+2) // DST.ADDR, DST.PORT
	if _, err := io.ReadFull(c, addr); err != nil {
		return "", err
	}
	hash := string(addr[:req[4]])
	if req[1] != cmdConnect {
		_ = reply(c, repCmdNotSupport, hash)
		return "", errors.New("command not supported")
	}
	if !isHash(hash) {
		_ = reply(c, repNotAllowed, hash)
		return "", errors.New("DST.ADDR is not a SHA-1 hex digest")
	}
	return toLowerHex(hash), nil
}

func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

func toLowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// reply writes a SOCKS5 reply; BND.ADDR echoes DST.ADDR (XEP-0065 §5.3.2
// "SHOULD set the BND.ADDR and BND.PORT to the values provided").
func reply(c net.Conn, rep byte, addr string) error {
	b := append([]byte{socksVersion, rep, 0, atypDomain, byte(len(addr))}, addr...)
	b = append(b, 0, 0)
	_, err := c.Write(b)
	return err
}

// expire closes a pair that was not activated in time (or half-open: only
// one side ever came).
func (p *Proxy) expire(pr *pair) {
	p.mu.Lock()
	if pr.activated || p.pairs[pr.hash] != pr {
		p.mu.Unlock()
		return
	}
	delete(p.pairs, pr.hash)
	conns := pr.conns
	p.mu.Unlock()
	for _, c := range conns {
		p.drop(c)
	}
}

// activate starts the relay for hash. It returns the XEP-0065 §6.3.5 error
// condition when it cannot.
func (p *Proxy) activate(hash string) (stanza.Condition, string) {
	p.mu.Lock()
	pr := p.pairs[hash]
	switch {
	case pr == nil:
		p.mu.Unlock()
		return stanza.ItemNotFound, "no bytestream with that SID, initiator and target"
	case pr.activated:
		p.mu.Unlock()
		return stanza.NotAllowed, "already activated"
	case len(pr.conns) < 2:
		p.mu.Unlock()
		return stanza.NotAllowed, "only one party is connected"
	case p.nactive >= p.cfg.MaxTransfers:
		p.mu.Unlock()
		return stanza.ResourceConstraint, "too many transfers"
	}
	pr.activated = true
	pr.timer.Stop()
	delete(p.pairs, hash)
	p.nactive++
	p.npending -= 2
	a, b := pr.conns[0], pr.conns[1]
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		p.relay(a, b)
	}()
	return "", ""
}

// relay copies both ways until both directions end, the byte limit is
// reached, or nothing moved either way for the idle timeout.
func (p *Proxy) relay(a, b net.Conn) {
	_ = a.SetDeadline(time.Time{})
	_ = b.SetDeadline(time.Time{})
	r := &relay{p: p, limit: p.cfg.MaxTransferBytes, idle: p.cfg.IdleTimeout.Duration}
	r.last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	go func() { r.copy(b, a); done <- struct{}{} }()
	go func() { r.copy(a, b); done <- struct{}{} }()
	<-done
	<-done
	_ = a.Close()
	_ = b.Close()
	p.mu.Lock()
	delete(p.conns, a)
	delete(p.conns, b)
	p.nactive--
	p.mu.Unlock()
}

type relay struct {
	p     *Proxy
	limit int64
	idle  time.Duration
	total atomic.Int64
	last  atomic.Int64 // unix nanos of the last byte either way
	// stop is set when one direction decided the relay is over (limit,
	// idle, error); the other direction is unblocked by closing both.
	stop atomic.Bool
}

func (r *relay) abort(a, b net.Conn) {
	r.stop.Store(true)
	_ = a.Close()
	_ = b.Close()
}

// copy moves bytes from src to dst. At EOF it half-closes dst, so a file
// sender closing its side gives the receiver a clean end of stream.
func (r *relay) copy(dst, src net.Conn) {
	buf := make([]byte, min(chunkLen, r.p.limiter.Burst()))
	for {
		if r.idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(r.idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			r.last.Store(time.Now().UnixNano())
			total := r.total.Add(int64(n))
			over := r.limit > 0 && total > r.limit
			if over {
				n -= int(total - r.limit)
			}
			if n > 0 {
				if werr := r.p.limiter.WaitN(context.Background(), n); werr != nil {
					r.abort(dst, src)
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					r.abort(dst, src)
					return
				}
			}
			if over {
				r.p.h.Log.Info("proxy65: transfer reached proxy65.max_transfer_bytes", "limit", r.limit)
				r.abort(dst, src)
				return
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !r.stop.Load() &&
				time.Since(time.Unix(0, r.last.Load())) < r.idle {
				continue // the other direction is busy: not idle
			}
			if errors.Is(err, io.EOF) && !r.stop.Load() {
				if tc, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			r.abort(dst, src)
			return
		}
	}
}

// releasingConn gives a connection's per-address slot back when it closes,
// whichever path (failed negotiation, timeout, end of relay) closes it.
type releasingConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *releasingConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite keeps the relay's half-close working through the wrapper.
func (c *releasingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
