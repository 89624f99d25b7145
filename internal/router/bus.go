package router

import (
	"context"
	"errors"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// Bus connects the router to the routers of the other nodes of a cluster.
// The router keeps its own sessions in its maps and asks the bus about
// everyone else's: a bind claims the full JID cluster-wide, bare-JID
// delivery sees the resources bound on other nodes as module.Session
// values (whose Send travels to the node that holds them), and a session's
// routing state (presence, priority, roster interest, shared module
// values) is published for the others to see.
//
// LocalBus is the single node: it knows no other node, so every call is
// trivial and a server without [cluster] behaves as it always has, through
// the same router code. internal/cluster implements Bus over NATS (and an
// in-process engine for tests).
type Bus interface {
	// Claim records full, bound to the local session s, in the cluster's
	// registry. max bounds the account's sessions on all nodes (0: no
	// bound), counting full itself. When another node holds full, Claim
	// returns that session so the caller replaces it (RFC 6120
	// §7.7.2.2); closing it waits until the other node has ended it.
	// It fails with ErrResourceConstraint over max and ErrUnavailable when
	// this node cannot reach the cluster.
	Claim(ctx context.Context, full jid.JID, s module.Session, max int) (replaced module.Session, err error)
	// Release forgets full if the local session s still holds it.
	Release(full jid.JID, s module.Session)
	// Changed publishes s's routing state after a change; key is the
	// module.SharedKey whose value changed, or nil.
	Changed(s module.Session, key module.SharedKey)
	// Peers returns the sessions of bare bound on other nodes.
	Peers(bare jid.JID) []module.Session
	// Peer returns the session of full bound on another node, or nil.
	Peer(full jid.JID) module.Session
	// Forward sends a stanza for a component-served JID to the node
	// that owns it (a chat room lives on one node at a time) and reports
	// true; false means this node serves it.
	Forward(ctx context.Context, el *xml.Element, from, to jid.JID) bool
	// ComponentChanged says that the component serving domain on this
	// node changed (an external component connected or went away).
	ComponentChanged(domain string)
	// Handover takes the resumable session of bare with resumption id
	// previd from the node holding it, applying the client's handled
	// count h there (XEP-0198 resumption on another node; Handover). It
	// fails with ErrNoHandover or *HandoverRefused.
	Handover(ctx context.Context, bare jid.JID, previd string, h uint32) (*Handover, error)
}

// ErrUnavailable is returned by Bind when this node has lost its cluster
// and accepts no session until it is back.
var ErrUnavailable = errors.New("router: this node is not connected to its cluster")

// LocalBus is the Bus of a server that is its own cluster.
type LocalBus struct{}

// Claim implements Bus: nobody else holds anything.
func (LocalBus) Claim(context.Context, jid.JID, module.Session, int) (module.Session, error) {
	return nil, nil
}

// Release implements Bus.
func (LocalBus) Release(jid.JID, module.Session) {}

// Changed implements Bus.
func (LocalBus) Changed(module.Session, module.SharedKey) {}

// Peers implements Bus.
func (LocalBus) Peers(jid.JID) []module.Session { return nil }

// Peer implements Bus.
func (LocalBus) Peer(jid.JID) module.Session { return nil }

// ComponentChanged implements Bus.
func (LocalBus) ComponentChanged(string) {}

// Forward implements Bus: everything is served here.
func (LocalBus) Forward(context.Context, *xml.Element, jid.JID, jid.JID) bool { return false }

// Handover implements Bus: there is no other node.
func (LocalBus) Handover(context.Context, jid.JID, string, uint32) (*Handover, error) {
	return nil, ErrNoHandover
}
