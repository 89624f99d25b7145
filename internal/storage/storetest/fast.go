package storetest

import (
	"bytes"
	"testing"
	"time"

	"parley/internal/storage"
)

func fastToken(id, client string, issued time.Time) storage.FASTToken {
	return storage.FASTToken{
		ID: id, ClientID: client, Software: "Client", Device: "Phone",
		Mechanism: "HT-SHA-256-NONE", Hash: []byte("hash-" + id),
		IssuedAt: issued, ExpiresAt: issued.Add(time.Hour),
	}
}

func ids(toks []storage.FASTToken) []string {
	var out []string
	for _, t := range toks {
		out = append(out, t.ID)
	}
	return out
}

func sameIDs(t *testing.T, what string, toks []storage.FASTToken, want ...string) {
	t.Helper()
	got := ids(toks)
	if len(got) != len(want) {
		t.Fatalf("%s: tokens %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: tokens %v, want %v", what, got, want)
		}
	}
}

// testFASTIssueUse walks the XEP-0484 two-slot rotation: an unused new
// token is replaced by a newer one; using the new token makes it current
// and removes the older current one; using the current token keeps the
// pending new one.
func testFASTIssueUse(t *testing.T, s storage.Store) {
	c := ctx(t)
	f := s.FAST()
	now := time.Now().Truncate(time.Millisecond)
	must(t, s.Accounts().Create(c, account("example.org", "juliet")))
	must(t, f.Issue(c, "example.org", "juliet", fastToken("a", "phone", now), 10))
	got, err := f.Client(c, "example.org", "juliet", "phone")
	must(t, err)
	sameIDs(t, "after first issue", got, "a")
	tok := got[0]
	if tok.Current || tok.Count != 0 || !tok.LastUsed.IsZero() || !bytes.Equal(tok.Hash, []byte("hash-a")) ||
		tok.Mechanism != "HT-SHA-256-NONE" || tok.Software != "Client" || tok.Device != "Phone" ||
		!tok.IssuedAt.Equal(now) || !tok.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("stored token %+v", tok)
	}
	// Another unused token for the same client replaces it.
	must(t, f.Issue(c, "example.org", "juliet", fastToken("b", "phone", now.Add(time.Second)), 10))
	got, err = f.Client(c, "example.org", "juliet", "phone")
	must(t, err)
	sameIDs(t, "unused token replaced", got, "b")
	wantErr(t, "use of a replaced token", f.Use(c, "example.org", "juliet", "a", 0, now), storage.ErrNotFound)

	must(t, f.Use(c, "example.org", "juliet", "b", 0, now.Add(2*time.Second)))
	// Rotation: a new token while b is current; using b again keeps it.
	must(t, f.Issue(c, "example.org", "juliet", fastToken("c", "phone", now.Add(3*time.Second)), 10))
	must(t, f.Use(c, "example.org", "juliet", "b", 0, now.Add(4*time.Second)))
	got, err = f.Client(c, "example.org", "juliet", "phone")
	must(t, err)
	sameIDs(t, "current used while a new one is pending", got, "b", "c")
	if !got[0].Current || got[1].Current || !got[0].LastUsed.Equal(now.Add(4*time.Second)) {
		t.Fatalf("slots after using the current token: %+v", got)
	}
	// Using the new token retires the current one (earlier expiry).
	must(t, f.Use(c, "example.org", "juliet", "c", 0, now.Add(5*time.Second)))
	got, err = f.Client(c, "example.org", "juliet", "phone")
	must(t, err)
	sameIDs(t, "new token used", got, "c")
	if !got[0].Current {
		t.Fatalf("used token is not current: %+v", got[0])
	}
	// Tokens issued in the same instant (equal expiry): using the newer
	// still retires the older current one, so a client never holds more
	// than two.
	same := now.Add(10 * time.Second)
	must(t, f.Issue(c, "example.org", "juliet", fastToken("s1", "tablet", same), 10))
	must(t, f.Use(c, "example.org", "juliet", "s1", 0, same))
	must(t, f.Issue(c, "example.org", "juliet", fastToken("s2", "tablet", same), 10))
	must(t, f.Use(c, "example.org", "juliet", "s2", 0, same))
	got, err = f.Client(c, "example.org", "juliet", "tablet")
	must(t, err)
	sameIDs(t, "same-instant rotation", got, "s2")
	if _, err := f.Revoke(c, "example.org", "juliet", "s2"); err != nil {
		t.Fatal(err)
	}
	// Other clients and accounts are separate.
	must(t, f.Issue(c, "example.org", "juliet", fastToken("d", "laptop", now.Add(6*time.Second)), 10))
	must(t, f.Issue(c, "example.org", "romeo", fastToken("e", "phone", now.Add(6*time.Second)), 10))
	got, err = f.List(c, "example.org", "juliet")
	must(t, err)
	sameIDs(t, "list", got, "c", "d")
	wantErr(t, "use of another account's token", f.Use(c, "example.org", "juliet", "e", 0, now), storage.ErrNotFound)
	got, err = f.Client(c, "example.org", "juliet", "nobody")
	must(t, err)
	sameIDs(t, "unknown client", got)
}

