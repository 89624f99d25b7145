package mam

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// archivedKey marks, in the context of one routing of one message, that it
// was archived for owner; the value is the archive id. The core re-fires a
// message to an unavailable full JID as message/bare with the same
// context, and the mark keeps the second pass from archiving it twice
// (XEP-0313 §6.1.1: one copy per archive). Later handlers of the same
// event (carbons) read the id with StanzaID.
type archivedKey struct{ owner jid.JID }

// StanzaID returns the archive id the message being routed in ctx got in
// owner's archive, if any: a module that copies it (XEP-0280 carbons)
// puts it in the copy's <stanza-id by=owner/> (XEP-0313 §3.5).
func StanzaID(ctx context.Context, owner jid.JID) (string, bool) {
	id, ok := ctx.Value(archivedKey{owner.Bare()}).(string)
	return id, ok
}

// content reports whether a child of a message makes it worth archiving
// besides a body (XEP-0313 §6.1.1 leaves the choice to the server): what
// another device needs to show the conversation as it is. Chat states and
// delivery receipts are not: they matter at the moment they are sent.
func content(c *xml.Element) bool {
	switch c.Space + " " + c.Local {
	case " body",
		"eu.siacs.conversations.axolotl encrypted", // OMEMO (XEP-0384 0.3)
		"urn:xmpp:omemo:2 encrypted",               // OMEMO 2
		"urn:xmpp:openpgp:0 openpgp",               // XEP-0373
		"jabber:x:encrypted x",                     // XEP-0027
		"urn:xmpp:message-retract:1 retract",       // XEP-0424
		"urn:xmpp:reactions:0 reactions",           // XEP-0444
		"urn:xmpp:chat-markers:0 displayed":        // XEP-0333: read up to here, on every device
		return true
	}
	return false
}

// archivable applies XEP-0334 and the content rule to a chat or normal
// message: <no-store/> and <no-permanent-store/> keep it out of the
// archive, <store/> puts it in whatever it holds, otherwise a body or one
// of the payloads content lists does.
func archivable(msg *xml.Element) bool {
	switch {
	case msg.Child(NSHints, "no-store") != nil, msg.Child(NSHints, "no-permanent-store") != nil:
		return false
	case msg.Child(NSHints, "store") != nil:
		return true
	}
	for _, c := range msg.Elements() {
		if content(c) {
			return true
		}
	}
	return false
}

// personal reports whether a message type belongs in a user archive: one
// to one messages (XEP-0313 §6.1.1). Groupchat messages live in the room's
// archive; headlines and errors are not conversation.
func personal(typ string) bool { return typ == stanza.TypeNormal || typ == "chat" }

// withoutClaims returns msg without the stanza-ids that name owner as
// their assigner: only the server assigns ids in owner's archive, so such
// an element from anyone else is a forgery (XEP-0359 §4). msg itself is
// returned when it has none, so the common case costs no copy.
func withoutClaims(msg *xml.Element, owner jid.JID) *xml.Element {
	by := owner.String()
	claims := func(c *xml.Element) bool {
		return c.Space == NSSID && c.Local == "stanza-id" && c.Attr("by") == by
	}
	for _, c := range msg.Elements() {
		if claims(c) {
			return msg.WithoutChildren(claims)
		}
	}
	return msg
}

// stanzaID is the XEP-0359 element for an archive id.
func stanzaID(owner jid.JID, id string) *xml.Element {
	return xml.New(NSSID, "stanza-id").SetAttr("id", id).SetAttr("by", owner.String())
}

