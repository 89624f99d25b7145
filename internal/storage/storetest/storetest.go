// Package storetest is the conformance suite every storage backend must
// pass. It pins down the contracts documented in package storage (error
// sentinels, delete cascade, quota and Pop atomicity under concurrency,
// roster versioning, host isolation) so that modules can rely on them
// whichever backend an operator picks.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/internal/storage"
)

// Run runs the suite. open must return a fresh, empty store each time it is
// called and must arrange (with t.Cleanup) for the store to be closed and
// any resources removed. Subtests run in parallel, so open must be safe to
// call concurrently.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"AccountsCreateGet", testAccountsCreateGet},
		{"AccountsNotFound", testAccountsNotFound},
		{"AccountsSetCredentials", testAccountsSetCredentials},
		{"AccountsSetFields", testAccountsSetFields},
		{"AccountsSetDisabled", testAccountsSetDisabled},
		{"AccountsList", testAccountsList},
		{"AccountsDeleteCascade", testAccountsDeleteCascade},
		{"AccountsConcurrentCreate", testAccountsConcurrentCreate},
		{"PasswordHistory", testPasswordHistory},
		{"HostIsolation", testHostIsolation},
		{"RosterEmpty", testRosterEmpty},
		{"RosterPutGetDelete", testRosterPutGetDelete},
		{"RosterVersions", testRosterVersions},
		{"RosterConcurrentPut", testRosterConcurrentPut},
		{"RosterInvalidSubscription", testRosterInvalidSubscription},
		{"OfflinePushPop", testOfflinePushPop},
		{"OfflineQuota", testOfflineQuota},
		{"OfflineQuotaRace", testOfflineQuotaRace},
		{"OfflineConcurrentPop", testOfflineConcurrentPop},
		{"VCards", testVCards},
		{"Private", testPrivate},
		{"PubSubNodes", testPubSubNodes},
		{"PubSubNodeQuotaRace", testPubSubNodeQuotaRace},
		{"PubSubItems", testPubSubItems},
		{"PubSubItemsConcurrentTrim", testPubSubItemsConcurrentTrim},
		{"PubSubAffiliations", testPubSubAffiliations},
		{"PubSubSubscriptions", testPubSubSubscriptions},
		{"PubSubMissingNode", testPubSubMissingNode},
		{"KV", testKV},
		{"KVList", testKVList},
		{"KVSetIfAbsent", testKVSetIfAbsent},
		{"ArchiveAppendQuery", testArchiveAppendQuery},
		{"ArchiveRandom", testArchiveRandom},
		{"ArchivePurgeAndDelete", testArchivePurgeAndDelete},
		{"ArchiveConcurrentAppend", testArchiveConcurrentAppend},
		{"ArchiveBatch", testArchiveBatch},
		{"ArchiveReplace", testArchiveReplace},
		{"Compliance", testCompliance},
		{"FASTIssueUse", testFASTIssueUse},
		{"FASTBoundAndExpiry", testFASTBoundAndExpiry},
		{"FASTCount", testFASTCount},
		{"FASTRevoke", testFASTRevoke},
		{"FASTPasswordChange", testFASTPasswordChange},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func creds(seed byte) storage.Credentials {
	return storage.Credentials{Keys: map[string]storage.ScramKey{
		"SHA-1":   {Salt: []byte{seed, 1}, Iterations: 4096, StoredKey: []byte{seed, 2, 0}, ServerKey: []byte{seed, 3}},
		"SHA-256": {Salt: []byte{seed, 4}, Iterations: 10000, StoredKey: []byte{seed, 5}, ServerKey: []byte{0, seed, 6}},
	}}
}

func account(host, user string) storage.Account {
	return storage.Account{
		Host:      host,
		Username:  user,
		Creds:     creds(1),
		Fields:    map[string]string{"name": "Juliet " + user, "email": user + "@example.org"},
		CreatedAt: time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.FixedZone("X", 3600)),
	}
}

func equalCreds(a, b storage.Credentials) bool {
	if a.Plain != b.Plain || len(a.Keys) != len(b.Keys) {
		return false
	}
	for name, ka := range a.Keys {
		kb, ok := b.Keys[name]
		if !ok || ka.Iterations != kb.Iterations || !bytes.Equal(ka.Salt, kb.Salt) ||
			!bytes.Equal(ka.StoredKey, kb.StoredKey) || !bytes.Equal(ka.ServerKey, kb.ServerKey) {
			return false
		}
	}
	return true
}

func checkAccount(t *testing.T, got, want storage.Account) {
	t.Helper()
	if got.Host != want.Host || got.Username != want.Username {
		t.Errorf("account = %s@%s, want %s@%s", got.Username, got.Host, want.Username, want.Host)
	}
	if !equalCreds(got.Creds, want.Creds) {
		t.Errorf("creds = %+v, want %+v", got.Creds, want.Creds)
	}
	if len(got.Fields) != len(want.Fields) || (len(want.Fields) > 0 && !maps.Equal(got.Fields, want.Fields)) {
		t.Errorf("fields = %v, want %v", got.Fields, want.Fields)
	}
	if got.Disabled != want.Disabled {
		t.Errorf("disabled = %v, want %v", got.Disabled, want.Disabled)
	}
	if !want.CreatedAt.IsZero() && !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("created = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("created location = %v, want UTC", got.CreatedAt.Location())
	}
}

func testAccountsCreateGet(t *testing.T, s storage.Store) {
	c := ctx(t)
	acc := account("example.org", "juliet")
	acc.Creds.Plain = "s3cret"
	acc.Disabled = true
	tests := []struct {
		name string
		acc  storage.Account
	}{
		{"full", acc},
		{"minimal", storage.Account{Host: "example.org", Username: "romeo"}},
		{"empty maps", storage.Account{Host: "example.org", Username: "nurse",
			Creds: storage.Credentials{Keys: map[string]storage.ScramKey{}}, Fields: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			must(t, s.Accounts().Create(c, tt.acc))
			got, err := s.Accounts().Get(c, tt.acc.Host, tt.acc.Username)
			must(t, err)
			checkAccount(t, got, tt.acc)
			if tt.acc.CreatedAt.IsZero() && (got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second))) {
				t.Errorf("zero CreatedAt should become now, got %v", got.CreatedAt)
			}
			err = s.Accounts().Create(c, storage.Account{Host: tt.acc.Host, Username: tt.acc.Username, Creds: creds(9)})
			wantErr(t, "duplicate create", err, storage.ErrExists)
			again, err := s.Accounts().Get(c, tt.acc.Host, tt.acc.Username)
			must(t, err)
			checkAccount(t, again, tt.acc) // the failed create changed nothing
		})
	}
}

