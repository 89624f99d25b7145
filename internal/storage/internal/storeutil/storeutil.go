// Package storeutil holds the small normalisation rules every backend must
// apply identically, so the conformance suite cannot be passed by one
// backend's accident and failed by another's.
package storeutil

import (
	"fmt"
	"slices"

	"parley/internal/storage"
)

// BareJID is the owner key of an account's data. Accounts are keyed by
// (host, username) but the other stores by bare JID, and Accounts.Delete
// must find the latter from the former.
func BareJID(host, username string) string {
	return username + "@" + host
}

// NormalizeGroups returns groups sorted and deduplicated, without empty
// names (RFC 6121 forbids an empty <group/>), or nil if none remain. A nil
// result keeps "no groups" comparable across backends that would otherwise
// return nil or an empty slice.
func NormalizeGroups(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g != "" {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// NormalizeItem validates and normalises a roster item before it is stored:
// an empty Subscription means SubNone, groups are normalised, and unknown
// subscription states are rejected so garbage never reaches the table.
func NormalizeItem(it storage.RosterItem) (storage.RosterItem, error) {
	switch it.Subscription {
	case "":
		it.Subscription = storage.SubNone
	case storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
	default:
		return it, fmt.Errorf("storage: invalid roster subscription %q", it.Subscription)
	}
	it.Groups = NormalizeGroups(it.Groups)
	return it, nil
}

// NonNil returns b, or an empty slice if b is nil: blob columns are NOT NULL
// so "empty value" and "no row" stay distinguishable.
func NonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Rows is the part of a query result both drivers share (database/sql's
// *sql.Rows and pgx.Rows), enough to read rows the same way in each backend.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// KVEntries reads the (key, value) rows of KV.List into a map, each value
// non-nil (NonNil). The caller still closes rows.
func KVEntries(rows Rows) (map[string][]byte, error) {
	out := map[string][]byte{}
	for rows.Next() {
		var (
			key string
			val []byte
		)
		if err := rows.Scan(&key, &val); err != nil {
			return nil, err
		}
		out[key] = NonNil(val)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// PubSubAffiliation validates an affiliation for PubSub.SetAffiliation and
// reports whether it removes the row ("none" or ""), so both backends
// refuse the same values before the database's CHECK would.
func PubSubAffiliation(a string) (remove bool, err error) {
	switch a {
	case "", "none":
		return true, nil
	case "owner", "publisher", "publish-only", "member", "outcast":
		return false, nil
	}
	return false, fmt.Errorf("storage: invalid pubsub affiliation %q", a)
}

// PubSubSubscriptionState is PubSubAffiliation for subscription states.
func PubSubSubscriptionState(s string) (remove bool, err error) {
	switch s {
	case "", "none":
		return true, nil
	case "subscribed", "pending", "unconfigured":
		return false, nil
	}
	return false, fmt.Errorf("storage: invalid pubsub subscription state %q", s)
}
