package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"parley/internal/testserver"
)

// TestUserDelEndsLiveSessions: `parley user del` while the server runs
// deletes the account and, through the admin socket, ends its sessions, so
// nothing keeps acting for the deleted account.
func TestUserDelEndsLiveSessions(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "pa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "a.sock")
	ts := testserver.Start(t, fmt.Sprintf("admin_socket = %q\n", sock))
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
