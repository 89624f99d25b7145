package muc

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"parley/internal/access"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// presence handles presence to a room or an occupant JID (XEP-0045 §7.2
// entering, §7.6 nickname change, §7.7 status change, §7.14 exit).
func (s *Service) presence(ctx context.Context, el *xml.Element, from, to jid.JID) {
	switch typ := el.Attr("type"); typ {
	case "":
		s.available(ctx, el, from, to)
	case "unavailable", stanza.TypeError:
		// An error bounced by the occupant's server means it is gone
		// (§7.14: the service treats it as unavailable presence).
		r := s.getRoom(to.Local())
		if r == nil {
			return
		}
		defer r.mu.Unlock()
		o := r.byReal[from]
		if o == nil {
			return
		}
		if typ == "unavailable" {
			o.pres = stripMUC(el)
		}
		r.removeOccupant(o)
		r.broadcastPresence(ctx, o, presOpts{unavailable: true, role: RoleNone})
		r.afterLeave(ctx)
	}
	// Subscription requests and probes to rooms are ignored.
}

// mucJoin returns the <x xmlns='http://jabber.org/protocol/muc'/> of a join.
func mucJoin(el *xml.Element) *xml.Element { return el.Child(NS, "x") }

func (s *Service) available(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if s.stopping.Load() {
		s.errorReplyTyped(ctx, el, stanza.ServiceUnavailable, stanza.ErrorTypeWait, "the server is shutting down")
		return
	}
	nick := to.Resource()
	if nick == "" {
		// §7.2.1: no nickname.
		s.errorReply(ctx, el, stanza.JIDMalformed, "a room nickname is required")
		return
	}
	if utf8.RuneCountInString(nick) > s.cfg.MaxNickLength {
		s.errorReply(ctx, el, stanza.NotAcceptable, "nickname longer than "+strconv.Itoa(s.cfg.MaxNickLength)+" characters")
		return
	}
	if e := s.joinAccess(ctx, to.Local(), from); e != nil {
		s.errorReplyTyped(ctx, el, e.Condition, e.Type, e.Text)
		return
	}
	r := s.getRoom(to.Local())
	created := false
	if r == nil {
		if !s.mayCreate(from) {
			s.errorReply(ctx, el, stanza.NotAllowed, "room creation is restricted")
			return
		}
		if err := s.h.CheckAccess(ctx, access.MUCCreate, from); err != nil {
			e := access.ErrorFor(err)
			s.errorReplyTyped(ctx, el, e.Condition, e.Type, e.Text)
			return
		}
		var cond stanza.Condition
		r, cond = s.createRoom(to.Local(), from)
		if r == nil {
			if cond == "" {
				// Someone created it in the meantime: join that one.
				s.available(ctx, el, from, to)
				return
			}
			s.errorReply(ctx, el, cond, "too many rooms")
			return
		}
		created = true
		r.setAff(from.Bare().String(), AffOwner, "")
		// §10.1.1: a MUC client gets a locked room to configure; a
		// groupchat 1.0 client (no <x/>) an instant room.
		r.locked = mucJoin(el) != nil
	}
	defer r.mu.Unlock()
	if o := r.byReal[from]; o != nil {
		switch {
		case o.nick == nick && mucJoin(el) != nil:
			// §17.3 rule 3: a join from a client that is already joined
			// (it lost track, say after a failed stream resumption) is a
			// request for everything a join sends.
			// 201 again while the room waits for its configuration: the
			// owner's client must still learn it has to configure it.
			o.pres = stripMUC(el)
			s.welcome(ctx, r, o, el, r.joinCodes(r.locked, el, nick))
		case o.nick == nick:
			s.statusChange(ctx, r, o, el)
		default:
			s.nickChange(ctx, r, o, el, nick, rawNick(el))
		}
		return
	}
	if cond, typ, text := r.admit(from, nick, el, created); cond != "" {
		s.errorReplyTyped(ctx, el, cond, typ, text)
		if created {
			s.dropRoom(r)
		}
		return
	}
	aff := r.affOf(from)
	o := &occupant{nick: nick, real: from, role: r.defaultRole(aff), pres: stripMUC(el), oid: s.occupantID(r.jid, from)}
	r.occupants[nick] = o
	r.byReal[from] = o
	s.welcome(ctx, r, o, el, r.joinCodes(created, el, nick))
}