func testAccountsNotFound(t *testing.T, s storage.Store) {
	c := ctx(t)
	must(t, s.Accounts().Create(c, account("example.org", "juliet")))
	a := s.Accounts()
	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := a.Get(c, "example.org", "romeo"); return err }},
		{"Get other host", func() error { _, err := a.Get(c, "example.net", "juliet"); return err }},
		{"SetCredentials", func() error { return a.SetCredentials(c, "example.org", "romeo", creds(2)) }},
		{"SetFields", func() error { return a.SetFields(c, "example.org", "romeo", map[string]string{"a": "b"}) }},
		{"SetDisabled", func() error { return a.SetDisabled(c, "example.org", "romeo", true) }},
		{"Delete", func() error { return a.Delete(c, "example.org", "romeo") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.call(), storage.ErrNotFound)
		})
	}
	if _, err := s.Accounts().Get(c, "example.org", "romeo"); err == nil {
		t.Fatal("SetCredentials/SetFields on a missing account must not create it")
	}
}

func testAccountsSetCredentials(t *testing.T, s storage.Store) {
	c := ctx(t)
	acc := account("example.org", "juliet")
	must(t, s.Accounts().Create(c, acc))
	tests := []struct {
		name  string
		creds storage.Credentials
	}{
		{"replace keys and drop one", storage.Credentials{Keys: map[string]storage.ScramKey{
			"SHA-512": {Salt: []byte("salt"), Iterations: 1, StoredKey: []byte("sk"), ServerKey: []byte("svk")},
		}}},
		{"plain only", storage.Credentials{Plain: "hunter2"}},
		{"both", func() storage.Credentials { c := creds(7); c.Plain = "x"; return c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, s.Accounts().SetCredentials(c, acc.Host, acc.Username, tt.creds))
			got, err := s.Accounts().Get(c, acc.Host, acc.Username)
			must(t, err)
			want := acc
			want.Creds = tt.creds
			checkAccount(t, got, want)
		})
	}
}

func testAccountsSetFields(t *testing.T, s storage.Store) {
	c := ctx(t)
	acc := account("example.org", "juliet")
	must(t, s.Accounts().Create(c, acc))
	for _, fields := range []map[string]string{
		{"nick": "jules", "url": "https://example.org/?a=1&b=\"2\""},
		nil,
		{"name": "Ünïcødé ☃"},
	} {
		must(t, s.Accounts().SetFields(c, acc.Host, acc.Username, fields))
		got, err := s.Accounts().Get(c, acc.Host, acc.Username)
		must(t, err)
		want := acc
		want.Fields = fields
		checkAccount(t, got, want)
	}
}

func testAccountsList(t *testing.T, s storage.Store) {
	c := ctx(t)
	got, err := s.Accounts().List(c, "example.org")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("List on empty store = %v", got)
	}
	// Byte order, not locale order: "Zed" < "alice" < "bob" < "éclair".
	for _, u := range []string{"bob", "éclair", "alice", "Zed"} {
		must(t, s.Accounts().Create(c, storage.Account{Host: "example.org", Username: u}))
	}
	must(t, s.Accounts().Create(c, storage.Account{Host: "example.net", Username: "carol"}))
	got, err = s.Accounts().List(c, "example.org")
	must(t, err)
	if want := []string{"Zed", "alice", "bob", "éclair"}; !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	must(t, s.Accounts().Delete(c, "example.org", "bob"))
	got, err = s.Accounts().List(c, "example.org")
	must(t, err)
	if want := []string{"Zed", "alice", "éclair"}; !slices.Equal(got, want) {
		t.Fatalf("List after delete = %q, want %q", got, want)
	}
}

// fill gives owner data in every per-owner store.
func fill(t *testing.T, c context.Context, s storage.Store, owner string) {
	t.Helper()
	_, err := s.Roster().Put(c, owner, storage.RosterItem{JID: "friend@example.com", Subscription: storage.SubBoth, Groups: []string{"g"}})
	must(t, err)
	must(t, s.Offline().Push(c, owner, []byte("<message>"+owner+"</message>"), 0))
	must(t, s.VCards().Set(c, owner, []byte("<vCard>"+owner+"</vCard>")))
	must(t, s.Private().Set(c, owner, "storage storage:bookmarks", []byte("<storage>"+owner+"</storage>")))
	must(t, s.KV().Set(c, "last", owner, "seconds", []byte("42")))
	must(t, s.KV().Set(c, "other", owner, "k", []byte("v")))
	must(t, s.PubSub().CreateNode(c, storage.PubSubNode{Service: owner, Node: "urn:xmpp:avatar:metadata", Config: []byte("{}")}, 0))
	must(t, s.PubSub().PutItem(c, owner, "urn:xmpp:avatar:metadata", storage.PubSubItem{ID: "1", Payload: []byte("<x/>")}, 0))
	must(t, s.PubSub().SetAffiliation(c, owner, "urn:xmpp:avatar:metadata", "friend@example.com", "member"))
	must(t, s.PubSub().SetSubscription(c, owner, "urn:xmpp:avatar:metadata", "friend@example.com", "subscribed", 0))
	_, err = s.Archive().Append(c, 0, storage.ArchiveEntry{Owner: owner, ID: "a1", With: "friend@example.com", Stamp: time.Now(), Stanza: []byte("<message/>")})
	must(t, err)
	user, host, _ := strings.Cut(owner, "@")
	must(t, s.FAST().Issue(c, host, user, fastToken("f1", "client-1", time.Now()), 0))
}

// checkFilled reports whether owner still has data in each store; it
// requires all-or-nothing.
func checkFilled(t *testing.T, c context.Context, s storage.Store, owner string, want bool) {
	t.Helper()
	items, ver, err := s.Roster().Items(c, owner)
	must(t, err)
	if got := len(items) > 0; got != want {
		t.Errorf("%s roster present = %v, want %v", owner, got, want)
	}
	if pristine := pristineVersion(t, c, s); !want && ver != pristine {
		t.Errorf("%s roster version after delete = %q, want %q (that of a roster never changed)", owner, ver, pristine)
	}
	n, err := s.Offline().Count(c, owner)
	must(t, err)
	if got := n > 0; got != want {
		t.Errorf("%s offline present = %v, want %v", owner, got, want)
	}
	check := func(what string, err error) {
		t.Helper()
		if want {
			if err != nil {
				t.Errorf("%s %s: %v, want present", owner, what, err)
			}
		} else if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s %s: err = %v, want ErrNotFound", owner, what, err)
		}
	}
	_, err = s.VCards().Get(c, owner)
	check("vcard", err)
	_, err = s.Private().Get(c, owner, "storage storage:bookmarks")
	check("private", err)
	_, err = s.KV().Get(c, "last", owner, "seconds")
	check("kv last", err)
	_, err = s.KV().Get(c, "other", owner, "k")
	check("kv other", err)
	_, err = s.PubSub().Node(c, owner, "urn:xmpp:avatar:metadata")
	check("pubsub node", err)
	nodes, err := s.PubSub().Nodes(c, owner)
	must(t, err)
	affs, err := s.PubSub().Affiliations(c, owner, "")
	must(t, err)
	subs, err := s.PubSub().Subscriptions(c, owner, "")
	must(t, err)
	if got := len(nodes) > 0 && len(affs) > 0 && len(subs) > 0; got != want || (!want && len(nodes)+len(affs)+len(subs) > 0) {
		t.Errorf("%s pubsub nodes %d, affiliations %d, subscriptions %d; want present = %v", owner, len(nodes), len(affs), len(subs), want)
	}
	if want {
		items, err := s.PubSub().Items(c, owner, "urn:xmpp:avatar:metadata", 0)
		must(t, err)
		if len(items) != 1 {
			t.Errorf("%s pubsub items = %d, want 1", owner, len(items))
		}
	}
	_, _, err = s.Archive().Ends(c, owner)
	check("archive", err)
	user, host, _ := strings.Cut(owner, "@")
	toks, err := s.FAST().List(c, host, user)
	must(t, err)
	if (len(toks) > 0) != want {
		t.Errorf("%s FAST tokens = %d; want present = %v", owner, len(toks), want)
	}
	if !want {
		// The archive is gone with its numbering: a new message starts it
		// afresh rather than continuing the old account's.
		p, err := s.Archive().Query(c, owner, storage.ArchiveQuery{Limit: 1})
		must(t, err)
		if p.Count != 0 {
			t.Errorf("%s archive count after delete = %d", owner, p.Count)
		}
	}
}

