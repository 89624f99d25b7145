package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const dirBase = `
[[host]]
domain = "example.test"
accounts = "directory"
[directory]
servers = ["127.0.0.1:3389", "ldap2.example.test"]
tls = "none"
bind_dn = "cn=parley,dc=example,dc=test"
bind_password = "secret"
user_base = "ou=people,dc=example,dc=test"
`

func TestDirectoryDefaults(t *testing.T) {
	c, err := Parse([]byte(dirBase))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Directory
	if d.UserFilter != "(&(objectClass=inetOrgPerson)(uid=%u))" || d.UserListFilter != "(&(objectClass=inetOrgPerson)(uid=*))" ||
		d.LocalpartAttribute != "uid" || d.PoolSize != 8 || d.ProfileUpdateBind != "service" || d.RoomNameAttribute != "cn" {
		t.Fatalf("defaults: %+v", d)
	}
	if !c.Hosts[0].AccountsInDirectory() {
		t.Fatal("host accounts")
	}
	if Default().Hosts[0].Accounts != AccountsDatabase {
		t.Fatal("default accounts should be database")
	}
}

func TestDirectoryValidation(t *testing.T) {
	cases := map[string]struct{ toml, want string }{
		"directory host without servers": {`[[host]]
domain = "a.test"
accounts = "directory"`, "directory.servers: required"},
		"bad accounts":     {"[[host]]\ndomain = \"a.test\"\naccounts = \"ldap\"", `host[0].accounts`},
		"url server":       {strings.Replace(dirBase, `"127.0.0.1:3389"`, `"ldap://x:389"`, 1), "give host:port"},
		"tls mode":         {dirBase + "tls = \"maybe\"\n", "directory.tls"},
		"empty bind pass":  {strings.Replace(dirBase, `bind_password = "secret"`, "", 1), "unauthenticated bind"},
		"filter no %u":     {dirBase + "user_filter = \"(uid=bob)\"\n", "directory.user_filter"},
		"filter two %u":    {dirBase + "user_filter = \"(|(uid=%u)(mail=%u))\"\n", "directory.user_filter"},
		"unbalanced":       {dirBase + "group_filter = \"(cn=x\"\n", "directory.group_filter"},
		"unknown field":    {dirBase + "[directory.profile.shoe_size]\nmode = \"local\"\n", `unknown field "shoe_size"`},
		"bad mode":         {dirBase + "[directory.profile.mobile]\nmode = \"writable\"\n", "directory.profile.mobile.mode"},
		"static attr":      {dirBase + "[directory.profile.org_name]\nmode = \"static\"\nattribute = \"o\"\n", "directory.profile.org_name"},
		"bitmask no attr":  {dirBase + "disabled_bitmask = 2\n", "directory.disabled_bitmask"},
		"roster no base":   {dirBase + "[[directory.roster_group]]\ngroup = \"staff\"\n", "needs group_base"},
		"update bind":      {dirBase + "profile_update_bind = \"root\"\n", "directory.profile_update_bind"},
		"pool size":        {dirBase + "pool_size = -1\n", "directory.pool_size"},
		"no user base":     {strings.Replace(dirBase, `user_base = "ou=people,dc=example,dc=test"`, "", 1), "directory.user_base"},
		"both pw settings": {dirBase + "bind_password_file = \"/x\"\n", "exclusive"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDirectoryPasswordFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(dirBase, `bind_password = "secret"`, `bind_password_file = "pw"`, 1)
	path := filepath.Join(dir, "parley.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := c.Directory.ServiceBindPassword()
	if err != nil || pw != "s3cret" {
		t.Fatalf("password %q, %v", pw, err)
	}
}
