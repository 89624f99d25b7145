package config

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// HTTPS configures the public HTTPS listener ([https], internal/httpfront):
// the front door that file upload (XEP-0363), XEP-0156 host-meta, XMPP over
// WebSocket and BOSH share. The metrics and health listener
// ([http]) stays separate and on loopback: what faces the Internet must not
// expose /metrics.
type HTTPS struct {
	// Listen is the TLS address (default ":5443"; "" disables it). It is
	// bound only when something is served on it: a module mounted a
	// handler (file upload) or websocket/bosh is on.
	Listen *string `toml:"listen"`
	// PlainListen is an optional plain-HTTP address for a reverse proxy
	// that terminates TLS in front of Parley (default ""). It serves only
	// the addresses in TrustedProxies, so it is never a way around TLS.
	PlainListen string `toml:"plain_listen"`
	// TrustedProxies are the addresses or CIDR prefixes whose
	// X-Forwarded-For and X-Forwarded-Proto headers are believed; from
	// anyone else those headers are ignored (a client could otherwise
	// choose its own address for every per-address limit and log line).
	TrustedProxies []string `toml:"trusted_proxies"`
	// ReadHeaderTimeout bounds the TLS handshake and the request line and
	// headers (default 10s): the slow-loris defence.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds reading a request's body (default 30s). Handlers
	// that take large bodies (file upload) extend it while data keeps
	// arriving, so it is the longest a body may stall, not its total time.
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds writing a response (default 30s); handlers that
	// send large bodies extend it while the client keeps reading.
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection with no request this long
	// (default 2m).
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's header block (default 32768).
	MaxHeaderBytes int `toml:"max_header_bytes"`
	// MaxConcurrentStreams bounds the requests one HTTP/2 connection may
	// have in flight (default 100).
	MaxConcurrentStreams int `toml:"max_concurrent_streams"`
	// WebSocket and BOSH announce XMPP over WebSocket (RFC 7395, at
	// /xmpp-websocket) and BOSH (XEP-0206, at /http-bind) in host-meta
	// (XEP-0156) and mount their endpoints on this listener. Default
	// false.
	WebSocket bool `toml:"websocket"`
	BOSH      bool `toml:"bosh"`
	// WebSocketOrigins are the web origins (host patterns such as
	// "chat.example.com" or "*.example.com") whose pages may open an XMPP
	// WebSocket; empty: only pages served by this listener itself. A
	// browser sends Origin with every handshake, so this is what keeps
	// other sites' scripts off the endpoint.
	WebSocketOrigins []string `toml:"websocket_origins"`
	// WebSocketPing: a WebSocket silent this long is pinged, and closed
	// as lost when the pong does not come within as long again (default
	// 30s; RFC 7395 §3.4 leaves keepalives to the WebSocket layer).
	WebSocketPing Duration `toml:"websocket_ping"`
	// BOSH session bounds (XEP-0124; internal/bosh): the longest a request
	// is held (bosh_max_wait, default 60s), the longest a client may hold
	// no request before its session counts as lost (bosh_inactivity, 60s),
	// the longest 'pause' (bosh_max_pause, 120s), the shortest interval
	// between empty polls (bosh_polling, 2s), the requests held at once
	// (bosh_max_hold, 1) and the sessions per source address
	// (bosh_max_sessions_per_ip, 10). bosh_origins are the web origins
	// whose pages may use the endpoint (CORS), as websocket_origins.
	BOSHMaxWait          Duration `toml:"bosh_max_wait"`
	BOSHInactivity       Duration `toml:"bosh_inactivity"`
	BOSHMaxPause         Duration `toml:"bosh_max_pause"`
	BOSHPolling          Duration `toml:"bosh_polling"`
	BOSHMaxHold          int      `toml:"bosh_max_hold"`
	BOSHMaxSessionsPerIP int      `toml:"bosh_max_sessions_per_ip"`
	BOSHOrigins          []string `toml:"bosh_origins"`
}

// HostHTTP is a host's view of the HTTPS listener ([host.http]).
type HostHTTP struct {
	// PublicURL is the base URL clients use for this host's HTTP services
	// ("https://xmpp.example.com" or with a path prefix behind a reverse
	// proxy). Default: https://<domain> with the port of [https] listen
	// (left out when 443).
	PublicURL string `toml:"public_url"`
}

