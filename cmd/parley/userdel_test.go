package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"parley/internal/server"
	"parley/internal/testserver"
)

// withAdminSocket starts a test server with an admin socket (in a short
// temporary path: unix socket paths are limited to about 100 bytes).
func withAdminSocket(t *testing.T) *testserver.TS {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "pa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	return testserver.Start(t, fmt.Sprintf("admin_socket = %q\n", filepath.Join(sockDir, "a.sock")))
}

// TestUserDelEndsLiveSessions: `parley user del` while the server runs
// deletes the account and, through the admin socket, ends its sessions, so
// nothing keeps acting for the deleted account.
func TestUserDelEndsLiveSessions(t *testing.T) {
	ts := withAdminSocket(t)
	ts.AddUser(t, "eve", "password1")
	eve := ts.Login(t, "eve", "password1", "r")

	if err := userCommand(context.Background(), ts.Config, ts.Store(), "del", []string{"eve@localhost"}); err != nil {
		t.Fatal(err)
	}
	eve.ExpectStreamError("not-authorized")
	// The session leaves the router as its connection ends, which the
	// client may see first.
	for deadline := time.Now().Add(5 * time.Second); len(ts.Router().AllSessions()) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left", len(ts.Router().AllSessions()))
		}
	}
}

// TestSessionAndDisableCommands: `parley session list` shows the running
// server's sessions, `session end` ends one resource's or an account's,
// and `user disable` refuses logins and ends the sessions, `user enable`
// lets the account in again.
func TestSessionAndDisableCommands(t *testing.T) {
	ts := withAdminSocket(t)
	ts.AddUsers(t, "password1", "eve", "bob")
	phone := ts.Login(t, "eve", "password1", "phone")
	laptop := ts.Login(t, "eve", "password1", "laptop")
	bob := ts.Login(t, "bob", "password1", "desk")
	phone.Send("<presence><show>away</show></presence>")
	phone.ExpectStanza("presence")

	var out strings.Builder
	if code := sessionCommand(ts.Config, "list", nil, true, &out); code != 0 {
		t.Fatalf("session list: exit %d", code)
	}
	var list []server.SessionInfo
	if err := json.Unmarshal([]byte(out.String()), &list); err != nil {
		t.Fatalf("session list --json: %v: %s", err, out.String())
	}
	got := map[string]server.SessionInfo{}
	for _, s := range list {
		got[s.JID] = s
	}
	if len(list) != 3 || got["eve@localhost/phone"].Show != "away" || !got["eve@localhost/phone"].Available || got["bob@localhost/desk"].Address == "" {
		t.Fatalf("session list: %+v", list)
	}

	out.Reset()
	if code := sessionCommand(ts.Config, "end", []string{"eve@localhost/phone"}, false, &out); code != 0 || !strings.Contains(out.String(), "ended 1 session") {
		t.Fatalf("session end of one resource: exit %d, %q", code, out.String())
	}
	phone.ExpectStreamError("policy-violation")
	if code := sessionCommand(ts.Config, "end", []string{"nobody@localhost"}, false, &out); code == 0 {
		t.Fatal("ending the sessions of an account with none succeeded")
	}

	if err := userCommand(context.Background(), ts.Config, ts.Store(), "disable", []string{"eve@localhost"}); err != nil {
		t.Fatal(err)
	}
	laptop.ExpectStreamError("not-authorized")
	if ts.CanLogin(t, "eve", "password1") {
		t.Fatal("disabled account logged in")
	}
	if err := userCommand(context.Background(), ts.Config, ts.Store(), "enable", []string{"eve@localhost"}); err != nil {
		t.Fatal(err)
	}
	ts.Login(t, "eve", "password1", "again")
	bob.Send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r := bob.ExpectStanza("iq", "id=p"); r.Attr("type") != "result" {
		t.Fatalf("another account was affected: %s", r)
	}
	if err := userCommand(context.Background(), ts.Config, ts.Store(), "disable", []string{"nobody@localhost"}); err == nil {
		t.Fatal("disabling a missing account succeeded")
	}
}
