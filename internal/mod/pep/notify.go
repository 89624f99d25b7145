package pep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"parley/internal/mod/caps"
	"parley/internal/module"
	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
)

// Who gets what (XEP-0163 §4):
//
//   - the account's own available resources that advertised <node>+notify;
//   - contacts whose presence subscription and roster groups the node's
//     access model admits, at each available resource with non-negative
//     priority that advertised <node>+notify. For contacts on this host the
//     server knows their sessions; for others, the full JIDs that sent the
//     account available presence;
//   - explicit subscribers (XEP-0060 §6.1) that still have access, once.
//
// The last item of a node is sent when a resource becomes available, when
// its capabilities start to include the node's +notify, and when a contact
// gains a presence subscription (auto-subscribe).

// trigger says why last items are sent, which decides which nodes take
// part (pubsub#send_last_published_item).
type trigger int

const (
	onPresence     trigger = iota // a resource became available (or interested)
	onSubscription                // a contact was subscribed
)

func (t trigger) sends(cfg pubsub.NodeConfig) bool {
	switch cfg.SendLastPublishedItem {
	case pubsub.SendLastOnSubAndPresence:
		return true
	case pubsub.SendLastOnSub:
		return t == onSubscription
	}
	return false
}

func notifyFeature(node string) string { return node + "+notify" }

func messageID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "pep-" + hex.EncodeToString(b[:])
}

// local reports whether j is an address of this host (its sessions are
// known directly, not from presence).
func (p *PEP) local(j jid.JID) bool { return j.Domain() == p.h.Domain }

// notify is the engine's Options.Notify: deliver, then tell listeners.
func (p *PEP) notify(ctx context.Context, ev *pubsub.Event) {
	owner, err := jid.Parse(ev.Service)
	if err != nil {
		return
	}
	if ev.Kind == pubsub.EventSubscribed {
		// §6.1.7: the new subscriber gets the last item, once.
		for _, it := range ev.Items {
			p.sendItem(ctx, owner, ev.Node, ev.Config, it, ev.Subscriber)
		}
	} else {
		p.deliver(ctx, owner, ev)
	}
	p.mu.Lock()
	listeners := p.listeners
	p.mu.Unlock()
	for _, fn := range listeners {
		fn(ctx, ev)
	}
}

// deliver sends an event to everyone who is to hear of it.
func (p *PEP) deliver(ctx context.Context, owner jid.JID, ev *pubsub.Event) {
	want := notifyFeature(ev.Node)
	id := messageID()
	sent := map[jid.JID]bool{}
	send := func(to, replyTo jid.JID) {
		if sent[to] {
			return
		}
		sent[to] = true
		p.h.Router.Route(ctx, ev.Message(owner, to, id, replyTo))
	}
	// XEP-0163 §4.3.1 point 3: the publishing resource as "replyto", for
	// contacts (never for others, nor the account itself).
	var replyTo jid.JID
	if ev.Actor.Bare() == owner && ev.Actor.Resource() != "" {
		replyTo = ev.Actor
	}
	for _, s := range p.h.Router.Sessions(owner) {
		if module.Available(s) && p.caps.Supports(s.JID(), want) {
			send(s.JID(), jid.JID{})
		}
	}
	items, _, err := p.h.Store.Roster().Items(ctx, owner.String())
	if err != nil {
		p.h.Log.Error("pep: roster", "owner", owner.String(), "err", err)
		return
	}
	roster := make(map[jid.JID]storage.RosterItem, len(items))
	for _, it := range items {
		if c, err := jid.Parse(it.JID); err == nil {
			roster[c] = it
		}
	}
	aud, err := p.svc.Audience(ctx, ev.Service, ev.Node, ev.Config)
	if err != nil {
		p.h.Log.Error("pep: node affiliations", "owner", owner.String(), "node", ev.Node, "err", err)
		return
	}
	remote := p.recipients(owner)
	for contact, it := range roster {
		rel := relationOf(it)
		if !rel.Subscriber || !aud.Allows(contact, rel) {
			continue
		}
		for _, r := range p.resources(contact, remote) {
			if p.caps.Supports(r, want) {
				send(r, replyTo)
			}
		}
	}
	subs, err := p.svc.Subscribers(ctx, ev)
	if err != nil {
		p.h.Log.Error("pep: subscribers", "owner", owner.String(), "node", ev.Node, "err", err)
		return
	}
	for _, j := range subs {
		if j.Resource() == "" && sentToAny(sent, j) {
			// §4.3.2: a bare-JID subscriber whose resources were
			// notified already gets nothing more.
			continue
		}
		var rt jid.JID
		if it, ok := roster[j.Bare()]; ok && relationOf(it).Subscriber {
			rt = replyTo
		}
		send(j, rt)
	}
}