func testAccountsDeleteCascade(t *testing.T, s storage.Store) {
	c := ctx(t)
	owners := map[string][2]string{ // owner -> host, user
		"juliet@example.org": {"example.org", "juliet"},
		"romeo@example.org":  {"example.org", "romeo"},
		"juliet@example.net": {"example.net", "juliet"},
	}
	for owner, hu := range owners {
		must(t, s.Accounts().Create(c, account(hu[0], hu[1])))
		fill(t, c, s, owner)
	}
	_, julietVer, err := s.Roster().Items(c, "juliet@example.org")
	must(t, err)
	must(t, s.Compliance().Append(c, storage.ComplianceRecord{Host: "example.org", Type: "chat",
		From: "juliet@example.org/balcony", To: "romeo@example.org", Stamp: time.Now(), Stanza: []byte("<message/>")}))
	// Data of the host itself and data mentioning juliet as a contact are
	// not hers and must survive.
	must(t, s.KV().Set(c, "last", "example.org", "uptime", []byte("1")))
	_, err = s.Roster().Put(c, "romeo@example.org", storage.RosterItem{JID: "juliet@example.org"})
	must(t, err)

	must(t, s.Accounts().Delete(c, "example.org", "juliet"))

	_, err = s.Accounts().Get(c, "example.org", "juliet")
	wantErr(t, "Get after delete", err, storage.ErrNotFound)
	checkFilled(t, c, s, "juliet@example.org", false)
	checkFilled(t, c, s, "romeo@example.org", true)
	checkFilled(t, c, s, "juliet@example.net", true)
	if _, err := s.KV().Get(c, "last", "example.org", "uptime"); err != nil {
		t.Errorf("host KV removed by account delete: %v", err)
	}
	if _, err := s.Roster().Get(c, "romeo@example.org", "juliet@example.org"); err != nil {
		t.Errorf("other user's roster item for the deleted account removed: %v", err)
	}
	wantErr(t, "second delete", s.Accounts().Delete(c, "example.org", "juliet"), storage.ErrNotFound)
	// The compliance log is the host's, not the account's: it stays.
	n := 0
	must(t, s.Compliance().Export(c, storage.ComplianceFilter{Host: "example.org", User: "juliet@example.org"},
		func(storage.ComplianceRecord) error { n++; return nil }))
	if n != 1 {
		t.Errorf("compliance records of a deleted account: %d, want 1", n)
	}

	// Re-registering starts clean: new credentials, no old data, and
	// roster versions a client could not have cached from the old account
	// (neither the empty roster's nor the first change's).
	re := storage.Account{Host: "example.org", Username: "juliet", Creds: creds(5)}
	must(t, s.Accounts().Create(c, re))
	got, err := s.Accounts().Get(c, "example.org", "juliet")
	must(t, err)
	checkAccount(t, got, re)
	checkFilled(t, c, s, "juliet@example.org", false)
	if _, ver, _ := s.Roster().Items(c, "juliet@example.org"); ver == julietVer {
		t.Errorf("re-registered account's empty roster has the old account's version %q", ver)
	}
	ver, err := s.Roster().Put(c, "juliet@example.org", storage.RosterItem{JID: "x@y"})
	must(t, err)
	if ver == "" || ver == julietVer || ver == pristineVersion(t, c, s) {
		t.Errorf("new roster version %q must be non-empty and fresh (old account's %q)", ver, julietVer)
	}
}

func testAccountsConcurrentCreate(t *testing.T, s storage.Store) {
	c := ctx(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Accounts().Create(c, storage.Account{Host: "example.org", Username: "race", Creds: creds(byte(i))})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, storage.ErrExists):
			t.Errorf("concurrent create: %v, want nil or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent creates succeeded, want exactly 1", ok)
	}
}

func testHostIsolation(t *testing.T, s storage.Store) {
	c := ctx(t)
	a, b := account("a.example", "user"), account("b.example", "user")
	b.Creds = creds(2)
	b.Fields = map[string]string{"name": "B"}
	must(t, s.Accounts().Create(c, a))
	must(t, s.Accounts().Create(c, b))
	must(t, s.Accounts().SetFields(c, "a.example", "user", map[string]string{"name": "A2"}))
	a.Fields = map[string]string{"name": "A2"}
	gotA, err := s.Accounts().Get(c, "a.example", "user")
	must(t, err)
	checkAccount(t, gotA, a)
	gotB, err := s.Accounts().Get(c, "b.example", "user")
	must(t, err)
	checkAccount(t, gotB, b)

	fill(t, c, s, "user@a.example")
	checkFilled(t, c, s, "user@b.example", false)
	fill(t, c, s, "user@b.example")
	must(t, s.Accounts().Delete(c, "b.example", "user"))
	checkFilled(t, c, s, "user@a.example", true)
	if _, err := s.Accounts().Get(c, "a.example", "user"); err != nil {
		t.Fatalf("deleting b.example's user removed a.example's: %v", err)
	}
	list, err := s.Accounts().List(c, "b.example")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("List(b.example) = %v after delete", list)
	}
}

// pristineVersion is the version of a roster that was never changed.
func pristineVersion(t *testing.T, c context.Context, s storage.Store) string {
	t.Helper()
	_, ver, err := s.Roster().Items(c, "never-changed@pristine.invalid")
	must(t, err)
	return ver
}

