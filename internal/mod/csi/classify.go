package csi

import (
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces the classification looks at.
const (
	nsChatStates  = "http://jabber.org/protocol/chatstates" // XEP-0085
	nsHints       = "urn:xmpp:hints"                        // XEP-0334
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event"
	nsCarbons     = "urn:xmpp:carbons:2" // XEP-0280
	nsForward     = "urn:xmpp:forward:0" // XEP-0297
	nsStanzaID    = "urn:xmpp:sid:0"     // XEP-0359
	nsMUCUser     = "http://jabber.org/protocol/muc#user"
)

// verdict is what the hold buffer does with one outbound stanza; the zero
// verdict means urgent.
type verdict struct {
	// hold: the stanza can wait until the client is active or something
	// urgent arrives. Everything else is urgent.
	hold bool
	// key, when not empty, names what the stanza is the latest state of
	// (one contact resource's presence, one conversation's chat state): a
	// held stanza with the same key is superseded and dropped, whether
	// this stanza is held or urgent.
	key string
	// presence: stamp the stanza with XEP-0203 <delay/> when it is
	// delivered late, so the client knows since when the contact's status
	// holds rather than taking it as news.
	presence bool
}

// classify decides whether el, on its way to the session with full JID
// self, can be held back while the session is inactive.
//
// The rule is a whitelist: only stanzas known to be "state" that a later
// stanza replaces or that nobody waits for are held (presence updates,
// chat states, PEP events and headlines without a body); everything else
// (IQs, messages with a body, subscription requests, errors, MUC
// self-presence, anything with a XEP-0334 <store/> hint, payloads this
// module does not know, such as receipts, call invitations or encrypted
// messages without a fallback body) is urgent. Holding something urgent
// delays a user-visible event; delivering something holdable only costs a
// little battery, so unknown means urgent.
func classify(el *xml.Element, self string) verdict {
	var v verdict
	switch el.Local {
	case stanza.KindPresence:
		v = classifyPresence(el, self)
	case stanza.KindMessage:
		v = classifyMessage(el, "in", el.Attr("from"))
	default:
		return verdict{} // urgent: IQs, and anything that is not a stanza
	}
	if hasStoreHint(el) {
		// Urgent, but still the newest state of its key.
		v.hold, v.presence = false, false
	}
	return v
}

// classifyPresence holds available and unavailable presence from others,
// keyed by the sender's full JID: only the latest presence of each
// resource matters (RFC 6121 §4.4 presence is state, not events).
func classifyPresence(el *xml.Element, self string) verdict {
	switch el.Attr("type") {
	case "", "unavailable":
	default:
		// subscribe, subscribed, unsubscribe, unsubscribed need the user;
		// error answers something the client sent; probes never reach
		// clients.
		return verdict{} // urgent
	}
	from := el.Attr("from")
	if from == self {
		// The reflection of the client's own presence answers what it just
		// sent (RFC 6121 §4.2.2); some clients wait for it.
		return verdict{} // urgent
	}
	if isMUCSelfPresence(el) {
		// A room's presence about the user's own occupant (XEP-0045 status
		// 110) completes a join or reports a kick: the client waits for it.
		return verdict{} // urgent
	}
	return verdict{hold: true, key: "presence\x00" + from, presence: true}
}

// classifyMessage holds messages without a body that carry only chat
// states (keyed by direction, conversation partner and thread: the latest
// state replaces the earlier ones) or only PEP events, headlines without a
// body, and XEP-0280 carbon copies of such messages. dir and peer name
// the conversation: "in" and the sender for a message to the user, "out"
// and the recipient for a carbon of one the user sent from another client.
// An urgent message that carries a chat state still gets the key: its
// state supersedes a held one of the same conversation.
func classifyMessage(el *xml.Element, dir, peer string) verdict {
	if el.Attr("type") == stanza.TypeError {
		return verdict{} // urgent
	}
	var body, chatState, event, other bool
	var thread string
	for _, c := range el.Elements() {
		switch {
		case isContent(c.Space) && c.Local == "body":
			body = true
		case isContent(c.Space) && c.Local == "thread":
			thread = c.Text()
		case c.Space == nsChatStates:
			chatState = true
		case c.Space == nsPubSubEvent && c.Local == "event":
			event = true
		case c.Space == nsCarbons && (c.Local == "received" || c.Local == "sent"):
			return classifyCarbon(c)
		case c.Space == stanza.NSDelay, c.Space == nsStanzaID, c.Space == nsHints:
			// Metadata that does not make a message urgent by itself (the
			// <store/> hint does, see classify).
		default:
			other = true
		}
	}
	var key string
	if chatState {
		key = "chatstate\x00" + dir + "\x00" + peer + "\x00" + thread
	}
	switch {
	case body:
		return verdict{key: key} // urgent
	case event && !other:
		// PEP notifications (XEP-0163) are not coalesced: a node may carry
		// several items (bookmarks, device lists) and each event counts.
		return verdict{hold: true}
	case chatState && !other:
		return verdict{hold: true, key: key}
	case el.Attr("type") == "headline":
		// Headlines are "not expected to be stored or replied to"
		// (RFC 6121 §5.2.2); without a body they are notifications that
		// can wait. Not coalesced: nothing says which replaces which.
		return verdict{hold: true}
	}
	return verdict{key: key} // urgent
}

// classifyCarbon classifies a XEP-0280 <received/> or <sent/> wrapper by
// the message it forwards: the carbon of a chat state is as unimportant as
// the chat state itself, the carbon of a message with a body as urgent.
func classifyCarbon(c *xml.Element) verdict {
	fwd := c.Child(nsForward, "forwarded")
	if fwd == nil {
		return verdict{} // urgent
	}
	var inner *xml.Element
	for _, m := range fwd.Elements() {
		if isContent(m.Space) && m.Local == stanza.KindMessage {
			inner = m
			break
		}
	}
	if inner == nil {
		return verdict{} // urgent
	}
	dir, peer := "in", inner.Attr("from")
	if c.Local == "sent" {
		dir, peer = "out", inner.Attr("to")
	}
	v := classifyMessage(inner, dir, peer)
	if hasStoreHint(inner) {
		v.hold = false
	}
	if v.key != "" {
		v.key = "carbon\x00" + v.key
	}
	return v
}

// isMUCSelfPresence reports a XEP-0045 presence carrying status code 110
// ("this presence refers to you").
func isMUCSelfPresence(el *xml.Element) bool {
	x := el.Child(nsMUCUser, "x")
	if x == nil {
		return false
	}
	for _, s := range x.Elements() {
		if s.Space == nsMUCUser && s.Local == "status" && s.Attr("code") == "110" {
			return true
		}
	}
	return false
}

// hasStoreHint reports a XEP-0334 <store/> hint: the sender asked for the
// message to be kept, which says it matters.
func hasStoreHint(el *xml.Element) bool {
	for _, c := range el.Elements() {
		if c.Space == nsHints && c.Local == "store" {
			return true
		}
	}
	return false
}

// isContent reports whether a child element is in the stream content
// namespace: stored as "" when read from the stream, or jabber:client
// when nested inside another namespace (a forwarded message).
func isContent(space string) bool { return space == "" || space == stanza.NSClient }
