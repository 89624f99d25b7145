package presence

import (
	"context"
	"errors"
	"slices"

	"parley/internal/mod/roster"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// outbound handles presence from a local client session (out/presence). It
// returns true for what it routed itself: broadcasts, subscription stanzas,
// probes and invalid stanzas. Directed presence and presence errors are
// left to the router after bookkeeping.
func (p *Presence) outbound(ev *module.StanzaEvent) bool {
	s := ev.Origin
	if s == nil {
		return false
	}
	typ := ev.Stanza.Attr("type")
	switch {
	case typ == "" || typ == "unavailable":
		if ev.To.IsZero() {
			if typ == "" {
				p.available(ev.Ctx, s, ev.Stanza)
			} else {
				p.unavailable(ev.Ctx, s, ev.Stanza)
			}
			return true
		}
		// Directed presence (RFC 6121 §4.6): remember who got available
		// presence so they hear of this session's end.
		if typ == "" {
			directedOf(s).add(ev.To)
		} else {
			directedOf(s).remove(ev.To)
		}
		return false
	case isSubscription(typ):
		p.outboundSubscription(ev, typ)
		return true
	case typ == "probe":
		// Probes are the server's business (RFC 6121 §4.3); one a client
		// sends anyway goes out from its bare JID like the server's own,
		// so the contact's server applies the same subscription check.
		if ev.To.IsZero() {
			ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "probe without 'to'"))
			return true
		}
		p.h.Router.Route(ev.Ctx, ev.Stanza.WithAttr("from", ev.From.Bare().String()))
		return true
	case typ == "error":
		return false
	}
	ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "unknown presence type"))
	return true
}

// available processes available presence without 'to' (RFC 6121 §4.2 for
// initial presence, §4.4 for updates).
func (p *Presence) available(ctx context.Context, s module.Session, el *xml.Element) {
	user := s.JID().Bare()
	initial := !module.Available(s)
	s.SetPresence(el)
	// The session's first initial presence is recorded as announced before
	// anyone can see it, so that whatever copies the session once a
	// contact has seen it (a cluster handover) copies the mark too.
	announce := initial && s.Value(announcedKey{}) == nil
	if announce {
		s.SetValue(announcedKey{}, true)
	}
	items, _, err := p.roster.Items(ctx, user)
	if err != nil {
		p.h.Log.Error("presence: roster", "user", user.String(), "err", err)
	}
	// To every subscriber, addressed to its bare JID (§4.2.2, §4.4.2).
	for _, it := range items {
		if c := (roster.Contact{RosterItem: it}); c.HasFrom() {
			p.h.Router.Route(ctx, el.WithAttr("to", it.JID))
		}
	}
	// To all of the user's available resources, the sender included: the
	// reflection tells the client that the server has its presence.
	for _, o := range p.h.Router.Sessions(user) {
		if o == s || module.Available(o) {
			o.Send(el.WithAttr("to", o.JID().String()))
		}
	}
	if !initial {
		return
	}
	// A new resource learns of the user's other resources...
	for _, o := range p.h.Router.Sessions(user) {
		if o != s {
			if op := o.Presence(); op != nil {
				s.Send(op.WithAttr("to", s.JID().String()))
			}
		}
	}
	// ...and of its contacts: probes from the bare JID (§4.2.2, §4.3.1);
	// the answers come back to the bare JID and reach every available
	// resource, this one included.
	for _, it := range items {
		if c := (roster.Contact{RosterItem: it}); c.HasTo() {
			probe := xml.New("", "presence").SetAttr("type", "probe").
				SetAttr("from", user.String()).SetAttr("to", it.JID)
			p.h.Router.Route(ctx, probe)
		}
	}
	// Subscription requests that arrived while no resource was available
	// (or that no resource answered) are delivered again (§3.1.3).
	reqs, err := p.roster.PendingRequests(ctx, user)
	if err != nil {
		p.h.Log.Error("presence: pending requests", "user", user.String(), "err", err)
	}
	for _, r := range reqs {
		s.Send(r)
	}
	if announce {
		p.h.Sessions.Fire(module.EventSessionAvailable, &module.SessionEvent{Ctx: ctx, Host: p.h, Session: s})
	}
}

// unavailable processes unavailable presence without 'to' (§4.5).
func (p *Presence) unavailable(ctx context.Context, s module.Session, el *xml.Element) {
	p.goUnavailable(ctx, s, el, true)
}

// unbound sends unavailable presence for a session that ended, however it
// ended (§4.5.2: the server does it for a client that vanished).
func (p *Presence) unbound(ev *module.SessionEvent) bool {
	s := ev.Session
	if ev.Moved {
		return false // it goes on, available, on another node
	}
	el := xml.New("", "presence").SetAttr("type", "unavailable").SetAttr("from", s.JID().String())
	ctx := ev.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	// A session replaced by a new one with the same resource (RFC 6120
	// §7.7.2.2) must not make the new, already available one look gone.
	if cur := p.h.Router.Session(s.JID()); cur != nil && cur != s && module.Available(cur) {
		s.SetPresence(nil)
		p.sendDirectedUnavailable(ctx, directedOf(s).take(), el, nil)
		return false
	}
	p.goUnavailable(ctx, s, el, false)
	return false
}

