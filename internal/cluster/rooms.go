package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Chat rooms live on one node at a time. The first node that routes a
// stanza to a room takes its lease (a key in the leases bucket naming the
// node and its incarnation); the lease lasts as long as that node is live,
// so it needs no renewal, and when the node dies the next node to route
// to the room takes it over with a revision check (only one can). The new
// owner serves the room from what it loaded from storage: persistent
// rooms come back, their occupants do not. So that they are not silently
// lost, every node remembers which of its own sessions joined a room held
// elsewhere and, when that holder dies, tells them they were removed
// (XEP-0045 status 332, the service went away) so that their clients
// join again.

const nsMUCUser = "http://jabber.org/protocol/muc#user"

// nsOccupantID is XEP-0421's namespace: the room's self-presence carries
// the occupant's id, which the status 332 presence repeats.
const nsOccupantID = "urn:xmpp:occupant-id:0"

type roomLease struct {
	Node string `json:"n"`
	Inc  string `json:"i"`
}

// SetRoomDomains names the chat-room services whose rooms are owned
// per room. Call before Start.
func (n *Node) SetRoomDomains(domains []string) {
	n.roomDomains = make(map[string]bool, len(domains))
	for _, d := range domains {
		n.roomDomains[d] = true
	}
}

func roomKey(room jid.JID) string { return "room." + key(room) }

// roomOwner returns the room's live owner, taking the lease when it is
// free or its holder is dead.
//
// Taking a room over is done by one goroutine of this node at a time,
// and the lease is cached (so that stanzas go to the local room service)
// only once OnRoomAcquired has reloaded the room: a stanza routed to the
// room meanwhile waits here, instead of reaching a service that would
// serve it from what it held in memory, or create the room anew.
func (n *Node) roomOwner(ctx context.Context, room jid.JID) (roomLease, error) {
	k := roomKey(room)
	var turn chan struct{}
	for turn == nil {
		n.mu.RLock()
		l, ok := n.rooms[k]
		n.mu.RUnlock()
		if ok && n.live(l.Node, l.Inc) {
			return l, nil
		}
		n.mu.Lock()
		wait, busy := n.acquiring[k]
		if !busy {
			turn = make(chan struct{})
			n.acquiring[k] = turn
		}
		n.mu.Unlock()
		if busy {
			select {
			case <-wait:
			case <-ctx.Done():
				return roomLease{}, ctx.Err()
			}
		}
	}
	defer func() {
		n.mu.Lock()
		delete(n.acquiring, k)
		n.mu.Unlock()
		close(turn)
	}()
	n.mu.Lock()
	failed, recent := n.reloadFailed[k]
	if recent && time.Since(failed) >= roomRetryAfter {
		delete(n.reloadFailed, k)
		recent = false
	}
	n.mu.Unlock()
	if recent {
		// Storage failed a moment ago: answered at once, rather than
		// each stanza costing a lease write, a read and a wait.
		return roomLease{}, errRoomNotLoaded
	}
	l, took, err := n.holder(ctx, k, false)
	if err != nil {
		return l, err
	}
	if took && n.opts.OnRoomAcquired != nil {
		// Before the stanza that made us take it is delivered. Bounded
		// by the lease time: storage that hangs rather than fails must
		// not hold the room, and every stanza for it, for ever.
		rctx, cancel := context.WithTimeout(ctx, n.opts.Lease)
		err := n.opts.OnRoomAcquired(rctx, room)
		cancel()
		if err != nil {
			gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.Lease)
			n.giveUp(gctx, k)
			cancel()
			n.mu.Lock()
			n.reloadFailed[k] = time.Now()
			n.mu.Unlock()
			return roomLease{}, fmt.Errorf("%w: %v", errRoomNotLoaded, err)
		}
	}
	n.mu.Lock()
	n.rooms[k] = l
	delete(n.reloadFailed, k)
	n.mu.Unlock()
	return l, nil
}

// errRoomNotLoaded: this node took a room's lease but could not reload
// the room, and gave the lease up (or did so less than roomRetryAfter
// ago).
var errRoomNotLoaded = errors.New("cluster: room not reloaded")

// roomRetryAfter is how long after a failed reload this node answers
// stanzas for the room with an error before it tries again.
const roomRetryAfter = time.Second

