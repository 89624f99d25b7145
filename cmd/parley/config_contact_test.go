package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// config check prints a host's XEP-0157 contact addresses and the
// XEP-0377 forwarding switch in the effective configuration, and refuses
// an address that is not an xmpp:, mailto: or https: URI.
func TestConfigCheckContactAddresses(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "parley.toml")
	text := "data_dir = \"data\"\n[[host]]\ndomain = \"example.test\"\n[host.contact_addresses]\n" +
		"abuse = [\"mailto:abuse@example.test\", \"xmpp:abuse@example.test\"]\n[host.reporting]\nforward_to_admins = true\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := captureRun(t, "config", "check", "--config", cfg)
	if code != 0 {
		t.Fatalf("config check: exit %d\n%s", code, out)
	}
	for _, want := range []string{"[host.contact_addresses]", `abuse = ["mailto:abuse@example.test", "xmpp:abuse@example.test"]`,
		"[host.reporting]", "forward_to_admins = true"} {
		if !strings.Contains(out, want) {
			t.Fatalf("config check output lacks %s:\n%s", want, out)
		}
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(text, "mailto:abuse@", "abuse@", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := captureRun(t, "config", "check", "--config", cfg); code != 1 {
		t.Fatalf("config check with an address that is no URI: exit %d, want 1", code)
	}
}