// Upload configures the XEP-0363 HTTP File Upload service of one host
// ([host.upload], internal/mod/upload).
type Upload struct {
	// Enabled runs the service (default false: stored files cost disk and
	// the operator decides how much).
	Enabled bool `toml:"enabled"`
	// Domain is the service's address (default "upload.<host domain>").
	Domain string `toml:"domain"`
	// Name is the service's disco#info identity name (default "HTTP File Upload").
	Name string `toml:"name"`
	// MaxFileSize bounds one file in bytes (default 52428800, 50 MiB),
	// announced as max-file-size.
	MaxFileSize int64 `toml:"max_file_size"`
	// QuotaBytes bounds what one account stores at once (default
	// 1073741824, 1 GiB); at least MaxFileSize.
	QuotaBytes int64 `toml:"quota_bytes"`
	// QuotaFiles bounds how many files one account stores at once (default
	// 1000): a byte quota alone would allow millions of empty files.
	QuotaFiles int `toml:"quota_files"`
	// MaxTotalBytes bounds the whole service's storage (default
	// 10737418240, 10 GiB).
	MaxTotalBytes int64 `toml:"max_total_bytes"`
	// ExpireAfter is how long a file is kept (default 720h, 30 days).
	ExpireAfter Duration `toml:"expire_after"`
	// SlotTimeout is how long a slot's PUT URL is valid (default 5m),
	// rounded up to the whole second; XEP-0363 recommends short ones:
	// clients upload right away.
	SlotTimeout Duration `toml:"slot_timeout"`
	// PurgeInterval is how often expired files are deleted (default 1h).
	PurgeInterval Duration `toml:"purge_interval"`
}

func (c *Config) applyHTTPSDefaults() {
	h := &c.HTTPS
	if h.Listen == nil {
		h.Listen = strPtr(":5443")
	}
	setDur(&h.ReadHeaderTimeout, 10*time.Second)
	setDur(&h.WebSocketPing, 30*time.Second)
	setDur(&h.BOSHMaxWait, 60*time.Second)
	setDur(&h.BOSHInactivity, 60*time.Second)
	setDur(&h.BOSHMaxPause, 120*time.Second)
	setDur(&h.BOSHPolling, 2*time.Second)
	setInt(&h.BOSHMaxHold, 1)
	setInt(&h.BOSHMaxSessionsPerIP, 10)
	setDur(&h.ReadTimeout, 30*time.Second)
	setDur(&h.WriteTimeout, 30*time.Second)
	setDur(&h.IdleTimeout, 2*time.Minute)
	setInt(&h.MaxHeaderBytes, 32*1024)
	setInt(&h.MaxConcurrentStreams, 100)
	for i := range c.Hosts {
		hc := &c.Hosts[i]
		hc.HTTP.PublicURL = strings.TrimRight(hc.HTTP.PublicURL, "/")
		u := &hc.Upload
		if u.Domain == "" && hc.Domain != "" {
			u.Domain = "upload." + strings.ToLower(strings.TrimSuffix(hc.Domain, "."))
		}
		u.Domain = strings.ToLower(strings.TrimSuffix(u.Domain, "."))
		if u.Name == "" {
			u.Name = "HTTP File Upload"
		}
		if u.MaxFileSize == 0 {
			u.MaxFileSize = 50 << 20
		}
		if u.QuotaBytes == 0 {
			u.QuotaBytes = 1 << 30
		}
		setInt(&u.QuotaFiles, 1000)
		if u.MaxTotalBytes == 0 {
			u.MaxTotalBytes = 10 << 30
		}
		setDur(&u.ExpireAfter, 30*24*time.Hour)
		setDur(&u.SlotTimeout, 5*time.Minute)
		setDur(&u.PurgeInterval, time.Hour)
	}
}

// TrustedProxyPrefixes parses TrustedProxies (validated: no error after
// Parse); a bare address is its own /32 or /128.
func (h HTTPS) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range h.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ServesHTTPS reports whether any host runs a service on the HTTPS
// listener that the configuration alone reveals (file upload, a
// transport announced in host-meta, the web console).
func (c *Config) ServesHTTPS() bool {
	if c.HTTPS.WebSocket || c.HTTPS.BOSH || c.Console.Admin || c.Console.Account {
		return true
	}
	for _, h := range c.Hosts {
		if h.Upload.Enabled {
			return true
		}
	}
	return false
}

