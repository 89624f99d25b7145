package roster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// ErrRosterFull is returned by Store.Save when adding an item would exceed
// MaxItems.
var ErrRosterFull = errors.New("roster: too many items")

// ErrTooManyPending is returned by Store.Save when storing one more
// inbound subscription request would exceed limits.max_pending_subscriptions.
var ErrTooManyPending = errors.New("roster: too many pending subscription requests")

// MaxStoredRequestBytes bounds one stored subscription request. A request
// that serialises bigger (a huge status, arbitrary extension payloads) is
// stored as a plain <presence type='subscribe'/>: it is still delivered
// whole when the user is online, but cannot make each pending entry cost a
// full stanza's worth of storage.
const MaxStoredRequestBytes = 4096

// pendingBucket is the KV bucket of unanswered inbound subscription
// requests: owner = the user's bare JID, key = the requester's bare JID,
// value = the serialised <presence type='subscribe'/> (kept whole so that a
// redelivered request still carries its status text or nickname).
const pendingBucket = "roster.pending-in"

// Contact is the server-side subscription state of one contact in a user's
// roster, the state RFC 6121 Appendix A reasons about.
type Contact struct {
	storage.RosterItem
	// InRoster reports whether the contact has a roster item. A contact
	// whose only state is an unanswered inbound subscription request has
	// none: RFC 6121 §3.1.3 makes the server remember the request, but the
	// contact appears in the user's roster only once the user adds or
	// approves it. PendingIn is then kept in the KV store alone.
	InRoster bool
}

// HasTo reports whether the user is subscribed to the contact's presence.
func (c Contact) HasTo() bool {
	return c.Subscription == storage.SubTo || c.Subscription == storage.SubBoth
}

// HasFrom reports whether the contact is subscribed to the user's presence.
func (c Contact) HasFrom() bool {
	return c.Subscription == storage.SubFrom || c.Subscription == storage.SubBoth
}

// SetTo adds or removes the user's subscription to the contact.
func (c *Contact) SetTo(on bool) { c.Subscription = subscription(on, c.HasFrom()) }

// SetFrom adds or removes the contact's subscription to the user.
func (c *Contact) SetFrom(on bool) { c.Subscription = subscription(c.HasTo(), on) }

func subscription(to, from bool) string {
	switch {
	case to && from:
		return storage.SubBoth
	case to:
		return storage.SubTo
	case from:
		return storage.SubFrom
	}
	return storage.SubNone
}

// Store reads and writes subscription state and rosters of one host, and
// sends the roster pushes (RFC 6121 §2.1.6) for every visible change.
//
// Changes are read-modify-write sequences on storage, so callers hold the
// owner's lock (Lock) from Load to Save. A caller must never route a stanza
// while it holds a lock: local delivery runs synchronously and may need the
// lock of the same or another user, so that is the rule that keeps lock
// cycles impossible.
type Store struct {
	h *module.Host

	mu    sync.Mutex
	locks map[string]*ownerLock
}

type ownerLock struct {
	mu   sync.Mutex
	refs int
}

func newStore(h *module.Host) *Store {
	return &Store{h: h, locks: make(map[string]*ownerLock)}
}

// Lock serialises subscription and roster changes of one owner (a bare
// JID). The lock table holds only owners with a change in progress.
func (s *Store) Lock(owner jid.JID) (unlock func()) {
	key := owner.Bare().String()
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &ownerLock{}
		s.locks[key] = l
	}
	l.refs++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
}

// Items returns owner's roster (only real items, never bare pending
// requests) and its version.
func (s *Store) Items(ctx context.Context, owner jid.JID) ([]storage.RosterItem, string, error) {
	return s.h.Store.Roster().Items(ctx, owner.Bare().String())
}

// Load returns the state of contact in owner's roster. Both JIDs are used
// bare.
func (s *Store) Load(ctx context.Context, owner, contact jid.JID) (Contact, error) {
	o, c := owner.Bare().String(), contact.Bare().String()
	it, err := s.h.Store.Roster().Get(ctx, o, c)
	switch {
	case err == nil:
		return Contact{RosterItem: it, InRoster: true}, nil
	case !errors.Is(err, storage.ErrNotFound):
		return Contact{}, err
	}
	cs := Contact{RosterItem: storage.RosterItem{JID: c, Subscription: storage.SubNone}}
	_, err = s.h.Store.KV().Get(ctx, pendingBucket, o, c)
	switch {
	case err == nil:
		cs.PendingIn = true
	case !errors.Is(err, storage.ErrNotFound):
		return Contact{}, err
	}
	return cs, nil
}