// onOutbound archives a message a local session sends, in the sender's
// archive, and logs it for compliance. A message to the sender's own
// account is left to onInbound for the archive, which archives it once and
// stamps the delivered copy. The sent message itself goes on unchanged: a
// stanza-id of the sender's archive means nothing to the recipient
// (XEP-0313 §3.5 forbids sending it).
func (m *Module) onOutbound(ev *module.StanzaEvent) bool {
	typ := stanza.Type(ev.Stanza)
	owner := ev.From.Bare()
	to := ev.To
	if to.IsZero() {
		to = owner // RFC 6120 §10.3: the sender's own account
	}
	if m.clog != nil {
		m.logOutbound(ev, typ, to)
	}
	if m.w == nil || !personal(typ) || to.Bare() == owner || !archivable(ev.Stanza) {
		return false
	}
	el := withoutClaims(ev.Stanza, owner)
	if id := m.archive(ev.Ctx, owner, to, el); id != "" {
		ev.Ctx = context.WithValue(ev.Ctx, archivedKey{owner}, id)
	}
	return false
}

// onInbound archives a message for the local account it is addressed to
// and adds the stanza-id to the copy that is delivered (or stored offline),
// after removing forged ones; then logs it for compliance. Messages that
// go to no archive still lose forged ids: a client trusts an id that names
// its own account.
func (m *Module) onInbound(ev *module.StanzaEvent) bool {
	typ := stanza.Type(ev.Stanza)
	if typ == stanza.TypeError || ev.From.IsZero() {
		return false
	}
	owner := ev.To.Bare()
	if m.w != nil {
		m.archiveInbound(ev, typ, owner)
	}
	if m.clog != nil {
		m.logInbound(ev, typ, owner)
	}
	return false
}

func (m *Module) archiveInbound(ev *module.StanzaEvent, typ string, owner jid.JID) {
	if _, done := StanzaID(ev.Ctx, owner); done {
		return // archived on the message/full pass already
	}
	el := withoutClaims(ev.Stanza, owner)
	ev.Stanza = el
	if !personal(typ) || !archivable(el) || !m.accountExists(ev.Ctx, owner) {
		return
	}
	if id := m.archive(ev.Ctx, owner, ev.From, el); id != "" {
		ev.Stanza = el.WithChildren(stanzaID(owner, id))
		ev.Ctx = context.WithValue(ev.Ctx, archivedKey{owner}, id)
	}
}

// accountExists keeps messages to nobody out of storage (the core bounces
// them). A bound session is proof enough; a failing account source counts
// as "exists", as in the router.
func (m *Module) accountExists(ctx context.Context, owner jid.JID) bool {
	if len(m.h.Router.Sessions(owner)) > 0 {
		return true
	}
	ok, err := m.h.AccountExists(ctx, owner.Local())
	return ok || err != nil
}

// archive stores el in owner's archive if owner's preferences want
// messages with other archived, and returns the new archive id ("" when
// not archived).
func (m *Module) archive(ctx context.Context, owner, other jid.JID, el *xml.Element) string {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	want, err := m.wants(sctx, owner, other)
	if err != nil {
		m.h.Log.Warn("mam: preferences", "owner", owner.String(), "err", err)
	}
	if !want {
		return ""
	}
	return m.append(sctx, owner, other, el)
}

// append queues el for owner's archive under a fresh id and returns the
// id; the writer stores it shortly (a storage failure is logged there: the
// message is then delivered with an id the archive does not have).
func (m *Module) append(ctx context.Context, owner, other jid.JID, el *xml.Element) string {
	e := storage.ArchiveEntry{
		Owner: owner.String(), ID: newID(), With: other.Bare().String(), WithResource: other.Resource(),
		Stamp: time.Now(), Stanza: el.Bytes(),
	}
	if m.w == nil {
		// Not started (or a room message during start-up): write now.
		if _, err := m.h.Store.Archive().Append(ctx, m.cfg.Keep(), e); err != nil {
			m.h.Log.Warn("mam: archiving", "owner", e.Owner, "err", err)
			return ""
		}
		return e.ID
	}
	if !m.w.add(ctx, e) {
		m.h.Log.Warn("mam: archive writer is behind; message not archived", "owner", e.Owner)
		return ""
	}
	return e.ID
}

// newID returns a random RFC 4122 version 4 UUID: XEP-0359 recommends
// UUIDs, and a random id tells an observer nothing about the archive
// (XEP-0359 §5).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
