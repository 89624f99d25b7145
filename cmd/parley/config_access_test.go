package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"parley/internal/directory/ldaptest"
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

// config check shows the per-host values held in the directory with the
// entry they came from, and checks directory group names against the
// directory.
func TestConfigCheckDirectoryPolicy(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Fixture+`
dn: ou=config,dc=example,dc=test
objectClass: organizationalUnit
ou: config

dn: cn=example.test,ou=config,dc=example,dc=test
objectClass: parleyHostPolicy
cn: example.test
parleyHostDomain: example.test
parleyAllowedGroup: engineering
parleyRoomCreation: admins
`)
	dir := t.TempDir()
	path := filepath.Join(dir, "parley.toml")
	text := fmt.Sprintf(`data_dir = "data"
[[host]]
domain = "example.test"
accounts = "directory"
admin_groups = %s
[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
group_base = %q
config_base = "ou=config,dc=example,dc=test"
`, "%s", srv.Addr, ldaptest.ServiceDN, ldaptest.ServicePassword, ldaptest.PeopleBase, ldaptest.GroupBase)
	write := func(groups string) {
		if err := os.WriteFile(path, []byte(fmt.Sprintf(text, groups)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`["engineering"]`)
	code, out := captureRun(t, "config", "check", "--config", path)
	if code != 0 {
		t.Fatalf("config check: exit %d\n%s", code, out)
	}
	for _, want := range []string{"# host example.test, from cn=example.test,ou=config,dc=example,dc=test",
		`#   allowed_groups = ["engineering"]`, `#   muc.room_creation = "admins"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "#   admin_groups") {
		t.Errorf("admin_groups reported as from the directory:\n%s", out)
	}
	write(`["enginering"]`)
	if code, _ := captureRun(t, "config", "check", "--config", path); code != 1 {
		t.Fatalf("config check with a misspelt directory group: exit %d, want 1", code)
	}
}