// A roster that was never changed still has a version (RFC 6121 §2.6.3:
// a client bootstrapping with an empty 'ver' must get one it can cache), the same
// at every read until something changes.
func testRosterEmpty(t *testing.T, s storage.Store) {
	c := ctx(t)
	items, ver, err := s.Roster().Items(c, "juliet@example.org")
	must(t, err)
	if len(items) != 0 || ver == "" {
		t.Fatalf("never-touched roster = %v, %q; want empty with a version", items, ver)
	}
	if _, again, _ := s.Roster().Items(c, "juliet@example.org"); again != ver {
		t.Fatalf("unchanged roster read twice: versions %q and %q", ver, again)
	}
	_, err = s.Roster().Get(c, "juliet@example.org", "romeo@example.org")
	wantErr(t, "Get", err, storage.ErrNotFound)
	_, err = s.Roster().Delete(c, "juliet@example.org", "romeo@example.org")
	wantErr(t, "Delete", err, storage.ErrNotFound)
	if _, after, _ := s.Roster().Items(c, "juliet@example.org"); after != ver {
		t.Fatalf("failed Delete changed the version from %q to %q", ver, after)
	}
	// The first change gives a version of its own.
	put, err := s.Roster().Put(c, "juliet@example.org", storage.RosterItem{JID: "romeo@example.org"})
	must(t, err)
	if put == "" || put == ver {
		t.Fatalf("first change: version %q, never-changed roster had %q", put, ver)
	}
}

func checkItem(t *testing.T, got, want storage.RosterItem) {
	t.Helper()
	if got.JID != want.JID || got.Name != want.Name || got.Subscription != want.Subscription ||
		got.AskOut != want.AskOut || got.PendingIn != want.PendingIn || got.PreApproved != want.PreApproved ||
		!slices.Equal(got.Groups, want.Groups) {
		t.Errorf("item = %+v, want %+v", got, want)
	}
}

func testRosterPutGetDelete(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner = "juliet@example.org"
	tests := []struct {
		name string
		put  storage.RosterItem
		want storage.RosterItem
	}{
		{"all fields",
			storage.RosterItem{JID: "romeo@example.net", Name: "Romeo", Subscription: storage.SubBoth, AskOut: true, PendingIn: true, PreApproved: true, Groups: []string{"Friends"}},
			storage.RosterItem{JID: "romeo@example.net", Name: "Romeo", Subscription: storage.SubBoth, AskOut: true, PendingIn: true, PreApproved: true, Groups: []string{"Friends"}}},
		{"groups normalised",
			storage.RosterItem{JID: "nurse@example.com", Subscription: storage.SubTo, Groups: []string{"b", "a", "b", "", "Ä", "a"}},
			storage.RosterItem{JID: "nurse@example.com", Subscription: storage.SubTo, Groups: []string{"a", "b", "Ä"}}},
		{"empty subscription means none",
			storage.RosterItem{JID: "benvolio@example.net", Subscription: ""},
			storage.RosterItem{JID: "benvolio@example.net", Subscription: storage.SubNone}},
		{"replace",
			storage.RosterItem{JID: "romeo@example.net", Subscription: storage.SubFrom, Groups: []string{"Montague"}},
			storage.RosterItem{JID: "romeo@example.net", Subscription: storage.SubFrom, Groups: []string{"Montague"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ver, err := s.Roster().Put(c, owner, tt.put)
			must(t, err)
			if ver == "" {
				t.Fatal("Put returned empty version")
			}
			got, err := s.Roster().Get(c, owner, tt.put.JID)
			must(t, err)
			checkItem(t, got, tt.want)
		})
	}
	items, _, err := s.Roster().Items(c, owner)
	must(t, err)
	if len(items) != 3 {
		t.Fatalf("Items = %+v, want 3 items", items)
	}
	if !slices.IsSortedFunc(items, func(a, b storage.RosterItem) int { return strings.Compare(a.JID, b.JID) }) {
		t.Errorf("Items not sorted by JID: %+v", items)
	}
	checkItem(t, items[2], tests[3].want) // romeo, replaced
	_, err = s.Roster().Delete(c, owner, "romeo@example.net")
	must(t, err)
	_, err = s.Roster().Get(c, owner, "romeo@example.net")
	wantErr(t, "Get after Delete", err, storage.ErrNotFound)
	_, err = s.Roster().Get(c, "romeo@example.net", owner)
	wantErr(t, "Get reversed owner", err, storage.ErrNotFound)
}

func testRosterVersions(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner, other = "juliet@example.org", "romeo@example.net"
	seen := map[string]bool{"": true, pristineVersion(t, c, s): true}
	fresh := func(what, v string) {
		t.Helper()
		if seen[v] {
			t.Fatalf("%s: version %q not new (seen %v)", what, v, slices.Sorted(maps.Keys(seen)))
		}
		seen[v] = true
		_, cur, err := s.Roster().Items(c, owner)
		must(t, err)
		if cur != v {
			t.Fatalf("%s: Items version %q, want the one just returned %q", what, cur, v)
		}
	}
	steps := []struct {
		name string
		do   func() (string, error)
	}{
		{"put a", func() (string, error) { return s.Roster().Put(c, owner, storage.RosterItem{JID: "a@x"}) }},
		{"put b", func() (string, error) { return s.Roster().Put(c, owner, storage.RosterItem{JID: "b@x"}) }},
		{"identical re-put", func() (string, error) { return s.Roster().Put(c, owner, storage.RosterItem{JID: "b@x"}) }},
		{"modify a", func() (string, error) {
			return s.Roster().Put(c, owner, storage.RosterItem{JID: "a@x", Subscription: storage.SubTo})
		}},
		{"delete a", func() (string, error) { return s.Roster().Delete(c, owner, "a@x") }},
		{"delete last", func() (string, error) { return s.Roster().Delete(c, owner, "b@x") }},
		{"put again", func() (string, error) { return s.Roster().Put(c, owner, storage.RosterItem{JID: "a@x"}) }},
	}
	for _, st := range steps {
		v, err := st.do()
		must(t, err)
		fresh(st.name, v)
		if st.name == "delete last" {
			items, ver, err := s.Roster().Items(c, owner)
			must(t, err)
			if len(items) != 0 || ver == "" {
				t.Fatalf("emptied roster = %v, %q; want no items and a non-empty version", items, ver)
			}
		}
	}
	_, before, err := s.Roster().Items(c, owner)
	must(t, err)
	// Another owner's changes and failed operations leave the version alone.
	_, err = s.Roster().Put(c, other, storage.RosterItem{JID: owner})
	must(t, err)
	_, err = s.Roster().Delete(c, owner, "nobody@x")
	wantErr(t, "delete missing", err, storage.ErrNotFound)
	_, after, err := s.Roster().Items(c, owner)
	must(t, err)
	if before != after {
		t.Fatalf("version changed from %q to %q without a change to this roster", before, after)
	}
}

func testRosterConcurrentPut(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner, n = "juliet@example.org", 16
	vers := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			vers[i], err = s.Roster().Put(c, owner, storage.RosterItem{JID: fmt.Sprintf("c%02d@x", i)})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, v := range vers {
		if v == "" || seen[v] {
			t.Fatalf("concurrent Puts returned duplicate or empty versions: %q", vers)
		}
		seen[v] = true
	}
	items, ver, err := s.Roster().Items(c, owner)
	must(t, err)
	if len(items) != n || !seen[ver] {
		t.Fatalf("after %d concurrent Puts: %d items, version %q (one of %q expected)", n, len(items), ver, vers)
	}
}

func testRosterInvalidSubscription(t *testing.T, s storage.Store) {
	c := ctx(t)
	pristine := pristineVersion(t, c, s)
	if _, err := s.Roster().Put(c, "juliet@example.org", storage.RosterItem{JID: "a@x", Subscription: "sometimes"}); err == nil {
		t.Fatal("Put with an invalid subscription succeeded")
	}
	if _, ver, _ := s.Roster().Items(c, "juliet@example.org"); ver != pristine {
		t.Fatalf("rejected Put changed the version from %q to %q", pristine, ver)
	}
}

func testOfflinePushPop(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner = "juliet@example.org"
	n, err := s.Offline().Count(c, owner)
	must(t, err)
	msgs, err := s.Offline().Pop(c, owner)
	must(t, err)
	if n != 0 || len(msgs) != 0 {
		t.Fatalf("empty: Count %d, Pop %d messages", n, len(msgs))
	}
	before := time.Now().Add(-time.Second)
	stanzas := [][]byte{[]byte("<message id='1'/>"), {0, 1, 2, 0xff}, []byte("<message id='3'>ü</message>")}
	for i, st := range stanzas {
		must(t, s.Offline().Push(c, owner, st, 0))
		must(t, s.Offline().Push(c, "romeo@example.net", []byte(fmt.Sprint(i)), 0))
	}
	n, err = s.Offline().Count(c, owner)
	must(t, err)
	if n != len(stanzas) {
		t.Fatalf("Count = %d, want %d", n, len(stanzas))
	}
	msgs, err = s.Offline().Pop(c, owner)
	must(t, err)
	if len(msgs) != len(stanzas) {
		t.Fatalf("Pop returned %d messages, want %d", len(msgs), len(stanzas))
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Stanza, stanzas[i]) {
			t.Errorf("message %d = %q, want %q (oldest first)", i, m.Stanza, stanzas[i])
		}
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Errorf("ids not increasing: %d after %d", m.ID, msgs[i-1].ID)
		}
		if m.Stored.Location() != time.UTC || m.Stored.Before(before) || m.Stored.After(time.Now().Add(time.Second)) {
			t.Errorf("Stored = %v, want about now, in UTC", m.Stored)
		}
	}
	n, err = s.Offline().Count(c, owner)
	must(t, err)
	msgs, err = s.Offline().Pop(c, owner)
	must(t, err)
	if n != 0 || len(msgs) != 0 {
		t.Fatalf("after Pop: Count %d, Pop %d messages", n, len(msgs))
	}
	if n, _ := s.Offline().Count(c, "romeo@example.net"); n != len(stanzas) {
		t.Fatalf("other owner's Count = %d after Pop, want %d", n, len(stanzas))
	}
}

