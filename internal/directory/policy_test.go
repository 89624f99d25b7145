package directory

import (
	"context"
	"slices"
	"strings"
	"testing"

	"parley/internal/directory/ldaptest"
)

const policyEntries = `
dn: ou=config,dc=example,dc=test
objectClass: organizationalUnit
ou: config

dn: cn=one,ou=config,dc=example,dc=test
objectClass: parleyHostPolicy
cn: one
parleyHostDomain: Example.Test.
parleyAdmin: alice@example.test
parleyAdmin: alice@example.test/phone
parleyAdmin: not a jid@@
parleyAdminGroup: ops
parleyAllowedUser: -
parleyRegistration: FALSE
parleyFederationBlock: Spam.Example
parleyRoomCreation: everyone

dn: cn=two,ou=config,dc=example,dc=test
objectClass: parleyHostPolicy
cn: two
parleyHostDomain: example.test
parleyAdmin: mallory@example.test

dn: cn=three,ou=config,dc=example,dc=test
objectClass: parleyHostPolicy
cn: three
parleyHostDomain: other.test
parleyAllowedGroup: staff
parleyRegistration: TRUE
parleyRoomCreation: admins
parleyFederationAllow: ok.test
`

// Host policy entries: values parsed, bad ones left out (the file's value
// then stays), "-" empties a list, one entry per host.
func TestHostPolicies(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Fixture+policyEntries)
	d, _ := newDir(t, []string{srv.Addr}, `config_base = "ou=config,dc=example,dc=test"`)
	ps, err := d.HostPolicies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("policies for %d hosts, want 2: %v", len(ps), ps)
	}
	one := ps["example.test"]
	if one == nil || !strings.HasPrefix(one.Source, "cn=") {
		t.Fatalf("example.test: %+v", one)
	}
	// The second entry for example.test is ignored: mallory is no admin.
	if !slices.Equal(one.Admins, []string{"alice@example.test"}) {
		t.Errorf("admins = %q (full JIDs and garbage must be left out, the second entry ignored)", one.Admins)
	}
	if !slices.Equal(one.AdminGroups, []string{"ops"}) {
		t.Errorf("admin groups = %q", one.AdminGroups)
	}
	if one.AllowedUsers == nil || len(one.AllowedUsers) != 0 {
		t.Errorf("allowed users = %#v, want an empty, non-nil list", one.AllowedUsers)
	}
	if one.AllowedGroups != nil {
		t.Errorf("allowed groups = %#v, want nil (not set)", one.AllowedGroups)
	}
	if one.Registration == nil || *one.Registration {
		t.Errorf("registration = %v, want false", one.Registration)
	}
	if !slices.Equal(one.FederationBlock, []string{"spam.example"}) || one.FederationAllow != nil {
		t.Errorf("federation lists = %q / %q", one.FederationAllow, one.FederationBlock)
	}
	if one.RoomCreation != "" {
		t.Errorf("room creation %q: an unknown value must be ignored", one.RoomCreation)
	}
	three := ps["other.test"]
	if three == nil || three.Registration == nil || !*three.Registration || three.RoomCreation != "admins" ||
		!slices.Equal(three.AllowedGroups, []string{"staff"}) || !slices.Equal(three.FederationAllow, []string{"ok.test"}) {
		t.Errorf("other.test: %+v", three)
	}

	// The snapshot carries them, and a change is noticed by watchers.
	s, err := d.Refresh(context.Background())
	if err != nil || s.Policies["example.test"] == nil {
		t.Fatalf("snapshot policies: %v %v", s, err)
	}
	changed := make(chan bool, 4)
	d.Watch(func(old, s *Snapshot) { changed <- s.Policies["other.test"] == nil })
	srv.Modify(t, "dn: cn=three,ou=config,dc=example,dc=test\nchangetype: delete\n")
	if _, err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case gone := <-changed:
		if !gone {
			t.Error("deleted entry still in the snapshot")
		}
	default:
		t.Error("a policy change did not notify watchers")
	}
}
