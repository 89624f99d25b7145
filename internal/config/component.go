package config

import (
	"net"
	"strings"
	"time"
)

// Component configures the XEP-0114 listener and the component services.
type Component struct {
	// Listen: address for jabber:component:accept streams (default
	// 127.0.0.1:5347; "" disables). Nothing is bound unless at least one
	// external service is configured.
	Listen *string `toml:"listen"`
	// RateBytesPerSecond throttles what one component may send (default
	// 1048576; components carry many users' traffic, so more than a client).
	RateBytesPerSecond int `toml:"rate_bytes_per_second"`
	// Services are the component domains this server accepts or runs.
	Services []ComponentService `toml:"service"`
}

// ComponentService is one component domain ([[component.service]]).
type ComponentService struct {
	Domain string `toml:"domain"`
	// Type is "external" (default: a XEP-0114 component connects with
	// Secret) or "client_proxy" (seed 003: IQs to Domain are served by the
	// resources of TargetAddress).
	Type string `toml:"type"`
	// Secret is the XEP-0114 shared secret (external only).
	Secret string `toml:"secret"`
	// TargetAddress is the bare JID of the implementing client (client_proxy).
	TargetAddress string `toml:"target_address"`
	// Public lists the domain in the disco#items of its parent host
	// (default true).
	Public *bool `toml:"public"`
	// Name is the disco#items name (optional).
	Name string `toml:"name"`
	// MaxPending bounds the requests a client_proxy has forwarded and not
	// seen answered (default 256); Timeout is how long it waits for an
	// answer before telling the requester (default 30s).
	MaxPending int      `toml:"max_pending"`
	Timeout    Duration `toml:"timeout"`
}

// Component service types.
const (
	ComponentExternal    = "external"
	ComponentClientProxy = "client_proxy"
)

// Proxy65 configures the XEP-0065 bytestreams proxy (seed 000, Proxy65).
type Proxy65 struct {
	// Enabled starts the proxy (default false).
	Enabled bool `toml:"enabled"`
	// Domain is the proxy's JID (default proxy.<first host>).
	Domain string `toml:"domain"`
	// Listen is the SOCKS5 listener (default :7777).
	Listen string `toml:"listen"`
	// PublicHost/PublicPort are advertised in <streamhost/>: what clients
	// connect to. Defaults: the listen IP when it is a specific address,
	// else the proxy domain; the bound port.
	PublicHost string `toml:"public_host"`
	PublicPort int    `toml:"public_port"`
	// MaxTransferBytes ends a relay after this many bytes in both
	// directions together (default 536870912 = 512 MiB).
	MaxTransferBytes int64 `toml:"max_transfer_bytes"`
	// BandwidthBytesPerSecond is shared by all relays (default 10485760).
	BandwidthBytesPerSecond int `toml:"bandwidth_bytes_per_second"`
	// ActivationTimeout: a SOCKS5 connection not activated this long after
	// it connected is closed (default 60s).
	ActivationTimeout Duration `toml:"activation_timeout"`
	// IdleTimeout: an active relay with no data either way this long is
	// closed (default 5m).
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxPending bounds connections waiting for their peer or activation
	// (default 100).
	MaxPending int `toml:"max_pending"`
	// MaxConnectionsPerIP bounds the SOCKS5 connections one source address
	// (IPv6: its /64) may hold open, pending or relaying (default 10), so
	// one host cannot take every pending slot.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxTransfers bounds active relays (default 100).
	MaxTransfers int `toml:"max_transfers"`
}

