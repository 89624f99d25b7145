package access

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"parley/internal/config"
	"parley/internal/storage"
	"parley/internal/storage/sqlite"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
)

func openStore(t *testing.T) storage.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// groupsFixture stores accounts and memberships through the same code
// `parley group` uses.
func groupsFixture(t *testing.T, host string, members map[string][]string) KVGroups {
	t.Helper()
	st := openStore(t)
	ctx := context.Background()
	g := KVGroups{Store: st}
	seen := map[string]bool{}
	for group, users := range members {
		for _, u := range users {
			if !seen[u] {
				seen[u] = true
				if err := st.Accounts().Create(ctx, storage.Account{Host: host, Username: u}); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Add(ctx, host, u, group); err != nil {
				t.Fatal(err)
			}
		}
	}
	return g
}

func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestCheckRules(t *testing.T) {
	const host = "example.test"
	groups := groupsFixture(t, host, map[string][]string{
		"staff":   {"alice", "bob"},
		"interns": {"bob"},
		"sales":   {"carol"},
	})
	hc := &config.Host{Domain: host}
	hc.MUC.RoomCreation = "local"
	hc.Access.MUCJoin = config.AccessRule{Groups: []string{"staff"}, Users: []string{"dave@example.test", "ext@remote.test"}}
	hc.Access.Upload = config.AccessRule{DenyGroups: []string{"interns"}}
	hc.Access.Proxy65 = config.AccessRule{DenyUsers: []string{"carol@example.test"}}
	hc.Access.Federation = config.AccessRule{Groups: []string{"staff"}, DenyGroups: []string{"interns"}}
	hc.Access.MUCCreate = config.AccessRule{Users: []string{"carol@example.test"}}
	c := NewControl(hc, groups, nil)
	ctx := context.Background()
	cases := []struct {
		svc  Service
		who  string
		want bool
	}{
		{MUCJoin, "alice@example.test/phone", true},    // by group
		{MUCJoin, "dave@example.test", true},           // by user
		{MUCJoin, "carol@example.test", false},         // neither
		{MUCJoin, "ext@remote.test", true},             // remote user listed
		{MUCJoin, "alice@remote.test", false},          // groups are local only
		{MUCJoin, "remote.test", false},                // a server is no user
		{Upload, "alice@example.test", true},           // no allow list
		{Upload, "bob@example.test", false},            // deny group wins
		{Proxy65, "carol@example.test", false},         // deny user
		{Proxy65, "bob@example.test", true},            // not denied
		{Federation, "alice@example.test", true},       // staff
		{Federation, "bob@example.test", false},        // staff but intern: deny wins
		{Federation, "carol@example.test", false},      // not staff
		{MUCCreate, "carol@example.test", true},        // listed
		{MUCCreate, "alice@example.test", false},       // not listed
		{Login, "alice@example.test", true},            // no login rule
		{Admin, "alice@example.test", false},           // no admins
		{Federation, "nobody@example.test/res", false}, // unknown user, not staff
	}
	for _, tc := range cases {
		err := c.Check(ctx, tc.svc, mustJID(t, tc.who))
		if (err == nil) != tc.want {
			t.Errorf("Check(%s, %s) = %v, want allowed=%v", tc.svc, tc.who, err, tc.want)
		}
		var d *Denied
		if err != nil && !errors.As(err, &d) {
			t.Errorf("Check(%s, %s): error %v is no *Denied", tc.svc, tc.who, err)
		}
	}
}

func TestDeniedStanzaErrors(t *testing.T) {
	hc := &config.Host{Domain: "example.test"}
	hc.Access.MUCCreate = config.AccessRule{DenyUsers: []string{"a@example.test"}}
	hc.Access.Upload = config.AccessRule{DenyUsers: []string{"a@example.test"}}
	c := NewControl(hc, nil, nil)
	ctx := context.Background()
	a := mustJID(t, "a@example.test")
	if e := ErrorFor(c.Check(ctx, MUCCreate, a)); e.Condition != stanza.NotAllowed || e.Text == "" {
		t.Errorf("room creation refusal = %+v, want not-allowed with a text", e)
	}
	if e := ErrorFor(c.Check(ctx, Upload, a)); e.Condition != stanza.Forbidden || e.Text == "" {
		t.Errorf("upload refusal = %+v, want forbidden with a text", e)
	}
}

// A group lookup that fails refuses (fails closed) with a wait-type error.
func TestLookupFailureFailsClosed(t *testing.T) {
	st := openStore(t)
	hc := &config.Host{Domain: "example.test"}
	hc.Access.Upload = config.AccessRule{Groups: []string{"staff"}}
	c := NewControl(hc, KVGroups{Store: st}, nil)
	st.Close()
	err := c.Check(context.Background(), Upload, mustJID(t, "a@example.test"))
	var d *Denied
	if err == nil || errors.As(err, &d) {
		t.Fatalf("Check with a closed store = %v, want a lookup error", err)
	}
	if e := ErrorFor(err); e.Condition != stanza.InternalServerError || e.Type != stanza.ErrorTypeWait {
		t.Errorf("ErrorFor(lookup error) = %+v", e)
	}
}

func TestLoginMergesAllowedAndRule(t *testing.T) {
	const host = "example.test"
	groups := groupsFixture(t, host, map[string][]string{"staff": {"alice"}, "banned": {"mallory"}})
	hc := &config.Host{Domain: host, AllowedUsers: []string{"bob@example.test"}}
	hc.Access.Login = config.AccessRule{Groups: []string{"staff"}, DenyGroups: []string{"banned"}}
	c := NewControl(hc, groups, nil)
	ctx := context.Background()
	for user, want := range map[string]bool{"alice": true, "bob": true, "carol": false, "mallory": false} {
		if err := c.CanLogin(ctx, user); (err == nil) != want {
			t.Errorf("CanLogin(%s) = %v, want allowed=%v", user, err, want)
		}
	}
	// A localpart that is no valid JID localpart never logs in.
	if err := c.CanLogin(ctx, "a@b"); err == nil {
		t.Error("CanLogin(a@b) allowed")
	}
}

func TestOverrides(t *testing.T) {
	const host = "example.test"
	groups := groupsFixture(t, host, map[string][]string{"ops": {"carol"}})
	hc := &config.Host{Domain: host, Admins: []string{"alice@example.test"}}
	hc.MUC.RoomCreation = "local"
	hc.Registration.Enabled = true
	c := NewControl(hc, groups, nil)
	ctx := context.Background()
	isAdmin := func(who string) bool {
		ok, err := c.IsAdmin(ctx, mustJID(t, who))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !isAdmin("alice@example.test") || isAdmin("carol@example.test") {
		t.Fatal("file admins not applied")
	}
	off := false
	c.SetOverrides(&Overrides{Source: "cn=example.test,ou=config", Admins: []string{}, AdminGroups: []string{"ops"},
		Registration: &off, RoomCreation: "admins", FederationBlock: []string{"evil.test"}})
	if isAdmin("alice@example.test") || !isAdmin("carol@example.test") {
		t.Error("directory admins (empty list + admin group) not applied")
	}
	s := c.Effective()
	if s.Registration || s.RoomCreation != "admins" {
		t.Errorf("effective = %+v", s)
	}
	for _, k := range []string{"admins", "admin_groups", "registration.enabled", "muc.room_creation", "s2s.blocked_domains"} {
		if s.From[k] != "cn=example.test,ou=config" {
			t.Errorf("From[%s] = %q", k, s.From[k])
		}
	}
	if _, ok := s.From["allowed_users"]; ok {
		t.Error("allowed_users reported as from the directory")
	}
	p := c.S2SPolicy(config.S2SPolicy{AllowedDomains: []string{"ok.test"}, BlockedDomains: []string{"x.test"}})
	if len(p.AllowedDomains) != 1 || len(p.BlockedDomains) != 1 || p.BlockedDomains[0] != "evil.test" {
		t.Errorf("S2SPolicy = %+v", p)
	}
	c.SetOverrides(nil)
	if !isAdmin("alice@example.test") || !c.Effective().Registration {
		t.Error("clearing the overrides did not restore the file's values")
	}
}

// Membership changes bump the host's change mark; the cache is dropped
// by Invalidate so a change takes effect at once.
func TestVersionAndInvalidate(t *testing.T) {
	const host = "example.test"
	groups := groupsFixture(t, host, map[string][]string{"staff": {"alice"}})
	ctx := context.Background()
	v1, err := groups.Version(ctx, host)
	if err != nil || v1 == nil {
		t.Fatalf("Version = %x, %v", v1, err)
	}
	hc := &config.Host{Domain: host}
	hc.Access.Upload = config.AccessRule{Groups: []string{"staff"}}
	c := NewControl(hc, groups, nil)
	alice := mustJID(t, "alice@example.test")
	if err := c.Check(ctx, Upload, alice); err != nil {
		t.Fatal(err)
	}
	if err := groups.Remove(ctx, host, "alice", "staff"); err != nil {
		t.Fatal(err)
	}
	v2, _ := groups.Version(ctx, host)
	if bytes.Equal(v1, v2) {
		t.Error("Remove did not change the version")
	}
	c.Invalidate()
	if err := c.Check(ctx, Upload, alice); err == nil {
		t.Error("removed member still admitted after Invalidate")
	}
}