func sentToAny(sent map[jid.JID]bool, bare jid.JID) bool {
	for j := range sent {
		if j.Bare() == bare {
			return true
		}
	}
	return false
}

// resources returns the available resources of contact with non-negative
// priority (XEP-0163 §4.3.2 point 3): its sessions when it is an account of
// this host, else those that sent the account presence (remote holds them).
func (p *PEP) resources(contact jid.JID, remote map[jid.JID]int) []jid.JID {
	var out []jid.JID
	if p.local(contact) {
		for _, s := range p.h.Router.Sessions(contact) {
			if module.Available(s) && s.Priority() >= 0 {
				out = append(out, s.JID())
			}
		}
		return out
	}
	for full, prio := range remote {
		if full.Bare() == contact && prio >= 0 {
			out = append(out, full)
		}
	}
	return out
}

// sendItem sends one item as a notification from owner's node to 'to',
// stamped with when it was published (XEP-0163 §4.3.4: the last item is an
// old event; XEP-0203).
func (p *PEP) sendItem(ctx context.Context, owner jid.JID, node string, cfg pubsub.NodeConfig, it pubsub.Item, to jid.JID) {
	ev := &pubsub.Event{Kind: pubsub.EventPublish, Service: owner.String(), Node: node, Config: cfg, Items: []pubsub.Item{it}}
	msg := ev.Message(owner, to, messageID(), jid.JID{})
	msg = msg.WithChildren(stanza.Delay(owner.String(), it.Published, ""))
	p.h.Router.Route(ctx, msg)
}

// sendLast sends 'to' the last item of each of owner's nodes that it may
// receive (rel), that the trigger concerns and that wanted says it wants.
// With notified set, an item published at or after it is not sent: 'to'
// was already interested then and got it as a notification (a change of
// capabilities reported after a publication that already went by them).
func (p *PEP) sendLast(ctx context.Context, owner, to jid.JID, rel pubsub.Relation, t trigger, wanted func(node string) bool, notified time.Time) {
	nodes, err := p.svc.AllNodes(ctx, owner.String())
	if err != nil {
		p.h.Log.Error("pep: nodes", "owner", owner.String(), "err", err)
		return
	}
	for _, n := range nodes {
		cfg := n.Config
		if !t.sends(cfg) || !cfg.PersistItems || !cfg.DeliverNotifications || !wanted(n.Name) {
			continue
		}
		aud, err := p.svc.Audience(ctx, owner.String(), n.Name, cfg)
		if err != nil {
			p.h.Log.Error("pep: node affiliations", "owner", owner.String(), "node", n.Name, "err", err)
			continue
		}
		if !aud.Allows(to, rel) {
			continue
		}
		last, err := p.svc.LastItem(ctx, owner.String(), n.Name)
		if err != nil {
			p.h.Log.Error("pep: last item", "owner", owner.String(), "node", n.Name, "err", err)
			continue
		}
		if last != nil && (notified.IsZero() || last.Published.Before(notified)) {
			p.sendItem(ctx, owner, n.Name, cfg, *last, to)
		}
	}
}

// interestedIn returns the wanted filter of sendLast for a resource whose
// capabilities are info.
func interestedIn(info *caps.Info) func(string) bool {
	return func(node string) bool { return info.Has(notifyFeature(node)) }
}