func (c *Config) applyComponentDefaults() {
	if c.Component.Listen == nil {
		c.Component.Listen = strPtr("127.0.0.1:5347")
	}
	setInt(&c.Component.RateBytesPerSecond, 1024*1024)
	for i := range c.Component.Services {
		sv := &c.Component.Services[i]
		sv.Domain = strings.ToLower(strings.TrimSuffix(sv.Domain, "."))
		if sv.Type == "" {
			sv.Type = ComponentExternal
		}
		if sv.Public == nil {
			sv.Public = boolPtr(true)
		}
		// Used by client_proxy only; filled in for every type so that
		// config check shows the defaults.
		setInt(&sv.MaxPending, 256)
		setDur(&sv.Timeout, 30*time.Second)
	}
	p := &c.Proxy65
	if p.Domain == "" && len(c.Hosts) > 0 {
		p.Domain = "proxy." + strings.ToLower(strings.TrimSuffix(c.Hosts[0].Domain, "."))
	}
	p.Domain = strings.ToLower(strings.TrimSuffix(p.Domain, "."))
	if p.Listen == "" {
		p.Listen = ":7777"
	}
	if p.MaxTransferBytes == 0 {
		p.MaxTransferBytes = 512 << 20
	}
	setInt(&p.BandwidthBytesPerSecond, 10<<20)
	setDur(&p.ActivationTimeout, 60*time.Second)
	setDur(&p.IdleTimeout, 5*time.Minute)
	setInt(&p.MaxPending, 100)
	setInt(&p.MaxConnectionsPerIP, 10)
	setInt(&p.MaxTransfers, 100)
}

// ParentHost returns the virtual host a service domain belongs to: the host
// it is a subdomain of (the longest match), else the first host. That host's
// disco#items lists the service.
func (c *Config) ParentHost(domain string) string {
	best := ""
	for _, h := range c.Hosts {
		if strings.HasSuffix(domain, "."+h.Domain) && len(h.Domain) > len(best) {
			best = h.Domain
		}
	}
	if best == "" && len(c.Hosts) > 0 {
		best = c.Hosts[0].Domain
	}
	return best
}

// validateComponents checks [component] and [proxy65].
func (c *Config) validateComponents(bad func(string, ...any)) {
	hosts := map[string]bool{}
	for _, h := range c.Hosts {
		hosts[strings.ToLower(strings.TrimSuffix(h.Domain, "."))] = true
	}
	if l := *c.Component.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("component.listen %q: %v", l, err)
		}
	}
	if c.Component.RateBytesPerSecond < 0 {
		bad("component.rate_bytes_per_second: must be positive")
	}
	seen := map[string]bool{}
	if c.Proxy65.Enabled {
		seen[c.Proxy65.Domain] = true
	}
	for i, sv := range c.Component.Services {
		switch d := sv.Domain; {
		case d == "" || strings.ContainsAny(d, "@/ "):
			bad("component.service[%d].domain: %q is not a domain", i, sv.Domain)
		case hosts[d]:
			bad("component.service[%d].domain: %q is a virtual host", i, d)
		case seen[d]:
			bad("component.service[%d].domain: %q is used twice", i, d)
		}
		seen[sv.Domain] = true
		switch sv.Type {
		case ComponentExternal:
			if sv.Secret == "" {
				bad("component.service[%d].secret: required for an external component", i)
			}
			if sv.TargetAddress != "" {
				bad("component.service[%d].target_address: only for type = \"client_proxy\"", i)
			}
		case ComponentClientProxy:
			if sv.Secret != "" {
				bad("component.service[%d].secret: not used by type = \"client_proxy\"", i)
			}
			if t := sv.TargetAddress; !strings.Contains(t, "@") || strings.Contains(t, "/") {
				bad("component.service[%d].target_address: %q is not a bare JID", i, t)
			}
			if sv.MaxPending < 0 || sv.Timeout.Duration < 0 {
				bad("component.service[%d]: max_pending and timeout must be positive", i)
			}
		default:
			bad("component.service[%d].type: %q is not \"external\" or \"client_proxy\"", i, sv.Type)
		}
	}
	p := c.Proxy65
	if !p.Enabled {
		return
	}
	if p.Domain == "" || strings.ContainsAny(p.Domain, "@/ ") || hosts[p.Domain] {
		bad("proxy65.domain: %q is not a service domain", p.Domain)
	}
	if _, _, err := net.SplitHostPort(p.Listen); err != nil {
		bad("proxy65.listen %q: %v", p.Listen, err)
	}
	if p.PublicPort < 0 || p.PublicPort > 65535 {
		bad("proxy65.public_port: %d is not a port", p.PublicPort)
	}
	if p.MaxTransferBytes < 0 || p.BandwidthBytesPerSecond < 0 || p.MaxPending < 0 || p.MaxTransfers < 0 || p.MaxConnectionsPerIP < 0 {
		bad("proxy65: limits must be positive")
	}
	if p.ActivationTimeout.Duration < 0 || p.IdleTimeout.Duration < 0 {
		bad("proxy65: timeouts must be positive")
	}
}
