package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// worthy reports whether a message deserves waking a device (XEP-0357 §6
// leaves the choice to the server): a body, end-to-end encrypted content
// (whose body is only a fallback or absent), or a call proposal (XEP-0353).
// Chat states, receipts and markers would wake a phone for nothing.
func worthy(msg *xml.Element) bool {
	for _, c := range msg.Elements() {
		switch c.Space + " " + c.Local {
		case " body",
			"eu.siacs.conversations.axolotl encrypted", // OMEMO (XEP-0384 0.3)
			"urn:xmpp:omemo:2 encrypted",               // OMEMO 2
			"urn:xmpp:openpgp:0 openpgp",               // XEP-0373
			"urn:xmpp:jingle-message:0 propose":        // XEP-0353
			return true
		}
	}
	return false
}

// personal reports whether a message type is one-to-one, the kinds offline
// storage keeps and so the kinds a user can miss.
func personal(typ string) bool { return typ == stanza.TypeNormal || typ == "chat" }

// notifiable reports whether el, sent to a client that is not reading, is
// worth a notification: a personal message worth waking a device for.
func notifiable(el *xml.Element) bool {
	return el.Local == "message" && personal(stanza.Type(el)) && worthy(el)
}

// onMessage sees a message to the bare JID that no available resource
// takes (RFC 6121 §8.5.2.2: offline storage, just below, keeps it) and
// hands a notification to the worker. It never handles the message.
func (p *Push) onMessage(ev *module.StanzaEvent) bool {
	if module.DetachedLeftovers(ev.Ctx) {
		return false // notified when the session detached or they were queued
	}
	typ := stanza.Type(ev.Stanza)
	if !personal(typ) || !worthy(ev.Stanza) {
		return false
	}
	if len(ev.MessageTargets(p.h.Router, ev.To.Bare(), typ)) > 0 {
		return false
	}
	p.enqueue(ev.To.Bare(), ev.From, ev.Stanza)
	return false
}

func (p *Push) enqueue(owner, from jid.JID, msg *xml.Element) { p.enqueueN(owner, from, msg, 1) }

// enqueueN queues one notification for n waiting messages, msg the last.
func (p *Push) enqueueN(owner, from jid.JID, msg *xml.Element, n int) {
	j := job{owner: owner, from: from, n: n}
	if p.h.HostCfg.Push.Summary == "full" {
		j.body = msg.ChildText("", "body")
	}
	select {
	case p.queue <- j:
	default:
		p.h.Log.Warn("push: notification queue full; notification dropped", "owner", owner.String())
	}
}

// onOnline resets the waiting-message count when a client of the account
// is back (initial presence or a resumed session): it sees the messages.
func (p *Push) onOnline(ev *module.SessionEvent) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.counts, ev.Session.JID().Bare())
	return false
}

// onHeld notifies of messages kept for a session whose client is not
// reading (XEP-0198: its connection was lost and it waits for a
// resumption). On "detached" they are what the client has not
// acknowledged: the server learns that a phone's connection is gone only
// some time after it went, and messages written into the dead connection
// meanwhile would otherwise wait, unannounced, until the phone woke up on
// its own. On "held" they are what was queued since. c2s puts each such
// stanza in exactly one of the two events; one notification counts the
// messages of one event.
func (p *Push) onHeld(ev *module.SessionEvent) bool {
	var last *xml.Element
	n := 0
	for _, el := range ev.Unacked {
		if notifiable(el) {
			last, n = el, n+1
		}
	}
	if last == nil {
		return false
	}
	from, err := jid.Parse(last.Attr("from"))
	if err != nil {
		return false
	}
	p.enqueueN(ev.Session.JID().Bare(), from, last, n)
	return false
}

// work sends the queued notifications, one at a time: storage reads and
// routing happen here, off the routing path of the messages themselves.
func (p *Push) work(ctx context.Context) {
	defer close(p.done)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-p.queue:
			p.notify(ctx, j)
		}
	}
}

