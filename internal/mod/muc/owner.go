package muc

import (
	"context"
	"strconv"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// ownerGet returns the configuration form (§10.1.3, §10.2).
func (r *room) ownerGet(el, q *xml.Element, from jid.JID) *xml.Element {
	if r.affOf(from) != AffOwner {
		return stanza.ErrorReply(el, stanza.Forbidden, "only owners configure the room")
	}
	if len(q.Elements()) > 0 {
		return stanza.ErrorReply(el, stanza.BadRequest, "")
	}
	return stanza.IQResult(el, xml.New(NSOwner, "query").Append(r.configForm().el))
}

func (r *room) configForm() *form {
	c := r.cfg
	f := newForm("form", NSRoomConfig)
	f.el.Append(xml.New(NSData, "title").AppendText("Configuration of room " + r.jid.String()))
	f.field("muc#roomconfig_roomname", "text-single", "Room name", c.Name)
	f.field("muc#roomconfig_roomdesc", "text-single", "Description", c.Description)
	f.field("muc#roomconfig_persistentroom", "boolean", "Keep the room when it is empty", boolStr(c.Persistent))
	f.field("muc#roomconfig_publicroom", "boolean", "List the room publicly", boolStr(c.Public))
	f.field("muc#roomconfig_membersonly", "boolean", "Members only", boolStr(c.MembersOnly))
	f.field("muc#roomconfig_moderatedroom", "boolean", "Moderated (only participants speak)", boolStr(c.Moderated))
	f.field("muc#roomconfig_passwordprotectedroom", "boolean", "Password required to enter", boolStr(c.Password != ""))
	f.field("muc#roomconfig_roomsecret", "text-private", "Password", c.Password)
	mu := f.field("muc#roomconfig_maxusers", "list-single", "Maximum number of occupants", strconv.Itoa(r.maxUsers()))
	for _, n := range []int{10, 20, 30, 50, 100, 200, 500, 1000} {
		if n < r.svc.cfg.MaxOccupants {
			option(mu, strconv.Itoa(n), strconv.Itoa(n))
		}
	}
	option(mu, strconv.Itoa(r.svc.cfg.MaxOccupants), strconv.Itoa(r.svc.cfg.MaxOccupants))
	who := f.field("muc#roomconfig_whois", "list-single", "Who may discover real JIDs", c.WhoIs)
	option(who, "Moderators only", "moderators")
	option(who, "Anyone", "anyone")
	f.field("muc#roomconfig_historylength", "text-single", "Messages of history for new occupants (at most "+strconv.Itoa(r.svc.cfg.HistoryMax)+")", strconv.Itoa(r.historyLimit()))
	f.field("muc#roomconfig_changesubject", "boolean", "Participants may change the subject", boolStr(c.ChangeSubject))
	f.field("muc#roomconfig_allowinvites", "boolean", "Occupants may invite others", boolStr(c.AllowInvites))
	pm := f.field("muc#roomconfig_allowpm", "list-single", "Who may send private messages", c.AllowPM)
	option(pm, "Anyone", "anyone")
	option(pm, "Participants and moderators", "participants")
	option(pm, "Moderators only", "moderators")
	option(pm, "Nobody", "none")
	if r.svc.archive != nil {
		f.field("muc#roomconfig_enablearchiving", "boolean", "Archive the discussion for later reading (XEP-0313)", boolStr(r.archiving()))
	}
	f.field("muc#roomconfig_roomadmins", "jid-multi", "Room admins", r.listAff(AffAdmin)...)
	f.field("muc#roomconfig_roomowners", "jid-multi", "Room owners", r.listAff(AffOwner)...)
	return f
}

// ownerSet handles a configuration submission or cancellation (§10.1-2)
// and room destruction (§10.9).
func (r *room) ownerSet(ctx context.Context, el, q *xml.Element, from jid.JID) *xml.Element {
	if r.affOf(from) != AffOwner {
		return stanza.ErrorReply(el, stanza.Forbidden, "only owners configure or destroy the room")
	}
	if d := q.Child(NSOwner, "destroy"); d != nil {
		r.destroy(ctx, d)
		return stanza.IQResult(el, nil)
	}
	x := q.Child(NSData, "x")
	if x == nil {
		return stanza.ErrorReply(el, stanza.BadRequest, "expected a data form or <destroy/>")
	}
	switch x.Attr("type") {
	case "cancel":
		if r.locked {
			// §10.1.3: cancelling the initial configuration destroys the room.
			r.destroy(ctx, xml.New(NSUser, "destroy"))
		}
		return stanza.IQResult(el, nil)
	case "submit":
	default:
		return stanza.ErrorReply(el, stanza.BadRequest, "form type must be submit or cancel")
	}
	sub, err := parseSubmit(x, NSRoomConfig)
	if err != nil {
		return stanza.ErrorReply(el, stanza.BadRequest, err.Error())
	}
	next, owners, admins, cond, text := r.applyForm(sub)
	if cond != "" {
		return stanza.ErrorReply(el, cond, text)
	}
	// A directory room's directory-held fields go to the directory first.
	dirChange := r.svc.configChange(r, r.cfg, next, admins)
	if e := r.svc.writeDirectory(ctx, r, dirChange); e != nil {
		return stanza.ErrorReplyFor(el, e)
	}
	prev := r.cfg
	wasLocked := r.locked
	wasArchiving := r.archiving()
	r.cfg = next
	r.locked = false
	r.trimHistory()
	if owners != nil || admins != nil {
		r.replaceAffList(ctx, AffOwner, owners)
		r.replaceAffList(ctx, AffAdmin, admins)
		markDirectory(r, dirChange)
	}
	if next.Persistent {
		r.save(ctx)
	} else if prev.Persistent {
		r.svc.deleteStored(ctx, r)
	}
	if !wasLocked {
		// §10.2.1: a change that touches privacy says which (172/173 for
		// who sees real JIDs, 170/171 for archiving); any other, 104.
		var codes []int
		if prev.WhoIs != next.WhoIs {
			codes = append(codes, pick2(next.WhoIs == "anyone", 172, 173))
		}
		if now := r.archiving(); now != wasArchiving {
			codes = append(codes, pick2(now, 170, 171))
		}
		if len(codes) == 0 {
			codes = append(codes, 104)
		}
		r.statusMessage(ctx, codes...)
	}
	if next.MembersOnly && !prev.MembersOnly {
		// §10.2: non-members leave with 322.
		for _, o := range r.sortedOccupants() {
			if affRank(r.affOf(o.real)) < affRank(AffMember) {
				r.removeOccupant(o)
				r.broadcastPresence(ctx, o, presOpts{unavailable: true, role: RoleNone, codes: []int{322}})
			}
		}
	}
	if prev.Moderated != next.Moderated {
		r.refreshRoles(ctx)
	}
	r.afterLeave(ctx)
	return stanza.IQResult(el, nil)
}

func pick2(b bool, yes, no int) int {
	if b {
		return yes
	}
	return no
}

// applyForm computes the configuration a submission asks for. Fields not
// submitted keep their values; an empty submission (instant room, §10.1.2)
// accepts the current configuration. The owner and admin lists are
// returned only when submitted (nil otherwise).
func (r *room) applyForm(sub submitted) (c roomConfig, owners, admins []string, cond stanza.Condition, text string) {
	c = r.cfg
	bad := func(t string) (roomConfig, []string, []string, stanza.Condition, string) {
		return c, nil, nil, stanza.NotAcceptable, t
	}
	if v, ok := sub.one("muc#roomconfig_roomname"); ok {
		c.Name = v
	}
	if v, ok := sub.one("muc#roomconfig_roomdesc"); ok {
		c.Description = v
	}
	var err error
	for _, b := range []struct {
		v string
		p *bool
	}{
		{"muc#roomconfig_persistentroom", &c.Persistent},
		{"muc#roomconfig_publicroom", &c.Public},
		{"muc#roomconfig_membersonly", &c.MembersOnly},
		{"muc#roomconfig_moderatedroom", &c.Moderated},
		{"muc#roomconfig_changesubject", &c.ChangeSubject},
		{"muc#roomconfig_allowinvites", &c.AllowInvites},
	} {
		if *b.p, err = sub.boolean(b.v, *b.p); err != nil {
			return bad(b.v + " is not a boolean")
		}
	}
	if r.svc.archive != nil {
		// muc#roomconfig_enablearchiving is the field clients know from
		// Prosody, "mam" the one from ejabberd; both mean the same.
		for _, k := range []string{"mam", "muc#roomconfig_enablearchiving"} {
			if _, ok := sub[k]; !ok {
				continue
			}
			on, err := sub.boolean(k, r.archiving())
			if err != nil {
				return bad(k + " is not a boolean")
			}
			c.Archive = &on
		}
	}
	protected, err := sub.boolean("muc#roomconfig_passwordprotectedroom", c.Password != "")
	if err != nil {
		return bad("muc#roomconfig_passwordprotectedroom is not a boolean")
	}
	if v, ok := sub.one("muc#roomconfig_roomsecret"); ok {
		c.Password = v
	}
	if !protected {
		c.Password = ""
	} else if c.Password == "" {
		return bad("a password-protected room needs a password")
	}
	if v, ok := sub.one("muc#roomconfig_maxusers"); ok {
		switch n, err := strconv.Atoi(v); {
		case v == "none" || v == "":
			c.MaxUsers = r.svc.cfg.MaxOccupants
		case err != nil || n < 1:
			return bad("muc#roomconfig_maxusers must be a positive number")
		case n > r.svc.cfg.MaxOccupants:
			return bad("this service allows at most " + strconv.Itoa(r.svc.cfg.MaxOccupants) + " occupants")
		default:
			c.MaxUsers = n
		}
	}
	if v, ok := sub.one("muc#roomconfig_whois"); ok {
		if v != "moderators" && v != "anyone" {
			return bad("muc#roomconfig_whois must be moderators or anyone")
		}
		c.WhoIs = v
	}
	for _, k := range []string{"muc#roomconfig_historylength", "muc#maxhistoryfetch"} {
		if v, ok := sub.one(k); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return bad(k + " must be a number")
			}
			if n > r.svc.cfg.HistoryMax {
				n = r.svc.cfg.HistoryMax
			}
			c.HistoryLength = n
		}
	}
	if v, ok := sub.one("muc#roomconfig_allowpm"); ok {
		switch v {
		case "anyone", "participants", "moderators", "none":
			c.AllowPM = v
		default:
			return bad("muc#roomconfig_allowpm must be anyone, participants, moderators or none")
		}
	}
	parseList := func(k string) ([]string, bool) {
		vals, ok := sub[k]
		if !ok {
			return nil, true
		}
		out := []string{}
		for _, v := range vals {
			if v == "" {
				continue
			}
			j, err := jid.Parse(v)
			if err != nil || j.Local() == "" {
				return nil, false
			}
			out = append(out, j.Bare().String())
		}
		return out, true
	}
	var ok bool
	if owners, ok = parseList("muc#roomconfig_roomowners"); !ok {
		return bad("muc#roomconfig_roomowners: not a list of bare JIDs")
	}
	if admins, ok = parseList("muc#roomconfig_roomadmins"); !ok {
		return bad("muc#roomconfig_roomadmins: not a list of bare JIDs")
	}
	if owners != nil && len(owners) == 0 {
		return c, nil, nil, stanza.Conflict, "a room needs at least one owner"
	}
	if len(owners)+len(admins) > r.svc.cfg.MaxAffiliations {
		return bad("too many affiliations")
	}
	return c, owners, admins, "", ""
}