// giveUp deletes lease k if it still names this node's incarnation (a
// takeover whose reload failed), so that the next stanza for the room,
// on any node, takes it over afresh.
func (n *Node) giveUp(ctx context.Context, k string) {
	en, err := n.leases.Get(ctx, k)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			// Left in place: the next takeover here reloads the room
			// (holder treats an uncached lease of ours as taken).
			n.log.Warn("cluster: giving up a room lease", "lease", k, "err", err)
		}
		return
	}
	var l roomLease
	if json.Unmarshal(en.Value, &l) != nil || !n.mine(l) {
		return
	}
	if err := n.leases.Delete(ctx, k, en.Revision); err != nil && !errors.Is(err, ErrRevision) {
		n.log.Warn("cluster: giving up a room lease", "lease", k, "err", err)
	}
}

// awaitRoomLoad waits while this node is taking room over (roomOwner).
// Its lease is written before the room is reloaded, so another node may
// already forward a stanza for the room here, which must not reach the
// room service before the reload either. Bounded by the lease time (a
// reload that takes longer has failed its purpose anyway). It holds up
// this node's inbound subject meanwhile, which keeps the order of what
// other nodes send; the reload reads storage, never this subject.
//
// It reports whether this node serves the room: a takeover that failed,
// or a lease this node never held or gave up (another node's view of it
// is older), means the stanza must not reach the room service here.
func (n *Node) awaitRoomLoad(room jid.JID) bool {
	k := roomKey(room)
	n.mu.RLock()
	wait, busy := n.acquiring[k]
	n.mu.RUnlock()
	if busy {
		t := time.NewTimer(n.opts.Lease)
		select {
		case <-wait:
		case <-t.C:
		}
		t.Stop()
	}
	n.mu.RLock()
	l, ok := n.rooms[k]
	n.mu.RUnlock()
	return ok && n.mine(l)
}

// mine reports whether lease l names this node's current incarnation.
func (n *Node) mine(l roomLease) bool { return l.Node == n.opts.Name && l.Inc == n.incarnation() }

// bounce answers el, a stanza for a room this node could not serve, with
// a temporary internal-server-error (RFC 6120 §8.3.3.5, type wait: the
// client may retry). Only what may be answered with an error is: a
// message, an IQ request, an available presence (a join); an IQ result,
// an error, or a presence of another type (leaving, subscriptions,
// probes) is dropped.
func (n *Node) bounce(ctx context.Context, el *xml.Element, text string) {
	typ := el.Attr("type")
	switch el.Local {
	case "message":
	case "iq":
		if typ != "get" && typ != "set" {
			return
		}
	case "presence":
		if typ != "" {
			return
		}
	default:
		return
	}
	reply := stanza.ErrorReplyFor(el, &stanza.Error{Condition: stanza.InternalServerError, Type: stanza.ErrorTypeWait, Text: text})
	if reply != nil {
		n.router.Route(ctx, reply)
	}
}

// Leading reports whether this node holds the lease of a cluster-wide job
// (the archive retention purge), taking it when it is free or its holder
// is dead. A job runs where Leading is true, so on one node at a time.
func (n *Node) Leading(job string) bool {
	if !n.healthy.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	l, _, err := n.holder(ctx, "job."+base64.RawURLEncoding.EncodeToString([]byte(job)), true)
	return err == nil && n.mine(l)
}

