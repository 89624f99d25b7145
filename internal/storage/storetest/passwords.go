package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"parley/internal/storage"
)

// testPasswordHistory: entries come back newest first, only the newest
// keep survive, accounts do not see each other's, a missing account is
// ErrNotFound, and deleting the account deletes its history.
func testPasswordHistory(t *testing.T, s storage.Store) {
	c := ctx(t)
	must(t, s.Accounts().Create(c, account("example.org", "juliet")))
	must(t, s.Accounts().Create(c, account("example.org", "romeo")))
	p := s.Passwords()
	for i := range 5 {
		must(t, p.Add(c, "example.org", "juliet", fmt.Appendf(nil, "h%d", i), 3))
	}
	must(t, p.Add(c, "example.org", "romeo", []byte("r"), 3))
	got, err := p.List(c, "example.org", "juliet")
	must(t, err)
	want := [][]byte{[]byte("h4"), []byte("h3"), []byte("h2")}
	if len(got) != len(want) {
		t.Fatalf("history = %q, want %q", got, want)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("history = %q, want %q", got, want)
		}
	}
	must(t, p.Add(c, "example.org", "juliet", []byte("h5"), 1))
	if got, _ := p.List(c, "example.org", "juliet"); len(got) != 1 || string(got[0]) != "h5" {
		t.Fatalf("after keep=1: %q", got)
	}
	wantErr(t, "Add for a missing account", p.Add(c, "example.org", "nurse", []byte("x"), 3), storage.ErrNotFound)
	must(t, s.Accounts().Delete(c, "example.org", "juliet"))
	must(t, s.Accounts().Create(c, account("example.org", "juliet")))
	if got, _ := p.List(c, "example.org", "juliet"); len(got) != 0 {
		t.Fatalf("a new account with the name of a deleted one inherits its history: %q", got)
	}
	if got, _ := p.List(c, "example.org", "romeo"); len(got) != 1 {
		t.Fatalf("romeo's history = %q", got)
	}
}
