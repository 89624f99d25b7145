package config

import (
	"strings"
	"testing"
)

func TestClusterConfig(t *testing.T) {
	base := `
storage = "postgres"
postgres_dsn = "postgres://x@127.0.0.1/db"
`
	cases := []struct {
		name, toml, wantErr string
	}{
		{"off", ``, ""},
		{"on", base + "[cluster]\nnode = \"n1\"\nnats_urls = [\"nats://127.0.0.1:4222\"]\n", ""},
		{"sqlite refused", "[cluster]\nnode = \"n1\"\nnats_urls = [\"nats://127.0.0.1:4222\"]\n", "storage must be \"postgres\""},
		{"urls required", base + "[cluster]\nnode = \"n1\"\n", "nats_urls is required"},
		{"bad node", base + "[cluster]\nnode = \"a.b\"\nnats_urls = [\"nats://127.0.0.1:4222\"]\n", "cluster.node"},
		{"bad url", base + "[cluster]\nnode = \"n\"\nnats_urls = [\"http://x:1\"]\n", "scheme"},
		{"short lease", base + "[cluster]\nnode = \"n\"\nnats_urls = [\"nats://x:1\"]\nheartbeat = \"2s\"\nlease = \"3s\"\n", "three heartbeats"},
		{"dialback secret", base + "[s2s]\nenabled = true\n[cluster]\nnode = \"n\"\nnats_urls = [\"nats://x:1\"]\n", "dialback_secret"},
		{"dialback secret set", base + "[s2s]\nenabled = true\ndialback_secret = \"0123456789abcdef\"\n[cluster]\nnode = \"n\"\nnats_urls = [\"nats://x:1\"]\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.toml))
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			_ = cfg
		})
	}
	cfg, err := Parse([]byte(base + "[cluster]\nnats_urls = [\"nats://127.0.0.1:4222\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Cluster.Enabled || cfg.Cluster.Node == "" || cfg.Cluster.Lease.Duration == 0 || cfg.Cluster.Replicas != 1 {
		t.Fatalf("defaults: %+v", cfg.Cluster)
	}
}