// replaceAffList makes the users with affiliation aff exactly list (nil:
// unchanged), announcing the changes to the occupants concerned.
func (r *room) replaceAffList(ctx context.Context, aff string, list []string) {
	if list == nil {
		return
	}
	want := map[string]bool{}
	for _, j := range list {
		want[j] = true
	}
	for _, j := range r.listAff(aff) {
		if !want[j] {
			r.changeAff(ctx, j, AffNone, "", "")
		}
	}
	for _, j := range list {
		if r.affs[j].Aff != aff {
			r.changeAff(ctx, j, aff, "", "")
		}
	}
}

// trimHistory applies a lowered history length at once.
func (r *room) trimHistory() {
	limit := r.historyLimit()
	for len(r.history) > limit {
		r.histBytes -= r.history[0].size
		r.history = r.history[1:]
	}
}

// refreshRoles re-derives participants' and visitors' roles after the room
// became moderated or unmoderated and announces the changes.
func (r *room) refreshRoles(ctx context.Context) {
	for _, o := range r.sortedOccupants() {
		if o.role == RoleModerator {
			continue
		}
		if role := r.defaultRole(r.affOf(o.real)); role != o.role && role != RoleModerator {
			o.role = role
			r.broadcastPresence(ctx, o, presOpts{})
		}
	}
}

// destroy removes every occupant with the <destroy/> (alternate venue and
// reason) and deletes the room, persistent or not (§10.9). Each occupant
// gets one unavailable presence, about itself.
func (r *room) destroy(ctx context.Context, d *xml.Element) {
	out := xml.New(NSUser, "destroy")
	if j := d.Attr("jid"); j != "" {
		if alt, err := jid.Parse(j); err == nil {
			out.SetAttr("jid", alt.String())
		}
	}
	if reason := d.ChildText("", "reason"); reason != "" {
		out.Append(xml.New(NSUser, "reason").AppendText(reason))
	}
	if pw := d.ChildText("", "password"); pw != "" {
		out.Append(xml.New(NSUser, "password").AppendText(pw))
	}
	for _, o := range r.sortedOccupants() {
		r.removeOccupant(o)
		r.svc.route(ctx, r.presenceFor(o, o, presOpts{unavailable: true, role: RoleNone, destroy: out}))
	}
	r.svc.dropRoom(r)
	r.svc.deleteStored(ctx, r)
	r.svc.forgetArchive(ctx, r)
}