func testOfflineQuota(t *testing.T, s storage.Store) {
	c := ctx(t)
	tests := []struct {
		name     string
		max      int
		pushes   int
		wantKept int
	}{
		{"limit", 3, 5, 3},
		{"limit one", 1, 3, 1},
		{"zero is unlimited", 0, 20, 20},
		{"negative is unlimited", -1, 20, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner := "q-" + tt.name + "@example.org"
			for i := range tt.pushes {
				err := s.Offline().Push(c, owner, []byte(fmt.Sprint(i)), tt.max)
				if i < tt.wantKept {
					must(t, err)
				} else {
					wantErr(t, fmt.Sprintf("push %d", i), err, storage.ErrQuotaExceeded)
				}
			}
			n, err := s.Offline().Count(c, owner)
			must(t, err)
			if n != tt.wantKept {
				t.Fatalf("Count = %d, want %d", n, tt.wantKept)
			}
		})
	}
	// The quota is per owner, and a Pop frees it.
	must(t, s.Offline().Push(c, "other@example.org", []byte("x"), 1))
	_, err := s.Offline().Pop(c, "q-limit one@example.org")
	must(t, err)
	must(t, s.Offline().Push(c, "q-limit one@example.org", []byte("x"), 1))
}

func testOfflineQuotaRace(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner, n, limit = "juliet@example.org", 24, 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Offline().Push(c, owner, []byte(fmt.Sprint(i)), limit)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, storage.ErrQuotaExceeded):
			t.Errorf("push: %v, want nil or ErrQuotaExceeded", err)
		}
	}
	cnt, err := s.Offline().Count(c, owner)
	must(t, err)
	if ok != limit || cnt != limit {
		t.Fatalf("%d concurrent pushes with max %d: %d succeeded, %d stored; want exactly %d", n, limit, ok, cnt, limit)
	}
}

