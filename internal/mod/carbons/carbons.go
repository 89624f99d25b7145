package carbons

import (
	"slices"

	"parley/internal/mod/mam"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces the eligibility rules of XEP-0280 §6.1 look at.
const (
	nsForward    = "urn:xmpp:forward:0"                    // XEP-0297, the copy's wrapper
	nsHints      = "urn:xmpp:hints"                        // XEP-0334 <no-copy/>
	nsMUCUser    = "http://jabber.org/protocol/muc#user"   // XEP-0045 private messages, mediated invitations
	nsConference = "jabber:x:conference"                   // XEP-0249 direct invitations
	nsReceipts   = "urn:xmpp:receipts"                     // XEP-0184
	nsChatStates = "http://jabber.org/protocol/chatstates" // XEP-0085
	nsMarkers    = "urn:xmpp:chat-markers:0"               // XEP-0333
)

// Names of the two carbon wrappers (XEP-0280 §7 and §8).
const (
	wrapReceived = "received"
	wrapSent     = "sent"
)

// enabledKey keys a session's carbons state in Session.Value: true while
// the client has carbons enabled. It is a module.SharedKey: the node that
// copies a message may not be the one holding the session.
type enabledKey struct{}

func (enabledKey) SharedName() string { return "carbons" }

// MovingName makes the state go with a session resumed on another node
// (module.MovingKey).
func (enabledKey) MovingName() string { return "carbons" }
func (enabledKey) Encode(v any) string {
	if on, _ := v.(bool); on {
		return "1"
	}
	return ""
}
func (enabledKey) Decode(s string) any { return s == "1" }

var (
	_ module.SharedKey = enabledKey{}
	_ module.MovingKey = enabledKey{}
)

func enabled(s module.Session) bool {
	on, _ := s.Value(enabledKey{}).(bool)
	return on
}

// set answers <enable/> and <disable/> (XEP-0280 §4, §5). Repeating either
// is not an error (§9.1): the answer is a result and the state stays. Only
// the server's own clients may change their state (not-allowed, §4.1); a
// request that arrives through the router without a session (from another
// server) has none.
func (c *Carbons) set(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	if ev.Origin == nil || ev.Origin.JID() != ev.From {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, "carbons are enabled by the account's own clients")
	}
	switch payload.Local {
	case "enable":
		ev.Origin.SetValue(enabledKey{}, true)
	case "disable":
		ev.Origin.SetValue(enabledKey{}, false)
	default:
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <enable/> or <disable/>")
	}
	return stanza.IQResult(ev.Stanza, nil)
}

// direction says from whose side a message is seen: the account receives
// it (the peer sent it) or sends it (the peer is the recipient).
type direction int

const (
	received direction = iota
	sent
)

// eligible applies the recommended rules of XEP-0280 §6.1 to msg, which
// travels between the account and peer in direction dir:
//
//   - never with <private xmlns='urn:xmpp:carbons:2'/> (§6.1, §9) or the
//     XEP-0334 <no-copy/> hint the XEP pairs with it: the sender asked that
//     the message reach only the addressed resources;
//   - never groupchat (the room delivers to each joined client itself) and
//     never error: errors are eligible only as answers to eligible
//     messages, which would need the server to remember every message it
//     copied, so none are copied;
//   - MUC traffic is recognised by its <x xmlns='…muc#user'/>: a mediated
//     invitation is copied; a private message through a room is copied when
//     the account sends it to an occupant's full JID and not when an
//     occupant's arrives (the room already gives it to every client joined
//     under the nick);
//   - XEP-0249 direct invitations, chat messages, normal messages with a
//     body, and messages with the payloads instant messaging uses (XEP-0184
//     receipts, XEP-0085 chat states, XEP-0333 markers) are copied;
//   - anything else (headlines without such payloads, body-less normal
//     messages of other protocols) is not: carbons are for instant
//     messaging only (§6).
func eligible(msg *xml.Element, dir direction, peer jid.JID) bool {
	typ := stanza.Type(msg)
	if typ == "groupchat" || typ == stanza.TypeError {
		return false
	}
	if msg.Child(NS, "private") != nil || msg.Child(nsHints, "no-copy") != nil {
		return false
	}
	if x := msg.Child(nsMUCUser, "x"); x != nil {
		if x.Child(nsMUCUser, "invite") != nil {
			return true
		}
		return dir == sent && peer.Resource() != ""
	}
	if msg.Child(nsConference, "x") != nil || typ == "chat" {
		return true
	}
	for _, el := range msg.Elements() {
		switch {
		case el.Space == "" && el.Local == "body":
			if typ == stanza.TypeNormal {
				return true
			}
		case el.Space == nsReceipts, el.Space == nsChatStates, el.Space == nsMarkers:
			return true
		}
	}
	return false
}

// wrapper returns msg's top-level carbon wrapper (<received/> or <sent/> in
// urn:xmpp:carbons:2), or nil.
func wrapper(msg *xml.Element) *xml.Element {
	if w := msg.Child(NS, wrapReceived); w != nil {
		return w
	}
	return msg.Child(NS, wrapSent)
}

func isWrapper(el *xml.Element) bool {
	return el.Space == NS && (el.Local == wrapReceived || el.Local == wrapSent)
}