// notify publishes the summary of owner's waiting messages to every
// registration of owner.
func (p *Push) notify(ctx context.Context, j job) {
	regs, err := p.registrations(ctx, j.owner)
	if err != nil {
		p.h.Log.Warn("push: registrations", "owner", j.owner.String(), "err", err)
		return
	}
	if len(regs) == 0 {
		return
	}
	count := p.count(j.owner, max(j.n, 1))
	summary := p.summary(count, j)
	for _, r := range regs {
		id, ok := p.track(j.owner, r)
		if !ok {
			p.h.Log.Warn("push: too many notifications awaiting an answer; dropped", "owner", j.owner.String(), "service", r.service)
			continue
		}
		publish := xml.New(nsPubSub, "publish").SetAttr("node", r.node).Append(
			xml.New(nsPubSub, "item").Append(xml.New(NS, "notification").Append(summary)))
		ps := xml.New(nsPubSub, "pubsub").Append(publish)
		if r.options != nil {
			ps.Append(xml.New(nsPubSub, "publish-options").Append(r.options))
		}
		iq := xml.New("", "iq").SetAttr("type", "set").SetAttr("id", id).
			SetAttr("from", j.owner.String()).SetAttr("to", r.service).Append(ps)
		p.h.Router.Route(ctx, iq)
	}
}

// count adds add to owner's waiting-message count and returns it.
func (p *Push) count(owner jid.JID, add int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.counts[owner]
	if !ok && len(p.counts) >= maxCounted {
		return add
	}
	p.counts[owner] = n + add
	return n + add
}

// summary is the urn:xmpp:push:summary form (XEP-0357 §6.1) with as much
// as [host.push] summary allows.
func (p *Push) summary(count int, j job) *xml.Element {
	x := xml.New(nsData, "x").SetAttr("type", "submit")
	field := func(name, value string) {
		x.Append(xml.New(nsData, "field").SetAttr("var", name).Append(xml.New(nsData, "value").AppendText(value)))
	}
	field("FORM_TYPE", formPushSummary)
	field("message-count", strconv.Itoa(count))
	switch p.h.HostCfg.Push.Summary {
	case "full":
		field("last-message-sender", j.from.String())
		if j.body != "" {
			field("last-message-body", j.body)
		}
	case "sender":
		field("last-message-sender", j.from.String())
	}
	return x
}

// track remembers a notification until its answer or the timeout, within
// [host.push] max_pending; it returns the IQ id to send it with.
func (p *Push) track(owner jid.JID, r registration) (string, bool) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "push-" + hex.EncodeToString(b[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) >= p.h.HostCfg.Push.MaxPending {
		return "", false
	}
	pe := &pending{owner: owner, service: r.service, node: r.node}
	pe.timer = time.AfterFunc(p.h.HostCfg.Push.Timeout.Duration, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.pending[id] == pe {
			delete(p.pending, id)
			p.h.Log.Debug("push: app server did not answer in time", "owner", owner.String(), "service", r.service)
		}
	})
	p.pending[id] = pe
	return id, true
}

// Pending returns how many notifications await an answer (for tests and
// diagnostics).
func (p *Push) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// onReply takes the app server's answer to a notification. An error
// disables the registration (XEP-0357 §8: the app server no longer wants
// notifications for it, e.g. the device token expired), except a "wait"
// error, which says to try later rather than never.
func (p *Push) onReply(ev *module.StanzaEvent) bool {
	typ := stanza.Type(ev.Stanza)
	if typ != "result" && typ != "error" {
		return false
	}
	id := ev.Stanza.Attr("id")
	p.mu.Lock()
	pe := p.pending[id]
	if pe == nil || pe.owner != ev.To.Bare() || pe.service != ev.From.String() {
		p.mu.Unlock()
		return false
	}
	delete(p.pending, id)
	pe.timer.Stop()
	p.mu.Unlock()
	if typ == "result" {
		return true
	}
	cond, etype, text, _ := stanza.ParseError(ev.Stanza)
	if etype == "wait" {
		p.h.Log.Info("push: app server asks to wait", "owner", pe.owner.String(), "service", pe.service, "condition", string(cond))
		return true
	}
	p.h.Log.Info("push: app server refused a notification; registration disabled",
		"owner", pe.owner.String(), "service", pe.service, "condition", string(cond), "text", text)
	if err := p.h.Store.KV().Delete(ev.Ctx, kvBucket, pe.owner.String(), regKey(pe.service, pe.node)); err != nil {
		p.h.Log.Warn("push: disable registration", "owner", pe.owner.String(), "err", err)
	}
	return true
}