// movedHere sends a session that was just handed over from another node
// of the cluster (XEP-0198 resumption there) its current presence again
// to every entity it sent directed presence to. For a chat room that is
// a status update with nothing changed (XEP-0045 §7.7); what it is for is
// the room's answer, which passes through this node: a cluster notes
// here which of its sessions sit in rooms held elsewhere, so that they
// are told (status 332) if the room's node dies. For anyone else it is
// the presence they already have.
func (p *Presence) movedHere(ev *module.SessionEvent) bool {
	s := ev.Session
	cur := s.Presence()
	if !ev.Moved || cur == nil {
		return false
	}
	d := directedOf(s)
	d.mu.Lock()
	targets := slices.Clone(d.list)
	d.mu.Unlock()
	el := cur.WithAttr("from", s.JID().String())
	for _, t := range targets {
		p.h.Router.Route(ev.Ctx, el.WithAttr("to", t.String()))
	}
	return false
}

// goUnavailable broadcasts el (type unavailable, from the session's full
// JID) to the user's subscribers and other resources if the session was
// available, and to every entity that got directed presence from it.
func (p *Presence) goUnavailable(ctx context.Context, s module.Session, el *xml.Element, reflect bool) {
	user := s.JID().Bare()
	wasAvailable := module.Available(s)
	s.SetPresence(nil)
	sent := make(map[jid.JID]bool)
	if wasAvailable {
		items, _, err := p.roster.Items(ctx, user)
		if err != nil {
			p.h.Log.Error("presence: roster", "user", user.String(), "err", err)
		}
		for _, it := range items {
			if c := (roster.Contact{RosterItem: it}); c.HasFrom() {
				p.h.Router.Route(ctx, el.WithAttr("to", it.JID))
				if j, err := jid.Parse(it.JID); err == nil {
					sent[j] = true
				}
			}
		}
		for _, o := range p.h.Router.Sessions(user) {
			if (o == s && reflect) || (o != s && module.Available(o)) {
				o.Send(el.WithAttr("to", o.JID().String()))
			}
		}
	}
	p.sendDirectedUnavailable(ctx, directedOf(s).take(), el, sent)
}

// sendDirectedUnavailable tells the directed-presence targets that the
// session is gone, skipping those whose bare JID already got the broadcast.
func (p *Presence) sendDirectedUnavailable(ctx context.Context, targets []jid.JID, el *xml.Element, sent map[jid.JID]bool) {
	for _, t := range targets {
		if sent[t.Bare()] {
			continue
		}
		p.h.Router.Route(ctx, el.WithAttr("to", t.String()))
	}
}

// outboundSubscription processes a subscription stanza from the user
// (RFC 6121 §3, Appendix A.2): update the roster, push, route the stanza
// from the user's bare JID to the contact's bare JID (§3.1.2), and share or
// withdraw presence when the contact gains or loses its subscription.
func (p *Presence) outboundSubscription(ev *module.StanzaEvent, typ string) {
	user := ev.From.Bare()
	if ev.To.IsZero() || ev.To.Bare() == user {
		ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "subscription stanzas go to a contact"))
		return
	}
	contact := ev.To.Bare()
	unlock := p.roster.Lock(user)
	before, err := p.roster.Load(ev.Ctx, user, contact)
	var out outcome
	after := before
	if err == nil {
		out = applyOutbound(typ, &after)
		err = p.roster.Save(ev.Ctx, user, before, after, nil)
	}
	unlock()
	if err != nil {
		cond := stanza.InternalServerError
		if errors.Is(err, roster.ErrRosterFull) {
			cond = stanza.ResourceConstraint
		} else {
			p.h.Log.Error("presence: subscription", "user", user.String(), "contact", contact.String(), "err", err)
		}
		ev.Reply(stanza.ErrorReply(ev.Stanza, cond, ""))
		return
	}
	if out.forward {
		p.h.Router.Route(ev.Ctx, ev.Stanza.WithAttr("from", user.String()).WithAttr("to", contact.String()))
	}
	p.share(ev.Ctx, user, contact, out)
	p.changed(ev.Ctx, user, contact, before, after)
}

// changed fires EventSubscriptionChanged when a stored subscription state
// changed, after the stanzas of the change went out, so that handlers (the
// personal eventing service sending a new subscriber its last items) act
// on a relationship the contact already knows about.
func (p *Presence) changed(ctx context.Context, user, contact jid.JID, before, after roster.Contact) {
	if before.Subscription == after.Subscription {
		return
	}
	p.h.Subscriptions.Fire(module.EventSubscriptionChanged, &module.SubscriptionEvent{
		Ctx: ctx, Host: p.h, User: user, Contact: contact,
		Before: before.Subscription, After: after.Subscription,
	})
}

// share sends the user's presence to contact as the outcome asks: the
// current presence of every available resource to a new subscriber, or
// unavailable from each of them to a former one.
func (p *Presence) share(ctx context.Context, user, contact jid.JID, out outcome) {
	switch {
	case out.sendUnavailable:
		p.h.UnavailableTo(ctx, user, contact)
	case out.sendAvailable:
		for _, s := range p.h.Router.Sessions(user) {
			if pres := s.Presence(); pres != nil {
				p.h.Router.Route(ctx, pres.WithAttr("to", contact.String()))
			}
		}
	}
}
