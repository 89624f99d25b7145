// Package proxy65 is a XEP-0065 SOCKS5 Bytestreams proxy (the "Proxy65" of
// seed 000): a service at its own domain (default proxy.<domain>) that two
// clients behind firewalls both connect to over SOCKS5 (RFC 1928), and that
// relays bytes between them once the initiator activates the stream
// (XEP-0065 §6, "Mediated Connection").
//
// The XMPP side is a router component: disco#info (identity proxy/
// bytestreams), the streamhost query (§4.4 of the 1.8 text, "Initiator
// discovers network address"), and activation (§6.3.5 "Activation of
// Bytestream"). The SOCKS5 side pairs the two connections by the DST.ADDR
// both send, SHA-1(SID + initiator JID + target JID), and relays under a
// per-transfer byte limit and a bandwidth limit shared by all transfers.
//
// The module is built for every host but runs on one: the host the proxy
// domain belongs to (config.ParentHost), whose disco#items lists it.
package proxy65

import (
	"context"
	"net"
	"parley/internal/stream"
	"strconv"
	"sync"

	"golang.org/x/time/rate"

	"parley/internal/config"
	"parley/internal/module"
)

// Namespaces.
const (
	NS       = "http://jabber.org/protocol/bytestreams"
	nsInfo   = "http://jabber.org/protocol/disco#info"
	nsItems  = "http://jabber.org/protocol/disco#items"
	chunkLen = 32 * 1024
)

// Proxy is the module; inactive on hosts other than the proxy's parent.
type Proxy struct {
	h      *module.Host
	cfg    config.Proxy65
	active bool

	limiter *rate.Limiter       // shared by every relay (total bandwidth)
	perIP   *stream.ConnLimiter // open SOCKS5 connections per source address

	mu       sync.Mutex
	ln       net.Listener
	pairs    map[string]*pair // by DST.ADDR hash
	conns    map[net.Conn]struct{}
	npending int // connections accepted and not yet relaying
	nactive  int // activated relays
	closed   bool
	wg       sync.WaitGroup
}

var (
	_ module.Module    = (*Proxy)(nil)
	_ module.Component = (*Proxy)(nil)
)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	p := &Proxy{h: h}
	if h.Config == nil {
		return p, nil
	}
	p.cfg = h.Config.Proxy65
	p.active = p.cfg.Enabled && h.Config.ParentHost(p.cfg.Domain) == h.Domain
	if !p.active {
		return p, nil
	}
	burst := max(p.cfg.BandwidthBytesPerSecond, chunkLen)
	p.limiter = rate.NewLimiter(rate.Limit(p.cfg.BandwidthBytesPerSecond), burst)
	p.pairs = make(map[string]*pair)
	p.conns = make(map[net.Conn]struct{})
	p.perIP = stream.NewConnLimiter(p.cfg.MaxConnectionsPerIP)
	h.AddItem(module.DiscoItem{JID: p.cfg.Domain, Name: "SOCKS5 Bytestreams Service"})
	return p, nil
}

// Name implements module.Module.
func (*Proxy) Name() string { return "proxy65" }

// Start binds the SOCKS5 listener and routes the proxy domain to the module.
func (p *Proxy) Start(context.Context) error {
	if !p.active {
		return nil
	}
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.h.AddComponent(p.cfg.Domain, p)
	p.wg.Add(1)
	go p.accept(ln)
	p.h.Log.Info("proxy65: listening", "domain", p.cfg.Domain, "addr", ln.Addr().String())
	return nil
}

// Stop unroutes the domain, closes the listener and every connection, and
// waits for the relays to end.
func (p *Proxy) Stop(context.Context) error {
	if !p.active {
		return nil
	}
	p.h.RemoveComponent(p.cfg.Domain, p)
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
	}
	for c := range p.conns {
		_ = c.Close()
	}
	for _, pr := range p.pairs {
		if pr.timer != nil {
			pr.timer.Stop()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Addr returns the SOCKS5 listener's address, or nil when not running.
func (p *Proxy) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// streamhost returns the advertised host and port (XEP-0065 <streamhost/>).
func (p *Proxy) streamhost() (host, port string) {
	host, port = p.cfg.PublicHost, ""
	if p.cfg.PublicPort > 0 {
		port = strconv.Itoa(p.cfg.PublicPort)
	}
	lh, lp, _ := net.SplitHostPort(p.cfg.Listen)
	if a := p.Addr(); a != nil {
		if ta, ok := a.(*net.TCPAddr); ok {
			lp = strconv.Itoa(ta.Port)
		}
	}
	if host == "" {
		if ip := net.ParseIP(lh); ip != nil && !ip.IsUnspecified() {
			host = lh
		} else {
			host = p.cfg.Domain
		}
	}
	if port == "" {
		port = lp
	}
	return host, port
}
