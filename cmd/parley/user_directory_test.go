package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"parley/internal/config"
	"parley/internal/directory/ldaptest"
)

// TestUserCommandsOnDirectoryHost: parley user refuses to create or delete
// accounts that live in the directory and says so, passwd changes the
// password there; list shows the directory's users.
func TestUserCommandsOnDirectoryHost(t *testing.T) {
	srv := ldaptest.Start(t, "")
	dir := t.TempDir()
	path := filepath.Join(dir, "parley.toml")
	text := fmt.Sprintf(`data_dir = "data"
[[host]]
domain = "example.test"
accounts = "directory"
[[host]]
domain = "local.test"
[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
disabled_attribute = "employeeType"
disabled_values = ["disabled"]
`, srv.Addr, ldaptest.ServiceDN, ldaptest.ServicePassword, ldaptest.PeopleBase)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if rc := run([]string{"user", "add", "zoe@example.test", "long-enough-pw", "--config", path}); rc != 1 {
		t.Fatalf("add on a directory host: rc %d", rc)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := userCommand(context.Background(), cfg, nil, "del", []string{"alice@example.test"}); err == nil || !strings.Contains(err.Error(), "live in the LDAP directory") {
		t.Fatalf("del: %v", err)
	}
	// passwd changes the password in the directory, with SCRAM secrets.
	if err := userCommand(context.Background(), cfg, nil, "passwd", []string{"alice@example.test", "long-enough-pw"}); err != nil {
		t.Fatalf("passwd: %v", err)
	}
	if out := srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "authPassword"); strings.Count(out, "authPassword: SCRAM-SHA-") != 2 {
		t.Fatalf("alice's entry after passwd:\n%s", out)
	}
	if err := userCommand(context.Background(), cfg, nil, "passwd", []string{"nobody@example.test", "long-enough-pw"}); err == nil || !strings.Contains(err.Error(), "no directory user") {
		t.Fatalf("passwd for an unknown user: %v", err)
	}
	if err := listDirectoryUsers(context.Background(), cfg, "example.test"); err != nil {
		t.Fatal(err)
	}
	if rc := run([]string{"user", "add", "zoe@local.test", "long-enough-pw", "--config", path}); rc != 0 {
		t.Fatalf("add on a database host: rc %d", rc)
	}
}
