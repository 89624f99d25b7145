package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"parley/internal/gssapi/krbtest"
)

// config check loads the keytab: one without the host's service principal
// is an error there, not only when serve starts.
func TestConfigCheckLoadsKeytab(t *testing.T) {
	r := krbtest.New(t, "EXAMPLE.TEST", "xmpp/example.test", 0)
	dir := t.TempDir()
	for _, tc := range []struct {
		hostname string
		rc       int
	}{{"example.test", 0}, {"other.example", 1}} {
		path := filepath.Join(dir, "parley.toml")
		text := fmt.Sprintf("data_dir = \"data\"\n[[host]]\ndomain = \"example.test\"\nmechanisms = [\"GSSAPI\"]\n[host.kerberos]\nkeytab = %q\nhostname = %q\nrealms = [\"EXAMPLE.TEST\"]\n", r.Keytab, tc.hostname)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if rc := run([]string{"config", "check", "--config", path}); rc != tc.rc {
			t.Errorf("hostname %s: rc %d, want %d", tc.hostname, rc, tc.rc)
		}
	}
}
