package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"

	"parley/internal/xmpp/jid"
)

// keyCaseProblems reports keys whose spelling matches a setting only when
// case is ignored (the TOML decoder matches field names case-insensitively;
// "[LIMITS] OFFLINE_QUOTA" would otherwise be accepted silently while the
// documentation, `config check` and every example spell it in lower case).
func keyCaseProblems(md toml.MetaData) []string {
	var p []string
	for _, key := range md.Keys() {
		t := reflect.TypeOf(Config{})
		for i, part := range key {
			t = deref(t)
			switch t.Kind() {
			case reflect.Slice, reflect.Array:
				t = deref(t.Elem())
			case reflect.Map:
				// Free-form keys (routes, profile fields): not settings.
				t = nil
			}
			if t == nil || t.Kind() != reflect.Struct {
				break
			}
			f, exact := fieldByTag(t, part)
			if f == nil {
				break // unknown keys are reported by Undecoded
			}
			if !exact {
				p = append(p, fmt.Sprintf("key %q: settings are lower case (did you mean %q?)",
					strings.Join(key[:i+1], "."), f.Tag.Get("toml")))
				break
			}
			t = f.Type
		}
	}
	return p
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldByTag finds the field whose toml tag is name, reporting whether the
// spelling matched exactly.
func fieldByTag(t reflect.Type, name string) (*reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == name {
			return &f, true
		}
		if strings.EqualFold(tag, name) {
			return &f, false
		}
	}
	return nil, false
}

// crossProblems checks what no single section can: every domain the server
// answers for (hosts, chat services, the proxy, components) is served once,
// TLS settings that contradict each other, and admin addresses.
func (c *Config) crossProblems() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	owners := map[string]string{}
	claim := func(domain, what string) {
		if domain == "" {
			return
		}
		if prev, ok := owners[domain]; ok {
			bad("domain %q is served twice: by %s and by %s", domain, prev, what)
			return
		}
		owners[domain] = what
	}
	for i, h := range c.Hosts {
		claim(h.Domain, fmt.Sprintf("host[%d]", i))
	}
	for i, h := range c.Hosts {
		if h.MUC.Enabled != nil && *h.MUC.Enabled && h.MUC.Domain != "" {
			claim(h.MUC.Domain, fmt.Sprintf("host[%d].muc", i))
		}
	}
	for i, h := range c.Hosts {
		if h.Upload.Enabled {
			claim(h.Upload.Domain, fmt.Sprintf("host[%d].upload", i))
		}
	}
	if c.Proxy65.Enabled {
		claim(c.Proxy65.Domain, "proxy65")
	}
	for i, s := range c.Component.Services {
		claim(strings.ToLower(s.Domain), fmt.Sprintf("component.service[%d]", i))
	}
	if c.C2S.AllowPlainWithoutTLS && c.C2S.RequireTLS != nil && *c.C2S.RequireTLS {
		bad("c2s.allow_plain_without_tls has no effect while c2s.require_tls = true: set require_tls = false too, or remove it")
	}
	for i, h := range c.Hosts {
		if !h.AccountsInDirectory() {
			continue
		}
		// The directory owns these accounts: Parley cannot create them, and
		// legacy auth needs secrets only Parley's own storage keeps.
		if h.Registration.Enabled {
			bad("host[%d]: registration cannot be enabled when accounts = \"directory\" (the directory owns the accounts)", i)
		}
		if la := h.LegacyAuth; la.Plaintext || la.Digest || la.ZeroKnowledge {
			bad("host[%d]: legacy_auth is not available when accounts = \"directory\" (use SASL PLAIN over TLS)", i)
		}
	}
	for i, h := range c.Hosts {
		for _, a := range h.Admins {
			if j, err := jid.Parse(a); err != nil || j.Local() == "" || j.Resource() != "" {
				bad("host[%d].admins: %q is not a bare JID (user@domain)", i, a)
			}
		}
	}
	return p
}

// fileProblems reports configured files that cannot be read. It runs when a
// config is loaded from disk (paths resolved), so `parley config check`
// catches a missing certificate before `parley serve` would.
func (c *Config) fileProblems() []string {
	var p []string
	check := func(key, path string) {
		if path == "" {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			p = append(p, fmt.Sprintf("%s: %v", key, err))
			return
		}
		_ = f.Close()
	}
	check("tls.cert_file", c.TLS.CertFile)
	check("tls.key_file", c.TLS.KeyFile)
	for i, h := range c.Hosts {
		check(fmt.Sprintf("host[%d].cert_file", i), h.CertFile)
		check(fmt.Sprintf("host[%d].key_file", i), h.KeyFile)
		check(fmt.Sprintf("host[%d].kerberos.keytab", i), h.Kerberos.Keytab)
	}
	check("c2s.client_ca_file", c.C2S.ClientCAFile)
	for i, f := range c.C2S.CRLFiles {
		check(fmt.Sprintf("c2s.crl_files[%d]", i), f)
	}
	check("s2s.ca_file", c.S2S.CAFile)
	check("directory.ca_file", c.Directory.CAFile)
	check("directory.bind_password_file", c.Directory.BindPasswordFile)
	return p
}

// Redacted returns a copy of c with secrets replaced, for printing.
func (c *Config) Redacted() *Config {
	r := *c
	const hidden = "(redacted)"
	if r.PostgresDSN != "" {
		r.PostgresDSN = redactDSN(r.PostgresDSN)
	}
	r.Component.Services = append([]ComponentService(nil), c.Component.Services...)
	for i := range r.Component.Services {
		if r.Component.Services[i].Secret != "" {
			r.Component.Services[i].Secret = hidden
		}
	}
	// Hosts are copied down to their service lists: the TURN shared
	// secrets must not reach the printed copy, and c itself must keep them.
	r.Hosts = append([]Host(nil), c.Hosts...)
	for i := range r.Hosts {
		svcs := append([]ExternalService(nil), r.Hosts[i].ExternalServices...)
		for j := range svcs {
			if svcs[j].Secret != "" {
				svcs[j].Secret = hidden
			}
		}
		r.Hosts[i].ExternalServices = svcs
	}
	if r.S2S.DialbackSecret != "" {
		r.S2S.DialbackSecret = hidden
	}
	if r.Directory.BindPassword != "" {
		r.Directory.BindPassword = hidden
	}
	if r.Cluster.NATSPassword != "" {
		r.Cluster.NATSPassword = hidden
	}
	if r.Cluster.NATSToken != "" {
		r.Cluster.NATSToken = hidden
	}
	r.Cluster.NATSURLs = make([]string, len(c.Cluster.NATSURLs))
	for i, u := range c.Cluster.NATSURLs {
		r.Cluster.NATSURLs[i] = redactNATSURL(u)
	}
	return &r
}

// redactNATSURL hides the credentials a NATS URL may carry: the password
// of user:password@, or the whole of a lone userinfo, which NATS takes
// as a token.
func redactNATSURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return scheme + "://(redacted)" + rest[at:]
	}
	return scheme + "://" + user + ":(redacted)" + rest[at:]
}

// redactDSN hides the password of a URL-style or key=value DSN.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		at := strings.LastIndex(rest, "@")
		if colon := strings.Index(rest, ":"); at > 0 && colon >= 0 && colon < at {
			return dsn[:i+3] + rest[:colon] + ":(redacted)" + rest[at:]
		}
		return dsn
	}
	parts := strings.Fields(dsn)
	for i, kv := range parts {
		if strings.HasPrefix(kv, "password=") {
			parts[i] = "password=(redacted)"
		}
	}
	return strings.Join(parts, " ")
}