func testOfflineConcurrentPop(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner, pushers, perPusher, poppers = "juliet@example.org", 4, 25, 4
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		ids  = map[int64]bool{}
	)
	collect := func(msgs []storage.OfflineMessage) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[string(m.Stanza)]++
			if ids[m.ID] {
				t.Errorf("id %d popped twice", m.ID)
			}
			ids[m.ID] = true
		}
	}
	var pushWG, popWG sync.WaitGroup
	done := make(chan struct{})
	for p := range pushers {
		pushWG.Go(func() {
			for i := range perPusher {
				if err := s.Offline().Push(c, owner, fmt.Appendf(nil, "%d-%d", p, i), 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for range poppers {
		popWG.Go(func() {
			for {
				msgs, err := s.Offline().Pop(c, owner)
				if err != nil {
					t.Error(err)
					return
				}
				for i := 1; i < len(msgs); i++ {
					if msgs[i].ID <= msgs[i-1].ID {
						t.Errorf("Pop not oldest first: id %d after %d", msgs[i].ID, msgs[i-1].ID)
					}
				}
				collect(msgs)
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	pushWG.Wait()
	close(done)
	popWG.Wait()
	rest, err := s.Offline().Pop(c, owner)
	must(t, err)
	collect(rest)
	if len(seen) != pushers*perPusher {
		t.Fatalf("popped %d distinct messages, want %d", len(seen), pushers*perPusher)
	}
	for st, k := range seen {
		if k != 1 {
			t.Fatalf("message %q popped %d times", st, k)
		}
	}
}

// blobStore adapts VCards, Private and a KV bucket to one shape so the same
// table of cases checks all three "one blob per key" stores.
type blobStore struct {
	get func(c context.Context, owner, key string) ([]byte, error)
	set func(c context.Context, owner, key string, v []byte) error
}

func checkBlobStore(t *testing.T, b blobStore, keyed bool) {
	c := ctx(t)
	const owner = "juliet@example.org"
	key, other := "k1", "k2"
	if !keyed {
		other = key
	}
	_, err := b.get(c, owner, key)
	wantErr(t, "Get missing", err, storage.ErrNotFound)
	tests := []struct {
		name  string
		value []byte
	}{
		{"xml", []byte("<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>")},
		{"overwrite", []byte("<x/>")},
		{"binary", []byte{0, 1, 0, 0xfe, 0xff}},
		{"empty", []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, b.set(c, owner, key, tt.value))
			got, err := b.get(c, owner, key)
			must(t, err)
			if !bytes.Equal(got, tt.value) {
				t.Fatalf("Get = %q, want %q", got, tt.value)
			}
		})
	}
	_, err = b.get(c, "romeo@example.net", key)
	wantErr(t, "other owner", err, storage.ErrNotFound)
	if keyed {
		_, err = b.get(c, owner, other)
		wantErr(t, "other key", err, storage.ErrNotFound)
	}
}

func testVCards(t *testing.T, s storage.Store) {
	checkBlobStore(t, blobStore{
		get: func(c context.Context, owner, _ string) ([]byte, error) { return s.VCards().Get(c, owner) },
		set: func(c context.Context, owner, _ string, v []byte) error { return s.VCards().Set(c, owner, v) },
	}, false)
}

func testPrivate(t *testing.T, s storage.Store) {
	checkBlobStore(t, blobStore{get: s.Private().Get, set: s.Private().Set}, true)
}

func testKV(t *testing.T, s storage.Store) {
	checkBlobStore(t, blobStore{
		get: func(c context.Context, owner, key string) ([]byte, error) { return s.KV().Get(c, "b", owner, key) },
		set: func(c context.Context, owner, key string, v []byte) error { return s.KV().Set(c, "b", owner, key, v) },
	}, true)
	c := ctx(t)
	_, err := s.KV().Get(c, "other-bucket", "juliet@example.org", "k1")
	wantErr(t, "other bucket", err, storage.ErrNotFound)
	must(t, s.KV().Delete(c, "b", "juliet@example.org", "absent")) // no error if absent
	must(t, s.KV().Delete(c, "b", "juliet@example.org", "k1"))
	_, err = s.KV().Get(c, "b", "juliet@example.org", "k1")
	wantErr(t, "Get after Delete", err, storage.ErrNotFound)
	must(t, s.KV().Delete(c, "b", "juliet@example.org", "k1"))
}

func testKVList(t *testing.T, s storage.Store) {
	c := ctx(t)
	got, err := s.KV().List(c, "b", "example.org")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("List on empty store = %v", got)
	}
	want := map[string][]byte{}
	for _, k := range []string{"zeta", "alpha", "Mid", "b/c", "é", ""} {
		v := []byte("v-" + k)
		want[k] = v
		must(t, s.KV().Set(c, "b", "example.org", k, v))
	}
	must(t, s.KV().Set(c, "b", "example.org", "alpha", []byte("new"))) // overwrite, not duplicate
	want["alpha"] = []byte("new")
	must(t, s.KV().Set(c, "b2", "example.org", "other-bucket", []byte("x")))
	must(t, s.KV().Set(c, "b", "example.net", "other-owner", []byte("x")))
	must(t, s.KV().Set(c, "b", "example.org", "gone", []byte("x")))
	must(t, s.KV().Delete(c, "b", "example.org", "gone"))

	got, err = s.KV().List(c, "b", "example.org")
	must(t, err)
	if !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	// The map cannot carry order; check that sorted iteration, which is what
	// callers do, yields byte order.
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"", "Mid", "alpha", "b/c", "zeta", "é"}) {
		t.Fatalf("keys = %q", keys)
	}
}

// testKVSetIfAbsent: the first writer's value wins however many race, and
// storage.Secret hands every caller the same key.
func testKVSetIfAbsent(t *testing.T, s storage.Store) {
	c := t.Context()
	kv := s.KV()
	got, err := kv.SetIfAbsent(c, "b", "example.org", "k", []byte("first"))
	must(t, err)
	if string(got) != "first" {
		t.Fatalf("SetIfAbsent on an empty key = %q", got)
	}
	got, err = kv.SetIfAbsent(c, "b", "example.org", "k", []byte("second"))
	must(t, err)
	if string(got) != "first" {
		t.Fatalf("SetIfAbsent on a set key = %q, want the first value", got)
	}
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = storage.Secret(c, kv, "b", "example.org", "secret", 32) })
	}
	wg.Wait()
	for i := range n {
		must(t, errs[i])
		if len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("racing callers got different secrets: %x and %x", keys[0], keys[i])
		}
	}
	// An old value too short is replaced.
	must(t, kv.Set(c, "b", "example.org", "short", []byte("x")))
	k, err := storage.Secret(c, kv, "b", "example.org", "short", 32)
	must(t, err)
	if again, _ := kv.Get(c, "b", "example.org", "short"); len(k) != 32 || !bytes.Equal(again, k) {
		t.Fatalf("short secret not replaced: %x, stored %x", k, again)
	}
}

func testCanceledContext(t *testing.T, s storage.Store) {
	c, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Accounts.Get", func() error { _, err := s.Accounts().Get(c, "h", "u"); return err }},
		{"Accounts.Create", func() error { return s.Accounts().Create(c, storage.Account{Host: "h", Username: "u"}) }},
		{"Roster.Put", func() error { _, err := s.Roster().Put(c, "u@h", storage.RosterItem{JID: "a@b"}); return err }},
		{"Offline.Push", func() error { return s.Offline().Push(c, "u@h", []byte("x"), 1) }},
		{"Archive.Append", func() error {
			_, err := s.Archive().Append(c, 0, storage.ArchiveEntry{Owner: "u@h", ID: "1", With: "a@b", Stamp: time.Now()})
			return err
		}},
		{"KV.List", func() error { _, err := s.KV().List(c, "b", "u@h"); return err }},
	}
	for _, tt := range calls {
		if err := tt.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", tt.name, err)
		}
	}
	if _, err := s.Accounts().Get(ctx(t), "h", "u"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("canceled Create wrote the account: %v", err)
	}
}

// pubsubNode creates a node with the given config and returns its name.
func pubsubNode(t *testing.T, c context.Context, s storage.Store, service, node string) string {
	t.Helper()
	must(t, s.PubSub().CreateNode(c, storage.PubSubNode{Service: service, Node: node, Config: []byte(`{"max_items":"1"}`)}, 0))
	return node
}