// holder returns the live holder of lease k, taking it when it is free or
// its holder is dead (took). A lease lasts as long as its holder is live.
// With cache false a lease it took is not cached: the caller caches it
// when it is ready to act as the holder.
func (n *Node) holder(ctx context.Context, k string, cache bool) (l roomLease, took bool, err error) {
	n.mu.RLock()
	l, ok := n.rooms[k]
	n.mu.RUnlock()
	if ok && n.live(l.Node, l.Inc) {
		return l, false, nil
	}
	me := roomLease{Node: n.opts.Name, Inc: n.incarnation()}
	b, _ := json.Marshal(me)
	for attempt := 0; attempt < 10; attempt++ {
		took = false
		en, err := n.leases.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
			if _, err := n.leases.Create(ctx, k, b); err == nil {
				l, took = me, true
			} else if !errors.Is(err, ErrExists) {
				return roomLease{}, false, err
			} else {
				continue
			}
		case err != nil:
			return roomLease{}, false, err
		default:
			if json.Unmarshal(en.Value, &l) != nil || !n.live(l.Node, l.Inc) {
				if _, err := n.leases.Update(ctx, k, b, en.Revision); err != nil {
					if errors.Is(err, ErrRevision) {
						continue
					}
					return roomLease{}, false, err
				}
				l, took = me, true
			} else if l == me {
				// Ours, yet not cached (the caches were checked first): a
				// write that failed after it was applied, or a lease a
				// failed takeover could not give up. Taken now, so a
				// room is reloaded before it is served.
				took = true
			}
		}
		if cache || !took {
			n.mu.Lock()
			n.rooms[k] = l
			n.mu.Unlock()
		}
		return l, took, nil
	}
	return roomLease{}, false, errors.New("cluster: lease contended")
}

// Forward implements router.Bus for room JIDs.
func (n *Node) Forward(ctx context.Context, el *xml.Element, from, to jid.JID) bool {
	if !n.healthy.Load() {
		return false
	}
	if n.compDomains[to.Domain()] {
		if n.compConnected(to.Domain()) {
			return false
		}
		node, ok := n.componentHolder(ctx, to.Domain())
		if !ok {
			return false
		}
		n.forward(node, el, from, to)
		return true
	}
	if to.Local() == "" || !n.roomDomains[to.Domain()] {
		return false
	}
	room := to.Bare()
	l, err := n.roomOwner(ctx, room)
	if err != nil {
		// Not served here from whatever this node holds: that could be
		// a second copy of a room another node serves, or one that
		// missed its reload.
		n.log.Warn("cluster: room owner", "room", room.String(), "err", err)
		n.bounce(ctx, addressed(el, from, to), "the room is unavailable for the moment; try again")
		return true
	}
	n.log.Debug("cluster: room owner", "room", room.String(), "owner", l.Node)
	if l.Node == n.opts.Name {
		return false
	}
	if el.Local == "presence" && from.Resource() != "" && n.router.LocalSession(from) != nil {
		n.noteOccupant(room, from, to, el.Attr("type"))
	}
	n.forward(l.Node, el, from, to)
	return true
}

// addressed returns el with the routing addresses it was routed with,
// where it lacks them (stanzas from local clients carry no 'to' for
// their own server, from components no 'from' until stamped): another
// node, or an error reply, needs both.
func addressed(el *xml.Element, from, to jid.JID) *xml.Element {
	if el.Attr("from") == "" {
		el = el.WithAttr("from", from.String())
	}
	if el.Attr("to") == "" {
		el = el.WithAttr("to", to.String())
	}
	return el
}

// forward publishes a stanza for a component-served JID to node.
func (n *Node) forward(node string, el *xml.Element, from, to jid.JID) {
	el = addressed(el, from, to)
	if err := n.eng.Publish(subjectPrefix+node, Msg{Op: "component", To: to.String(), Body: el.AppendToNS(nil, contentNS)}); err != nil {
		n.log.Warn("cluster: forward", "to", to.String(), "node", node, "err", err)
		return
	}
	n.m.sent.Inc()
}

// occupant is a local session in a room held by another node.
type occupant struct {
	user jid.JID // the session
	nick jid.JID // room@service/nick
	node string  // the room's holder when it joined
	inc  string
	// joined: the room confirmed the join (self-presence, status 110).
	// Until then the occupant is pending: a refusal removes it, and the
	// holder's death still tells it (its client is waiting for an
	// answer that will not come).
	joined bool
	// oid: the XEP-0421 occupant id the room's self-presence carried,
	// for the status 332 presence, which speaks for the room and so
	// carries it too (XEP-0421 §4: every presence a room sends).
	oid string
}

// noteOccupant records the presence a local session sends to a room held
// elsewhere: available makes it a pending occupant (unless it is one
// already: a nick change or a status update), unavailable removes it.
func (n *Node) noteOccupant(room, from, to jid.JID, typ string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch typ {
	case "":
		if _, ok := n.occupants[room][from]; !ok {
			n.setOccupantLocked(room, occupant{user: from, nick: to})
		}
	case "unavailable":
		n.dropOccupantLocked(room, from)
	}
}

