package blocking

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// exempt reports whether communication between the account user and peer
// is never blocked, whatever the list says: the account's own resources
// (XEP-0191 §6: "MUST NOT block communications from one of a user's
// resources to another"; its roster pushes, carbons and presence
// reflections come from its own JIDs) and its own server, whose domain
// item would otherwise cut the user off from disco, pings and every other
// service request once the user blocks the whole domain.
func exempt(user, peer jid.JID) bool {
	return peer.Bare() == user || peer.IsDomain() && peer.Domain() == user.Domain()
}

// blockedBy reports whether user's list blocks peer. A list that cannot be
// read counts as blocking: a user who blocked someone must not hear from
// them because of a storage fault, and the stanza's sender learns no more
// than from a real block.
func (b *Blocking) blockedBy(ctx context.Context, user, peer jid.JID) bool {
	set, err := b.lists.get(ctx, user)
	if err != nil {
		b.h.Log.Warn("blocking: list unavailable; stanza held back", "user", user.String(), "peer", peer.String(), "err", err)
		return true
	}
	return set.blocks(peer)
}

// isSubscription reports whether a presence type is one of the
// subscription management types (RFC 6121 §3).
func isSubscription(typ string) bool {
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		return true
	}
	return false
}

// inbound handles a stanza to a local account from a JID the account
// blocked, as XEP-0191 §3.3 says: presence (notifications, subscription
// stanzas, probes) is dropped without answer or error; a message is
// answered with service-unavailable; an IQ get or set with
// service-unavailable, other IQs are dropped. To the sender the user looks
// offline (or absent). Nothing is stored, archived or copied: this runs
// before every other module.
func (b *Blocking) inbound(ev *module.StanzaEvent) bool {
	user := ev.To.Bare()
	if ev.From.IsZero() || exempt(user, ev.From) {
		return false
	}
	kind, typ := ev.Stanza.Local, ev.Stanza.Attr("type")
	if kind == stanza.KindPresence && !isSubscription(typ) && typ != "probe" && b.lists.entry(user) == nil {
		// Presence notifications reach only sessions, and an account
		// without any has nothing to hide: no storage read for every
		// broadcast that meets an offline account.
		return false
	}
	if !b.blockedBy(ev.Ctx, user, ev.From) {
		return false
	}
	switch {
	case kind == stanza.KindMessage, kind == stanza.KindIQ && (typ == stanza.TypeGet || typ == stanza.TypeSet):
		// ErrorReply gives nil for an error stanza: errors are never
		// answered.
		ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.ServiceUnavailable, ""))
	}
	return true
}

// blockedError is the answer to a user's stanza addressed to a JID the user
// blocked (§3.3): not-acceptable with <blocked/>, nil for an error stanza.
func blockedError(el *xml.Element) *xml.Element {
	return stanza.ErrorReplyFor(el, &stanza.Error{Condition: stanza.NotAcceptable, Type: stanza.ErrorTypeCancel, App: xml.New(NSErrors, "blocked")})
}

// outbound refuses what a client sends to a JID its account blocked
// (out/<kind>), before any module acts on it: a subscription request to a
// blocked contact must not change the roster, a message must not be copied
// or archived. Presence without 'to' (broadcast) is the presence module's;
// the copies it routes to subscribers meet egress.
func (b *Blocking) outbound(ev *module.StanzaEvent) bool {
	if ev.To.IsZero() {
		return false
	}
	user := ev.From.Bare()
	if exempt(user, ev.To) || !b.blockedBy(ev.Ctx, user, ev.To) {
		return false
	}
	if reply := blockedError(ev.Stanza); reply != nil {
		ev.Reply(reply)
	}
	return true
}

// bypassKey marks the context of stanzas this module routes past the
// account's own list: the unavailable presence that tells a newly blocked
// contact the user is gone (§3.3).
type bypassKey struct{}

// egress drops what modules route for an account to a JID it blocked
// (egress/<kind>): presence broadcasts to a blocked subscriber, probes,
// directed-presence unavailables at logout. Client stanzas were checked in
// outbound already. Errors pass: they are the answers §3.3 asks for (the
// service-unavailable a blocked sender gets is routed from the user).
func (b *Blocking) egress(ev *module.StanzaEvent) bool {
	if ev.Origin != nil || ev.Stanza.Attr("type") == stanza.TypeError {
		return false
	}
	if ev.Ctx != nil && ev.Ctx.Value(bypassKey{}) != nil {
		return false
	}
	user := ev.From.Bare()
	if exempt(user, ev.To) {
		return false
	}
	return b.blockedBy(ev.Ctx, user, ev.To)
}

// toSession is the last check before a stanza reaches one of the user's
// sessions (the Outbound hook): anything from a blocked JID that did not
// come through the inbound filter, such as messages stored offline and
// subscription requests kept from before the block, is dropped, because
// the block applies to every stanza from the JID (§3.3). Errors pass (the
// user's own refused stanzas come back as errors from the blocked JID), and
// so does unavailable presence, which reveals nothing and is how the module
// shows the user a newly blocked contact as gone. A list that cannot be
// read lets the stanza through: the inbound filter already held back what
// came in while blocked.
func (b *Blocking) toSession(ev *module.OutboundEvent) bool {
	from := ev.Stanza.Attr("from")
	if from == "" {
		return false
	}
	typ := ev.Stanza.Attr("type")
	if typ == stanza.TypeError || ev.Stanza.Local == stanza.KindPresence && typ == "unavailable" {
		return false
	}
	user := ev.Session.JID().Bare()
	set, err := b.lists.get(context.Background(), user)
	if err != nil || set.len() == 0 {
		return false
	}
	peer, err := jid.Parse(from)
	if err != nil || exempt(user, peer) {
		return false
	}
	return set.blocks(peer)
}
