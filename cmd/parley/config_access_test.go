package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Access rules that name a group nobody is in (a typo) fail config check;
// once the group has a member they pass.
func TestConfigCheckUnknownGroups(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "parley.toml")
	text := "data_dir = \"data\"\n[[host]]\ndomain = \"example.test\"\nadmin_groups = [\"staff\"]\n[host.access.muc_create]\ngroups = [\"staf\"]\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := captureRun(t, "user", "add", "alice@example.test", "password1", "--config", cfg); code != 0 {
		t.Fatal("user add failed")
	}
	if code, _ := captureRun(t, "group", "add", "staff", "alice@example.test", "--config", cfg); code != 0 {
		t.Fatal("group add failed")
	}
	if code, _ := captureRun(t, "config", "check", "--config", cfg); code != 1 {
		t.Fatalf("config check with an unknown group: exit %d, want 1", code)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(text, `"staf"`, `"staff"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := captureRun(t, "config", "check", "--config", cfg); code != 0 {
		t.Fatalf("config check with known groups: exit %d\n%s", code, out)
	}
}
