package httpfront

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// secureKey marks in a request's context whether the client reached us over
// TLS (directly, or at a trusted proxy that said so).
type secureKey struct{}

// Secure reports whether the client's connection was encrypted: a TLS
// request, or one from a trusted proxy whose X-Forwarded-Proto is https
// (or absent: a proxy in front of Parley is there to terminate TLS).
// Handlers that hand out or accept secrets (upload slots) refuse requests
// that are not.
func Secure(r *http.Request) bool {
	if v, ok := r.Context().Value(secureKey{}).(bool); ok {
		return v
	}
	return r.TLS != nil
}

// ClientAddr is r's client as a net.Addr, for per-address limits and
// logs: r.RemoteAddr, which the front door has already resolved through
// trusted proxies. An address it cannot parse becomes the unspecified IPv6
// address, so every such request still counts somewhere.
func ClientAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{IP: net.IPv6unspecified}
}

// resolveClient sets r.RemoteAddr to the client's address and records
// whether the connection was secure. Only a peer in trusted_proxies may
// speak for the client through X-Forwarded-For and X-Forwarded-Proto; from
// anyone else the headers are deleted, so no handler can be fooled by a
// client naming its own address. It reports whether the peer is a trusted
// proxy.
func (f *Front) resolveClient(r *http.Request) (*http.Request, bool) {
	peer, ok := addrOf(r.RemoteAddr)
	if !ok || !f.isTrusted(peer) {
		r.Header.Del("X-Forwarded-For")
		r.Header.Del("X-Forwarded-Proto")
		return r, false
	}
	// The rightmost address was added by the nearest proxy; walk left over
	// trusted proxies to the first address no trusted proxy owns: that is
	// the client (a client may have sent a forged list, which ends up on
	// the left of it, never read).
	client := peer
	xff := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	if xff != "" {
		hops := strings.Split(xff, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := addrOf(strings.TrimSpace(hops[i]))
			if !ok {
				break
			}
			client = a
			if !f.isTrusted(a) {
				break
			}
		}
	}
	// The nearest proxy's word counts (the rightmost value); none at all
	// means the proxy did not say, and a proxy is there to terminate TLS.
	protos := strings.Split(strings.Join(r.Header.Values("X-Forwarded-Proto"), ","), ",")
	proto := strings.ToLower(strings.TrimSpace(protos[len(protos)-1]))
	secure := proto == "https" || proto == ""
	r2 := r.WithContext(context.WithValue(r.Context(), secureKey{}, secure))
	r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
	return r2, true
}

// addrOf parses "ip", "ip:port" or "[ip]:port".
func addrOf(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (f *Front) isTrusted(a netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (f *Front) trustedAddr(na net.Addr) bool {
	a, ok := addrOf(na.String())
	return ok && f.isTrusted(a)
}

// limited wraps a listener so that each accepted connection counts against
// its source address in the shared per-address limit, and in the
// parley_connections{kind="https"} gauge. A connection over the limit is
// closed before its TLS handshake: nothing is read or allocated for it.
// Trusted proxies are exempt: every client behind a proxy shares its
// address, and the proxy applies its own limits.
func (f *Front) limited(l net.Listener) net.Listener {
	return &limitListener{Listener: l, f: f}
}

type limitListener struct {
	net.Listener
	f *Front
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release := func() {}
		if !l.f.trustedAddr(nc.RemoteAddr()) {
			r, ok := l.f.perIP.Acquire(nc.RemoteAddr())
			if !ok {
				l.f.log.Debug("https: too many connections from one address", "remote", nc.RemoteAddr().String())
				_ = nc.Close()
				continue
			}
			release = r
		}
		l.f.gauge.Inc()
		return &countedConn{Conn: nc, done: func() { release(); l.f.gauge.Dec() }}, nil
	}
}

// countedConn gives its slot back when closed, once, however often the
// HTTP server and a hijacking handler both close it.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// CloseWrite lets the HTTP server half-close as it does on a bare TCP
// connection (it sends an error response, then a FIN, before closing).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
