// Package config loads and validates parley.toml.
//
// Caddy's rule applies: everything is validated before anything starts. Load
// returns either a complete, defaulted Config or an error that lists every
// problem found (unknown keys by name, bad values by key), so an
// administrator fixes a file in one pass and the server never listens on a
// port with half a configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"parley/internal/xmpp/jid"
)

// Config is the whole server configuration. Every limit has a safe default.
type Config struct {
	// DataDir holds the SQLite database and generated certificates.
	DataDir string `toml:"data_dir"`
	// Storage is "sqlite" (default, embedded) or "postgres".
	Storage string `toml:"storage"`
	// SQLitePath defaults to <data_dir>/parley.db.
	SQLitePath string `toml:"sqlite_path"`
	// PostgresDSN is used when Storage is "postgres".
	PostgresDSN string `toml:"postgres_dsn"`
	// AdminSocket is the unix socket (mode 0600) through which the CLI talks
	// to the running server: `parley s2s list`, and `parley user del`
	// ending the deleted account's sessions. Default <data_dir>/admin.sock;
	// "-" disables it.
	AdminSocket string `toml:"admin_socket"`

	Log    Log    `toml:"log"`
	Hosts  []Host `toml:"host"`
	C2S    C2S    `toml:"c2s"`
	Limits Limits `toml:"limits"`
	HTTP   HTTP   `toml:"http"`
	TLS    TLS    `toml:"tls"`
	Auth   Auth   `toml:"auth"`
	// HTTPS configures the public HTTPS listener (file upload, host-meta,
	// later WebSocket and BOSH); see https.go.
	HTTPS HTTPS `toml:"https"`
	// Modules holds settings of individual feature modules.
	Modules Modules `toml:"modules"`
	// Component configures XEP-0114 external components and the internal
	// services configured like them (client_proxy); see component.go.
	Component Component `toml:"component"`
	// Proxy65 configures the XEP-0065 SOCKS5 bytestreams proxy.
	Proxy65 Proxy65 `toml:"proxy65"`
	// S2S configures federation (server-to-server streams).
	S2S S2S `toml:"s2s"`
	// Directory configures the LDAP directory; see directory.go.
	Directory Directory `toml:"directory"`
	// Console configures the web console (/admin/, /account/); see
	// console.go.
	Console Console `toml:"console"`
	// Cluster makes this server one node of several; see cluster.go.
	Cluster Cluster `toml:"cluster"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Host is one virtual host (XMPP domain).
type Host struct {
	Domain string `toml:"domain"`
	// CertFile/KeyFile: PEM certificate chain and key for this domain
	// (selected by SNI). Empty: the [tls] default certificate, or a
	// generated self-signed one under data_dir.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// Admins are bare JIDs with administrative rights on this host.
	Admins []string `toml:"admins"`
	// S2S overrides the [s2s] federation policy for this host ([host.s2s]).
	S2S *S2SPolicy `toml:"s2s"`
	// AdminGroups: members of these groups (see `parley group`) are
	// administrators of this host too.
	AdminGroups []string `toml:"admin_groups"`
	// AllowedUsers (bare JIDs) and AllowedGroups decide who may log in to
	// this host. Both empty: every account may. A refused user gets the
	// same failure as a wrong password, and the server logs why.
	AllowedUsers  []string `toml:"allowed_users"`
	AllowedGroups []string `toml:"allowed_groups"`
	// Access is the per-service access control ([host.access]; access.go).
	Access HostAccess `toml:"access"`
	// SharedRoster are auto-buddy groups built from stored group
	// membership ([[host.shared_roster]]; access.go).
	SharedRoster []SharedRosterGroup `toml:"shared_roster"`
	// LegacyAuth enables XEP-0078 jabber:iq:auth for old clients. Every
	// method is off by default.
	LegacyAuth LegacyAuth `toml:"legacy_auth"`
	// Registration configures XEP-0077 in-band registration ([host.registration]).
	Registration Registration `toml:"registration"`
	// MUC configures the XEP-0045 multi-user chat service ([host.muc]).
	MUC MUC `toml:"muc"`
	// Archive configures XEP-0313 message archives ([host.archive]).
	Archive Archive `toml:"archive"`
	// Accounts is where the host's users live: "database" (default) or
	// "directory" (the [directory] section; see directory.go).
	Accounts string `toml:"accounts"`
	// HTTP is the host's view of the HTTPS listener ([host.http]).
	HTTP HostHTTP `toml:"http"`
	// Upload configures XEP-0363 HTTP File Upload ([host.upload]).
	Upload Upload `toml:"upload"`
	// Push configures XEP-0357 push notifications ([host.push]; push.go).
	Push Push `toml:"push"`
	// ExternalServices are the STUN/TURN services announced by XEP-0215
	// ([[host.external_service]]; push.go).
	ExternalServices []ExternalService `toml:"external_service"`
	// Mechanisms chooses the SASL mechanisms the host offers, by name
	// (MechanismNames). Empty: every mechanism the host can offer (GSSAPI
	// with a keytab, EXTERNAL with client certificates, SCRAM and PLAIN).
	// Listing some restricts the host to those, e.g. ["GSSAPI"] for
	// Kerberos only (mechanisms.go).
	Mechanisms []string `toml:"mechanisms"`
	// Kerberos configures SASL GSSAPI ([host.kerberos]; mechanisms.go).
	Kerberos Kerberos `toml:"kerberos"`
	// ContactAddresses are published in the host's disco#info (XEP-0157;
	// [host.contact_addresses]; contact.go).
	ContactAddresses ContactAddresses `toml:"contact_addresses"`
	// Reporting configures what happens to XEP-0377 spam and abuse
	// reports ([host.reporting]; contact.go).
	Reporting Reporting `toml:"reporting"`
}

// Registration configures XEP-0077 in-band registration for one host. It is
// off by default: open registration invites spam accounts.
type Registration struct {
	// Enabled allows new accounts to be created in-band. Default false.
	Enabled bool `toml:"enabled"`
	// Fields are the registration fields asked for besides username and
	// password, in order (XEP-0077 §14 names: name, email, nick, ...); all
	// are required. Default none.
	Fields []string `toml:"fields"`
	// Instructions is the <instructions/> text of the inquiry.
	Instructions string `toml:"instructions"`
	// AllowWithoutTLS allows registration on unencrypted streams (the
	// password travels in clear). Default false.
	AllowWithoutTLS bool `toml:"allow_without_tls"`
	// NotifyAdmins sends the host's admins a message for each new account
	// (seed 004's notify="yes"). Default false.
	NotifyAdmins bool `toml:"notify_admins"`
	// MaxPerIP new accounts per client address (IPv6: per /64) per Window.
	// Defaults 5 per 1h.
	MaxPerIP int      `toml:"max_per_ip"`
	Window   Duration `toml:"window"`
	// MaxTrackedIPs bounds the rate limiter's memory; default 10000.
	MaxTrackedIPs int `toml:"max_tracked_ips"`
	// MaxFieldBytes bounds each registration field's value; default 1024.
	MaxFieldBytes int `toml:"max_field_bytes"`
}

// RegistrationFieldNames returns the XEP-0077 schema fields a host may ask
// for besides username and password.
func RegistrationFieldNames() []string {
	return []string{"nick", "name", "first", "last", "email", "address",
		"city", "state", "zip", "phone", "url", "date", "misc", "text"}
}

// LegacyAuth configures XEP-0078 non-SASL authentication on one host.
// Each method is a separate, explicit decision: all are weaker than SCRAM.
type LegacyAuth struct {
	// Plaintext: <password/>, checked against the stored SCRAM keys. The
	// password crosses the stream; only over TLS unless allow_without_tls.
	Plaintext bool `toml:"plaintext"`
	// Digest: <digest/> = hex SHA-1(stream ID + password). The server must
	// know the password, so while this is on, every password set from then
	// on (registration, password change, parley user add/passwd) is ALSO
	// STORED IN CLEARTEXT. Passwords set while it was off cannot use digest
	// until they are set again.
	Digest bool `toml:"digest"`
	// ZeroKnowledge: the jabberd 1.x <sequence/>/<token/>/<hash/> method.
	// The server stores an iterated SHA-1 chain (not the password); each
	// login consumes one link and the method stops working after
	// zero_knowledge_sequence logins until the password is set again.
	// Passwords set while it was off cannot use it until they are reset.
	ZeroKnowledge bool `toml:"zero_knowledge"`
	// ZeroKnowledgeSequence is the chain length a password (re)set starts
	// with (default 500, at most 10000).
	ZeroKnowledgeSequence int `toml:"zero_knowledge_sequence"`
	// AllowWithoutTLS allows plaintext on unencrypted streams (and with
	// c2s.require_tls = false, lets pre-XMPP-1.0 clients without TLS log
	// in at all). Default false.
	AllowWithoutTLS bool `toml:"allow_without_tls"`
}

// Enabled reports whether any legacy method is on.
func (l LegacyAuth) Enabled() bool { return l.Plaintext || l.Digest || l.ZeroKnowledge }

// C2S configures client listeners (RFC 6120, XEP-0368).
type C2S struct {
	// Listen: addresses for STARTTLS client connections (default :5222).
	Listen []string `toml:"listen"`
	// DirectTLSListen: addresses for direct TLS (XEP-0368, default :5223).
	DirectTLSListen []string `toml:"direct_tls_listen"`
	// RequireTLS: STARTTLS is mandatory before authentication (default true).
	RequireTLS *bool `toml:"require_tls"`
	// AllowPlainWithoutTLS offers SASL PLAIN on unencrypted streams; only
	// meaningful when require_tls is false. Default false.
	AllowPlainWithoutTLS bool `toml:"allow_plain_without_tls"`
	// ClientCAFile: PEM bundle of CAs whose client certificates may log in
	// with SASL EXTERNAL (XEP-0178). When set, TLS asks for (but does not
	// require) a client certificate. Empty: EXTERNAL is never offered.
	ClientCAFile string `toml:"client_ca_file"`
	// CRLFiles: PEM or DER certificate revocation lists checked for client
	// certificates; reloaded with the certificates (SIGHUP).
	CRLFiles []string `toml:"crl_files"`
	// StreamManagement configures XEP-0198 on every client stream.
	StreamManagement StreamManagement `toml:"stream_management"`
}

// StreamManagement configures XEP-0198 acknowledgements and resumption.
type StreamManagement struct {
	// Enabled offers stream management (default true).
	Enabled *bool `toml:"enabled"`
	// Resume lets a client resume a session whose connection was lost
	// (default true). Off, acknowledgements stay and a lost connection
	// ends its session at once.
	Resume *bool `toml:"resume"`
	// ResumeTimeout is the longest a session whose connection was lost
	// waits for the client to resume it (default 5m; a client may ask for
	// less with <enable max='…'/>).
	ResumeTimeout Duration `toml:"resume_timeout"`
	// MaxUnacked bounds the stanzas sent to one client and not yet
	// acknowledged (default 1000); beyond it the stream ends with
	// resource-constraint and the stanzas are handled as undelivered.
	MaxUnacked int `toml:"max_unacked"`
}

// Limits bounds every resource a remote party can make the server spend.
type Limits struct {
	MaxStanzaBytes        int      `toml:"max_stanza_bytes"`         // default 262144
	MaxDepth              int      `toml:"max_depth"`                // default 32
	MaxAttrs              int      `toml:"max_attrs"`                // default 64
	PreAuthTimeout        Duration `toml:"preauth_timeout"`          // seed 004 "authtime"; default 30s
	MaxSessionsPerAccount int      `toml:"max_sessions_per_account"` // default 10
	OutputQueue           int      `toml:"output_queue"`             // stanzas queued per session; default 2000
	WriteTimeout          Duration `toml:"write_timeout"`            // default 30s
	RateBytesPerSecond    int      `toml:"rate_bytes_per_second"`    // seed 004 "karma"; default 10240
	RateBurstBytes        int      `toml:"rate_burst_bytes"`         // default 262144 (must be >= max_stanza_bytes)
	OfflineQuota          int      `toml:"offline_quota"`            // stored stanzas per account; default 500
	MaxAuthFailures       int      `toml:"max_auth_failures"`        // per connection; default 5
	AuthFailureDelay      Duration `toml:"auth_failure_delay"`       // first failed-auth delay, doubling per failure (max 8x); default 1s
	IdleTimeout           Duration `toml:"idle_timeout"`             // authenticated stream silent this long: closed; default 0 (never)
	MaxVCardBytes         int      `toml:"max_vcard_bytes"`          // serialized vcard-temp element per account (XEP-0054); default 131072
	MaxPrivateBytes       int      `toml:"max_private_bytes"`        // serialized element per private XML namespace (XEP-0049); default 65536
	// MaxConnectionsPerIP bounds the connections open at once from one
	// source address (IPv4 address, IPv6 /64) on the client and component
	// listeners; more are closed at accept. Default 100 (room for a NAT).
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxPendingSubscriptions bounds the unanswered inbound subscription
	// requests stored per account (RFC 6121 §3.1.3 keeps them until the
	// user answers); further ones are refused with resource-constraint, so
	// a remote server or component inventing senders cannot fill storage.
	// Default 200.
	MaxPendingSubscriptions int `toml:"max_pending_subscriptions"`
	// CSIQueue bounds the stanzas held back for one client session that
	// said it is inactive (XEP-0352, internal/mod/csi): when the bound is
	// reached the held stanzas are delivered, never dropped, so it bounds
	// memory per session without losing anything. At most output_queue,
	// so that one flush fits the session's output queue. Default 100 (or
	// output_queue if that is smaller).
	CSIQueue int `toml:"csi_queue"`
	// MaxBlocklistItems bounds the JIDs one account may block (XEP-0191);
	// a block command that would exceed it is refused whole with
	// resource-constraint, so the list, kept in storage and in memory while
	// the account is online, cannot grow without bound. Default 1000.
	MaxBlocklistItems int `toml:"max_blocklist_items"`
	// MaxPEPNodes bounds the publish-subscribe nodes of one account's
	// personal eventing service (XEP-0163); creating another fails with
	// resource-constraint. Default 100.
	MaxPEPNodes int `toml:"max_pep_nodes"`
	// MaxPEPItems bounds the items one PEP node keeps: the most a node may
	// be configured for, and what pubsub#max_items "max" means. Default 256.
	MaxPEPItems int `toml:"max_pep_items"`
	// MaxPEPItemBytes bounds one published payload, serialized; a bigger
	// one is refused with not-acceptable/payload-too-big (XEP-0060
	// §7.1.3.4). Default 131072, room for an avatar (XEP-0084).
	MaxPEPItemBytes int `toml:"max_pep_item_bytes"`
	// MaxPEPSubscriptions bounds the explicit subscriptions of one PEP node
	// (contacts with a presence subscription need none); more are refused
	// with policy-violation/too-many-subscriptions. Default 1000.
	MaxPEPSubscriptions int `toml:"max_pep_subscriptions"`
	// MaxConcurrentLogins bounds the client connections negotiating at
	// once (TLS handshake, authentication, binding) on the TCP client
	// listeners; while all are taken, further connections wait in the
	// listen backlog instead of sharing the CPU with them, so under a
	// login storm the admitted logins finish quickly instead of all
	// slowing down together. Default 8 per CPU the process may use.
	MaxConcurrentLogins int `toml:"max_concurrent_logins"`
	// MaxConcurrentLoginsPerIP bounds the slots of max_concurrent_logins
	// one source address may hold, so that one address cannot shut the
	// others out; its further connections wait for one of its slots at
	// most login_slot_timeout, then go on without one (many users behind
	// one NAT address are slowed, never shut out). Default half of
	// max_concurrent_logins (at least 1).
	MaxConcurrentLoginsPerIP int `toml:"max_concurrent_logins_per_ip"`
	// LoginSlotTimeout is how long a connection keeps its login slot
	// without having logged in; then it goes on without one (still within
	// preauth_timeout). It bounds what a connection that sends nothing can
	// hold, and the wait of one address's connections over their share. A
	// login on a slow mobile link may outlast it and finish ungated, which
	// costs the gate little (its CPU work is spread out anyway). Default 2s
	// (preauth_timeout if that is shorter); at most preauth_timeout.
	LoginSlotTimeout Duration `toml:"login_slot_timeout"`
	// ParkIdleAfter is how long a bound client connection (TCP, with or
	// without TLS) may send nothing, between stanzas, before its reader
	// goroutine parks: it ends, its socket waits in the c2s idle set
	// (internal/idlewait; elsewhere than Linux, a goroutine of a few small
	// frames waits), and the client's next bytes start a reader again.
	// It is what keeps an idle session's memory small (the reader's
	// stack grows to 8 KiB under TLS); an active session never parks, and
	// a session waking from it costs a goroutine start. Default 2s; a
	// negative value turns parking off; at least 100ms.
	ParkIdleAfter Duration `toml:"park_idle_after"`
	// ReleaseMemoryAfter is how long the server must have been quiet
	// (allocating little) after a busy spell before it collects garbage
	// and returns the freed memory to the system at once, instead of
	// holding it until the runtime's own two-minute collection and its
	// gradual return (internal/memrelease): after a reconnect storm, tens
	// of megabytes sooner. It costs one garbage collection per busy spell,
	// and only when the heap holds at least 8 MiB and an eighth more than
	// is live. Default 30s; a negative value turns it off; at least 1s.
	ReleaseMemoryAfter Duration `toml:"release_memory_after"`
}

// Modules configures individual feature modules.
type Modules struct {
	Version VersionModule `toml:"version"`
}

// VersionModule configures XEP-0092 Software Version answers.
type VersionModule struct {
	// ShowOS adds the operating system to the answer. Default false: the OS
	// helps attackers more than it helps users.
	ShowOS bool `toml:"show_os"`
}

// HTTP configures the metrics/health listener.
type HTTP struct {
	// Listen: address for /metrics and /healthz ("" disables; default 127.0.0.1:5280).
	Listen *string `toml:"listen"`
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on this listener, for measuring the server under load
	// (bench/README.md). Off by default: a profile shows the server's
	// internals to anyone who can reach the listener.
	Pprof bool `toml:"pprof"`
}

// TLS configures certificates and versions.
type TLS struct {
	// CertFile/KeyFile: default certificate for hosts without their own.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// MinVersion "1.2" (default) or "1.3".
	MinVersion string `toml:"min_version"`
}

// Auth configures authentication.
type Auth struct {
	// ScramIterations for newly set passwords (default 4096, minimum 4096).
	ScramIterations int `toml:"scram_iterations"`
	// MinPasswordLength for new passwords (default 8).
	MinPasswordLength int `toml:"min_password_length"`
	// BruteForce throttles failed logins per source IP address.
	BruteForce BruteForce `toml:"brute_force"`
	// Password is the password policy of the self-service page
	// ([auth.password]; console.go).
	Password PasswordPolicy `toml:"password"`
	// GroupsPollInterval: how often the server looks for group membership
	// changes made with `parley group` (a change counter in storage; one
	// key read per poll). Default 5s.
	GroupsPollInterval Duration `toml:"groups_poll_interval"`
	// SASL2 offers XEP-0388 Extensible SASL (with XEP-0386 Bind 2) on
	// client streams next to RFC 6120 SASL (default true).
	SASL2 *bool `toml:"sasl2"`
	// FAST configures XEP-0484 token logins (SASL2 only).
	FAST FAST `toml:"fast"`
}

// FAST configures XEP-0484 Fast Authentication Streamlining Tokens: a
// client that logged in with its password may ask for a token and log in
// with it later in one round trip.
type FAST struct {
	// Enabled offers FAST inside SASL2 (default true).
	Enabled *bool `toml:"enabled"`
	// Lifetime of a token from its issue (default 504h, 21 days). A token
	// used when less than half of it is left is replaced by a new one.
	Lifetime Duration `toml:"lifetime"`
	// MaxPerAccount bounds the tokens kept for one account (default 20:
	// two per client during a rotation); issuing beyond it removes the
	// least recently issued.
	MaxPerAccount int `toml:"max_per_account"`
}

// BruteForce configures the per-IP failed-login limiter (SASL and legacy
// authentication alike). There is deliberately no per-account lockout: it
// would let anyone lock any user out.
type BruteForce struct {
	// Window: failures older than this are forgotten (default 10m).
	Window Duration `toml:"window"`
	// DelayAfter: after this many failures in the window, every further
	// attempt from the address waits Delay before it is answered (default 5).
	DelayAfter int `toml:"delay_after"`
	// Delay per attempt once DelayAfter is reached (default 2s).
	Delay Duration `toml:"delay"`
	// PauseAfter: after this many failures the address is paused: every
	// attempt is refused with temporary-auth-failure without checking the
	// credentials, for Pause (default 10 failures, 5m).
	PauseAfter int      `toml:"pause_after"`
	Pause      Duration `toml:"pause"`
	// MaxSources bounds the addresses tracked; the least recently seen is
	// forgotten first (default 10000).
	MaxSources int `toml:"max_sources"`
}

// Duration is a time.Duration written as "30s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the zero-config configuration: domain localhost, data
// under ./data, a generated self-signed certificate.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Relative data_dir and file paths are relative to the config file.
	base := filepath.Dir(path)
	c.resolvePaths(base)
	if problems := c.fileProblems(); len(problems) > 0 {
		return nil, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	return c, nil
}

// Parse decodes and validates config text.
func Parse(b []byte) (*Config, error) {
	c := &Config{}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		return nil, err
	}
	var problems []string
	if und := md.Undecoded(); len(und) > 0 {
		for _, k := range und {
			problems = append(problems, fmt.Sprintf("unknown key %q", k.String()))
		}
	}
	problems = append(problems, keyCaseProblems(md)...)
	c.applyDefaults()
	problems = append(problems, c.validate()...)
	problems = append(problems, c.crossProblems()...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

func (c *Config) resolvePaths(base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.SQLitePath)
	if c.AdminSocket != "-" {
		abs(&c.AdminSocket)
	}
	abs(&c.TLS.CertFile)
	abs(&c.TLS.KeyFile)
	c.resolveS2SPaths(abs)
	c.resolveClusterPaths(abs)
	c.resolveDirectoryPaths(abs)
	abs(&c.C2S.ClientCAFile)
	for i := range c.C2S.CRLFiles {
		abs(&c.C2S.CRLFiles[i])
	}
	for i := range c.Hosts {
		abs(&c.Hosts[i].CertFile)
		abs(&c.Hosts[i].KeyFile)
		abs(&c.Hosts[i].Kerberos.Keytab)
	}
}

func boolPtr(b bool) *bool    { return &b }
func strPtr(s string) *string { return &s }
func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}
func setDur(p *Duration, v time.Duration) {
	if p.Duration == 0 {
		p.Duration = v
	}
}

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Storage == "" {
		c.Storage = "sqlite"
	}
	if c.SQLitePath == "" {
		c.SQLitePath = filepath.Join(c.DataDir, "parley.db")
	}
	if c.AdminSocket == "" {
		c.AdminSocket = filepath.Join(c.DataDir, "admin.sock")
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if len(c.Hosts) == 0 {
		c.Hosts = []Host{{Domain: "localhost"}}
	}
	for i := range c.Hosts {
		c.Hosts[i].Reporting.applyDefaults()
		c.Hosts[i].MUC.applyDefaults(c.Hosts[i].Domain)
		c.Hosts[i].Archive.applyDefaults()
		c.Hosts[i].Push.applyDefaults()
		c.Hosts[i].Kerberos.applyDefaults(c.Hosts[i].Domain)
		for j := range c.Hosts[i].ExternalServices {
			c.Hosts[i].ExternalServices[j].applyDefaults()
		}
	}
	for i := range c.Hosts {
		r := &c.Hosts[i].Registration
		if r.Instructions == "" {
			r.Instructions = "Choose a username and password to register with this server."
		}
		setInt(&r.MaxPerIP, 5)
		setDur(&r.Window, time.Hour)
		setInt(&r.MaxTrackedIPs, 10000)
		setInt(&r.MaxFieldBytes, 1024)
	}
	if c.C2S.Listen == nil {
		c.C2S.Listen = []string{":5222"}
	}
	if c.C2S.DirectTLSListen == nil {
		c.C2S.DirectTLSListen = []string{":5223"}
	}
	if c.C2S.RequireTLS == nil {
		c.C2S.RequireTLS = boolPtr(true)
	}
	if sm := &c.C2S.StreamManagement; sm.Enabled == nil {
		sm.Enabled = boolPtr(true)
	}
	if sm := &c.C2S.StreamManagement; sm.Resume == nil {
		sm.Resume = boolPtr(true)
	}
	setDur(&c.C2S.StreamManagement.ResumeTimeout, 5*time.Minute)
	setInt(&c.C2S.StreamManagement.MaxUnacked, 1000)
	l := &c.Limits
	setInt(&l.MaxStanzaBytes, 256*1024)
	setInt(&l.MaxDepth, 32)
	setInt(&l.MaxAttrs, 64)
	setDur(&l.PreAuthTimeout, 30*time.Second)
	setInt(&l.MaxSessionsPerAccount, 10)
	setInt(&l.OutputQueue, 2000)
	setDur(&l.WriteTimeout, 30*time.Second)
	setInt(&l.RateBytesPerSecond, 10*1024)
	setInt(&l.RateBurstBytes, 256*1024)
	setInt(&l.OfflineQuota, 500)
	setInt(&l.MaxAuthFailures, 5)
	setDur(&l.AuthFailureDelay, time.Second)
	setInt(&l.MaxVCardBytes, 128*1024)
	setInt(&l.MaxPrivateBytes, 64*1024)
	setInt(&l.MaxConnectionsPerIP, 100)
	setInt(&l.MaxPendingSubscriptions, 200)
	// A small output_queue lowers the default rather than making the
	// default invalid.
	setInt(&l.CSIQueue, min(100, l.OutputQueue))
	setInt(&l.MaxBlocklistItems, 1000)
	setInt(&l.MaxPEPNodes, 100)
	setInt(&l.MaxPEPItems, 256)
	setInt(&l.MaxPEPItemBytes, 128*1024)
	setInt(&l.MaxPEPSubscriptions, 1000)
	setInt(&l.MaxConcurrentLogins, 8*runtime.GOMAXPROCS(0))
	setInt(&l.MaxConcurrentLoginsPerIP, max(1, l.MaxConcurrentLogins/2))
	setDur(&l.LoginSlotTimeout, min(2*time.Second, l.PreAuthTimeout.Duration))
	setDur(&l.ParkIdleAfter, 2*time.Second)
	setDur(&l.ReleaseMemoryAfter, 30*time.Second)
	if c.HTTP.Listen == nil {
		c.HTTP.Listen = strPtr("127.0.0.1:5280")
	}
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = "1.2"
	}
	setInt(&c.Auth.ScramIterations, 4096)
	setInt(&c.Auth.MinPasswordLength, 8)
	if c.Auth.SASL2 == nil {
		c.Auth.SASL2 = boolPtr(true)
	}
	if c.Auth.FAST.Enabled == nil {
		// FAST lives inside SASL2: off with it unless asked for (which
		// validation then refuses).
		c.Auth.FAST.Enabled = boolPtr(*c.Auth.SASL2)
	}
	setDur(&c.Auth.FAST.Lifetime, 21*24*time.Hour)
	setInt(&c.Auth.FAST.MaxPerAccount, 20)
	c.applyComponentDefaults()
	c.applyHTTPSDefaults()
	c.applyS2SDefaults()
	c.applyClusterDefaults()
	c.applyDirectoryDefaults()
	c.applyAccessDefaults()
	c.applyConsoleDefaults()
	bf := &c.Auth.BruteForce
	setDur(&bf.Window, 10*time.Minute)
	setInt(&bf.DelayAfter, 5)
	setDur(&bf.Delay, 2*time.Second)
	setInt(&bf.PauseAfter, 10)
	setDur(&bf.Pause, 5*time.Minute)
	setInt(&bf.MaxSources, 10000)
	for i := range c.Hosts {
		setInt(&c.Hosts[i].LegacyAuth.ZeroKnowledgeSequence, 500)
	}
}

func (c *Config) validate() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	switch c.Storage {
	case "sqlite":
	case "postgres":
		if c.PostgresDSN == "" {
			bad("postgres_dsn: required when storage = \"postgres\"")
		}
	default:
		bad("storage: %q is not \"sqlite\" or \"postgres\"", c.Storage)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format: %q is not text or json", c.Log.Format)
	}
	seen := map[string]bool{}
	for i, h := range c.Hosts {
		// Prepared as addresses are (RFC 7622 §3.2): lower case, and an
		// internationalised domain in U-labels whether written so or as
		// A-labels, so that it matches the JIDs clients and servers send.
		d := strings.ToLower(strings.TrimSuffix(h.Domain, "."))
		prepared, perr := jid.PrepareDomain(d)
		if perr == nil {
			d = prepared
		}
		switch {
		case d == "":
			bad("host[%d].domain: empty", i)
		case strings.ContainsAny(d, "@/ ") || perr != nil:
			bad("host[%d].domain: %q is not a domain", i, h.Domain)
		case seen[d]:
			bad("host[%d].domain: %q listed twice", i, h.Domain)
		}
		seen[d] = true
		c.Hosts[i].Domain = d
		if (h.CertFile == "") != (h.KeyFile == "") {
			bad("host[%d]: cert_file and key_file go together", i)
		}
		for _, a := range h.AllowedUsers {
			if !strings.Contains(a, "@") || strings.Contains(a, "/") {
				bad("host[%d].allowed_users: %q is not a bare JID", i, a)
			}
		}
		for _, g := range append(append([]string(nil), h.AllowedGroups...), h.AdminGroups...) {
			if strings.TrimSpace(g) == "" {
				bad("host[%d]: empty group name in allowed_groups/admin_groups", i)
			}
		}
		if n := h.LegacyAuth.ZeroKnowledgeSequence; n < 1 || n > 10000 {
			bad("host[%d].legacy_auth.zero_knowledge_sequence: %d is not between 1 and 10000", i, n)
		}
		p = append(p, h.Registration.validate(i)...)
		p = append(p, h.Archive.validate(i)...)
		p = append(p, h.Push.validate(i)...)
		p = append(p, h.ContactAddresses.validate(i)...)
		p = append(p, h.Reporting.validate(i)...)
		p = append(p, h.validateMechanisms(i, c)...)
		for j, es := range h.ExternalServices {
			p = append(p, es.validate(i, j)...)
		}
	}
	if sm := c.C2S.StreamManagement; sm.ResumeTimeout.Duration < time.Second {
		bad("c2s.stream_management.resume_timeout: %s is less than 1s", sm.ResumeTimeout)
	}
	if sm := c.C2S.StreamManagement; sm.MaxUnacked < 1 {
		bad("c2s.stream_management.max_unacked: %d is not positive", sm.MaxUnacked)
	}
	for _, a := range append(append([]string(nil), c.C2S.Listen...), c.C2S.DirectTLSListen...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("c2s listen address %q: %v", a, err)
		}
	}
	if *c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(*c.HTTP.Listen); err != nil {
			bad("http.listen %q: %v", *c.HTTP.Listen, err)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file go together")
	}
	switch c.TLS.MinVersion {
	case "1.2", "1.3":
	default:
		bad("tls.min_version: %q is not \"1.2\" or \"1.3\"", c.TLS.MinVersion)
	}
	l := c.Limits
	positive := map[string]int{
		"limits.max_stanza_bytes": l.MaxStanzaBytes, "limits.max_depth": l.MaxDepth,
		"limits.max_attrs": l.MaxAttrs, "limits.max_sessions_per_account": l.MaxSessionsPerAccount,
		"limits.output_queue": l.OutputQueue, "limits.rate_bytes_per_second": l.RateBytesPerSecond,
		"limits.rate_burst_bytes": l.RateBurstBytes, "limits.offline_quota": l.OfflineQuota,
		"limits.max_auth_failures": l.MaxAuthFailures, "limits.max_vcard_bytes": l.MaxVCardBytes,
		"limits.max_private_bytes": l.MaxPrivateBytes, "limits.max_connections_per_ip": l.MaxConnectionsPerIP,
		"limits.max_pending_subscriptions": l.MaxPendingSubscriptions, "limits.csi_queue": l.CSIQueue,
		"limits.max_blocklist_items": l.MaxBlocklistItems, "limits.max_pep_nodes": l.MaxPEPNodes,
		"limits.max_pep_items": l.MaxPEPItems, "limits.max_pep_item_bytes": l.MaxPEPItemBytes,
		"limits.max_pep_subscriptions": l.MaxPEPSubscriptions,
		"limits.max_concurrent_logins": l.MaxConcurrentLogins, "limits.max_concurrent_logins_per_ip": l.MaxConcurrentLoginsPerIP,
	}
	for k, v := range positive {
		if v < 0 {
			bad("%s: must be positive, got %d", k, v)
		}
	}
	if l.MaxStanzaBytes < 4096 {
		bad("limits.max_stanza_bytes: %d is too small: use at least 4096 (RFC 6120 §13.12 expects servers to accept stanzas of at least 10000 bytes)", l.MaxStanzaBytes)
	}
	if l.CSIQueue > l.OutputQueue {
		bad("limits.csi_queue (%d) exceeds limits.output_queue (%d): a flush of the held stanzas would overflow the output queue and close the session", l.CSIQueue, l.OutputQueue)
	}
	if l.RateBurstBytes < l.MaxStanzaBytes {
		bad("limits.rate_burst_bytes (%d) must be at least limits.max_stanza_bytes (%d), or a maximal stanza could never be read", l.RateBurstBytes, l.MaxStanzaBytes)
	}
	// A stream header alone carries up to eight attributes and namespace
	// declarations, and ordinary payloads (data forms, MUC items) nest a few
	// levels: lower limits would refuse every client.
	if l.MaxAttrs < 16 {
		bad("limits.max_attrs: %d is too small: stream headers and ordinary stanzas need at least 16", l.MaxAttrs)
	}
	if l.MaxDepth < 8 {
		bad("limits.max_depth: %d is too small: ordinary stanzas nest at least 8 levels", l.MaxDepth)
	}
	if l.MaxConcurrentLoginsPerIP > l.MaxConcurrentLogins {
		bad("limits.max_concurrent_logins_per_ip (%d) exceeds limits.max_concurrent_logins (%d)", l.MaxConcurrentLoginsPerIP, l.MaxConcurrentLogins)
	}
	if l.LoginSlotTimeout.Duration < 0 {
		bad("limits.login_slot_timeout: must not be negative")
	}
	if p := l.ParkIdleAfter.Duration; p > 0 && p < 100*time.Millisecond {
		bad("limits.park_idle_after: %s is too short: at least 100ms, or negative to turn parking off", p)
	}
	if r := l.ReleaseMemoryAfter.Duration; r > 0 && r < time.Second {
		bad("limits.release_memory_after: %s is too short: at least 1s, or negative to turn it off", r)
	}
	if l.PreAuthTimeout.Duration < time.Second {
		bad("limits.preauth_timeout: %s is too short", l.PreAuthTimeout.Duration)
	}
	if l.LoginSlotTimeout.Duration > l.PreAuthTimeout.Duration {
		bad("limits.login_slot_timeout (%s) exceeds limits.preauth_timeout (%s): a connection waiting for its address's share would be closed instead of going on", l.LoginSlotTimeout.Duration, l.PreAuthTimeout.Duration)
	}
	if c.Auth.ScramIterations < 4096 {
		bad("auth.scram_iterations: %d is below the RFC 7677 minimum of 4096", c.Auth.ScramIterations)
	}
	if bf := c.Auth.BruteForce; bf.DelayAfter < 1 || bf.PauseAfter < bf.DelayAfter || bf.MaxSources < 1 || bf.Window.Duration <= 0 || bf.Delay.Duration < 0 || bf.Pause.Duration <= 0 {
		bad("auth.brute_force: need 1 <= delay_after <= pause_after, max_sources >= 1, positive window and pause")
	}
	if c.Auth.MinPasswordLength < 1 {
		bad("auth.min_password_length: must be at least 1")
	}
	if f := c.Auth.FAST; f.Lifetime.Duration < time.Minute || f.Lifetime.Duration > 366*24*time.Hour {
		bad("auth.fast.lifetime: %s is outside 1m..8784h (one year)", f.Lifetime.Duration)
	}
	if f := c.Auth.FAST; f.MaxPerAccount < 2 || f.MaxPerAccount > 1000 {
		bad("auth.fast.max_per_account: %d is outside 2..1000 (a rotating client holds two)", f.MaxPerAccount)
	}
	if *c.Auth.FAST.Enabled && !*c.Auth.SASL2 {
		bad("auth.fast.enabled: FAST needs auth.sasl2 = true (set auth.fast.enabled = false)")
	}
	c.validateComponents(bad)
	c.validateHTTPS(bad)
	c.validateConsole(bad)
	c.validateS2S(bad)
	c.validateCluster(bad)
	c.validateDirectory(bad)
	c.validateAccessSettings(bad)
	p = append(p, c.validateMUC()...)
	return p
}

func (r Registration) validate(i int) []string {
	var p []string
	seen := map[string]bool{}
	for _, f := range r.Fields {
		known := false
		for _, n := range RegistrationFieldNames() {
			known = known || n == f
		}
		switch {
		case !known:
			p = append(p, fmt.Sprintf("host[%d].registration.fields: %q is not a XEP-0077 field (%s)", i, f, strings.Join(RegistrationFieldNames(), ", ")))
		case seen[f]:
			p = append(p, fmt.Sprintf("host[%d].registration.fields: %q listed twice", i, f))
		}
		seen[f] = true
	}
	if r.MaxPerIP < 0 || r.MaxTrackedIPs < 0 || r.MaxFieldBytes < 0 {
		p = append(p, fmt.Sprintf("host[%d].registration: max_per_ip, max_tracked_ips and max_field_bytes must be positive", i))
	}
	if r.Window.Duration < 0 {
		p = append(p, fmt.Sprintf("host[%d].registration.window: must be positive", i))
	}
	return p
}

// HostByDomain returns the host config for domain, or nil.
func (c *Config) HostByDomain(domain string) *Host {
	for i := range c.Hosts {
		if c.Hosts[i].Domain == domain {
			return &c.Hosts[i]
		}
	}
	return nil
}

// Encode writes the effective configuration as TOML (parley config check).
func (c *Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	err := toml.NewEncoder(&buf).Encode(c)
	return buf.Bytes(), err
}
