package config

import (
	"net/url"
	"os"
	"regexp"
	"time"
)

// Cluster makes this server one node of several serving the same domains
// (internal/cluster): NATS with JetStream carries the session registry,
// leases and stanzas between nodes; PostgreSQL holds everything durable.
// Without a [cluster] table (Enabled false) the server is its own cluster.
type Cluster struct {
	// Enabled is set by the presence of nats_urls.
	Enabled bool `toml:"-"`
	// Node names this node, unique in the cluster (default: the host name).
	Node string `toml:"node"`
	// NATSURLs are the NATS servers ("nats://host:4222", "tls://..."); the
	// client fails over between them.
	NATSURLs []string `toml:"nats_urls"`
	// NATSCredsFile: a NATS credentials file (JWT and NKey seed).
	NATSCredsFile string `toml:"nats_creds_file"`
	// NATSUser/NATSPassword or NATSToken for servers that use them.
	NATSUser     string `toml:"nats_user"`
	NATSPassword string `toml:"nats_password"`
	NATSToken    string `toml:"nats_token"`
	// NATSCAFile verifies the NATS servers' certificates; NATSCertFile and
	// NATSKeyFile are this node's client certificate if they ask for one.
	NATSCAFile   string `toml:"nats_ca_file"`
	NATSCertFile string `toml:"nats_cert_file"`
	NATSKeyFile  string `toml:"nats_key_file"`
	// Replicas of the JetStream key/value buckets (default 1; 3 with a
	// three-server NATS cluster so that losing one loses nothing).
	Replicas int `toml:"replicas"`
	// Heartbeat is how often a node renews its liveness (default 1s).
	Heartbeat Duration `toml:"heartbeat"`
	// Lease: a node silent this long is dead and its JIDs are free
	// (default 5s); a node that cannot renew for half of it closes its
	// client streams and refuses logins until NATS is back.
	Lease Duration `toml:"lease"`
}

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) resolveClusterPaths(abs func(*string)) {
	for _, p := range []*string{&c.Cluster.NATSCredsFile, &c.Cluster.NATSCAFile, &c.Cluster.NATSCertFile, &c.Cluster.NATSKeyFile} {
		abs(p)
	}
}

func (c *Config) applyClusterDefaults() {
	cl := &c.Cluster
	cl.Enabled = len(cl.NATSURLs) > 0
	// Filled in clustered or not, so that config check shows them; the
	// node name only when clustered (naming a node without nats_urls is
	// refused).
	setInt(&cl.Replicas, 1)
	setDur(&cl.Heartbeat, time.Second)
	setDur(&cl.Lease, 5*time.Second)
	if cl.Enabled && cl.Node == "" {
		h, _ := os.Hostname()
		cl.Node = sanitizeNode(h)
	}
}

// sanitizeNode turns a host name into a node name (NATS subjects allow no
// dots in a token).
func sanitizeNode(h string) string {
	b := []byte(h)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

func (c *Config) validateCluster(bad func(string, ...any)) {
	cl := &c.Cluster
	if !cl.Enabled {
		if cl.Node != "" || cl.NATSCredsFile != "" || cl.NATSUser != "" || cl.NATSToken != "" {
			bad("cluster: nats_urls is required")
		}
		return
	}
	if !nodeName.MatchString(cl.Node) {
		bad("cluster.node: %q must be 1-64 letters, digits, '-' or '_'", cl.Node)
	}
	for _, u := range cl.NATSURLs {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			bad("cluster.nats_urls: %q is not a URL like nats://host:4222", u)
			continue
		}
		switch pu.Scheme {
		case "nats", "tls":
		default:
			bad("cluster.nats_urls: %q: scheme must be nats or tls", u)
		}
	}
	if c.Storage != "postgres" {
		bad("cluster: storage must be \"postgres\": every node reads and writes the same accounts, rosters and archives (SQLite is one machine's file)")
	}
	if (cl.NATSCertFile == "") != (cl.NATSKeyFile == "") {
		bad("cluster: nats_cert_file and nats_key_file go together")
	}
	if cl.NATSToken != "" && cl.NATSUser != "" {
		bad("cluster: nats_token and nats_user exclude each other")
	}
	if cl.Replicas < 1 || cl.Replicas > 5 {
		bad("cluster.replicas: %d is not 1 to 5", cl.Replicas)
	}
	if cl.Heartbeat.Duration <= 0 || cl.Lease.Duration < 3*cl.Heartbeat.Duration {
		bad("cluster: lease (%s) must be at least three heartbeats (%s)", cl.Lease, cl.Heartbeat)
	}
	if c.S2S.Enabled && len(c.S2S.DialbackSecret) < 16 {
		bad("cluster: s2s.dialback_secret (16 characters or more, the same on every node) is required: a dialback key made by one node is verified by whichever node the remote server asks")
	}
}