func itemIDs(items []storage.PubSubItem) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func testPubSubNodes(t *testing.T, s storage.Store) {
	c := ctx(t)
	ps := s.PubSub()
	const svc = "juliet@example.org"
	nodes, err := ps.Nodes(c, svc)
	must(t, err)
	if len(nodes) != 0 {
		t.Fatalf("Nodes of a new service = %v", nodes)
	}
	created := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.FixedZone("X", 3600))
	cfg := []byte{0, 1, 0xfe, '{', '}'}
	must(t, ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "urn:xmpp:bookmarks:1", Config: cfg, Created: created}, 0))
	before := time.Now().Add(-time.Second)
	must(t, ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "Zed"}, 0))
	must(t, ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "éclair", Config: []byte{}}, 0))
	must(t, ps.CreateNode(c, storage.PubSubNode{Service: "romeo@example.org", Node: "urn:xmpp:bookmarks:1"}, 0))
	err = ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "urn:xmpp:bookmarks:1", Config: []byte("other")}, 0)
	wantErr(t, "duplicate node", err, storage.ErrExists)

	n, err := ps.Node(c, svc, "urn:xmpp:bookmarks:1")
	must(t, err)
	if n.Service != svc || n.Node != "urn:xmpp:bookmarks:1" || !bytes.Equal(n.Config, cfg) || !n.Created.Equal(created) || n.Created.Location() != time.UTC {
		t.Fatalf("Node = %+v, want config %q created %v (UTC)", n, cfg, created)
	}
	n, err = ps.Node(c, svc, "Zed")
	must(t, err)
	if n.Config == nil || len(n.Config) != 0 || n.Created.Before(before) || n.Created.After(time.Now().Add(time.Second)) {
		t.Fatalf("Node with nil config and zero time = %+v; want empty non-nil config and now", n)
	}
	nodes, err = ps.Nodes(c, svc)
	must(t, err)
	names := []string{}
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	if want := []string{"Zed", "urn:xmpp:bookmarks:1", "éclair"}; !slices.Equal(names, want) {
		t.Fatalf("Nodes = %q, want %q (byte order, one service)", names, want)
	}

	must(t, ps.SetConfig(c, svc, "Zed", []byte("new")))
	n, err = ps.Node(c, svc, "Zed")
	must(t, err)
	if string(n.Config) != "new" {
		t.Fatalf("config after SetConfig = %q", n.Config)
	}

	// Deleting a node takes its items, affiliations and subscriptions;
	// a node created again under the name starts empty.
	must(t, ps.PutItem(c, svc, "Zed", storage.PubSubItem{ID: "a", Payload: []byte("<a/>")}, 0))
	must(t, ps.SetAffiliation(c, svc, "Zed", "nurse@example.org", "member"))
	must(t, ps.SetSubscription(c, svc, "Zed", "nurse@example.org", "subscribed", 0))
	must(t, ps.DeleteNode(c, svc, "Zed"))
	_, err = ps.Node(c, svc, "Zed")
	wantErr(t, "Node after delete", err, storage.ErrNotFound)
	wantErr(t, "second delete", ps.DeleteNode(c, svc, "Zed"), storage.ErrNotFound)
	must(t, ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "Zed"}, 0))
	items, err := ps.Items(c, svc, "Zed", 0)
	must(t, err)
	affs, err := ps.Affiliations(c, svc, "Zed")
	must(t, err)
	subs, err := ps.Subscriptions(c, svc, "Zed")
	must(t, err)
	if len(items)+len(affs)+len(subs) != 0 {
		t.Fatalf("re-created node inherited items %v, affiliations %v, subscriptions %v", items, affs, subs)
	}
	if _, err := ps.Node(c, "romeo@example.org", "urn:xmpp:bookmarks:1"); err != nil {
		t.Fatalf("another service's node of the same name: %v", err)
	}

	// Quota: the service has 3 nodes.
	err = ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "fourth"}, 3)
	wantErr(t, "create beyond quota", err, storage.ErrQuotaExceeded)
	err = ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "Zed"}, 3)
	wantErr(t, "existing name at the quota", err, storage.ErrExists)
	must(t, ps.CreateNode(c, storage.PubSubNode{Service: svc, Node: "fourth"}, 4))
}

func testPubSubNodeQuotaRace(t *testing.T, s storage.Store) {
	c := ctx(t)
	const svc, n, limit = "juliet@example.org", 16, 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.PubSub().CreateNode(c, storage.PubSubNode{Service: svc, Node: fmt.Sprint("node-", i)}, limit)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, storage.ErrQuotaExceeded):
			t.Errorf("create: %v, want nil or ErrQuotaExceeded", err)
		}
	}
	nodes, err := s.PubSub().Nodes(c, svc)
	must(t, err)
	if ok != limit || len(nodes) != limit {
		t.Fatalf("%d concurrent creates with max %d: %d succeeded, %d stored; want exactly %d", n, limit, ok, len(nodes), limit)
	}
}

func testPubSubItems(t *testing.T, s storage.Store) {
	c := ctx(t)
	ps := s.PubSub()
	const svc = "juliet@example.org"
	node := pubsubNode(t, c, s, svc, "urn:xmpp:avatar:data")
	other := pubsubNode(t, c, s, svc, "other")
	items, err := ps.Items(c, svc, node, 0)
	must(t, err)
	if len(items) != 0 {
		t.Fatalf("Items of a new node = %v", items)
	}
	stamp := time.Date(2023, 1, 2, 3, 4, 5, 600000000, time.FixedZone("Y", -7200))
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "a", Publisher: svc + "/balcony", Payload: []byte{0, 1, 0xff}, Published: stamp}, 0))
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "b", Payload: []byte("<b/>")}, 0))
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "c"}, 0))
	must(t, ps.PutItem(c, svc, other, storage.PubSubItem{ID: "a", Payload: []byte("other node")}, 0))
	items, err = ps.Items(c, svc, node, 0)
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Items = %q, want oldest first", got)
	}
	a := items[0]
	if a.Publisher != svc+"/balcony" || !bytes.Equal(a.Payload, []byte{0, 1, 0xff}) || !a.Published.Equal(stamp) || a.Published.Location() != time.UTC {
		t.Fatalf("item a = %+v", a)
	}
	if items[2].Payload == nil || len(items[2].Payload) != 0 || items[2].Published.IsZero() {
		t.Fatalf("item without payload or time = %+v, want empty payload and a time", items[2])
	}

	// Republishing is modification: the item becomes the newest.
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "a", Payload: []byte("<new/>")}, 0))
	items, err = ps.Items(c, svc, node, 0)
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"b", "c", "a"}) || string(items[2].Payload) != "<new/>" {
		t.Fatalf("after republishing a: %q (a = %q), want b c a", got, items[2].Payload)
	}
	items, err = ps.Items(c, svc, node, 2)
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"c", "a"}) {
		t.Fatalf("Items max 2 = %q, want the two newest, oldest first", got)
	}
	items, err = ps.ItemsByID(c, svc, node, []string{"a", "missing", "b"})
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("ItemsByID = %q, want b a", got)
	}
	items, err = ps.ItemsByID(c, svc, node, nil)
	must(t, err)
	if len(items) != 0 {
		t.Fatalf("ItemsByID(nil) = %q", itemIDs(items))
	}

	// Publishing with a bound keeps the newest.
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "d"}, 2))
	items, err = ps.Items(c, svc, node, 0)
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"a", "d"}) {
		t.Fatalf("after publishing d with max 2: %q", got)
	}

	must(t, ps.DeleteItem(c, svc, node, "a"))
	wantErr(t, "delete missing item", ps.DeleteItem(c, svc, node, "a"), storage.ErrNotFound)
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "e"}, 0))
	must(t, ps.PutItem(c, svc, node, storage.PubSubItem{ID: "f"}, 0))
	must(t, ps.TrimItems(c, svc, node, 2))
	items, err = ps.Items(c, svc, node, 0)
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"e", "f"}) {
		t.Fatalf("after trimming to 2: %q", got)
	}
	must(t, ps.TrimItems(c, svc, node, 0)) // purge
	items, err = ps.Items(c, svc, node, 0)
	must(t, err)
	if len(items) != 0 {
		t.Fatalf("after purge: %q", itemIDs(items))
	}
	items, err = ps.Items(c, svc, other, 0)
	must(t, err)
	if got := itemIDs(items); !slices.Equal(got, []string{"a"}) || string(items[0].Payload) != "other node" {
		t.Fatalf("other node's items = %q, want its own a", got)
	}
}

