package muc

import (
	"context"
	"strconv"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// iq handles IQs to a room (disco, admin, owner) or to an occupant.
func (s *Service) iq(ctx context.Context, el *xml.Element, from, to jid.JID) {
	typ := el.Attr("type")
	request := typ == stanza.TypeGet || typ == stanza.TypeSet
	r := s.getRoom(to.Local())
	if r == nil {
		if request {
			s.errorReply(ctx, el, stanza.ItemNotFound, "")
		}
		return
	}
	locked := true
	defer func() {
		if locked {
			r.mu.Unlock()
		}
	}()
	if to.Resource() != "" {
		s.occupantIQ(ctx, r, el, from, to.Resource(), request)
		return
	}
	if !request {
		return
	}
	q := el.FirstElement()
	if q == nil {
		s.errorReply(ctx, el, stanza.BadRequest, "")
		return
	}
	aff := r.affOf(from)
	if r.locked && aff != AffOwner {
		s.errorReply(ctx, el, stanza.ItemNotFound, "")
		return
	}
	if s.archive != nil && q.Space == s.archive.Namespace() {
		if !r.mayReadArchive(from) {
			s.errorReply(ctx, el, stanza.Forbidden, "only those who may enter the room may read its archive")
			return
		}
		room := r.jid
		rq := RoomQuery{IQ: el, Payload: q, From: from, Room: room, SeesRealJIDs: r.seesJIDsOf(from),
			OccupantID: func(sender jid.JID) string { return s.occupantID(room, sender) }}
		// The query reads storage and sends a page of results: the room
		// goes on without waiting for it.
		locked = false
		r.mu.Unlock()
		s.archive.Query(ctx, rq)
		return
	}
	var reply *xml.Element
	switch {
	case typ == stanza.TypeGet && q.Space == NSDiscoInfo && q.Local == "query":
		reply = r.discoInfo(el, q, from)
	case typ == stanza.TypeGet && q.Space == NSDiscoItems && q.Local == "query":
		reply = r.discoItems(el, q, from)
	case q.Space == NSAdmin && q.Local == "query":
		if typ == stanza.TypeGet {
			reply = r.adminGet(el, q, from)
		} else {
			reply = r.adminSet(ctx, el, q, from)
		}
	case q.Space == NSOwner && q.Local == "query":
		if typ == stanza.TypeGet {
			reply = r.ownerGet(el, q, from)
		} else {
			reply = r.ownerSet(ctx, el, q, from)
		}
	case q.Space == NSVCard:
		reply = r.vcardIQ(ctx, el, q, from)
	case typ == stanza.TypeSet && isModeration(q):
		reply = r.moderate(ctx, el, q, from)
	case typ == stanza.TypeGet && q.Space == NSPing && q.Local == "ping":
		reply = stanza.IQResult(el, nil)
	default:
		reply = stanza.ErrorReply(el, stanza.ServiceUnavailable, "")
	}
	s.route(ctx, reply)
}

// occupantIQ handles IQs to an occupant's room JID: XEP-0410 self-pings
// are answered by the service; other requests between occupants are
// relayed with the sender's room JID, and their answers relayed back.
func (s *Service) occupantIQ(ctx context.Context, r *room, el *xml.Element, from jid.JID, nick string, request bool) {
	o := r.byReal[from]
	if o == nil {
		if request {
			s.errorReply(ctx, el, stanza.NotAcceptable, "you are not in the room")
		}
		return
	}
	target := r.occupants[nick]
	if request {
		q := el.FirstElement()
		if target == o && el.Attr("type") == stanza.TypeGet && q != nil && q.Space == NSPing && q.Local == "ping" {
			s.route(ctx, stanza.IQResult(el, nil))
			return
		}
		if target == nil {
			s.errorReply(ctx, el, stanza.ItemNotFound, "")
			return
		}
	} else if target == nil {
		return
	}
	s.route(ctx, el.WithAttr("from", r.occJID(o.nick)).WithAttr("to", target.real.String()))
}

// discoInfo answers disco#info on a room (§6.4) with its identity, the
// features that describe it and the muc#roominfo form. A hidden
// members-only room looks nonexistent to whoever is not affiliated.
func (r *room) discoInfo(el, q *xml.Element, from jid.JID) *xml.Element {
	aff := r.affOf(from)
	insider := affRank(aff) >= affRank(AffMember) || r.byReal[from] != nil
	if !r.cfg.Public && r.cfg.MembersOnly && !insider {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	node := q.Attr("node")
	res := xml.New(NSDiscoInfo, "query")
	if node == "x-roomuser-item" {
		// §7.12: no nicknames are reserved; an empty result says so.
		return stanza.IQResult(el, res.SetAttr("node", node))
	}
	if node != "" {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	name := r.cfg.Name
	if name == "" {
		name = r.local
	}
	res.Append(xml.New(NSDiscoInfo, "identity").SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", name))
	feats := []string{NS, NSDiscoInfo, NSDiscoItems, NSSelfPing, NSVCard, NSStableID, NSOccupantID,
		pick(r.cfg.Public, "muc_public", "muc_hidden"),
		pick(r.cfg.Persistent, "muc_persistent", "muc_temporary"),
		pick(r.cfg.MembersOnly, "muc_membersonly", "muc_open"),
		pick(r.cfg.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(r.cfg.Password != "", "muc_passwordprotected", "muc_unsecured"),
		pick(r.cfg.WhoIs == "anyone", "muc_nonanonymous", "muc_semianonymous"),
	}
	if r.archiving() {
		// Only rooms that archive announce it: a client that sees
		// urn:xmpp:mam:2 fetches history from the archive rather than
		// asking for it on entry.
		feats = append(feats, r.svc.archive.Features()...)
		// Retraction needs the room's stanza-ids, which only an
		// archiving room gives (moderate.go).
		feats = append(feats, retractionFeatures()...)
	}
	for _, f := range feats {
		res.Append(xml.New(NSDiscoInfo, "feature").SetAttr("var", f))
	}
	form := newForm("result", NSRoomInfo)
	form.field("muc#roominfo_description", "text-single", "Description", r.cfg.Description)
	form.field("muc#roomconfig_roomname", "text-single", "Name", r.cfg.Name)
	// subjectmod is the field XEP-0045 registers (§15.5.4); changesubject
	// the name clients learnt from other servers. Both say the same.
	form.field("muc#roominfo_subjectmod", "boolean", "Occupants may change the subject", boolStr(r.cfg.ChangeSubject))
	form.field("muc#roominfo_changesubject", "boolean", "Occupants may change the subject", boolStr(r.cfg.ChangeSubject))
	form.field("muc#maxhistoryfetch", "text-single", "Maximum number of history messages", strconv.Itoa(r.historyLimit()))
	form.field("muc#roomconfig_allowinvites", "boolean", "Occupants may invite others", boolStr(r.cfg.AllowInvites))
	form.field("muc#roomconfig_allowpm", "list-single", "Who may send private messages", r.cfg.AllowPM)
	if h := r.avatarHashes(); len(h) > 0 {
		form.field("muc#roominfo_avatarhash", "text-multi", "Avatar hash", h...) // XEP-0486 §3.3
	}
	if !r.cfg.MembersOnly || insider {
		// The subject and head count are the room's business: only for
		// open rooms and for those who belong.
		form.field("muc#roominfo_subject", "text-single", "Subject", r.subject)
		form.field("muc#roominfo_occupants", "text-single", "Number of occupants", strconv.Itoa(len(r.occupants)))
	}
	res.Append(form.el)
	return stanza.IQResult(el, res)
}

// discoItems lists the occupants' room JIDs to occupants only; everyone
// else gets an empty list (§6.5 allows keeping them private).
func (r *room) discoItems(el, q *xml.Element, from jid.JID) *xml.Element {
	res := xml.New(NSDiscoItems, "query")
	if q.Attr("node") != "" {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	if r.byReal[from] != nil {
		for _, o := range r.sortedOccupants() {
			res.Append(xml.New(NSDiscoItems, "item").SetAttr("jid", r.occJID(o.nick)).SetAttr("name", o.nick))
		}
	}
	return stanza.IQResult(el, res)
}

func (r *room) historyLimit() int {
	if r.cfg.HistoryLength > r.svc.cfg.HistoryMax {
		return r.svc.cfg.HistoryMax
	}
	return r.cfg.HistoryLength
}

func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
