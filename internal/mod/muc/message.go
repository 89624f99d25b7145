package muc

import (
	"context"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// message handles messages to a room (groupchat, subject, invitations) or
// to an occupant (private messages).
func (s *Service) message(ctx context.Context, el *xml.Element, from, to jid.JID) {
	typ := stanza.Type(el)
	if typ == stanza.TypeError {
		return
	}
	r := s.getRoom(to.Local())
	if r == nil {
		s.errorReply(ctx, el, stanza.ItemNotFound, "")
		return
	}
	defer r.mu.Unlock()
	if r.locked && r.affOf(from) != AffOwner {
		s.errorReply(ctx, el, stanza.ItemNotFound, "")
		return
	}
	if to.Resource() != "" {
		s.privateMessage(ctx, r, el, from, to.Resource())
		return
	}
	if typ == "groupchat" {
		s.groupchat(ctx, r, el, from)
		return
	}
	if x := el.Child(NSUser, "x"); x != nil {
		if x.Child(NSUser, "invite") != nil {
			s.invite(ctx, r, el, x, from)
			return
		}
		if d := x.Child(NSUser, "decline"); d != nil {
			s.decline(ctx, r, d, from)
			return
		}
	}
	if x := requestForm(el); x != nil {
		s.voiceRequest(ctx, r, el, x, from)
		return
	}
	// §7.4: a service MAY reject messages to the room that are not of type
	// groupchat.
	s.errorReply(ctx, el, stanza.BadRequest, "only groupchat messages, invitations, declines and voice requests go to the room")
}

// groupchat reflects a message to every occupant (§7.4) or changes the
// subject (§8.1).
func (s *Service) groupchat(ctx context.Context, r *room, el *xml.Element, from jid.JID) {
	o := r.byReal[from]
	if o == nil {
		s.errorReply(ctx, el, stanza.NotAcceptable, "you are not in the room")
		return
	}
	subj := el.Child("", "subject")
	if subj != nil && el.Child("", "body") == nil {
		if !(o.role == RoleModerator || (r.cfg.ChangeSubject && o.role == RoleParticipant)) {
			s.errorReply(ctx, el, stanza.Forbidden, "you may not change the subject")
			return
		}
		r.subject = subj.Text()
		r.subjNick = o.nick
		r.subjOID = o.oid
		r.save(ctx)
		// XEP-0313 §5.1.2: subject changes belong in the archive too.
		subjMsg := xml.New("", "message").SetAttr("type", "groupchat").SetAttr("from", r.occJID(o.nick))
		if id := el.Attr("id"); id != "" {
			subjMsg.SetAttr("id", id) // §7.4, muc#stable_id
		}
		subjMsg.Append(xml.New("", "subject").AppendText(r.subject), occupantIDElement(o.oid))
		msg := r.archived(ctx, subjMsg, from)
		r.record(ctx, msg, from)
		r.fanOut(ctx, msg)
		return
	}
	if o.role == RoleVisitor {
		s.errorReply(ctx, el, stanza.Forbidden, "visitors may not speak in a moderated room")
		return
	}
	// The room speaks for the occupant: keep the payload, drop what only
	// the room may say (muc#user status, a forged <delay/> from someone
	// who is not an owner replaying one-to-one history, §7.9, a stanza-id
	// naming the room, an occupant-id, a moderation or tombstone,
	// moderate.go) and add the sender's occupant-id (XEP-0421 §4) before
	// the message is archived, so the archive, the history and every copy
	// carry it as sent.
	owner := r.affOf(from) == AffOwner
	body := el.WithoutChildren(func(c *xml.Element) bool {
		return c.Space == NSUser || (c.Space == stanza.NSDelay && !owner) || (c.Space == "" && c.Local == "error") ||
			r.claimsRoom(c) || isOccupantID(c) || roomOnly(c)
	})
	msg := xml.New("", "message").SetAttr("type", "groupchat").SetAttr("from", r.occJID(o.nick))
	if id := el.Attr("id"); id != "" {
		msg.SetAttr("id", id)
	}
	if l := el.Lang(); l != "" {
		msg.Attrs = append(msg.Attrs, xml.Attr{Space: xml.NSXML, Local: "lang", Value: l})
	}
	msg.Children = append(body.Children, occupantIDElement(o.oid))
	hasBody := el.Child("", "body") != nil
	// A XEP-0424 retraction is archived with or without a fallback body
	// (§6: the archive MUST keep it, for clients that were away), and
	// kept in the history like a message.
	retractID, retracts := ownRetraction(msg)
	kept := hasBody || retracts
	if kept {
		msg = r.archived(ctx, msg, from)
	}
	if hasBody || retracts {
		r.record(ctx, msg, from) // a retraction, body or not, is on the record
	}
	if retracts {
		// Before the retraction goes out: a client that queries the
		// archive on receiving it finds the tombstone.
		r.retractOwn(ctx, o, retractID, msg, from)
	}
	r.fanOut(ctx, msg)
	if kept {
		r.addHistory(msg) // the plain tree: history is sent with <delay/> added
	}
}

// fanOut sends msg to every occupant, each copy with its own "to". The
// copies share one serialisation of the payload (xml ForFanout), so a
// message to a room of hundreds is not serialised hundreds of times.
// Occupants are almost all on client streams; a copy written to a server
// stream reuses the bytes too unless the payload's serialisation depends on
// the stream's namespace, and then is written from the tree. In a
// cluster, the copies for occupants on another node travel to it as one
// message (module.Batch), flushed before the room goes on.
func (r *room) fanOut(ctx context.Context, msg *xml.Element) {
	msg = msg.ForFanout(stanza.NSClient)
	ctx, batch := module.WithBatch(ctx)
	defer batch.Flush()
	for _, v := range r.sortedOccupants() {
		r.svc.route(ctx, msg.WithAttr("to", v.real.String()))
	}
}

// addHistory keeps msg for new occupants, bounded by the room's history
// length and the service's byte limit per room.
func (r *room) addHistory(msg *xml.Element) {
	limit := r.cfg.HistoryLength
	if limit > r.svc.cfg.HistoryMax {
		limit = r.svc.cfg.HistoryMax
	}
	if limit <= 0 {
		r.history, r.histBytes = nil, 0
		return
	}
	size := msg.Size()
	if size > r.svc.cfg.HistoryMaxBytes {
		return
	}
	r.history = append(r.history, histEntry{msg: msg, at: time.Now(), size: size})
	r.histBytes += size
	for len(r.history) > limit || r.histBytes > r.svc.cfg.HistoryMaxBytes {
		r.histBytes -= r.history[0].size
		r.history = r.history[1:]
	}
}

// privateMessage relays a message between occupants (§7.5).
func (s *Service) privateMessage(ctx context.Context, r *room, el *xml.Element, from jid.JID, nick string) {
	o := r.byReal[from]
	if o == nil {
		s.errorReply(ctx, el, stanza.NotAcceptable, "you are not in the room")
		return
	}
	if stanza.Type(el) == "groupchat" {
		s.errorReply(ctx, el, stanza.BadRequest, "private messages may not be of type groupchat")
		return
	}
	target := r.occupants[nick]
	if target == nil {
		s.errorReply(ctx, el, stanza.ItemNotFound, "no such occupant")
		return
	}
	if !r.mayPM(o) {
		s.errorReply(ctx, el, stanza.Forbidden, "private messages are not allowed in this room")
		return
	}
	// The empty muc#user <x/> tells the recipient's client that this is a
	// private message through the room, not from a user's own JID; the
	// sender's occupant-id replaces any the client put there (XEP-0421 §4:
	// every message the room sends).
	out := el.WithoutChildren(func(c *xml.Element) bool { return c.Space == NSUser || isOccupantID(c) }).
		WithAttr("from", r.occJID(o.nick)).WithAttr("to", target.real.String()).
		WithChildren(xml.New(NSUser, "x"), occupantIDElement(o.oid))
	s.route(ctx, out)
}

// mayPM applies muc#roomconfig_allowpm.
func (r *room) mayPM(o *occupant) bool {
	switch r.cfg.AllowPM {
	case "none":
		return false
	case "moderators":
		return o.role == RoleModerator
	case "participants":
		return o.role == RoleModerator || o.role == RoleParticipant
	}
	return true
}

// maxInvites bounds the invitations one message may carry.
const maxInvites = 20

// invite relays mediated invitations (§7.8.2).
func (s *Service) invite(ctx context.Context, r *room, el, x *xml.Element, from jid.JID) {
	o := r.byReal[from]
	if o == nil {
		s.errorReply(ctx, el, stanza.NotAcceptable, "you are not in the room")
		return
	}
	aff := r.affOf(from)
	allowed := o.role == RoleModerator || r.cfg.AllowInvites
	if r.cfg.MembersOnly {
		// §9.5: in members-only rooms only admins invite, unless the
		// owner opened invitations to members.
		allowed = affRank(aff) >= affRank(AffAdmin) || (r.cfg.AllowInvites && affRank(aff) >= affRank(AffMember))
	}
	if !allowed {
		s.errorReply(ctx, el, stanza.Forbidden, "you may not invite others to this room")
		return
	}
	// The <invite/> elements and their invitees, in step: other children
	// of <x/> (a <password/>, extensions) may come before or between them.
	var invites []*xml.Element
	var targets []jid.JID
	for _, inv := range x.Elements() {
		if inv.Space != NSUser || inv.Local != "invite" {
			continue
		}
		t, err := jid.Parse(inv.Attr("to"))
		if err != nil {
			s.errorReply(ctx, el, stanza.JIDMalformed, "bad invitee address")
			return
		}
		if t.Domain() == s.domain {
			s.errorReply(ctx, el, stanza.BadRequest, "invitations go to users, not rooms")
			return
		}
		if len(targets) == maxInvites {
			s.errorReply(ctx, el, stanza.PolicyViolation, "too many invitations in one message")
			return
		}
		invites = append(invites, inv)
		targets = append(targets, t)
	}
	changed := false
	for i, inv := range invites {
		t := targets[i]
		if r.cfg.MembersOnly && r.affOf(t) == AffNone {
			if len(r.affs) < r.svc.cfg.MaxAffiliations {
				r.setAff(t.Bare().String(), AffMember, "")
				changed = true
			}
		}
		if len(r.invited) >= maxPendingInvites {
			for k := range r.invited {
				delete(r.invited, k)
				break
			}
		}
		r.invited[t.Bare().String()] = from.Bare().String()
		ix := xml.New(NSUser, "x")
		iv := xml.New(NSUser, "invite").SetAttr("from", from.Bare().String())
		reason := inv.ChildText(NSUser, "reason")
		if reason != "" {
			iv.Append(xml.New(NSUser, "reason").AppendText(reason))
		}
		if inv.Child(NSUser, "continue") != nil {
			iv.Append(inv.Child(NSUser, "continue"))
		}
		ix.Append(iv)
		if r.cfg.Password != "" {
			ix.Append(xml.New(NSUser, "password").AppendText(r.cfg.Password))
		}
		text := from.Bare().String() + " invites you to the room " + r.jid.String()
		if reason != "" {
			text += ": " + reason
		}
		m := xml.New("", "message").SetAttr("from", r.jid.String()).SetAttr("to", t.String()).
			Append(ix).Append(xml.New("", "body").AppendText(text))
		s.route(ctx, m)
	}
	if changed {
		r.save(ctx)
	}
}

// decline relays an invitee's refusal to the inviter (§7.8.2). Only
// invitations the room actually relayed can be declined, so the room is
// not a relay for unsolicited messages.
func (s *Service) decline(ctx context.Context, r *room, d *xml.Element, from jid.JID) {
	inviter, ok := r.invited[from.Bare().String()]
	if !ok {
		return
	}
	delete(r.invited, from.Bare().String())
	dx := xml.New(NSUser, "decline").SetAttr("from", from.Bare().String())
	if reason := d.ChildText(NSUser, "reason"); reason != "" {
		dx.Append(xml.New(NSUser, "reason").AppendText(reason))
	}
	m := xml.New("", "message").SetAttr("from", r.jid.String()).SetAttr("to", inviter).
		Append(xml.New(NSUser, "x").Append(dx))
	s.route(ctx, m)
}