func testPubSubItemsConcurrentTrim(t *testing.T, s storage.Store) {
	c := ctx(t)
	const svc, n, limit = "juliet@example.org", 16, 3
	node := pubsubNode(t, c, s, svc, "busy")
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if err := s.PubSub().PutItem(c, svc, node, storage.PubSubItem{ID: fmt.Sprint(i)}, limit); err != nil {
				t.Errorf("publish: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	items, err := s.PubSub().Items(c, svc, node, 0)
	must(t, err)
	if len(items) != limit {
		t.Fatalf("%d concurrent publishes with max %d left %d items", n, limit, len(items))
	}
}

func testPubSubAffiliations(t *testing.T, s storage.Store) {
	c := ctx(t)
	ps := s.PubSub()
	const svc = "juliet@example.org"
	a := pubsubNode(t, c, s, svc, "a")
	b := pubsubNode(t, c, s, svc, "b")
	must(t, ps.SetAffiliation(c, svc, b, "romeo@example.net", "member"))
	must(t, ps.SetAffiliation(c, svc, a, "romeo@example.net", "publisher"))
	must(t, ps.SetAffiliation(c, svc, a, "nurse@example.org", "outcast"))
	must(t, ps.SetAffiliation(c, svc, a, "nurse@example.org", "member")) // replaces
	must(t, ps.SetAffiliation(c, svc, a, "tybalt@example.org", "outcast"))
	must(t, ps.SetAffiliation(c, svc, a, "tybalt@example.org", "none")) // removes
	must(t, ps.SetAffiliation(c, svc, a, "absent@example.org", ""))     // removing nothing is fine
	if err := ps.SetAffiliation(c, svc, a, "x@example.org", "king"); err == nil {
		t.Fatal("unknown affiliation stored")
	}
	got, err := ps.Affiliations(c, svc, a)
	must(t, err)
	want := []storage.PubSubAffiliation{{Node: a, JID: "nurse@example.org", Affiliation: "member"}, {Node: a, JID: "romeo@example.net", Affiliation: "publisher"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Affiliations(a) = %v, want %v", got, want)
	}
	got, err = ps.Affiliations(c, svc, "")
	must(t, err)
	want = append(want, storage.PubSubAffiliation{Node: b, JID: "romeo@example.net", Affiliation: "member"})
	if !slices.Equal(got, want) {
		t.Fatalf("Affiliations of the service = %v, want %v", got, want)
	}
}

func testPubSubSubscriptions(t *testing.T, s storage.Store) {
	c := ctx(t)
	ps := s.PubSub()
	const svc = "juliet@example.org"
	a := pubsubNode(t, c, s, svc, "a")
	b := pubsubNode(t, c, s, svc, "b")
	must(t, ps.SetSubscription(c, svc, a, "romeo@example.net/orchard", "subscribed", 2))
	must(t, ps.SetSubscription(c, svc, a, "nurse@example.org", "pending", 2))
	must(t, ps.SetSubscription(c, svc, a, "nurse@example.org", "subscribed", 2)) // an existing one is not new
	wantErr(t, "third subscriber with max 2", ps.SetSubscription(c, svc, a, "tybalt@example.org", "subscribed", 2), storage.ErrQuotaExceeded)
	must(t, ps.SetSubscription(c, svc, b, "tybalt@example.org", "subscribed", 2))
	if err := ps.SetSubscription(c, svc, a, "x@example.org", "maybe", 0); err == nil {
		t.Fatal("unknown subscription state stored")
	}
	got, err := ps.Subscriptions(c, svc, "")
	must(t, err)
	want := []storage.PubSubSubscription{
		{Node: a, JID: "nurse@example.org", State: "subscribed"},
		{Node: a, JID: "romeo@example.net/orchard", State: "subscribed"},
		{Node: b, JID: "tybalt@example.org", State: "subscribed"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Subscriptions = %v, want %v", got, want)
	}
	must(t, ps.SetSubscription(c, svc, a, "nurse@example.org", "none", 0))
	got, err = ps.Subscriptions(c, svc, a)
	must(t, err)
	if !slices.Equal(got, want[1:2]) {
		t.Fatalf("Subscriptions(a) after unsubscribing = %v, want %v", got, want[1:2])
	}
}

// Every per-node method reports a node that does not exist as ErrNotFound,
// including a node of the same name at another service.
func testPubSubMissingNode(t *testing.T, s storage.Store) {
	c := ctx(t)
	ps := s.PubSub()
	pubsubNode(t, c, s, "romeo@example.net", "n")
	const svc, node = "juliet@example.org", "n"
	calls := []struct {
		name string
		call func() error
	}{
		{"Node", func() error { _, err := ps.Node(c, svc, node); return err }},
		{"SetConfig", func() error { return ps.SetConfig(c, svc, node, nil) }},
		{"DeleteNode", func() error { return ps.DeleteNode(c, svc, node) }},
		{"PutItem", func() error { return ps.PutItem(c, svc, node, storage.PubSubItem{ID: "x"}, 0) }},
		{"Items", func() error { _, err := ps.Items(c, svc, node, 0); return err }},
		{"ItemsByID", func() error { _, err := ps.ItemsByID(c, svc, node, []string{"x"}); return err }},
		{"DeleteItem", func() error { return ps.DeleteItem(c, svc, node, "x") }},
		{"TrimItems", func() error { return ps.TrimItems(c, svc, node, 0) }},
		{"SetAffiliation", func() error { return ps.SetAffiliation(c, svc, node, "a@b", "member") }},
		{"Affiliations", func() error { _, err := ps.Affiliations(c, svc, node); return err }},
		{"SetSubscription", func() error { return ps.SetSubscription(c, svc, node, "a@b", "subscribed", 0) }},
		{"Subscriptions", func() error { _, err := ps.Subscriptions(c, svc, node); return err }},
	}
	for _, tt := range calls {
		wantErr(t, tt.name, tt.call(), storage.ErrNotFound)
	}
	if _, err := ps.Items(c, svc, "", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Items of node \"\": %v, want ErrNotFound", err)
	}
}

// testAccountsSetDisabled: disabling keeps the account and its credentials
// and is undone by re-enabling (XEP-0133 disable-user, reenable-user).
func testAccountsSetDisabled(t *testing.T, s storage.Store) {
	c := ctx(t)
	acc := account("example.org", "juliet")
	must(t, s.Accounts().Create(c, acc))
	for _, want := range []bool{true, true, false} {
		must(t, s.Accounts().SetDisabled(c, "example.org", "juliet", want))
		got, err := s.Accounts().Get(c, "example.org", "juliet")
		must(t, err)
		if got.Disabled != want || len(got.Creds.Keys) != len(acc.Creds.Keys) {
			t.Fatalf("after SetDisabled(%v): disabled %v, %d keys", want, got.Disabled, len(got.Creds.Keys))
		}
	}
}