// testFASTBoundAndExpiry checks the per-account bound (least recently
// issued go first) and that issuing drops expired tokens.
func testFASTBoundAndExpiry(t *testing.T, s storage.Store) {
	c := ctx(t)
	f := s.FAST()
	now := time.Now()
	old := fastToken("expired", "old-client", now.Add(-2*time.Hour))
	must(t, f.Issue(c, "example.org", "juliet", old, 10))
	for i, id := range []string{"t1", "t2", "t3", "t4"} {
		must(t, f.Issue(c, "example.org", "juliet", fastToken(id, "client-"+id, now.Add(time.Duration(i)*time.Second)), 3))
	}
	got, err := f.List(c, "example.org", "juliet")
	must(t, err)
	sameIDs(t, "bounded", got, "t2", "t3", "t4")
}

// testFASTCount checks replay protection by the XEP-0484 count.
func testFASTCount(t *testing.T, s storage.Store) {
	c := ctx(t)
	f := s.FAST()
	now := time.Now()
	must(t, f.Issue(c, "example.org", "juliet", fastToken("a", "phone", now), 10))
	must(t, f.Use(c, "example.org", "juliet", "a", 5, now))
	wantErr(t, "same count again", f.Use(c, "example.org", "juliet", "a", 5, now), storage.ErrNotFound)
	wantErr(t, "lower count", f.Use(c, "example.org", "juliet", "a", 4, now), storage.ErrNotFound)
	must(t, f.Use(c, "example.org", "juliet", "a", 6, now))
	// A login without a count does not lower the stored one.
	must(t, f.Use(c, "example.org", "juliet", "a", 0, now))
	got, err := f.Client(c, "example.org", "juliet", "phone")
	must(t, err)
	if len(got) != 1 || got[0].Count != 6 {
		t.Fatalf("count after uses: %+v", got)
	}
}

func testFASTRevoke(t *testing.T, s storage.Store) {
	c := ctx(t)
	f := s.FAST()
	now := time.Now()
	for i, id := range []string{"a", "b", "c"} {
		must(t, f.Issue(c, "example.org", "juliet", fastToken(id, "client-"+id, now.Add(time.Duration(i)*time.Second)), 10))
	}
	must(t, f.Issue(c, "example.org", "romeo", fastToken("r", "phone", now), 10))
	n, err := f.Revoke(c, "example.org", "juliet", "b")
	must(t, err)
	if n != 1 {
		t.Fatalf("revoke one: %d", n)
	}
	n, err = f.Revoke(c, "example.org", "juliet", "b")
	must(t, err)
	if n != 0 {
		t.Fatalf("revoke again: %d", n)
	}
	wantErr(t, "use after revoke", f.Use(c, "example.org", "juliet", "b", 0, now), storage.ErrNotFound)
	n, err = f.Revoke(c, "example.org", "juliet", "")
	must(t, err)
	if n != 2 {
		t.Fatalf("revoke all: %d", n)
	}
	got, err := f.List(c, "example.org", "romeo")
	must(t, err)
	sameIDs(t, "other account untouched", got, "r")
}

// testFASTPasswordChange: new credentials end the account's tokens.
func testFASTPasswordChange(t *testing.T, s storage.Store) {
	c := ctx(t)
	must(t, s.Accounts().Create(c, account("example.org", "juliet")))
	must(t, s.Accounts().Create(c, account("example.org", "romeo")))
	must(t, s.FAST().Issue(c, "example.org", "juliet", fastToken("a", "phone", time.Now()), 10))
	must(t, s.FAST().Issue(c, "example.org", "romeo", fastToken("r", "phone", time.Now()), 10))
	must(t, s.Accounts().SetCredentials(c, "example.org", "juliet", creds(9)))
	got, err := s.FAST().List(c, "example.org", "juliet")
	must(t, err)
	sameIDs(t, "after password change", got)
	got, err = s.FAST().List(c, "example.org", "romeo")
	must(t, err)
	sameIDs(t, "other account", got, "r")
}
