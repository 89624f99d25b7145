package muc

import (
	"context"
	"errors"
	"time"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Message retraction in rooms: XEP-0425 Moderated Message Retraction (a
// moderator asks the room to retract an occupant's message) and XEP-0424
// Message Retraction (an occupant retracts its own). Both name the
// message by the XEP-0359 stanza-id the room gave it, which only an
// archiving room gives: so both need the room archive (archive.go), and
// rooms announce them only while they archive.
//
// XEP-0425 has two versions in use. 0.3 (urn:xmpp:message-moderate:1,
// with XEP-0424's urn:xmpp:message-retract:1) is what Movim sends, and
// Gajim when the room announces it; 0.2 (urn:xmpp:message-moderate:0
// wrapped in a XEP-0422 <apply-to/>, with urn:xmpp:message-retract:0) is
// what Cheogram and Converse send and read, and Gajim otherwise. The
// room takes either request, and what it sends (the announcement to the
// occupants, the tombstone in the archive) carries both forms side by
// side, since the room cannot know which version each occupant's client
// reads; each client reads the form in its namespace and ignores the
// other.
const (
	// NSModerate is XEP-0425 0.3: <moderate id=…/> in the request,
	// <moderated/> in the announcement and the tombstone.
	NSModerate = "urn:xmpp:message-moderate:1"
	// NSModerate0 is XEP-0425 0.2.
	NSModerate0 = "urn:xmpp:message-moderate:0"
	// NSFasten is XEP-0422 Message Fastening, the <apply-to id=…/> that
	// XEP-0425 0.2 wraps its elements in.
	NSFasten = "urn:xmpp:fasten:0"
	// NSRetract is XEP-0424 (0.4): <retract id=…/> in a retraction,
	// <retracted/> in a tombstone.
	NSRetract = "urn:xmpp:message-retract:1"
	// NSRetract0 is the retraction namespace of XEP-0425 0.2.
	NSRetract0 = "urn:xmpp:message-retract:0"
	// NSRetractTombstone says the archive replaces retracted messages by
	// tombstones (XEP-0424 §5).
	NSRetractTombstone = NSRetract + "#tombstone"
)

// retractionFeatures are what an archiving room announces (XEP-0425 §2,
// XEP-0424 §2 and §5): it takes moderation requests of both versions, it
// archives retractions, and it replaces retracted messages by tombstones.
func retractionFeatures() []string {
	return []string{NSModerate, NSModerate0, NSRetract, NSRetractTombstone}
}

// stampLayout is a XEP-0082 DateTime in UTC, as tombstones carry it.
const stampLayout = "2006-01-02T15:04:05Z"

// isModeration reports whether an IQ payload is a XEP-0425 request, of
// either version.
func isModeration(q *xml.Element) bool {
	return (q.Space == NSModerate && q.Local == "moderate") ||
		(q.Space == NSFasten && q.Local == "apply-to" && q.Child(NSModerate0, "moderate") != nil)
}

// moderation is a parsed XEP-0425 request.
type moderation struct {
	id      string // the room's stanza-id of the message
	reason  string
	retract bool // the request asks for a retraction (the only action defined)
}

func parseModeration(q *xml.Element) moderation {
	if q.Space == NSModerate {
		return moderation{id: q.Attr("id"), reason: q.ChildText(NSModerate, "reason"),
			retract: q.Child(NSRetract, "retract") != nil}
	}
	m := q.Child(NSModerate0, "moderate")
	return moderation{id: q.Attr("id"), reason: m.ChildText(NSModerate0, "reason"),
		retract: m.Child(NSRetract0, "retract") != nil}
}

// moderate answers a XEP-0425 request to retract the message with a given
// stanza-id. Only an occupant whose role is moderator may (forbidden:
// the XEP ties moderation to the role, §3), and only a message of this
// room that an occupant sent (item-not-found for an id the archive does
// not have, not-acceptable for the room's own messages, such as an
// earlier moderation). The room then puts a tombstone in the archive in
// place of the message, tells every occupant (the moderator too) which
// message was retracted, by whom and why, with the moderator's occupant
// id, drops the message from the discussion history, and answers the
// request. A message already retracted is answered with success and
// nothing sent again: a client that lost the first answer may ask twice.
func (r *room) moderate(ctx context.Context, el, q *xml.Element, from jid.JID) *xml.Element {
	req := parseModeration(q)
	switch {
	case req.id == "":
		return stanza.ErrorReply(el, stanza.BadRequest, "name the message by the stanza-id the room gave it")
	case !req.retract:
		return stanza.ErrorReply(el, stanza.FeatureNotImplemented, "retraction is the only moderation this room performs")
	}
	o := r.byReal[from]
	if o == nil || o.role != RoleModerator {
		return stanza.ErrorReply(el, stanza.Forbidden, "only moderators may retract other occupants' messages")
	}
	if r.svc.archive == nil {
		// Without an archive the room gives no stanza-ids: no id can name
		// one of its messages.
		return stanza.ErrorReply(el, stanza.ItemNotFound, "this room keeps no archive of its messages")
	}
	orig, sender, err := r.svc.archive.Lookup(ctx, r.jid, req.id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return stanza.ErrorReply(el, stanza.ItemNotFound, "no message of this room has that id")
	case err != nil:
		r.svc.log.Warn("muc: moderation: reading the archive", "room", r.jid.String(), "id", req.id, "err", err)
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if !fromOccupant(orig) {
		return stanza.ErrorReply(el, stanza.NotAcceptable, "only occupants' messages can be retracted")
	}
	if isTombstone(orig) {
		return stanza.IQResult(el, nil)
	}
	by := r.occJID(o.nick)
	now := time.Now().UTC()
	annID := uniqueName()
	tomb := r.tombstone(orig, sender, moderatedTombstone(annID, by, o.oid, req.reason, now))
	if err := r.svc.archive.Replace(ctx, r.jid, req.id, tomb); err != nil {
		r.svc.log.Warn("muc: moderation: writing the tombstone", "room", r.jid.String(), "id", req.id, "err", err)
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	r.svc.log.Info("muc: message retracted by a moderator", "room", r.jid.String(), "id", req.id,
		"moderator", from.Bare().String(), "author", sender.Bare().String(), "reason", req.reason)
	r.dropHistory(req.id)
	// The announcement is archived too (XEP-0424 §6: clients that were
	// away learn of the retraction from the archive) and kept in the
	// history: a client that has the message from an earlier visit
	// learns of it on entry.
	ann := r.archived(ctx, moderationAnnouncement(r.jid, annID, req.id, by, o.oid, req.reason), from)
	// The compliance log records who retracted what (it keeps the
	// original too: a retraction is no deletion from the record).
	r.record(ctx, ann, from)
	r.fanOut(ctx, ann)
	r.addHistory(ann)
	return stanza.IQResult(el, nil)
}

// moderationAnnouncement is the message that tells occupants a moderator
// retracted the message with stanza-id id: from the room's bare JID
// (clients accept moderation only from it, XEP-0425 §6), in the 0.3 form
// (a XEP-0424 <retract/> with <moderated/> inside) and the 0.2 form (an
// <apply-to/> with <moderated/> and <retract/>), each naming the moderator
// by occupant JID and XEP-0421 occupant id, never by real JID: the room
// may be semi-anonymous.
func moderationAnnouncement(room jid.JID, annID, id, by, modOID, reason string) *xml.Element {
	v1 := xml.New(NSRetract, "retract").SetAttr("id", id).
		Append(xml.New(NSModerate, "moderated").SetAttr("by", by).Append(occupantIDElement(modOID)))
	v0 := xml.New(NSModerate0, "moderated").SetAttr("by", by).Append(xml.New(NSRetract0, "retract"))
	if reason != "" {
		v1.Append(xml.New(NSRetract, "reason").AppendText(reason))
		v0.Append(xml.New(NSModerate0, "reason").AppendText(reason))
	}
	v0.Append(occupantIDElement(modOID))
	return xml.New("", "message").SetAttr("type", "groupchat").SetAttr("from", room.String()).SetAttr("id", annID).
		Append(v1, xml.New(NSFasten, "apply-to").SetAttr("id", id).Append(v0))
}

// moderatedTombstone is what takes a moderated message's contents'
// place (XEP-0425 §5): <retracted/> with <moderated/> inside (0.3), and
// <moderated/> with <retracted/> inside (0.2). The 0.3 <retracted/> names
// the announcement by its id, as XEP-0424 §5 wants of a tombstone.
func moderatedTombstone(annID, by, modOID, reason string, at time.Time) []xml.Node {
	stamp := at.Format(stampLayout)
	v1 := xml.New(NSRetract, "retracted").SetAttr("id", annID).SetAttr("stamp", stamp).
		Append(xml.New(NSModerate, "moderated").SetAttr("by", by).Append(occupantIDElement(modOID)))
	v0 := xml.New(NSModerate0, "moderated").SetAttr("by", by).
		Append(xml.New(NSRetract0, "retracted").SetAttr("stamp", stamp))
	if reason != "" {
		v1.Append(xml.New(NSRetract, "reason").AppendText(reason))
		v0.Append(xml.New(NSModerate0, "reason").AppendText(reason))
	}
	v0.Append(occupantIDElement(modOID))
	return []xml.Node{v1, v0}
}

// tombstone is the archived message orig with its contents (body,
// attachments, corrections, anything that could tell what it said)
// replaced by marks: only its type, sender, id and the author's XEP-0421
// occupant id stay, so clients can still place the tombstone and say whose
// message was retracted (XEP-0425 §5 wants the author's id on it).
func (r *room) tombstone(orig *xml.Element, sender jid.JID, marks []xml.Node) *xml.Element {
	t := xml.New("", "message").SetAttr("type", "groupchat").SetAttr("from", orig.Attr("from"))
	if id := orig.Attr("id"); id != "" {
		t.SetAttr("id", id)
	}
	if oid := orig.Child(NSOccupantID, "occupant-id"); oid != nil {
		t.Append(occupantIDElement(oid.Attr("id")))
	} else if !sender.IsZero() {
		// Archived before the room attached ids (roomView in mam adds
		// them when reading; a tombstone keeps what it would add).
		t.Append(occupantIDElement(r.svc.occupantID(r.jid, sender)))
	}
	return t.Append(marks...)
}

// retractOwn applies an occupant's XEP-0424 retraction of its own message
// to the archive, before the retraction is sent on: when the message with
// that stanza-id was sent by the same user (the real JID the archive kept
// beside it, and so the same occupant id; XEP-0424 §6 lets only the
// author retract), it becomes a tombstone naming the retraction, and it
// leaves the discussion history (XEP-0424 §6: the room SHOULD stop
// distributing it). A retraction of somebody else's message, or of an id
// the archive does not have, is relayed like any message (clients check
// the author themselves) and changes nothing. retraction is the room's
// copy, after archiving.
func (r *room) retractOwn(ctx context.Context, o *occupant, id string, retraction *xml.Element, from jid.JID) {
	if id == "" || r.svc.archive == nil {
		return
	}
	orig, sender, err := r.svc.archive.Lookup(ctx, r.jid, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return
	case err != nil:
		r.svc.log.Warn("muc: retraction: reading the archive", "room", r.jid.String(), "id", id, "err", err)
		return
	}
	if sender.IsZero() || sender.Bare() != from.Bare() || !fromOccupant(orig) || isTombstone(orig) {
		return
	}
	if oid := orig.Child(NSOccupantID, "occupant-id"); oid != nil && oid.Attr("id") != o.oid {
		return
	}
	// The tombstone names the retraction by its id (XEP-0424 §5), or by
	// the stanza-id the room gave it when the client set no id.
	rid := retraction.Attr("id")
	if rid == "" {
		if sid := r.ownStanzaID(retraction); sid != "" {
			rid = sid
		}
	}
	mark := xml.New(NSRetract, "retracted").SetAttr("stamp", time.Now().UTC().Format(stampLayout))
	if rid != "" {
		mark.SetAttr("id", rid)
	}
	if err := r.svc.archive.Replace(ctx, r.jid, id, r.tombstone(orig, sender, []xml.Node{mark})); err != nil {
		r.svc.log.Warn("muc: retraction: writing the tombstone", "room", r.jid.String(), "id", id, "err", err)
		return
	}
	r.dropHistory(id)
}

// ownRetraction finds a XEP-0424 retraction in an occupant's message and
// the id it names: <retract id=…/> (0.4, message-retract:1), or the 0.2
// form <apply-to id=…><retract xmlns='urn:xmpp:message-retract:0'/></apply-to>
// that Converse and Cheogram send.
func ownRetraction(msg *xml.Element) (string, bool) {
	if r := msg.Child(NSRetract, "retract"); r != nil {
		return r.Attr("id"), true
	}
	if a := msg.Child(NSFasten, "apply-to"); a != nil && a.Child(NSRetract0, "retract") != nil {
		return a.Attr("id"), true
	}
	return "", false
}

// fromOccupant reports whether an archived message was sent for an
// occupant (from room@service/nick), not by the room itself.
func fromOccupant(msg *xml.Element) bool {
	f, err := jid.Parse(msg.Attr("from"))
	return err == nil && f.Resource() != ""
}

// isTombstone reports whether an archived message has been retracted
// already.
func isTombstone(msg *xml.Element) bool {
	return msg.Child(NSRetract, "retracted") != nil || msg.Child(NSModerate0, "moderated") != nil
}

// ownStanzaID returns the room's stanza-id on msg, or "".
func (r *room) ownStanzaID(msg *xml.Element) string {
	for _, c := range msg.Elements() {
		if r.claimsRoom(c) {
			return c.Attr("id")
		}
	}
	return ""
}

// dropHistory removes the message with the room's stanza-id id from the
// discussion history, so new occupants are not sent a retracted message.
func (r *room) dropHistory(id string) {
	for i, h := range r.history {
		if r.ownStanzaID(h.msg) == id {
			r.histBytes -= h.size
			r.history = append(r.history[:i:i], r.history[i+1:]...)
			return
		}
	}
}

// roomOnly reports a child of an occupant's groupchat message that only
// the room may say: a moderation (of either version) or a tombstone. An
// occupant's own XEP-0424 <retract/> stays; one with <moderated/> inside
// would pose as a moderator's. Clients accept moderation only from the
// room's bare JID (XEP-0425 §6), which an occupant's message never has,
// but the archive keeps messages as sent, and a tombstone in it would
// read as the room's word.
func roomOnly(c *xml.Element) bool {
	switch c.Space {
	case NSModerate, NSModerate0:
		return true
	case NSRetract, NSRetract0:
		return c.Local == "retracted" || c.Child(NSModerate, "moderated") != nil
	case NSFasten:
		return c.Child(NSModerate0, "moderated") != nil || c.Child(NSModerate0, "moderate") != nil
	}
	return false
}
