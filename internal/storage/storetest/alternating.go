package storetest

import (
	"sync"

	"parley/internal/storage"
)

// Alternating returns a Store that sends each call to a and b in turn. Run
// the suite on two stores opened on the same database to check that what one
// process writes, another sees, as when the server and the `parley user`
// CLI (or two cluster nodes) share a database. Close does nothing: the
// caller closes a and b.
func Alternating(a, b storage.Store) storage.Store {
	return &alternating{stores: [2]storage.Store{a, b}}
}

type alternating struct {
	mu     sync.Mutex
	next   int
	stores [2]storage.Store
}

func (a *alternating) pick() storage.Store {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next ^= 1
	return a.stores[a.next]
}

func (a *alternating) Accounts() storage.Accounts { return a.pick().Accounts() }
func (a *alternating) Roster() storage.Roster     { return a.pick().Roster() }
func (a *alternating) Offline() storage.Offline   { return a.pick().Offline() }
func (a *alternating) VCards() storage.VCards     { return a.pick().VCards() }
func (a *alternating) Private() storage.Private   { return a.pick().Private() }
func (a *alternating) PubSub() storage.PubSub     { return a.pick().PubSub() }
func (a *alternating) KV() storage.KV             { return a.pick().KV() }
func (a *alternating) Archive() storage.Archive   { return a.pick().Archive() }
func (a *alternating) Compliance() storage.Compliance {
	return a.pick().Compliance()
}
func (a *alternating) FAST() storage.FASTTokens           { return a.pick().FAST() }
func (a *alternating) Passwords() storage.PasswordHistory { return a.pick().Passwords() }
func (a *alternating) Close() error                       { return nil }