// sessionAvailable sends a resource of this host that just became
// available the last items it wants: of its own account's nodes (XEP-0163
// §4.3.4, "including the account owner itself"), and of the nodes of the
// accounts of this host it is subscribed to, whose services hear of it here
// rather than through its presence.
func (p *PEP) sessionAvailable(ev *module.SessionEvent) bool {
	ctx := ev.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	s := ev.Session
	if s.Priority() < 0 {
		return false
	}
	p.lastToLocalResource(ctx, s.JID(), p.caps.Info(s.JID()), nil, time.Time{})
	return false
}

// lastToLocalResource sends a local resource the last items of its own
// account's nodes and of the nodes of the accounts of this host it is
// subscribed to, for the nodes want (a +notify it advertises) and, when
// before is not nil, did not want before; notified as for sendLast.
func (p *PEP) lastToLocalResource(ctx context.Context, full jid.JID, info, before *caps.Info, notified time.Time) {
	if info == nil {
		return
	}
	wanted := func(node string) bool {
		f := notifyFeature(node)
		return info.Has(f) && !before.Has(f)
	}
	user := full.Bare()
	p.sendLast(ctx, user, full, pubsub.Relation{Owner: true}, onPresence, wanted, notified)
	items, _, err := p.h.Store.Roster().Items(ctx, user.String())
	if err != nil {
		p.h.Log.Error("pep: roster", "user", user.String(), "err", err)
		return
	}
	for _, it := range items {
		if it.Subscription != storage.SubTo && it.Subscription != storage.SubBoth {
			continue
		}
		owner, err := jid.Parse(it.JID)
		if err != nil || !p.local(owner) || owner.Resource() != "" || owner.Local() == "" {
			continue
		}
		rel, err := p.relation(ctx, owner.String(), full)
		if err != nil {
			p.h.Log.Error("pep: roster", "owner", owner.String(), "err", err)
			continue
		}
		if rel.Subscriber {
			p.sendLast(ctx, owner, full, rel, onPresence, wanted, notified)
		}
	}
}

// presence observes presence a contact sends to an account of this host
// (presence/bare). From another host, it is how the service learns the
// contact's resources: a newly available one gets the last items it wants
// (XEP-0163 §4.3.3 point 2); an unavailable one is forgotten. Contacts on
// this host are known from their sessions instead.
func (p *PEP) presence(ev *module.StanzaEvent) bool {
	from, owner := ev.From, ev.To.Bare()
	if from.IsZero() || from.Bare() == owner || p.local(from) || owner.Local() == "" {
		return false
	}
	switch ev.Stanza.Attr("type") {
	case "":
	case "unavailable":
		p.untrack(owner, from)
		return false
	default:
		return false
	}
	if from.Resource() == "" {
		return false
	}
	rel, err := p.relation(ev.Ctx, owner.String(), from)
	if err != nil {
		p.h.Log.Error("pep: roster", "owner", owner.String(), "err", err)
		return false
	}
	if !rel.Subscriber {
		// Not subscribed to the account: nothing to send it, nothing to
		// remember.
		p.untrack(owner, from)
		return false
	}
	prio := 0
	if v := strings.TrimSpace(ev.Stanza.ChildText("", "priority")); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			prio = n
		}
	}
	if !p.track(owner, from, prio) || prio < 0 {
		return false
	}
	if info := p.caps.Info(from); info != nil {
		p.sendLast(ev.Ctx, owner, from, rel, onPresence, interestedIn(info), time.Time{})
	}
	// Otherwise the caps module is asking; capsChanged sends them.
	return false
}

// bounce handles an error answering a notification: XEP-0163 §4.3.1
// point 2 has errors come back to the account's bare JID so that the
// service, not the publishing client, deals with them. A resource of
// another server that bounces (gone without unavailable presence, say
// after its server lost the connection) is forgotten. The error goes on
// to the core, which drops it.
func (p *PEP) bounce(ev *module.StanzaEvent) bool {
	if ev.Stanza.Attr("type") == stanza.TypeError && !ev.From.IsZero() && ev.From.Resource() != "" &&
		!p.local(ev.From) && ev.Stanza.Child(pubsub.NSEvent, "event") != nil {
		p.untrack(ev.To.Bare(), ev.From)
	}
	return false
}

