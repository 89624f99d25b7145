package admin_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"parley/internal/admin"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
)

const cfg = `
[[host]]
domain = "localhost"
[[host]]
domain = "other.test"
`

func TestAccountParsing(t *testing.T) {
	ts := testserver.Start(t, cfg)
	ops := admin.For(ts.Hosts()[0])
	for in, ok := range map[string]bool{
		"alice": true, "alice@localhost": true, " Alice@LOCALHOST ": true,
		"alice@other.test": false, "alice@localhost/r": false, "@localhost": false, "": false, "a@b@c": false,
	} {
		j, err := ops.Account(in)
		var ie *admin.InputError
		if ok != (err == nil) || (err != nil && !errors.As(err, &ie)) {
			t.Errorf("Account(%q) = %v, %v", in, j, err)
		}
	}
}

func TestUsersSearchAndPaging(t *testing.T) {
	ts := testserver.Start(t, cfg)
	for i := range 7 {
		ts.AddUser(t, fmt.Sprintf("user%d", i), "password123")
	}
	ts.AddUser(t, "zed", "password123")
	ts.AddUser(t, "user9@other.test", "password123")
	ops := admin.For(ts.Hosts()[0])
	a := admin.Actor{JID: jid.MustParse("root@localhost"), Via: "test"}
	page, total, err := ops.Users(t.Context(), a, "USER", 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	if total != 7 || len(page) != 2 || page[0].JID.String() != "user5@localhost" || page[1].JID.String() != "user6@localhost" {
		t.Errorf("page 2 of USER: total %d, %v", total, page)
	}
	if page, total, _ := ops.Users(t.Context(), a, "", 100, 5); total != 8 || len(page) != 0 {
		t.Errorf("beyond the end: %d %v", total, page)
	}
	if n, _ := ops.RegisteredCount(t.Context(), a); n != 8 {
		t.Errorf("count = %d", n)
	}
}

func TestDeleteAndDisableTellNotFound(t *testing.T) {
	ts := testserver.Start(t, cfg)
	ops := admin.For(ts.Hosts()[0])
	a := admin.Actor{JID: jid.MustParse("root@localhost"), Via: "test"}
	ghost := jid.MustParse("ghost@localhost")
	if err := ops.DeleteUser(t.Context(), a, ghost); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("delete: %v", err)
	}
	if err := ops.SetDisabled(t.Context(), a, ghost, true); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("disable: %v", err)
	}
	if err := ops.AddUser(t.Context(), a, jid.MustParse("new@localhost"), "", nil); err == nil {
		t.Error("an empty password was accepted")
	}
	if err := ops.AddUser(t.Context(), a, jid.MustParse("new@localhost"), "password123", nil); err != nil {
		t.Fatal(err)
	}
	if err := ops.AddUser(t.Context(), a, jid.MustParse("new@localhost"), "password123", nil); !errors.Is(err, admin.ErrExists) {
		t.Errorf("second add: %v", err)
	}
}

// The console's session table shows where each client connects from: c2s
// sessions tell their connection's address.
func TestSessionsCarryTheClientAddress(t *testing.T) {
	ts := testserver.Start(t, cfg)
	ts.AddUser(t, "alice", "password123")
	c := ts.Online(t, "alice", "password123", "laptop")
	defer c.Close()
	ss := admin.For(ts.Hosts()[0]).Sessions(jid.MustParse("alice@localhost"))
	if len(ss) != 1 {
		t.Fatalf("sessions = %v", ss)
	}
	if ss[0].Address == "" || !strings.HasPrefix(ss[0].Address, "127.0.0.1:") {
		t.Errorf("address = %q, want the client's loopback address", ss[0].Address)
	}
}

// A delegated administrator (of one host) may not reset, disable, delete
// or end the sessions of an account that administers a host it does not:
// with the password of a server-wide administrator it would own them all.
func TestDelegatedAdminCannotManageHigherAdmin(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "localhost"
admins = ["dele@localhost", "root@localhost"]
[[host]]
domain = "other.test"
admins = ["root@localhost", "heir@localhost"]
`)
	for _, u := range []string{"dele", "root", "carol"} {
		ts.AddUser(t, u, "password123")
	}
	ops := admin.For(ts.Hosts()[0])
	dele := admin.Actor{JID: jid.MustParse("dele@localhost"), Via: "test"}
	root := jid.MustParse("root@localhost")
	ctx := t.Context()
	var oe *admin.OutrankedError
	if err := ops.SetPassword(ctx, dele, root, "Hijacked-123"); !errors.As(err, &oe) || oe.Host != "other.test" {
		t.Errorf("password reset of a higher admin: %v", err)
	}
	if err := ops.SetDisabled(ctx, dele, root, true); !errors.As(err, &oe) {
		t.Errorf("disable of a higher admin: %v", err)
	}
	if _, err := ops.EndSessions(ctx, dele, jid.MustParse("root@localhost/r")); !errors.As(err, &oe) {
		t.Errorf("ending a higher admin's session: %v", err)
	}
	if err := ops.DeleteUser(ctx, dele, root); !errors.As(err, &oe) {
		t.Errorf("delete of a higher admin: %v", err)
	}
	// heir@localhost is listed but has no account yet: creating it would
	// make dele its owner and other.test's administrator.
	if err := ops.AddUser(ctx, dele, jid.MustParse("heir@localhost"), "password123", nil); !errors.As(err, &oe) {
		t.Errorf("creating an account a higher host lists as admin: %v", err)
	}
	if ok, err := ops.Exists(ctx, root); !ok || err != nil {
		t.Fatalf("root is gone: %v %v", ok, err)
	}
	// What stays allowed: the delegated admin on ordinary accounts and on
	// itself, the server-wide admin on the delegated one, the command line
	// on anyone.
	if err := ops.SetPassword(ctx, dele, jid.MustParse("carol@localhost"), "password456"); err != nil {
		t.Errorf("delegated admin on a user: %v", err)
	}
	if err := ops.SetPassword(ctx, dele, jid.MustParse("dele@localhost"), "password456"); err != nil {
		t.Errorf("delegated admin on itself: %v", err)
	}
	if err := ops.SetDisabled(ctx, admin.Actor{JID: root, Via: "test"}, jid.MustParse("dele@localhost"), true); err != nil {
		t.Errorf("server admin on a delegated admin: %v", err)
	}
	if err := ops.SetPassword(ctx, admin.Actor{Via: "cli"}, root, "password789"); err != nil {
		t.Errorf("command line: %v", err)
	}
}