// roomAnswered reads what a room held elsewhere sends a local session
// (forwarded to this node): its self-presence (status 110) confirms the
// occupant under the nick the room gave it, a self-presence of type
// unavailable (left, kicked, banned, nick changed, room destroyed)
// removes it, and an error removes a pending one (the join was refused;
// an occupant already in stays in when a nick change is refused).
func (n *Node) roomAnswered(el *xml.Element, to jid.JID) {
	if el.Local != "presence" {
		return
	}
	nick, err := jid.Parse(el.Attr("from"))
	if err != nil || nick.Local() == "" || !n.roomDomains[nick.Domain()] {
		return
	}
	room := nick.Bare()
	n.mu.Lock()
	defer n.mu.Unlock()
	switch el.Attr("type") {
	case "":
		if selfPresence(el) {
			oid := ""
			if c := el.Child(nsOccupantID, "occupant-id"); c != nil {
				oid = c.Attr("id")
			}
			n.setOccupantLocked(room, occupant{user: to, nick: nick, joined: true, oid: oid})
		}
	case "unavailable":
		if selfPresence(el) {
			n.dropOccupantLocked(room, to)
		}
	case "error":
		if o, ok := n.occupants[room][to]; ok && !o.joined {
			n.dropOccupantLocked(room, to)
		}
	}
}

// selfPresence reports a MUC presence about its recipient (XEP-0045
// status 110).
func selfPresence(el *xml.Element) bool {
	x := el.Child(nsMUCUser, "x")
	if x == nil {
		return false
	}
	for _, st := range x.Elements() {
		if st.Space == nsMUCUser && st.Local == "status" && st.Attr("code") == "110" {
			return true
		}
	}
	return false
}

// setOccupantLocked records o in room with the room's holder as this
// node knows it (from its lease cache, or the earlier record's); with
// neither there is no holder to watch, and nothing is recorded. Called
// with n.mu held.
func (n *Node) setOccupantLocked(room jid.JID, o occupant) {
	m := n.occupants[room]
	if l, ok := n.rooms[roomKey(room)]; ok {
		o.node, o.inc = l.Node, l.Inc
	} else if old, ok := m[o.user]; ok {
		o.node, o.inc = old.node, old.inc
	} else {
		return
	}
	if m == nil {
		m = make(map[jid.JID]occupant)
		n.occupants[room] = m
	}
	m[o.user] = o
}

// dropOccupantLocked forgets user in room. Called with n.mu held.
func (n *Node) dropOccupantLocked(room, user jid.JID) {
	m := n.occupants[room]
	delete(m, user)
	if len(m) == 0 {
		delete(n.occupants, room)
	}
}

// orphans tells local occupants of rooms whose holder died that they are
// out (status 332), so their clients rejoin on the room's next holder.
func (n *Node) orphans() {
	type gone struct {
		room jid.JID
		o    occupant
	}
	var out []gone
	n.mu.Lock()
	for room, m := range n.occupants {
		for u, o := range m {
			if !n.liveLocked(o.node, o.inc) {
				out = append(out, gone{room, o})
				delete(m, u)
			}
		}
		if len(m) == 0 {
			delete(n.occupants, room)
		}
	}
	n.mu.Unlock()
	for _, g := range out {
		s := n.router.LocalSession(g.o.user)
		if s == nil {
			continue
		}
		// The children of <x/> are in its namespace: an element's ""
		// space is the stream's (jabber:client), not its parent's.
		p := xml.New("", "presence").SetAttr("from", g.o.nick.String()).SetAttr("to", g.o.user.String()).
			SetAttr("type", "unavailable").Append(xml.New(nsMUCUser, "x").Append(
			xml.New(nsMUCUser, "item").SetAttr("affiliation", "none").SetAttr("role", "none"),
			xml.New(nsMUCUser, "status").SetAttr("code", "332"),
			xml.New(nsMUCUser, "status").SetAttr("code", "110")))
		if g.o.oid != "" {
			p.Append(xml.New(nsOccupantID, "occupant-id").SetAttr("id", g.o.oid))
		}
		s.Send(p)
	}
}