// track remembers that contact resource full is available to owner and
// reports whether it is new (was not remembered before).
func (p *PEP) track(owner, full jid.JID, prio int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.seen[owner]
	if _, ok := m[full]; ok {
		m[full] = prio
		return false
	}
	if len(m) >= MaxRecipients {
		return false
	}
	if m == nil {
		m = make(map[jid.JID]int)
		p.seen[owner] = m
	}
	m[full] = prio
	by := p.seenBy[full]
	if by == nil {
		by = make(map[jid.JID]struct{})
		p.seenBy[full] = by
	}
	by[owner] = struct{}{}
	return true
}

// untrack forgets a contact resource (a bare JID: all of the contact's).
func (p *PEP) untrack(owner, from jid.JID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.seen[owner]
	for full := range m {
		if full == from || (from.Resource() == "" && full.Bare() == from) {
			delete(m, full)
			if by := p.seenBy[full]; by != nil {
				delete(by, owner)
				if len(by) == 0 {
					delete(p.seenBy, full)
				}
			}
		}
	}
	if len(m) == 0 {
		delete(p.seen, owner)
	}
}

// recipients returns a copy of the remote resources known to owner.
func (p *PEP) recipients(owner jid.JID) map[jid.JID]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[jid.JID]int, len(p.seen[owner]))
	for k, v := range p.seen[owner] {
		out[k] = v
	}
	return out
}

// capsChanged sends the last items of nodes an entity just became
// interested in: a resource of this host (its own account's nodes and
// those of the local accounts it is subscribed to, once it is available),
// or a contact resource known to accounts of this host.
func (p *PEP) capsChanged(ch *caps.Change) bool {
	if ch.New == nil {
		return false
	}
	ctx := ch.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	full := ch.Entity
	if p.local(full) {
		// A session is told once it is available (sessionAvailable);
		// this covers capabilities learnt or changed after that.
		if s := p.h.Router.Session(full); s != nil && module.Available(s) && s.Priority() >= 0 {
			p.lastToLocalResource(ctx, full, ch.New, ch.Old, ch.At)
		}
		return false
	}
	p.mu.Lock()
	var owners []jid.JID
	for o := range p.seenBy[full] {
		if p.seen[o][full] >= 0 {
			owners = append(owners, o)
		}
	}
	p.mu.Unlock()
	wanted := func(node string) bool {
		f := notifyFeature(node)
		return ch.New.Has(f) && !ch.Old.Has(f)
	}
	for _, owner := range owners {
		rel, err := p.relation(ctx, owner.String(), full)
		if err != nil {
			p.h.Log.Error("pep: roster", "owner", owner.String(), "err", err)
			continue
		}
		if rel.Subscriber {
			p.sendLast(ctx, owner, full, rel, onPresence, wanted, ch.At)
		}
	}
	return false
}

// subscriptionChanged sends a contact that just gained a presence
// subscription to the account, and so an automatic subscription to its
// service (XEP-0163 §4.1), the last items it wants at each resource the
// service knows of (XEP-0060 §6.1.7 for new subscribers).
func (p *PEP) subscriptionChanged(ev *module.SubscriptionEvent) bool {
	had := ev.Before == storage.SubFrom || ev.Before == storage.SubBoth
	has := ev.After == storage.SubFrom || ev.After == storage.SubBoth
	if had || !has {
		return false
	}
	ctx := ev.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	rel, err := p.relation(ctx, ev.User.String(), ev.Contact)
	if err != nil {
		p.h.Log.Error("pep: roster", "owner", ev.User.String(), "err", err)
		return false
	}
	if !rel.Subscriber {
		return false
	}
	for _, r := range p.resources(ev.Contact, p.recipients(ev.User)) {
		if info := p.caps.Info(r); info != nil {
			p.sendLast(ctx, ev.User, r, rel, onSubscription, interestedIn(info), time.Time{})
		}
	}
	return false
}

// accountDeleted forgets what was remembered for a deleted account (its
// nodes went with the account's storage).
func (p *PEP) accountDeleted(ev *module.AccountEvent) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for full := range p.seen[ev.JID] {
		if by := p.seenBy[full]; by != nil {
			delete(by, ev.JID)
			if len(by) == 0 {
				delete(p.seenBy, full)
			}
		}
	}
	delete(p.seen, ev.JID)
	return false
}
