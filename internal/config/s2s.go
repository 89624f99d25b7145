package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"parley/internal/xmpp/jid"
)

// S2S configures federation (RFC 6120 server-to-server, XEP-0220,
// XEP-0178, XEP-0368). The policy keys here are the defaults of every host;
// a host's [host.s2s] table overrides them key by key.
type S2S struct {
	// Enabled turns federation on (default false: a fresh server is not
	// reachable from the XMPP network until the administrator says so).
	Enabled bool `toml:"enabled"`
	// Listen: addresses for incoming STARTTLS streams (default :5269 when enabled).
	Listen []string `toml:"listen"`
	// DirectTLSListen: addresses for incoming direct TLS streams
	// (XEP-0368, _xmpps-server._tcp; default none).
	DirectTLSListen []string `toml:"direct_tls_listen"`
	// Routes maps a remote domain to "host:port" (STARTTLS) or
	// "tls://host:port" (direct TLS), bypassing DNS (closed networks, tests).
	Routes map[string]string `toml:"routes"`
	// CAFile: PEM bundle of CAs trusted for peer certificates, added to the
	// system roots ("" = system roots only).
	CAFile string `toml:"ca_file"`
	// DialbackSecret keys XEP-0185 dialback keys. Empty (default): a random
	// secret per start, so keys never outlive the process.
	DialbackSecret string `toml:"dialback_secret"`
	// ConnectTimeout bounds setting up an outgoing stream, from DNS to the
	// domain being verified (default 30s); queued stanzas then bounce with
	// remote-server-timeout.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// IdleTimeout closes a stream that carried nothing for this long (default 10m).
	IdleTimeout Duration `toml:"idle_timeout"`
	// QueueSize bounds stanzas queued per domain pair while its outgoing
	// stream is set up (default 256); more bounce with resource-constraint.
	QueueSize int `toml:"queue_size"`
	// MaxIncoming bounds concurrent incoming streams (default 1000).
	MaxIncoming int `toml:"max_incoming"`
	// Dialback verification opens a stream to the claimed domain's
	// authoritative server, so claims cost the server outgoing
	// connections and are bounded: MaxDialbackDomains distinct domains
	// one incoming stream may ask to have verified over its life (default
	// 32; more end the stream with policy-violation), MaxDialbackPending
	// of them at once (default 8), and MaxVerifications verifications in
	// progress across the server (default 128). A claim over either of
	// the last two is answered resource-constraint (type wait).
	MaxDialbackDomains int `toml:"max_dialback_domains"`
	MaxDialbackPending int `toml:"max_dialback_pending"`
	MaxVerifications   int `toml:"max_verifications"`
	S2SPolicy
}

// S2SPolicy is the federation policy of a host. Unset fields inherit from
// [s2s]; the built-in defaults are require_encryption = true,
// accept_self_signed = false, dialback = true, no domain lists.
type S2SPolicy struct {
	// RequireEncryption refuses streams without TLS, both ways.
	RequireEncryption *bool `toml:"require_encryption"`
	// AcceptSelfSigned accepts peers whose certificate is not valid for
	// their domain (self-signed, unknown CA, wrong name) and then
	// authenticates them with dialback over TLS, never SASL EXTERNAL.
	AcceptSelfSigned *bool `toml:"accept_self_signed"`
	// Dialback allows Server Dialback (XEP-0220) at all.
	Dialback *bool `toml:"dialback"`
	// AllowedDomains is the approved federation list (seed 000): when not
	// empty, only these remote domains are federated with.
	AllowedDomains []string `toml:"allowed_domains"`
	// BlockedDomains are never federated with.
	BlockedDomains []string `toml:"blocked_domains"`
}

func (c *Config) resolveS2SPaths(abs func(*string)) {
	abs(&c.S2S.CAFile)
}

