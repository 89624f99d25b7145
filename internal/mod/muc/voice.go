package muc

import (
	"context"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NSRequest is the FORM_TYPE of a voice request and of its approval
// (XEP-0045 §7.13, §8.6).
const NSRequest = NS + "#request"

// requestForm returns the muc#request data form of a message to the room,
// nil when it carries none.
func requestForm(el *xml.Element) *xml.Element {
	for _, x := range el.Elements() {
		if x.Space != NSData || x.Local != "x" {
			continue
		}
		for _, fl := range x.Elements() {
			if fl.Space == NSData && fl.Local == "field" && fl.Attr("var") == "FORM_TYPE" && fl.ChildText(NSData, "value") == NSRequest {
				return x
			}
		}
	}
	return nil
}

// voiceRequest handles a muc#request form sent to the room: from a
// visitor, a request for voice, which goes to every moderator as a form to
// approve (§7.13, §8.6); from a moderator, the approval (or denial) of
// one. The room is locked by the caller.
func (s *Service) voiceRequest(ctx context.Context, r *room, el, x *xml.Element, from jid.JID) {
	o := r.byReal[from]
	f, err := parseSubmit(x, NSRequest)
	if err != nil || x.Attr("type") != "submit" {
		s.errorReply(ctx, el, stanza.BadRequest, "a voice request is a submitted muc#request form")
		return
	}
	if _, answer := f["muc#request_allow"]; answer {
		s.voiceAnswer(ctx, r, el, f, o, from)
		return
	}
	switch {
	case o == nil:
		s.errorReply(ctx, el, stanza.NotAcceptable, "you are not in the room")
		return
	case o.role != RoleVisitor:
		// §7.13: only a visitor has a voice to ask for.
		s.errorReply(ctx, el, stanza.NotAllowed, "you have voice already")
		return
	}
	if role, _ := f.one("muc#role"); role != RoleParticipant {
		s.errorReply(ctx, el, stanza.BadRequest, "a voice request asks for the participant role")
		return
	}
	for _, m := range r.sortedOccupants() {
		if m.role != RoleModerator {
			continue
		}
		form := newForm("form", NSRequest)
		form.el.Append(xml.New(NSData, "title").AppendText("Voice request"))
		form.el.Append(xml.New(NSData, "instructions").AppendText("To approve this request for voice, select the \"Grant voice to this person?\" checkbox and submit this form."))
		form.field("muc#role", "list-single", "Requested role", RoleParticipant)
		if r.seesJIDs(m) {
			form.field("muc#jid", "jid-single", "User ID", o.real.Bare().String())
		}
		form.field("muc#roomnick", "text-single", "Room Nickname", o.nick)
		form.field("muc#request_allow", "boolean", "Grant voice to this person?", "false")
		msg := xml.New("", "message").SetAttr("from", r.jid.String()).SetAttr("to", m.real.String()).Append(form.el)
		if id := el.Attr("id"); id != "" {
			msg.SetAttr("id", id)
		}
		s.route(ctx, msg)
	}
}

// voiceAnswer applies a moderator's answer to a voice request: approved,
// the occupant named by muc#roomnick becomes a participant (§8.6); denied,
// nothing changes.
func (s *Service) voiceAnswer(ctx context.Context, r *room, el *xml.Element, f submitted, o *occupant, from jid.JID) {
	if !r.isModerator(o, r.affOf(from)) {
		s.errorReply(ctx, el, stanza.Forbidden, "only moderators answer voice requests")
		return
	}
	allow, err := f.boolean("muc#request_allow", false)
	if err != nil {
		s.errorReply(ctx, el, stanza.BadRequest, "muc#request_allow is not a boolean")
		return
	}
	if !allow {
		return
	}
	nick, _ := f.one("muc#roomnick")
	t := r.occupants[nick]
	if t == nil {
		s.errorReply(ctx, el, stanza.ItemNotFound, "no occupant has that nickname")
		return
	}
	if t.role != RoleVisitor {
		return // voiced meanwhile
	}
	actor := ""
	if o != nil {
		actor = o.nick
	}
	r.changeRole(ctx, t, RoleParticipant, "", actor)
}
