package disco_test

import (
	"testing"

	"parley/internal/testserver"
)

// password is every test account's password.
const password = "password123"

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}
