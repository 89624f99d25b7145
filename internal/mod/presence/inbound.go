package presence

import (
	"errors"

	"parley/internal/mod/roster"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// inbound handles subscription stanzas and probes addressed to a local
// account (presence/bare and presence/full; RFC 6121 §3.1.2 and §4.3 treat
// a full-JID 'to' as the bare JID). Available, unavailable and error
// presence go on to the core's delivery rules.
func (p *Presence) inbound(ev *module.StanzaEvent) bool {
	typ := ev.Stanza.Attr("type")
	if !isSubscription(typ) && typ != "probe" {
		return false
	}
	if ev.From.IsZero() {
		return true
	}
	user, contact := ev.To.Bare(), ev.From.Bare()
	if user == contact {
		// Subscriptions to oneself are refused on the way out; a probe of
		// one's own account is answered like a subscriber's.
		if typ == "probe" {
			p.answerProbe(ev, user)
		}
		return true
	}
	exists, err := p.exists(ev, user)
	if err != nil {
		p.h.Log.Error("presence: account lookup", "user", user.String(), "err", err)
		return true
	}
	if !exists {
		// RFC 6121 §3.1.3 and §4.3.2 let the server either ignore or
		// answer "unsubscribed" for an account that does not exist. A
		// subscribe or probe is answered so that the requester's stale
		// or pending state is cleared; anything else is dropped.
		if typ == typeSubscribe || typ == "probe" {
			p.send(ev, user, ev.From, typeUnsubscribed)
		}
		return true
	}
	if typ == "probe" {
		c, err := p.roster.Load(ev.Ctx, user, contact)
		if err != nil {
			p.h.Log.Error("presence: probe", "user", user.String(), "err", err)
			return true
		}
		// §4.3.2: only a subscriber learns the user's presence. Anyone
		// else gets nothing, which reveals nothing and, unlike an
		// "unsubscribed" answer, cannot cancel a request they have
		// pending with the user.
		if c.HasFrom() {
			p.answerProbe(ev, user)
		}
		return true
	}
	p.inboundSubscription(ev, typ, user, contact)
	return true
}

// exists reports whether the local account exists; a bound session is
// proof enough and saves the storage lookup.
func (p *Presence) exists(ev *module.StanzaEvent, user jid.JID) (bool, error) {
	if len(p.h.Router.Sessions(user)) > 0 {
		return true, nil
	}
	return p.h.AccountExists(ev.Ctx, user.Local())
}

// answerProbe sends the prober the last presence of each of the user's
// available resources, or unavailable from the bare JID when there is
// none (RFC 6121 §4.3.2).
func (p *Presence) answerProbe(ev *module.StanzaEvent, user jid.JID) {
	to := ev.From.String()
	found := false
	for _, s := range p.h.Router.Sessions(user) {
		if pres := s.Presence(); pres != nil {
			found = true
			p.h.Router.Route(ev.Ctx, pres.WithAttr("to", to))
		}
	}
	if !found {
		p.h.Router.Route(ev.Ctx, xml.New("", "presence").SetAttr("type", "unavailable").
			SetAttr("from", user.String()).SetAttr("to", to))
	}
}

// inboundSubscription applies a subscription stanza from contact to the
// local user (RFC 6121 Appendix A.3): update the user's roster and push,
// deliver the stanza to the user's available resources when it means
// something to them, answer on the user's behalf when the server may, and
// share or withdraw the user's presence.
func (p *Presence) inboundSubscription(ev *module.StanzaEvent, typ string, user, contact jid.JID) {
	// The stanza as delivered comes from the contact's bare JID (§3.1.3).
	el := ev.Stanza.WithAttr("from", contact.String()).WithAttr("to", user.String())
	unlock := p.roster.Lock(user)
	before, err := p.roster.Load(ev.Ctx, user, contact)
	var out outcome
	after := before
	if err == nil {
		out = applyInbound(typ, &after)
		err = p.roster.Save(ev.Ctx, user, before, after, el)
	}
	unlock()
	if errors.Is(err, roster.ErrTooManyPending) {
		// Nothing was stored or delivered; the requester learns why
		// (RFC 6120 §8.3.3.18) instead of waiting for an answer.
		p.h.Log.Info("presence: pending subscription requests full", "user", user.String(), "contact", contact.String())
		if reply := stanza.ErrorReply(el, stanza.ResourceConstraint, "too many pending subscription requests"); reply != nil {
			p.h.Router.Route(ev.Ctx, reply)
		}
		return
	}
	if err != nil {
		p.h.Log.Error("presence: inbound subscription", "user", user.String(), "contact", contact.String(), "err", err)
		return
	}
	if out.forward {
		// To available resources only: a subscribe that finds none is
		// kept (Store.Save stored it) and delivered at the next initial
		// presence; other types are reflected in the roster, which the
		// client fetches when it comes back.
		for _, s := range p.h.Router.Sessions(user) {
			if module.Available(s) {
				s.Send(el)
			}
		}
	}
	if out.reply != "" {
		p.send(ev, user, contact, out.reply)
	}
	p.share(ev.Ctx, user, contact, out)
	p.changed(ev.Ctx, user, contact, before, after)
}

// send routes a presence of type typ from the user's bare JID to 'to'.
func (p *Presence) send(ev *module.StanzaEvent, user, to jid.JID, typ string) {
	p.h.Router.Route(ev.Ctx, xml.New("", "presence").SetAttr("type", typ).
		SetAttr("from", user.String()).SetAttr("to", to.String()))
}
