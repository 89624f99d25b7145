package last_test

import (
	"context"
	"testing"

	"parley/internal/storage"
	"parley/internal/testserver"
)

// password is every test account's password.
const password = "password123"

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	for _, u := range users {
		ts.AddUser(t, u, password)
	}
	return ts
}

// online logs user in and sends initial presence, which makes the
// presence module fire module.EventSessionAvailable.
func online(t *testing.T, ts *testserver.TS, user, resource string) *testserver.Client {
	t.Helper()
	return ts.Online(t, user, password, resource)
}

// subscribe gives contact a presence subscription to owner (owner's roster
// item with subscription "from"), as if owner had approved it.
func subscribe(t *testing.T, ts *testserver.TS, owner, contact string) {
	t.Helper()
	_, err := ts.Store().Roster().Put(context.Background(), owner+"@"+ts.Domain(),
		storage.RosterItem{JID: contact + "@" + ts.Domain(), Subscription: storage.SubFrom})
	if err != nil {
		t.Fatal(err)
	}
}