// joinCodes are the status codes of a joining occupant's own presence
// (§7.2.3): 100 in a non-anonymous room, 170 when the room archives its
// discussion (§7.2.12: whoever may enter may read the archive, XEP-0313),
// 201 for the room's creator, 210 when the nick was prepared into another
// form (110 is presenceFor's).
func (r *room) joinCodes(created bool, el *xml.Element, nick string) []int {
	var self []int
	if r.cfg.WhoIs == "anyone" {
		self = append(self, 100)
	}
	if r.archiving() {
		self = append(self, 170)
	}
	if created {
		self = append(self, 201)
	}
	if rn := rawNick(el); rn != "" && rn != nick {
		self = append(self, 210)
	}
	return self
}

// welcome sends what a join brings (§7.2.3), o being an occupant already:
// first the other occupants to o, then o to everyone else, then o its own
// presence with the status codes self, its history and the subject.
func (s *Service) welcome(ctx context.Context, r *room, o *occupant, el *xml.Element, self []int) {
	for _, v := range r.sortedOccupants() {
		if v != o {
			s.route(ctx, r.presenceFor(v, o, presOpts{}))
		}
	}
	others := presenceFanout{r: r, o: o}
	bctx, batch := module.WithBatch(ctx)
	for _, v := range r.sortedOccupants() {
		if v != o {
			s.route(bctx, others.to(v))
		}
	}
	batch.Flush()
	s.route(ctx, r.presenceFor(o, o, presOpts{selfCodes: self}))
	// History and subject follow even in a locked room (where both are
	// empty): clients such as slixmpp treat the subject as the end of the
	// join, the creator's included.
	r.sendHistory(ctx, o, mucJoin(el))
	r.sendSubject(ctx, o)
}

// rawNick returns the resource of the 'to' attribute as the client wrote
// it, before preparation (a difference means status code 210).
func rawNick(el *xml.Element) string {
	_, res, _ := strings.Cut(el.Attr("to"), "/")
	return res
}

// admit applies the entry rules of §7.2 in the order the XEP lists them.
func (r *room) admit(from jid.JID, nick string, el *xml.Element, created bool) (stanza.Condition, string, string) {
	aff := r.affOf(from)
	switch {
	case r.locked && !created:
		return stanza.ItemNotFound, "", "the room is being configured"
	case aff == AffOutcast:
		return stanza.Forbidden, "", "you are banned from this room"
	case r.cfg.MembersOnly && affRank(aff) < affRank(AffMember):
		return stanza.RegistrationRequired, "", "this room is members-only"
	case r.cfg.Password != "" && aff != AffOwner && passwordOf(el) != r.cfg.Password:
		return stanza.NotAuthorized, "", "a password is required"
	case r.occupants[nick] != nil:
		return stanza.Conflict, "", "nickname in use"
	case r.nickReserved(nick, from):
		return stanza.Conflict, "", "nickname reserved"
	case len(r.occupants) >= r.maxUsers() && affRank(aff) < affRank(AffAdmin):
		// §7.2.10; admins and owners may always enter.
		return stanza.ServiceUnavailable, stanza.ErrorTypeWait, "the room is full"
	case len(r.occupants) >= r.svc.cfg.MaxOccupants:
		return stanza.ServiceUnavailable, stanza.ErrorTypeWait, "the room is full"
	}
	return "", "", ""
}

// maxUsers is the room's configured limit under the service ceiling.
func (r *room) maxUsers() int {
	if r.cfg.MaxUsers <= 0 || r.cfg.MaxUsers > r.svc.cfg.MaxOccupants {
		return r.svc.cfg.MaxOccupants
	}
	return r.cfg.MaxUsers
}

// nickReserved: Parley reserves no nicknames (there is no room
// registration), so only live occupants conflict.
func (r *room) nickReserved(string, jid.JID) bool { return false }

func passwordOf(el *xml.Element) string {
	if x := mucJoin(el); x != nil {
		return x.ChildText(NS, "password")
	}
	return ""
}

// statusChange reflects an occupant's new availability (§7.7).
func (s *Service) statusChange(ctx context.Context, r *room, o *occupant, el *xml.Element) {
	o.pres = stripMUC(el)
	r.broadcastPresence(ctx, o, presOpts{})
}

