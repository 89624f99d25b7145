package muc

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// NSSID is the XEP-0359 namespace of <stanza-id/> and <origin-id/>.
const NSSID = "urn:xmpp:sid:0"

// Archive is what a message archive (XEP-0313, internal/mod/mam) offers the
// chat-room service. The archive publishes itself on the host under
// ArchiveKey from its New; the service looks it up at Start. Without one
// the service is a plain XEP-0045 service: no archiving configuration, no
// archive IQs, no stanza-ids.
type Archive interface {
	// Namespace is the payload namespace of archive IQs (urn:xmpp:mam:2):
	// the room hands IQs in it to Query.
	Namespace() string
	// Features are announced in the disco#info of rooms that archive.
	Features() []string
	// Store keeps a groupchat message (a body, a subject, a XEP-0424
	// retraction or a XEP-0425 moderation announcement) that the room
	// is about to send to its occupants, and returns its archive id, which
	// the room puts in the XEP-0359 stanza-id of every copy, or "" when it
	// was not kept. msg is the room's message without 'to'; sender is the
	// occupant's real full JID. It runs with the room locked, so the
	// archive's order is the order occupants see.
	Store(ctx context.Context, room jid.JID, msg *xml.Element, sender jid.JID) string
	// Query answers an archive IQ to a room. The room has checked that the
	// requester may read its archive (XEP-0313 §6.1.2); Query runs without
	// the room locked and replies itself.
	Query(ctx context.Context, q RoomQuery)
	// Forget deletes the archive of a room that no longer exists.
	Forget(ctx context.Context, room jid.JID)
	// Lookup returns the message stored under archive id id, as Store
	// was given it, and its sender's real JID (zero when unknown): what a
	// retraction must check before it touches the archive (moderate.go).
	// An error wrapping storage.ErrNotFound when the archive has no such
	// message. It waits for messages still being written.
	Lookup(ctx context.Context, room jid.JID, id string) (*xml.Element, jid.JID, error)
	// Replace stores tombstone in place of the message with archive id
	// id, which keeps its id, stamp and place in the archive, so a query
	// returns the tombstone where the retracted message was (XEP-0424
	// §5, XEP-0425 §5). storage.ErrNotFound as Lookup.
	Replace(ctx context.Context, room jid.JID, id string, tombstone *xml.Element) error
}

// RoomQuery is an archive IQ to a room.
type RoomQuery struct {
	// IQ is the request, Payload its child in the archive's namespace.
	IQ, Payload *xml.Element
	From, Room  jid.JID
	// SeesRealJIDs: the requester may learn occupants' real JIDs (a
	// non-anonymous room, or a moderator, admin or owner).
	SeesRealJIDs bool
	// OccupantID returns the room's XEP-0421 id of a sender's real JID.
	// The room stores messages with the id they were sent with; this is
	// for messages archived before the room attached ids, which XEP-0421
	// §4 wants carrying one too when read through the archive.
	OccupantID func(sender jid.JID) string
}

// ArchiveKey is the host service under which an archive offers itself to
// the host's chat-room service.
var ArchiveKey = module.NewServiceKey[Archive]("muc.archive")

// archiving reports whether the room keeps an archive of its discussion
// now: its owner's choice (muc#roomconfig_enablearchiving), or while the
// owner has not chosen, whether the room is public (a public discussion is
// archived by default; a private one only when its owner asks).
func (r *room) archiving() bool {
	if r.svc.archive == nil {
		return false
	}
	if r.cfg.Archive != nil {
		return *r.cfg.Archive
	}
	return r.cfg.Public
}

// mayReadArchive applies XEP-0313 §6.1.2: whoever may enter the room now
// may read its archive. Outcasts never; in members-only rooms members and
// above; in password-protected rooms occupants and members (the password
// is the key to the discussion).
func (r *room) mayReadArchive(from jid.JID) bool {
	aff := r.affOf(from)
	switch {
	case aff == AffOutcast:
		return false
	case affRank(aff) >= affRank(AffMember):
		return true
	case r.cfg.MembersOnly:
		return false
	case r.cfg.Password != "":
		return r.byReal[from] != nil
	}
	return true
}

// seesJIDsOf reports whether from may learn occupants' real JIDs when
// reading the archive: as in the room (§7.2.3-4), with admins and owners
// counted as moderators even when they are not in the room.
func (r *room) seesJIDsOf(from jid.JID) bool {
	return r.seesJIDs(r.byReal[from]) || affRank(r.affOf(from)) >= affRank(AffAdmin)
}

// archived stores msg in the room's archive, if it archives, and returns it
// with the room's XEP-0359 stanza-id.
func (r *room) archived(ctx context.Context, msg *xml.Element, sender jid.JID) *xml.Element {
	if !r.archiving() {
		return msg
	}
	id := r.svc.archive.Store(ctx, r.jid, msg, sender)
	if id == "" {
		return msg
	}
	return msg.WithChildren(xml.New(NSSID, "stanza-id").SetAttr("id", id).SetAttr("by", r.jid.String()))
}

// claimsRoom reports whether c is a stanza-id that names the room as its
// assigner: only the room may, so one from an occupant is a forgery
// (XEP-0359 §4: the assigning entity overrides such an id).
func (r *room) claimsRoom(c *xml.Element) bool {
	return c.Space == NSSID && c.Local == "stanza-id" && c.Attr("by") == r.jid.String()
}

// forgetArchive deletes the archive of a room that is gone.
func (s *Service) forgetArchive(ctx context.Context, r *room) {
	if s.archive != nil {
		s.archive.Forget(ctx, r.jid)
	}
}

// Recorder sees every groupchat message with a body and every subject
// change a room sends, whatever the room's configuration (a host's
// compliance log, internal/mod/mam). It publishes itself on the host under
// RecorderKey; the service looks it up at Start. It cannot change what the
// room sends, and runs with the room locked: it must not wait long.
type Recorder interface {
	// Record takes note of msg (the room's message, without 'to', with
	// the room's stanza-id when the room archives) sent by sender, the
	// occupant's real full JID.
	Record(ctx context.Context, room jid.JID, msg *xml.Element, sender jid.JID)
}

// RecorderKey is the host service under which a recorder offers itself to
// the host's chat-room service.
var RecorderKey = module.NewServiceKey[Recorder]("muc.recorder")

// record hands msg to the recorder, if the host has one.
func (r *room) record(ctx context.Context, msg *xml.Element, sender jid.JID) {
	if r.svc.recorder != nil {
		r.svc.recorder.Record(ctx, r.jid, msg, sender)
	}
}
