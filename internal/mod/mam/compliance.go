package mam

import (
	"context"
	"time"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// The compliance log ([host.archive] compliance) keeps every one-to-one
// and room message of the host's users for the host's administrators,
// whatever the users' archiving preferences and XEP-0334 hints: it is the
// organisation's record, not a user feature. Nothing of it is reachable
// over XMPP; `parley archive export` reads it. Each message is logged once
// per host:
//
//   - one-to-one (chat, normal) with content: when one of the host's users
//     sends it (out/message), or when it reaches one of the host's users
//     from anyone who is not (message/bare|full), as delivered;
//   - groupchat: every message and subject change of every room of the
//     host's chat-room service (muc.Recorder), whoever sent it, and what
//     the host's users send to rooms elsewhere.
//
// A message between two users of the same host is logged once, when sent.
// A private message through a room of the host is logged twice: as sent to
// the occupant's room JID and as received from it.

// loggedKey marks, in the context of one routing of one message, that it
// was logged for the account owner (see archivedKey).
type loggedKey struct{ owner jid.JID }

// hasContent reports whether a message says something (a body, encrypted
// content, ...: the payloads content lists), hints or not.
func hasContent(msg *xml.Element) bool {
	for _, c := range msg.Elements() {
		if content(c) {
			return true
		}
	}
	return false
}

// logOutbound logs a message one of the host's users sends.
func (m *Module) logOutbound(ev *module.StanzaEvent, typ string, to jid.JID) {
	switch {
	case !hasContent(ev.Stanza):
	case personal(typ):
		m.log(ev.Ctx, typ, ev.From, to, ev.Stanza)
	case typ == "groupchat" && !(m.h.HostCfg.MUC.On() && to.Domain() == m.h.HostCfg.MUC.Domain):
		// To a room elsewhere; the host's own rooms log every message
		// through the recorder, this one included.
		m.log(ev.Ctx, typ, ev.From, to, ev.Stanza)
	}
}

// logInbound logs a message that reaches one of the host's users from
// someone who is not one (the host's users' messages were logged when
// sent).
func (m *Module) logInbound(ev *module.StanzaEvent, typ string, owner jid.JID) {
	if ev.Ctx.Value(loggedKey{owner}) != nil || !personal(typ) || ev.From.Domain() == m.h.Domain ||
		!hasContent(ev.Stanza) || !m.accountExists(ev.Ctx, owner) {
		return
	}
	m.log(ev.Ctx, typ, ev.From, ev.To, ev.Stanza)
	ev.Ctx = context.WithValue(ev.Ctx, loggedKey{owner}, true)
}

// log queues one record for the compliance writer.
func (m *Module) log(ctx context.Context, typ string, from, to jid.JID, el *xml.Element) {
	rec := storage.ComplianceRecord{Host: m.h.Domain, Stamp: time.Now(), Type: typ,
		From: from.String(), To: to.String(), Stanza: el.Bytes()}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if !m.clog.add(sctx, rec) {
		m.h.Log.Error("mam: compliance log writer is behind; message not logged", "from", rec.From, "to", rec.To)
	}
}

// recorder is the muc.Recorder the module offers the host's chat-room
// service when the host keeps a compliance log.
type recorder struct{ m *Module }

// Record implements muc.Recorder.
func (r recorder) Record(ctx context.Context, room jid.JID, msg *xml.Element, sender jid.JID) {
	if r.m.clog == nil {
		return // not started
	}
	r.m.log(ctx, "groupchat", sender, room, msg)
}
