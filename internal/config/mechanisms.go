package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// mechanismNames lists the SASL mechanism names a host's `mechanisms` key may
// name, strongest first. internal/sasl implements each of them (its tests
// check that the two lists agree).
var mechanismNames = []string{
	"EXTERNAL", "GSSAPI",
	"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
	"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1",
	"PLAIN",
}

// MechanismNames returns the SASL mechanism names `[host] mechanisms` may
// list.
func MechanismNames() []string { return slices.Clone(mechanismNames) }

// passwordMechanism reports whether a mechanism proves a password (as
// XEP-0078 legacy authentication does).
func passwordMechanism(name string) bool {
	return name == "PLAIN" || strings.HasPrefix(name, "SCRAM-")
}

// Kerberos configures SASL GSSAPI (RFC 4752) for one host
// ([host.kerberos]). Users who hold a Kerberos ticket for the service
// principal <service>/<hostname>@REALM log in without a password; the
// principal user@REALM becomes the account user@<domain> when REALM is one
// of Realms.
type Kerberos struct {
	// Keytab is the service keytab (ktadd -k) holding the keys of the
	// service principal. Empty: GSSAPI is off for the host. It is read
	// again when the file changes, so a key rotation needs no restart.
	Keytab string `toml:"keytab"`
	// Service is the principal's service name (default "xmpp", RFC 6120
	// §6.3.9's GSSAPI service name).
	Service string `toml:"service"`
	// Hostname is the principal's host part (default: the host's domain),
	// for deployments whose principal names the machine instead.
	Hostname string `toml:"hostname"`
	// Realms whose user principals map to accounts of this host (required
	// with a keytab). A principal of another realm is refused, as are
	// principals with an instance (alice/admin@REALM).
	Realms []string `toml:"realms"`
	// DirectoryAttribute, on a host with accounts = "directory", names the
	// user-entry attribute that holds the principal (e.g.
	// "krbPrincipalName"): the user is the one entry whose attribute equals
	// user@REALM. Empty: the principal's name is the directory localpart.
	DirectoryAttribute string `toml:"directory_attribute"`
	// MaxTokenBytes bounds a client's GSS-API token (default 65536: a
	// ticket with an Active Directory PAC for a user in many groups stays
	// well below). Larger tokens fail with malformed-request.
	MaxTokenBytes int `toml:"max_token_bytes"`
	// MaxClockSkew is the tolerated difference between the client's clock
	// and the server's (default 5m, Kerberos' usual value); authenticators
	// are remembered this long to refuse replays.
	MaxClockSkew Duration `toml:"max_clock_skew"`
	// ReplayCacheSize bounds the authenticators remembered against replay
	// (default 100000). When it is full of unexpired entries new logins
	// fail with temporary-auth-failure instead of forgetting one early.
	ReplayCacheSize int `toml:"replay_cache_size"`
}

// Enabled reports whether GSSAPI is configured for the host.
func (k Kerberos) Enabled() bool { return k.Keytab != "" }

// ServicePrincipal returns "<service>/<hostname>" after defaults.
func (k Kerberos) ServicePrincipal() string { return k.Service + "/" + k.Hostname }

func (k *Kerberos) applyDefaults(domain string) {
	if k.Service == "" {
		k.Service = "xmpp"
	}
	if k.Hostname == "" {
		k.Hostname = strings.ToLower(strings.TrimSuffix(domain, "."))
	}
	setInt(&k.MaxTokenBytes, 64*1024)
	setDur(&k.MaxClockSkew, 5*time.Minute)
	setInt(&k.ReplayCacheSize, 100000)
}

// validateMechanisms checks a host's `mechanisms` list and its
// [host.kerberos] section together.
func (h Host) validateMechanisms(i int, c *Config) []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf("host[%d].", i)+fmt.Sprintf(format, a...)) }
	seen := map[string]bool{}
	for _, m := range h.Mechanisms {
		switch {
		case !slices.Contains(mechanismNames, m):
			bad("mechanisms: %q is not a mechanism Parley offers (%s)", m, strings.Join(mechanismNames, ", "))
		case seen[m]:
			bad("mechanisms: %q listed twice", m)
		}
		seen[m] = true
	}
	if len(h.Mechanisms) > 0 {
		if seen["GSSAPI"] && !h.Kerberos.Enabled() {
			bad("mechanisms: GSSAPI needs kerberos.keytab (and kerberos.realms)")
		}
		if seen["EXTERNAL"] && c.C2S.ClientCAFile == "" {
			bad("mechanisms: EXTERNAL needs c2s.client_ca_file (client certificates)")
		}
		if h.LegacyAuth.Enabled() && !slices.ContainsFunc(h.Mechanisms, passwordMechanism) {
			bad("legacy_auth: XEP-0078 logs in with a password, but mechanisms offers no password mechanism (PLAIN or SCRAM-*)")
		}
	}
	k := h.Kerberos
	if !k.Enabled() {
		if len(k.Realms) > 0 || k.DirectoryAttribute != "" {
			bad("kerberos: realms and directory_attribute need kerberos.keytab")
		}
		return p
	}
	if len(k.Realms) == 0 {
		bad("kerberos.realms: required with kerberos.keytab: the realms whose principals are accounts of %s", h.Domain)
	}
	for _, r := range k.Realms {
		if r == "" || strings.ContainsAny(r, "@/ \t") {
			bad("kerberos.realms: %q is not a realm name", r)
		}
	}
	if strings.ContainsAny(k.Service, "@/ ") || strings.ContainsAny(k.Hostname, "@/ ") {
		bad("kerberos: service %q and hostname %q must not contain '@', '/' or spaces", k.Service, k.Hostname)
	}
	if k.DirectoryAttribute != "" && !h.AccountsInDirectory() {
		bad("kerberos.directory_attribute: only for accounts = \"directory\"")
	}
	if k.MaxTokenBytes < 1024 || k.MaxTokenBytes > 1<<20 {
		bad("kerberos.max_token_bytes: %d is not between 1024 and 1048576", k.MaxTokenBytes)
	}
	if k.MaxTokenBytes > c.Limits.MaxStanzaBytes {
		bad("kerberos.max_token_bytes (%d) exceeds limits.max_stanza_bytes (%d): such a token could never arrive", k.MaxTokenBytes, c.Limits.MaxStanzaBytes)
	}
	if d := k.MaxClockSkew.Duration; d < time.Second || d > time.Hour {
		bad("kerberos.max_clock_skew: %s is not between 1s and 1h", d)
	}
	if k.ReplayCacheSize < 100 {
		bad("kerberos.replay_cache_size: %d is below 100", k.ReplayCacheSize)
	}
	return p
}
