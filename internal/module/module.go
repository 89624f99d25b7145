package module

import (
	"context"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// PriorityDeliver is the priority of the core's own delivery handlers: the
// RFC 6121 §8.5 rules run after every module had its say.
const PriorityDeliver = -1000

// Module is the lifecycle every feature module implements. Start is called
// after every module of the host was constructed (so hooks registered by one
// module are visible to the others) and before any listener accepts a
// connection; Stop on shutdown, in reverse order.
type Module interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// ClosingNotifier is a module that tells others what the server's shutdown
// ends. The server calls ServerClosing once, when it begins to shut down
// and before any client or federation stream closes, so that what the
// module sends still reaches local and remote users (the chat-room
// service's status 332 to every occupant). It must not block for long: the
// shutdown waits for it.
type ClosingNotifier interface {
	ServerClosing(ctx context.Context)
}

// Factory builds a module for one host. The server keeps an explicit list of
// factories (no init-time registration), so which modules run is visible in
// one place.
type Factory func(h *Host) (Module, error)

// Session is a bound client session (RFC 6120 §7) as modules see it. All
// methods are safe for concurrent use.
type Session interface {
	// JID is the session's full JID.
	JID() jid.JID
	// ID is the stream ID, unique per connection.
	ID() string
	// Send queues a stanza for the client; it never blocks. A session whose
	// output queue is full is closed (a client that does not read cannot make
	// the server hold unbounded memory).
	Send(el *xml.Element)
	// Deliver queues a stanza for the client like Send, without running
	// the host's Outbound hooks: for a module that held stanzas back
	// (XEP-0352 client state indication) and now releases them. Everything
	// else uses Send.
	Deliver(el *xml.Element)
	// Close ends the session with a stream error (or cleanly with "").
	Close(cond stanza.StreamCondition, text string)

	// Presence is the last broadcast available presence, nil while the
	// session has not sent initial presence or is unavailable.
	Presence() *xml.Element
	SetPresence(p *xml.Element)
	// Priority of the last presence (RFC 6121 §4.7.2.3), 0 if none.
	Priority() int
	// Interested reports whether the client requested the roster
	// (RFC 6121 §2.1.6 "interested resource": it gets roster pushes).
	Interested() bool
	SetInterested(bool)
	// Value and SetValue keep per-session state for modules (directed
	// presence lists, carbons, ...). Keys should be unexported module types.
	Value(key any) any
	SetValue(key, value any)
}

// SharedKey is a Session value key whose value the other nodes of a
// cluster must see on their copy of the session (carbons' "enabled", read
// when a node copies a message to all of an account's sessions). The
// value crosses nodes as the string Encode returns; Decode turns it back
// into the value Value returns there. Keys that only the session's own
// node reads are plain types.
type SharedKey interface {
	SharedName() string
	Encode(v any) string
	Decode(s string) any
}

// Available reports whether s has sent available presence.
func Available(s Session) bool { return s.Presence() != nil }

// Router is the part of the core's router that modules use to send stanzas
// they originate (roster pushes, presence broadcasts, offline delivery).
type Router interface {
	// Route delivers el (whose "from" and "to" are already set) as the server
	// would deliver a stanza from that sender: to local sessions according
	// to RFC 6121 §8.5, to components, or to remote domains.
	Route(ctx context.Context, el *xml.Element)
	// Sessions returns the bound sessions of a local account.
	Sessions(bare jid.JID) []Session
	// Session returns the bound session of a full JID, or nil.
	Session(full jid.JID) Session
	// MessageTargets returns the sessions a message of type typ addressed
	// to the bare JID would be delivered to now (RFC 6121 §8.5.2.1.1);
	// empty means the account has no available resource with non-negative
	// priority, which is when offline storage takes over.
	MessageTargets(bare jid.JID, typ string) []Session
	// IsLocal reports whether domain is a virtual host or component served here.
	IsLocal(domain string) bool
	// AddComponent routes every stanza addressed to domain (or to a JID
	// under it) to c, replacing and returning an earlier component.
	AddComponent(domain string, c Component) Component
	// RemoveComponent unroutes domain if it is still served by c.
	RemoveComponent(domain string, c Component)
	// Hosts returns every virtual host of the server (rights that span
	// hosts, such as whether an account administers a host its
	// administrator does not, need all of them).
	Hosts() []*Host
}
