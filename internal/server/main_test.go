package server_test

import (
	"os"
	"testing"

	"parley/internal/directory/ldaptest"
)

// TestMain says in one line when the directory tests skip for want of
// slapd, and runs a Parley node when a cluster test starts this binary
// as a child process (runChildNode).
func TestMain(m *testing.M) {
	if path := os.Getenv(childNodeEnv); path != "" {
		runChildNode(path)
		return
	}
	os.Exit(ldaptest.Main(m))
}