func (c *Config) applyS2SDefaults() {
	s := &c.S2S
	if s.Enabled && s.Listen == nil {
		s.Listen = []string{":5269"}
	}
	setDur(&s.ConnectTimeout, 30*time.Second)
	setDur(&s.IdleTimeout, 10*time.Minute)
	setInt(&s.QueueSize, 256)
	setInt(&s.MaxIncoming, 1000)
	setInt(&s.MaxDialbackDomains, 32)
	setInt(&s.MaxDialbackPending, 8)
	setInt(&s.MaxVerifications, 128)
	if s.RequireEncryption == nil {
		s.RequireEncryption = boolPtr(true)
	}
	if s.AcceptSelfSigned == nil {
		s.AcceptSelfSigned = boolPtr(false)
	}
	if s.Dialback == nil {
		s.Dialback = boolPtr(true)
	}
	norm := func(l []string) {
		for i, d := range l {
			l[i] = prepareDomain(d)
		}
	}
	norm(s.AllowedDomains)
	norm(s.BlockedDomains)
	for i := range c.Hosts {
		if p := c.Hosts[i].S2S; p != nil {
			norm(p.AllowedDomains)
			norm(p.BlockedDomains)
		}
	}
	if len(s.Routes) > 0 {
		r := make(map[string]string, len(s.Routes))
		for d, a := range s.Routes {
			r[prepareDomain(d)] = a
		}
		s.Routes = r
	}
}

// prepareDomain is d as a domainpart is after preparation (an A-label and
// its U-label, upper and lower case, a trailing dot: one form), so that
// the domain lists and routes match the domains of parsed addresses; a
// string that is no domain is only lower-cased, for validation to refuse.
func prepareDomain(d string) string {
	if p, err := jid.PrepareDomain(d); err == nil {
		return p
	}
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

// S2SPolicyFor returns the effective federation policy of a local domain:
// the host's [host.s2s] keys over [s2s]. Every pointer field is set.
func (c *Config) S2SPolicyFor(domain string) S2SPolicy {
	p := c.S2S.S2SPolicy
	h := c.HostByDomain(domain)
	if h == nil || h.S2S == nil {
		return p
	}
	o := h.S2S
	if o.RequireEncryption != nil {
		p.RequireEncryption = o.RequireEncryption
	}
	if o.AcceptSelfSigned != nil {
		p.AcceptSelfSigned = o.AcceptSelfSigned
	}
	if o.Dialback != nil {
		p.Dialback = o.Dialback
	}
	if o.AllowedDomains != nil {
		p.AllowedDomains = o.AllowedDomains
	}
	if o.BlockedDomains != nil {
		p.BlockedDomains = o.BlockedDomains
	}
	return p
}

func (c *Config) validateS2S(bad func(string, ...any)) {
	s := &c.S2S
	for _, a := range append(append([]string(nil), s.Listen...), s.DirectTLSListen...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("s2s listen address %q: %v", a, err)
		}
	}
	for d, r := range s.Routes {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(r, "tls://")); err != nil {
			bad("s2s.routes.%q: %q is not host:port or tls://host:port", d, r)
		}
		if d == "" || strings.ContainsAny(d, "@/ ") {
			bad("s2s.routes: %q is not a domain", d)
		}
	}
	if s.QueueSize < 1 {
		bad("s2s.queue_size: must be at least 1")
	}
	if s.MaxIncoming < 1 {
		bad("s2s.max_incoming: must be at least 1")
	}
	if s.MaxDialbackDomains < 1 || s.MaxDialbackPending < 1 || s.MaxVerifications < 1 {
		bad("s2s: max_dialback_domains, max_dialback_pending and max_verifications must be at least 1")
	}
	if s.ConnectTimeout.Duration < 100*time.Millisecond {
		bad("s2s.connect_timeout: %s is too short", s.ConnectTimeout.Duration)
	}
	if s.IdleTimeout.Duration < time.Second {
		bad("s2s.idle_timeout: %s is too short", s.IdleTimeout.Duration)
	}
	if s.DialbackSecret != "" && len(s.DialbackSecret) < 16 {
		bad("s2s.dialback_secret: use at least 16 characters")
	}
	lists := func(where string, p *S2SPolicy) {
		for _, l := range [][]string{p.AllowedDomains, p.BlockedDomains} {
			for _, d := range l {
				if _, err := jid.PrepareDomain(d); err != nil {
					bad("%s: %q is not a domain", where, d)
				}
			}
		}
	}
	lists("s2s", &s.S2SPolicy)
	for i, h := range c.Hosts {
		if h.S2S != nil {
			lists(fmt.Sprintf("host[%d].s2s", i), h.S2S)
		}
	}
}
