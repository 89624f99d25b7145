package muc

import (
	"context"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// maxAdminItems bounds the items of one muc#admin request.
const maxAdminItems = 100

// adminGet returns a role or affiliation list (§8.5, §9.2, §9.5, §9.8,
// §10.5, §10.8).
func (r *room) adminGet(el, q *xml.Element, from jid.JID) *xml.Element {
	items := adminItems(q)
	if len(items) != 1 {
		return stanza.ErrorReply(el, stanza.BadRequest, "ask for exactly one list")
	}
	it := items[0]
	aff, role := it.Attr("affiliation"), it.Attr("role")
	me := r.byReal[from]
	myAff := r.affOf(from)
	res := xml.New(NSAdmin, "query")
	switch {
	case aff != "" && role == "" && validAff(aff) && aff != AffNone:
		switch aff {
		case AffOwner, AffAdmin:
			if myAff != AffOwner {
				return stanza.ErrorReply(el, stanza.Forbidden, "")
			}
		case AffMember:
			// §5.2 (the privileges table and its note): members may see
			// the member list, and occupants of members-only rooms (§9.5),
			// but only in a non-anonymous room: the list names the real
			// JID behind each nick, which a semi-anonymous room shows
			// moderators only.
			mayList := affRank(myAff) >= affRank(AffAdmin) ||
				(r.cfg.WhoIs == "anyone" && (affRank(myAff) >= affRank(AffMember) || (r.cfg.MembersOnly && me != nil)))
			if !mayList {
				return stanza.ErrorReply(el, stanza.Forbidden, "")
			}
		default:
			if affRank(myAff) < affRank(AffAdmin) {
				return stanza.ErrorReply(el, stanza.Forbidden, "")
			}
		}
		for _, j := range r.listAff(aff) {
			item := xml.New(NSAdmin, "item").SetAttr("affiliation", aff).SetAttr("jid", j)
			for _, o := range r.sortedOccupants() {
				if o.real.Bare().String() == j {
					item.SetAttr("nick", o.nick).SetAttr("role", o.role)
					break
				}
			}
			if reason := r.affs[j].Reason; reason != "" {
				item.Append(xml.New(NSAdmin, "reason").AppendText(reason))
			}
			res.Append(item)
		}
	case role != "" && aff == "" && validRole(role) && role != RoleNone:
		if role == RoleModerator && affRank(myAff) < affRank(AffAdmin) {
			return stanza.ErrorReply(el, stanza.Forbidden, "")
		}
		if !r.isModerator(me, myAff) {
			return stanza.ErrorReply(el, stanza.Forbidden, "")
		}
		for _, o := range r.sortedOccupants() {
			if o.role == role {
				res.Append(xml.New(NSAdmin, "item").SetAttr("nick", o.nick).SetAttr("role", o.role).
					SetAttr("affiliation", r.affOf(o.real)).SetAttr("jid", o.real.String()))
			}
		}
	default:
		return stanza.ErrorReply(el, stanza.BadRequest, "ask for one affiliation or one role")
	}
	return stanza.IQResult(el, res)
}

func adminItems(q *xml.Element) []*xml.Element {
	var out []*xml.Element
	for _, c := range q.Elements() {
		if c.Space == NSAdmin && c.Local == "item" {
			out = append(out, c)
		}
	}
	return out
}

// isModerator: an occupant with the moderator role, or an admin or owner
// acting from outside the room.
func (r *room) isModerator(me *occupant, myAff string) bool {
	return (me != nil && me.role == RoleModerator) || affRank(myAff) >= affRank(AffAdmin)
}

// change is one validated item of a muc#admin set.
type change struct {
	target *occupant // role changes
	bare   string    // affiliation changes: bare JID or domain
	role   string
	aff    string
	reason string
}

// adminSet changes roles and affiliations. Every item is checked before
// any is applied, so a request is applied completely or not at all.
func (r *room) adminSet(ctx context.Context, el, q *xml.Element, from jid.JID) *xml.Element {
	items := adminItems(q)
	if len(items) == 0 || len(items) > maxAdminItems {
		return stanza.ErrorReply(el, stanza.BadRequest, "between 1 and 100 items")
	}
	me := r.byReal[from]
	myAff := r.affOf(from)
	var changes []change
	owners := map[string]bool{}
	for _, j := range r.listAff(AffOwner) {
		owners[j] = true
	}
	// A room without stored owners (a directory room, run by its admins
	// and the host's administrators) may still have its members changed.
	hadOwners := len(owners) > 0
	newAffs := 0
	for _, it := range items {
		c, cond, text := r.checkItem(it, me, myAff, from)
		if cond != "" {
			return stanza.ErrorReply(el, cond, text)
		}
		if c.aff != "" {
			if c.aff == AffOwner {
				owners[c.bare] = true
			} else {
				delete(owners, c.bare)
			}
			if _, ok := r.affs[c.bare]; !ok && c.aff != AffNone {
				newAffs++
			}
		}
		changes = append(changes, c)
	}
	if len(owners) == 0 && hadOwners {
		// §10.6: the last owner cannot step down.
		return stanza.ErrorReply(el, stanza.Conflict, "a room needs at least one owner")
	}
	if len(r.affs)+newAffs > r.svc.cfg.MaxAffiliations {
		return stanza.ErrorReply(el, stanza.NotAllowed, "too many affiliations in this room")
	}
	affs := map[string]string{}
	for _, c := range changes {
		if c.aff != "" {
			affs[c.bare] = c.aff
		}
	}
	// A directory room's members and admins change in the directory first.
	dirChange := affChange(r, affs)
	if e := r.svc.writeDirectory(ctx, r, dirChange); e != nil {
		return stanza.ErrorReplyFor(el, e)
	}
	actor := ""
	if me != nil {
		actor = me.nick
	}
	affChanged := false
	for _, c := range changes {
		if c.aff != "" {
			r.changeAffBy(ctx, c.bare, c.aff, c.reason, actor, from.Bare().String())
			affChanged = true
			continue
		}
		if r.occupants[c.target.nick] != c.target {
			continue // already removed by an earlier item
		}
		r.changeRole(ctx, c.target, c.role, c.reason, actor)
	}
	if affChanged {
		markDirectory(r, dirChange)
		r.save(ctx)
	}
	// Replying before the room may vanish is not needed: the IQ result
	// comes from the room address either way.
	r.afterLeave(ctx)
	return stanza.IQResult(el, nil)
}

// checkItem validates one item against the permission rules of §8-§10.
func (r *room) checkItem(it *xml.Element, me *occupant, myAff string, from jid.JID) (change, stanza.Condition, string) {
	role, aff := it.Attr("role"), it.Attr("affiliation")
	reason := it.ChildText(NSAdmin, "reason")
	switch {
	case role != "" && aff != "":
		return change{}, stanza.BadRequest, "an item changes a role or an affiliation, not both"
	case role != "":
		if !validRole(role) {
			return change{}, stanza.BadRequest, "unknown role"
		}
		if !r.isModerator(me, myAff) {
			return change{}, stanza.Forbidden, "only moderators change roles"
		}
		t := r.findOccupant(it)
		if t == nil {
			return change{}, stanza.ItemNotFound, "no such occupant"
		}
		ta := r.affOf(t.real)
		switch role {
		case RoleNone:
			if t == me {
				return change{}, stanza.Conflict, "you cannot kick yourself"
			}
			// §8.2: not by a moderator with a lower affiliation; admins
			// and owners only by someone ranked above them.
			if affRank(ta) > affRank(myAff) || (affRank(ta) >= affRank(AffAdmin) && affRank(ta) >= affRank(myAff)) {
				return change{}, stanza.NotAllowed, "you cannot kick this occupant"
			}
		case RoleVisitor, RoleParticipant:
			if t.role == RoleModerator && affRank(myAff) < affRank(AffAdmin) {
				return change{}, stanza.NotAllowed, "only admins revoke moderator privileges"
			}
			if affRank(ta) >= affRank(AffAdmin) {
				// §8.4, §9.7: nobody revokes an admin's or owner's voice
				// or moderator role.
				return change{}, stanza.NotAllowed, "admins and owners keep their role"
			}
			if role == RoleVisitor && affRank(ta) > affRank(myAff) {
				return change{}, stanza.NotAllowed, "you cannot revoke voice from this occupant"
			}
		case RoleModerator:
			if affRank(myAff) < affRank(AffAdmin) {
				return change{}, stanza.Forbidden, "only admins grant moderator privileges"
			}
		}
		return change{target: t, role: role, reason: reason}, "", ""
	case aff != "":
		if !validAff(aff) {
			return change{}, stanza.BadRequest, "unknown affiliation"
		}
		bare := ""
		if j := it.Attr("jid"); j != "" {
			tj, err := jid.Parse(j)
			if err != nil {
				return change{}, stanza.JIDMalformed, ""
			}
			bare = tj.Bare().String()
			if tj.Local() == "" && aff != AffOutcast && aff != AffNone {
				return change{}, stanza.BadRequest, "only bans apply to whole domains"
			}
		} else if t := r.findOccupant(it); t != nil {
			bare = t.real.Bare().String()
		} else {
			return change{}, stanza.BadRequest, "an affiliation change needs a jid"
		}
		cur := AffNone
		if e, ok := r.affs[bare]; ok {
			cur = e.Aff
		}
		if affRank(myAff) < affRank(AffAdmin) {
			return change{}, stanza.Forbidden, "only admins and owners change affiliations"
		}
		if aff == AffOutcast && bare == from.Bare().String() {
			return change{}, stanza.Conflict, "you cannot ban yourself"
		}
		if myAff != AffOwner && (affRank(cur) >= affRank(AffAdmin) || affRank(aff) >= affRank(AffAdmin)) {
			// §9.1, §10.3-10.8: admin and owner lists are the owners'.
			if affRank(cur) >= affRank(AffAdmin) && aff == AffOutcast {
				return change{}, stanza.NotAllowed, "you cannot ban this user"
			}
			if affRank(cur) >= affRank(AffAdmin) {
				return change{}, stanza.NotAllowed, "only owners change admins and owners"
			}
			return change{}, stanza.Forbidden, "only owners grant admin or owner"
		}
		return change{bare: bare, aff: aff, reason: reason}, "", ""
	}
	return change{}, stanza.BadRequest, "an item needs a role or an affiliation"
}

// findOccupant resolves an item's nick (or full JID) to an occupant.
func (r *room) findOccupant(it *xml.Element) *occupant {
	if n := it.Attr("nick"); n != "" {
		if j, err := jid.New(r.local, r.svc.domain, n); err == nil {
			return r.occupants[j.Resource()]
		}
		return nil
	}
	if j, err := jid.Parse(it.Attr("jid")); err == nil {
		if o := r.byReal[j]; o != nil {
			return o
		}
		for _, o := range r.sortedOccupants() {
			if o.real.Bare() == j {
				return o
			}
		}
	}
	return nil
}

// changeRole applies a validated role change and announces it (§8.2-§8.4,
// §9.6-§9.7).
func (r *room) changeRole(ctx context.Context, o *occupant, role, reason, actor string) {
	if role == RoleNone {
		r.removeOccupant(o)
		r.broadcastPresence(ctx, o, presOpts{unavailable: true, role: RoleNone, codes: []int{307}, reason: reason, actor: actor})
		return
	}
	o.role = role
	r.broadcastPresence(ctx, o, presOpts{reason: reason})
}

// changeAff is changeAffBy without an actor (configuration form lists).
func (r *room) changeAff(ctx context.Context, bare, aff, reason, actor string) {
	r.changeAffBy(ctx, bare, aff, reason, actor, "")
}

// changeAffBy stores an affiliation and applies it to the occupants it
// concerns: bans remove them (301), losing membership of a members-only
// room removes them (321), other changes update their role and presence.
// A user newly on the member list of a members-only room is invited
// (§9.5).
func (r *room) changeAffBy(ctx context.Context, bare, aff, reason, actor, actorBare string) {
	prev := AffNone
	if e, ok := r.affs[bare]; ok {
		prev = e.Aff
	}
	r.setAff(bare, aff, reason)
	present := false
	for _, o := range r.sortedOccupants() {
		if o.real.Bare().String() != bare && !(aff == AffOutcast && o.real.Domain() == bare && o.real.Local() != "") {
			continue
		}
		present = true
		eff := r.affOf(o.real)
		switch {
		case eff == AffOutcast:
			r.removeOccupant(o)
			r.broadcastPresence(ctx, o, presOpts{unavailable: true, role: RoleNone, codes: []int{301}, reason: reason, actor: actor})
		case r.cfg.MembersOnly && affRank(eff) < affRank(AffMember):
			r.removeOccupant(o)
			r.broadcastPresence(ctx, o, presOpts{unavailable: true, role: RoleNone, codes: []int{321}, reason: reason, actor: actor})
		default:
			switch {
			case affRank(eff) >= affRank(AffAdmin):
				o.role = RoleModerator
			case affRank(prev) >= affRank(AffAdmin) && o.role == RoleModerator:
				o.role = r.defaultRole(eff)
			case eff == AffMember && o.role == RoleVisitor:
				o.role = RoleParticipant
			}
			r.broadcastPresence(ctx, o, presOpts{reason: reason})
		}
	}
	if !present && aff == AffMember && prev == AffNone && r.cfg.MembersOnly && actorBare != "" {
		if to, err := jid.Parse(bare); err == nil && to.Local() != "" {
			x := xml.New(NSUser, "x").Append(xml.New(NSUser, "invite").SetAttr("from", actorBare))
			if r.cfg.Password != "" {
				x.Append(xml.New(NSUser, "password").AppendText(r.cfg.Password))
			}
			r.svc.route(ctx, xml.New("", "message").SetAttr("from", r.jid.String()).SetAttr("to", to.String()).Append(x))
		}
	}
}
