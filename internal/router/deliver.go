package router

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// deliverDefault is the last handler of every <kind>/<target> event of a
// host: the delivery rules of RFC 6121 §8.5 (and RFC 6120 §10.5 for the
// server's own address) for whatever no module handled.
func (r *Router) deliverDefault(ev *module.StanzaEvent, kind, target string) {
	switch kind {
	case "iq":
		r.deliverIQ(ev, target)
	case "message":
		r.deliverMessage(ev, target)
	case "presence":
		r.deliverPresence(ev, target)
	}
}

// send hands el to s, in ctx's batch when there is one and s can join it
// (module.Batch: a room's fan-out to the sessions of another node).
func (r *Router) send(ctx context.Context, s module.Session, el *xml.Element) {
	if bs, ok := s.(module.BatchSender); ok && bs.SendIn(ctx, el) {
		return
	}
	s.Send(el)
}

// asBare re-fires ev addressed to the bare JID, as RFC 6121 §8.5.3.2 asks for
// several stanza types sent to an unavailable full JID (so that modules such
// as offline storage see them exactly like bare-JID stanzas).
func asBare(ev *module.StanzaEvent) {
	bare := ev.To.Bare()
	ev2 := *ev
	ev2.To = bare
	ev.Host.Stanzas.Fire(ev.Stanza.Local+"/bare", &ev2)
}

// accountExists treats any bound session as proof of existence and falls
// back to storage; storage errors count as "exists" so a database hiccup
// never answers a sender that a real account is gone.
func accountExists(ev *module.StanzaEvent, r *Router) bool {
	if len(r.Sessions(ev.To.Bare())) > 0 {
		return true
	}
	ok, err := ev.Host.AccountExists(ev.Ctx, ev.To.Local())
	return ok || err != nil
}

// RFC 6121 §8.5.2 (bare), §8.5.3 (full), RFC 6120 §10.5.3 (host).
func (r *Router) deliverMessage(ev *module.StanzaEvent, target string) {
	typ := stanza.Type(ev.Stanza)
	switch target {
	case "full":
		if s := r.Session(ev.To); s != nil {
			r.send(ev.Ctx, s, ev.Stanza)
			return
		}
		switch typ {
		case "normal", "chat":
			asBare(ev)
		case "groupchat":
			r.bounce(ev.Ctx, ev.Stanza, stanza.ServiceUnavailable, "")
		}
		// headline and error: silently ignored (§8.5.3.2.1).
	case "bare":
		if typ == "error" {
			return
		}
		if !accountExists(ev, r) {
			if typ != "headline" {
				r.bounce(ev.Ctx, ev.Stanza, stanza.ServiceUnavailable, "")
			}
			return
		}
		if typ == "groupchat" {
			r.bounce(ev.Ctx, ev.Stanza, stanza.ServiceUnavailable, "")
			return
		}
		targets := ev.MessageTargets(r, ev.To.Bare(), typ)
		if len(targets) == 0 {
			// Before bouncing, look again: a handler may have taken time
			// since the shared answer (offline storage that failed), and a
			// resource may have come online meanwhile. Rare and cheap
			// next to the bounce.
			targets = r.messageTargets(ev.To.Bare(), typ)
		}
		if len(targets) == 0 {
			// No available resource with non-negative priority and no
			// offline storage took it (§8.5.2.2.1).
			if typ != "headline" {
				r.bounce(ev.Ctx, ev.Stanza, stanza.ServiceUnavailable, "")
			}
			return
		}
		for _, s := range targets {
			r.send(ev.Ctx, s, ev.Stanza)
		}
	case "host":
		// A message to the server itself that no module handled.
		if typ == "normal" || typ == "chat" {
			r.bounce(ev.Ctx, ev.Stanza, stanza.ServiceUnavailable, "")
		}
	}
}

// messageTargets picks the resources a bare-JID message goes to: headline to
// every available resource with non-negative priority; chat and normal to
// the available resources with the highest non-negative priority
// (RFC 6121 §8.5.2.1.1). Resources with negative priority never receive
// bare-JID messages.
func (r *Router) messageTargets(bare jid.JID, typ string) []module.Session {
	var out []module.Session
	best := -1
	for _, s := range r.Sessions(bare) {
		if !module.Available(s) || s.Priority() < 0 {
			continue
		}
		if typ == "headline" {
			out = append(out, s)
			continue
		}
		switch p := s.Priority(); {
		case p > best:
			best = p
			out = append(out[:0], s)
		case p == best:
			out = append(out, s)
		}
	}
	return out
}

// MessageTargets exposes the bare-JID selection to modules that need to know
// whether a message would be delivered (offline storage).
func (r *Router) MessageTargets(bare jid.JID, typ string) []module.Session {
	return r.messageTargets(bare, typ)
}

func isSubscription(typ string) bool {
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		return true
	}
	return false
}

// RFC 6121 §8.5.2.1.2/§8.5.3 for presence that the presence module did not
// consume (directed presence between users, or no presence module at all).
func (r *Router) deliverPresence(ev *module.StanzaEvent, target string) {
	typ := stanza.Type(ev.Stanza)
	switch target {
	case "full":
		if isSubscription(typ) || typ == "probe" {
			asBare(ev)
			return
		}
		if s := r.Session(ev.To); s != nil {
			r.send(ev.Ctx, s, ev.Stanza)
		}
	case "bare":
		if typ == "probe" || typ == "error" {
			return
		}
		for _, s := range r.Sessions(ev.To.Bare()) {
			if module.Available(s) || isSubscription(typ) {
				r.send(ev.Ctx, s, ev.Stanza)
			}
		}
	}
	// Presence to the host itself is ignored (RFC 6120 §10.5.3.3? no reply).
}

// deliverIQ dispatches requests to the IQ registry and results/errors to the
// session that asked (RFC 6120 §8.2.3, RFC 6121 §8.5).
func (r *Router) deliverIQ(ev *module.StanzaEvent, target string) {
	el := ev.Stanza
	typ := el.Attr("type")
	request := typ == "get" || typ == "set"
	if target == "full" {
		if s := r.Session(ev.To); s != nil {
			r.send(ev.Ctx, s, el)
			return
		}
		if request {
			r.bounce(ev.Ctx, el, stanza.ServiceUnavailable, "")
		}
		return
	}
	if !request {
		// Results and errors addressed to the server or a bare JID that no
		// module was waiting for are dropped; answering them would loop.
		return
	}
	payload := el.FirstElement()
	if payload == nil {
		r.bounce(ev.Ctx, el, stanza.BadRequest, "")
		return
	}
	t := module.TargetHost
	if target == "bare" {
		t = module.TargetBare
		if ev.From.Bare() == ev.To.Bare() {
			t = module.TargetSelf
		} else if !accountExists(ev, r) {
			// service-unavailable below, unless a module answers
			// such requests as it answers them for accounts that
			// exist (module.TargetUnknown).
			t = module.TargetUnknown
		}
	}
	fn := ev.Host.IQ(typ, t, payload.Space)
	if fn == nil {
		r.bounce(ev.Ctx, el, stanza.ServiceUnavailable, "")
		return
	}
	if reply := fn(ev, payload); reply != nil {
		ev.Reply(reply)
	}
}