// nickChange moves an occupant to a new nickname (§7.6): unavailable with
// 303 and the new nick from the old room JID, then available from the new.
func (s *Service) nickChange(ctx context.Context, r *room, o *occupant, el *xml.Element, nick, raw string) {
	if r.occupants[nick] != nil || r.nickReserved(nick, o.real) {
		s.errorReply(ctx, el, stanza.Conflict, "nickname in use")
		return
	}
	r.broadcastPresence(ctx, o, presOpts{unavailable: true, newNick: nick, codes: []int{303}})
	delete(r.occupants, o.nick)
	o.nick = nick
	o.pres = stripMUC(el)
	r.occupants[nick] = o
	var self []int
	if raw != "" && raw != nick {
		self = append(self, 210)
	}
	r.broadcastPresence(ctx, o, presOpts{selfCodes: self})
}

// sendHistory sends the discussion history to a new occupant, honouring
// the <history/> limits of its join (§7.2.15): the smallest amount that
// meets every given limit, whole stanzas only, with XEP-0203 delays.
func (r *room) sendHistory(ctx context.Context, o *occupant, x *xml.Element) {
	maxStanzas, maxChars := len(r.history), -1
	var since time.Time
	if x != nil {
		if h := x.Child(NS, "history"); h != nil {
			if v, err := strconv.Atoi(h.Attr("maxstanzas")); err == nil && v >= 0 && v < maxStanzas {
				maxStanzas = v
			}
			if v, err := strconv.Atoi(h.Attr("maxchars")); err == nil && v >= 0 {
				maxChars = v
			}
			if v, err := strconv.Atoi(h.Attr("seconds")); err == nil && v >= 0 {
				since = time.Now().Add(-time.Duration(v) * time.Second)
			}
			if v := h.Attr("since"); v != "" {
				if t, err := parseDateTime(v); err == nil && t.After(since) {
					since = t
				}
			}
		}
	}
	var out []*xml.Element
	chars := 0
	for i := len(r.history) - 1; i >= 0 && len(out) < maxStanzas; i-- {
		h := r.history[i]
		if !since.IsZero() && h.at.Before(since) {
			break
		}
		m := h.msg.WithAttr("to", o.real.String()).WithChildren(delayFor(r, h))
		if maxChars >= 0 {
			n := m.Size()
			if chars+n > maxChars {
				break
			}
			chars += n
		}
		out = append(out, m)
	}
	for i := len(out) - 1; i >= 0; i-- {
		r.svc.route(ctx, out[i])
	}
}

// delayFor stamps a history message (XEP-0203) from the room's bare JID:
// the sender's real JID would break semi-anonymity (§7.2.15).
func delayFor(r *room, h histEntry) *xml.Element {
	return stanza.Delay(r.jid.String(), h.at, "")
}

// parseDateTime parses the XEP-0082 DateTime profile, with or without
// seconds and fractions.
func parseDateTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// sendSubject sends the room subject after the history; an empty
// <subject/> when none is set, which tells clients the join is complete.
// A subject an occupant set carries that occupant's id (XEP-0421 §4),
// when the room knows it (not for a subject stored before ids existed).
func (r *room) sendSubject(ctx context.Context, o *occupant) {
	from := r.jid.String()
	if r.subjNick != "" {
		from = r.occJID(r.subjNick)
	}
	m := xml.New("", "message").SetAttr("type", "groupchat").SetAttr("from", from).SetAttr("to", o.real.String()).
		Append(xml.New("", "subject").AppendText(r.subject))
	if r.subjNick != "" && r.subjOID != "" {
		m.Append(occupantIDElement(r.subjOID))
	}
	r.svc.route(ctx, m)
}

// joinAccess applies the host's muc_join access rule to a presence that
// would make from a new occupant of room local; occupants changing status
// or nickname were admitted already. It runs before the room is locked:
// the rule may need a group lookup in storage or the directory.
func (s *Service) joinAccess(ctx context.Context, local string, from jid.JID) *stanza.Error {
	s.mu.Lock()
	r := s.rooms[local]
	s.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		in := r.byReal[from] != nil
		r.mu.Unlock()
		if in {
			return nil
		}
	}
	if err := s.h.CheckAccess(ctx, access.MUCJoin, from); err != nil {
		return access.ErrorFor(err)
	}
	return nil
}