// refuseWrapped refuses a message a client sends with a carbon wrapper of
// its own (out/message): only servers make carbons, and a wrapper that
// leaves here could make another user's client believe it saw that user's
// own traffic (the impersonation attacks of XEP-0280 §11, CVE-2017-5589).
// The client learns why instead of its message vanishing.
func (c *Carbons) refuseWrapped(ev *module.StanzaEvent) bool {
	if wrapper(ev.Stanza) == nil {
		return false
	}
	ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "carbon copies are made by the server, not sent by clients"))
	return true
}

// stripForged removes carbon wrappers from a message to a local account
// unless it comes from that account's bare JID, the only sender a carbon
// may have (XEP-0280 §11). Clients must ignore others, but several did
// not; the server removing them protects those. Carbons this module makes
// go straight to the sessions and never pass here, so a wrapper on a routed
// message is always someone else's (a remote server's user, a component,
// a room occupant). The rest of the message is delivered as usual.
func (c *Carbons) stripForged(ev *module.StanzaEvent) bool {
	if ev.From == ev.To.Bare() || wrapper(ev.Stanza) == nil {
		return false
	}
	c.h.Log.Debug("carbons: removed a carbon wrapper not sent by the account", "from", ev.From.String(), "to", ev.To.String())
	ev.Stanza = ev.Stanza.WithoutChildren(isWrapper)
	return false
}

// inbound copies a message delivered to a local account to the account's
// carbons-enabled sessions that do not receive it under RFC 6121 (§7):
// for a full JID all but the addressed session; for the bare JID all but
// the resources §8.5.2.1.1 picks (the same Router.MessageTargets the core
// delivers to). A full JID without a session is left alone here: the core
// re-fires normal and chat messages to it as bare, and the copies are made
// then. Messages between resources of one account are not copied: every
// copy would duplicate what the account's own resources exchange.
func (c *Carbons) inbound(ev *module.StanzaEvent) bool {
	user := ev.To.Bare()
	if ev.From.Bare() == user || !eligible(ev.Stanza, received, ev.From) {
		return false
	}
	// Most accounts have no other carbons-enabled session: then nothing
	// below (the delivery targets, the copies) needs computing.
	sessions := c.h.Router.Sessions(user)
	if !anyEnabled(sessions, nil) {
		return false
	}
	var got []module.Session
	if ev.To.Resource() != "" {
		s := c.h.Router.Session(ev.To)
		if s == nil {
			return false
		}
		got = []module.Session{s}
	} else {
		got = ev.MessageTargets(c.h.Router, user, stanza.Type(ev.Stanza))
	}
	c.copy(user, ev.Stanza, wrapReceived, sessions, got)
	return false
}

// outbound copies a message a client sends to the account's other
// carbons-enabled sessions (§8), whether or not the sending client has
// carbons enabled. A message without 'to' or to the account itself is
// left alone, as in inbound.
func (c *Carbons) outbound(ev *module.StanzaEvent) bool {
	if ev.Origin == nil || ev.To.IsZero() {
		return false
	}
	user := ev.From.Bare()
	if ev.To.Bare() == user || !eligible(ev.Stanza, sent, ev.To) {
		return false
	}
	except := []module.Session{ev.Origin}
	sessions := c.h.Router.Sessions(user)
	if !anyEnabled(sessions, except) {
		return false
	}
	msg := ev.Stanza
	if id, ok := mam.StanzaID(ev.Ctx, user); ok {
		// The sender's other devices learn the id the message has in
		// their own archive (XEP-0313 §3.5), so they can page from it.
		msg = msg.WithChildren(xml.New(nsStanzaID, "stanza-id").SetAttr("by", user.String()).SetAttr("id", id))
	}
	c.copy(user, msg, wrapSent, sessions, except)
	return false
}

// nsStanzaID is XEP-0359's namespace.
const nsStanzaID = "urn:xmpp:sid:0"

// anyEnabled reports whether a session in sessions but not in except has
// carbons enabled.
func anyEnabled(sessions, except []module.Session) bool {
	for _, s := range sessions {
		if enabled(s) && !slices.Contains(except, s) {
			return true
		}
	}
	return false
}

// copy sends msg wrapped in <kind><forwarded/></kind> (XEP-0297) from the
// account's bare JID to each carbons-enabled session of user (sessions)
// that is not in except, keeping the message's type (§7, §8). The copies go through
// Session.Send like any stanza, so output-queue limits and client state
// indication apply to them. The wrapper is built once and shared: elements
// are immutable.
func (c *Carbons) copy(user jid.JID, msg *xml.Element, kind string, sessions, except []module.Session) {
	var wrapped *xml.Element
	for _, s := range sessions {
		if !enabled(s) || slices.Contains(except, s) {
			continue
		}
		if wrapped == nil {
			wrapped = xml.New(NS, kind).Append(xml.New(nsForward, "forwarded").Append(msg))
		}
		m := xml.New("", "message").SetAttr("from", user.String()).SetAttr("to", s.JID().String())
		if typ := msg.Attr("type"); typ != "" {
			m.SetAttr("type", typ)
		}
		s.Send(m.Append(wrapped))
	}
}