// Save stores the transition of contact from before (as returned by Load)
// to after and pushes the item to owner's interested resources if what a
// client sees of it changed. request is the inbound subscription request to
// keep when after gains PendingIn (nil: a plain one is synthesised).
//
// Adding an item to a roster of MaxItems items fails with ErrRosterFull.
func (s *Store) Save(ctx context.Context, owner jid.JID, before, after Contact, request *xml.Element) error {
	owner = owner.Bare()
	o := owner.String()
	after.JID = before.JID
	if after.Subscription == "" {
		after.Subscription = storage.SubNone
	}
	if !after.InRoster {
		// An item-less contact has only a pending request, nothing else.
		after = Contact{RosterItem: storage.RosterItem{JID: before.JID, Subscription: storage.SubNone, PendingIn: after.PendingIn}}
	}
	kv := s.h.Store.KV()
	if after.PendingIn && !before.PendingIn {
		// Checked before anything is written, so a refused request
		// leaves no half-applied state behind.
		if limit := s.h.Config.Limits.MaxPendingSubscriptions; limit > 0 {
			stored, err := kv.List(ctx, pendingBucket, o)
			if err != nil {
				return err
			}
			if len(stored) >= limit {
				return ErrTooManyPending
			}
		}
	}
	rs := s.h.Store.Roster()
	switch {
	case after.InRoster && (!before.InRoster || !sameItem(before.RosterItem, after.RosterItem)):
		if !before.InRoster {
			items, _, err := rs.Items(ctx, o)
			if err != nil {
				return err
			}
			if len(items) >= MaxItems {
				return ErrRosterFull
			}
		}
		ver, err := rs.Put(ctx, o, after.RosterItem)
		if err != nil {
			return err
		}
		if !before.InRoster || !sameVisible(before.RosterItem, after.RosterItem) {
			Push(s.h, owner, ItemElement(after.RosterItem), ver)
		}
	case !after.InRoster && before.InRoster:
		ver, err := rs.Delete(ctx, o, before.JID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err == nil {
			Push(s.h, owner, RemovedItemElement(before.JID), ver)
		}
	}
	switch {
	case after.PendingIn && !before.PendingIn:
		var b []byte
		if request != nil {
			b = request.Bytes()
		}
		if b == nil || len(b) > MaxStoredRequestBytes {
			b = xml.New("", "presence").SetAttr("from", before.JID).SetAttr("to", o).SetAttr("type", "subscribe").Bytes()
		}
		return kv.Set(ctx, pendingBucket, o, before.JID, b)
	case !after.PendingIn && before.PendingIn:
		return kv.Delete(ctx, pendingBucket, o, before.JID)
	}
	return nil
}

// PendingRequests returns the inbound subscription requests owner has not
// answered yet, to be delivered again when a resource becomes available
// (RFC 6121 §3.1.3: the server keeps them until the user approves or
// denies).
func (s *Store) PendingRequests(ctx context.Context, owner jid.JID) ([]*xml.Element, error) {
	o := owner.Bare().String()
	stored, err := s.h.Store.KV().List(ctx, pendingBucket, o)
	if err != nil {
		return nil, err
	}
	out := make([]*xml.Element, 0, len(stored))
	for contact, b := range stored {
		el, err := xml.ParseElement(b, xml.DefaultLimits(), stanza.NSClient)
		if err != nil || el.Local != "presence" {
			el = xml.New("", "presence").SetAttr("type", "subscribe")
		}
		out = append(out, el.WithAttr("from", contact).WithAttr("to", o))
	}
	slices.SortFunc(out, func(a, b *xml.Element) int {
		switch {
		case a.Attr("from") < b.Attr("from"):
			return -1
		case a.Attr("from") > b.Attr("from"):
			return 1
		}
		return 0
	})
	return out, nil
}

func sameVisible(a, b storage.RosterItem) bool {
	return a.Name == b.Name && a.Subscription == b.Subscription && a.AskOut == b.AskOut &&
		a.PreApproved == b.PreApproved && slices.Equal(a.Groups, b.Groups)
}

func sameItem(a, b storage.RosterItem) bool {
	return sameVisible(a, b) && a.PendingIn == b.PendingIn
}

// ItemElement renders a roster item as RFC 6121 §2.1.2 shows it to the
// client: 'ask' for a pending outbound request, 'approved' for a
// pre-approval (§3.4), never the pending inbound state (which clients learn
// from the subscription request itself).
func ItemElement(it storage.RosterItem) *xml.Element {
	sub := it.Subscription
	if sub == "" {
		sub = storage.SubNone
	}
	el := xml.New(NS, "item").SetAttr("jid", it.JID)
	if it.Name != "" {
		el.SetAttr("name", it.Name)
	}
	el.SetAttr("subscription", sub)
	if it.AskOut {
		el.SetAttr("ask", "subscribe")
	}
	if it.PreApproved {
		el.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		el.Append(xml.New(NS, "group").AppendText(g))
	}
	return el
}

// RemovedItemElement is the item of the roster push that announces a
// removal (RFC 6121 §2.5.2).
func RemovedItemElement(contact string) *xml.Element {
	return xml.New(NS, "item").SetAttr("jid", contact).SetAttr("subscription", "remove")
}

// Push sends a roster push (RFC 6121 §2.1.6) with item and version ver to
// every interested resource of owner. The push has no 'from', which clients
// must accept as coming from their own account.
func Push(h *module.Host, owner jid.JID, item *xml.Element, ver string) {
	for _, s := range h.Router.Sessions(owner.Bare()) {
		if !s.Interested() {
			continue
		}
		q := xml.New(NS, "query")
		if ver != "" {
			q.SetAttr("ver", ver)
		}
		q.Append(item)
		iq := xml.New("", "iq").SetAttr("type", "set").SetAttr("id", pushID()).
			SetAttr("to", s.JID().String()).Append(q)
		s.Send(iq)
	}
}

func pushID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "push-" + hex.EncodeToString(b[:])
}
