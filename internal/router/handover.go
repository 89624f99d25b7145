package router

import (
	"context"
	"errors"

	"parley/internal/xmpp/jid"
)

// Handover is a stream-managed session (XEP-0198) handed by the node that
// holds it to the node where its client resumed it: everything the new
// node needs to carry on as if the session had never moved. It crosses
// nodes as JSON.
type Handover struct {
	JID string `json:"jid"` // full JID
	// Sid is the session's ID on the node that held it (its registry
	// entry's), so that node can tell when the new node's bind replaced
	// it.
	Sid string `json:"sid"`
	// Handled is what the server handled from the client (h of
	// <resumed/>); Acked is the client's h, already applied.
	Handled uint32 `json:"handled"`
	Acked   uint32 `json:"acked"`
	// Unacked are the stanzas the client has not acknowledged, oldest
	// first, serialised in jabber:client.
	Unacked []string `json:"unacked,omitempty"`
	// Presence is the session's available presence ("" before initial
	// presence), serialised in jabber:client.
	Presence   string `json:"presence,omitempty"`
	Priority   int    `json:"priority,omitempty"`
	Interested bool   `json:"interested,omitempty"`
	// Values are the session's module.MovingKey values by name.
	Values map[string]string `json:"values,omitempty"`
	// MaxSeconds is the resumption timeout the client was given.
	MaxSeconds int64 `json:"max"`
}

// HandoverOutcome is what became of a session handed over, as the
// cluster's registry tells it.
type HandoverOutcome int

// Handover outcomes.
const (
	// HandoverStayed: the new node did not take the session in time; it
	// stays on its node, waiting for its client as before.
	HandoverStayed HandoverOutcome = iota
	// HandoverMoved: the new node's session continues it.
	HandoverMoved
	// HandoverReplaced: another session took the full JID (a new login
	// of the resource after the client gave up on the resumption): the
	// old one ends as a replaced session does.
	HandoverReplaced
)

// Continuing is implemented by a session bound from a Handover: Continues
// returns the ID of the session on the old node it continues (Handover.Sid),
// which the cluster's registry entry carries so that the old node knows
// its session moved rather than was replaced by a new login.
type Continuing interface {
	Continues() string
}

// ErrNoHandover means no node holds a resumable session with that id for
// that account: the client gets <failed/> with item-not-found.
var ErrNoHandover = errors.New("router: no session to hand over")

// HandoverRefused is a holder's refusal because the client acknowledged
// more stanzas than were sent (XEP-0198 §4): the session stays where it
// was, and the client gets <failed/> with the server's h and
// <handled-count-too-high/>.
type HandoverRefused struct {
	H, Sent, Handled uint32
}

func (e *HandoverRefused) Error() string { return "router: handled count too high" }

// Handover asks the cluster for the session of bare whose resumption id
// is previd, held by another node; h is the client's handled count.
func (r *Router) Handover(ctx context.Context, bare jid.JID, previd string, h uint32) (*Handover, error) {
	return r.bus.Handover(ctx, bare, previd, h)
}