// validateHTTPS checks [https], [host.http] and [host.upload]; host domains
// are already normalised.
func (c *Config) validateHTTPS(bad func(string, ...any)) {
	h := c.HTTPS
	if *h.Listen != "" {
		if _, _, err := net.SplitHostPort(*h.Listen); err != nil {
			bad("https.listen %q: %v", *h.Listen, err)
		}
	}
	if h.PlainListen != "" {
		if _, _, err := net.SplitHostPort(h.PlainListen); err != nil {
			bad("https.plain_listen %q: %v", h.PlainListen, err)
		}
		if len(h.TrustedProxies) == 0 {
			bad("https.plain_listen serves only reverse proxies: list their addresses in https.trusted_proxies")
		}
	}
	for _, p := range h.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad("https.trusted_proxies: %q is not an address or CIDR prefix", p)
		}
	}
	if h.ReadHeaderTimeout.Duration < time.Second || h.ReadTimeout.Duration < time.Second ||
		h.WriteTimeout.Duration < time.Second || h.IdleTimeout.Duration < time.Second {
		bad("https: read_header_timeout, read_timeout, write_timeout and idle_timeout must be at least 1s")
	}
	if h.WebSocketPing.Duration < time.Second {
		bad("https.websocket_ping must be at least 1s")
	}
	if h.BOSHMaxWait.Duration < time.Second || h.BOSHInactivity.Duration < time.Second ||
		h.BOSHMaxPause.Duration < time.Second || h.BOSHPolling.Duration < 0 {
		bad("https: bosh_max_wait, bosh_inactivity and bosh_max_pause must be at least 1s, bosh_polling not negative")
	}
	if h.BOSHMaxHold < 1 {
		bad("https.bosh_max_hold: %d is not positive", h.BOSHMaxHold)
	}
	if h.BOSHMaxSessionsPerIP < 1 {
		bad("https.bosh_max_sessions_per_ip: %d is not positive", h.BOSHMaxSessionsPerIP)
	}
	if h.MaxHeaderBytes < 4096 {
		bad("https.max_header_bytes: %d is too small: use at least 4096", h.MaxHeaderBytes)
	}
	if h.MaxConcurrentStreams < 1 {
		bad("https.max_concurrent_streams: must be at least 1")
	}
	noListener := *h.Listen == "" && h.PlainListen == ""
	for i, hc := range c.Hosts {
		if pu := hc.HTTP.PublicURL; pu != "" {
			u, err := url.Parse(pu)
			switch {
			case err != nil:
				bad("host[%d].http.public_url %q: %v", i, pu, err)
			case u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
				bad("host[%d].http.public_url %q: want https://host[:port][/path] (XEP-0363 and XEP-0156 URLs are https)", i, pu)
			}
		} else if *h.Listen == "" && h.PlainListen != "" && (hc.Upload.Enabled || h.WebSocket || h.BOSH) {
			bad("host[%d].http.public_url: required when only https.plain_listen is set (the URL clients see is the proxy's)", i)
		}
		u := hc.Upload
		if !u.Enabled {
			continue
		}
		if noListener {
			bad("host[%d].upload.enabled needs the HTTPS listener: set https.listen or https.plain_listen", i)
		}
		if u.Domain == "" || strings.ContainsAny(u.Domain, "@/ ") {
			bad("host[%d].upload.domain: %q is not a domain", i, u.Domain)
		}
		if u.MaxFileSize < 0 || u.QuotaBytes < 0 || u.QuotaFiles < 0 || u.MaxTotalBytes < 0 {
			bad("host[%d].upload: max_file_size, quota_bytes, quota_files and max_total_bytes must be positive", i)
		}
		if u.QuotaBytes < u.MaxFileSize || u.MaxTotalBytes < u.MaxFileSize {
			bad("host[%d].upload: quota_bytes and max_total_bytes must be at least max_file_size (%d), or a largest file could never be stored", i, u.MaxFileSize)
		}
		if u.SlotTimeout.Duration < time.Second || u.PurgeInterval.Duration < time.Second || u.ExpireAfter.Duration < time.Second {
			bad("host[%d].upload: slot_timeout, purge_interval and expire_after must be at least 1s", i)
		}
		// A slot's signature must not outlive the file it created: once the
		// file is purged, a still-valid signature could write it again.
		if u.ExpireAfter.Duration <= u.SlotTimeout.Duration {
			bad("host[%d].upload.expire_after (%s) must be longer than slot_timeout (%s)", i, u.ExpireAfter.Duration, u.SlotTimeout.Duration)
		}
	}
}
