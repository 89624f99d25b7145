package c2s

import (
	"context"
	"errors"
	"slices"
	"time"

	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/sm"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// XEP-0198 resumption across the nodes of a cluster. A client whose
// connection was lost may come back through another node. That node
// (resumeRemote) asks the cluster for the session; the node holding it
// (HandOver) applies the client's h and answers with a copy of the
// session's state: the unacknowledged stanzas, the presence and the
// modules' moving values (module.MovingKey). The session stays here,
// detached and marked moving, until the cluster's registry says who holds
// its full JID: the new node binds it (the registry entry becomes its
// own) and then the session here ends as moved, telling nobody, since for
// everyone else it goes on; the stanzas queued here since the copy are
// delivered to the new node. If the new node does not bind it in time,
// the session stays here, detached, as if nothing had been asked. The
// registry decides, so a lost answer or a dead requester loses nothing.

// handoverTimeout bounds a resumption's wait for the holding node.
const handoverTimeout = 5 * time.Second

// HandOver prepares the resumable session of bare with resumption id
// previd for another node where its client resumed: it applies h, detaches
// the client's old connection if one is still attached, lets modules put
// back what they hold for the session (EventSessionMoving), and returns a
// copy of its state and finish, which the caller must call once with the
// outcome: moved (the new node holds the full JID) ends the session here,
// otherwise it stays, detached. It fails with router.ErrNoHandover when
// there is no such session (unknown, another account's, ending, already
// moving) and *router.HandoverRefused when h acknowledges more than was
// sent; the session then stays as it was.
func (srv *Server) HandOver(ctx context.Context, bare jid.JID, previd string, h uint32) (*router.Handover, func(router.HandoverOutcome), error) {
	if !srv.smOn() {
		return nil, nil, router.ErrNoHandover
	}
	s := srv.resumable.lookup(previd)
	if s == nil || s.jid.Bare() != bare {
		return nil, nil, router.ErrNoHandover
	}
	s.mu.Lock()
	if !s.waitHandledLocked(ctx) || s.closing || s.ending || s.moving || s.sm == nil || s.sm.id != previd {
		// ctx ended while a stanza was in flight: the node that asked
		// has given up, and the session stays where it is.
		s.mu.Unlock()
		return nil, nil, router.ErrNoHandover
	}
	if err := s.sm.out.Ack(h); err != nil {
		handled := s.sm.in
		s.mu.Unlock()
		e := err.(*sm.HandledCountTooHigh)
		return nil, nil, &router.HandoverRefused{H: e.H, Sent: e.Sent, Handled: handled}
	}
	// No connection from now on: nothing acknowledges, so the queue only
	// grows, and its first stanzas are the ones copied below. The old
	// connection's end is not the session's (connLost finds it detached).
	s.moving = true
	s.sm.stopTimer()
	old := s.conn
	wasAttached := old != nil
	if !wasAttached {
		// Already detached: everything queued so far was told of (push),
		// and nothing leaves the front of the queue while it moves.
		s.toldBeforeMove = len(s.sm.out.Unacked())
	}
	s.conn, s.w, s.detached = nil, nil, true
	s.mu.Unlock()
	if old != nil {
		old.closeWith(stanza.StreamConflict, "the session was resumed on another node")
	}
	s.host.Sessions.Fire(module.EventSessionMoving, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s})

	s.mu.Lock()
	ho := &router.Handover{
		JID: s.jid.String(), Sid: s.id, Handled: s.sm.in, Acked: s.sm.out.Acked(),
		Priority: s.priority, Interested: s.interested, MaxSeconds: int64(s.sm.max / time.Second),
	}
	queue := s.sm.out.Unacked()
	s.handedOver = len(queue)
	for _, el := range queue {
		ho.Unacked = append(ho.Unacked, string(el.AppendToNS(nil, stanza.NSClient)))
	}
	if s.presence != nil {
		ho.Presence = string(s.presence.AppendToNS(nil, stanza.NSClient))
	}
	for _, p := range s.values {
		if mk, ok := p.key.(module.MovingKey); ok {
			if ho.Values == nil {
				ho.Values = make(map[string]string)
			}
			ho.Values[mk.MovingName()] = mk.Encode(p.value)
		}
	}
	s.mu.Unlock()
	return ho, func(o router.HandoverOutcome) { s.settleMove(o, wasAttached) }, nil
}

// settleMove ends a moving session that the new node's session continues
// (a Close that came meanwhile is moot: the client is there now). Replaced
// by another session (a new login of the resource after the client gave
// up on the resumption), it ends as a replaced session does, its stanzas
// handled as undelivered. Otherwise it stays, detached and waiting for its
// client again: "detached" (if the client's connection was still attached
// when the handover began) or "held" (for what came during the move)
// tells push of what it keeps, and then a Close that came meanwhile is
// done.
func (s *session) settleMove(o router.HandoverOutcome, wasAttached bool) {
	if o == router.HandoverMoved {
		s.end("moved to another node", true)
		s.srv.log.Info("c2s: session handed over to another node", "jid", s.jid.String())
		return
	}
	s.mu.Lock()
	pending := s.closeAfter
	s.closeAfter = nil
	told := s.toldBeforeMove
	s.moving, s.handedOver, s.toldBeforeMove = false, 0, 0
	replaced := o == router.HandoverReplaced
	if replaced && pending == nil {
		pending = &pendingClose{cond: stanza.StreamConflict, text: "replaced by a new session with the same resource"}
	}
	if pending == nil && !s.ending {
		s.sm.detach(s) // the resumption timeout starts again
	}
	var unacked []*xml.Element
	if !replaced && !s.ending {
		unacked = slices.Clone(s.sm.out.Unacked())
	}
	s.mu.Unlock()
	// Told of also when a Close that came meanwhile ends the session now:
	// its queue is then routed again as detached leftovers, which push
	// does not tell of. Not when replaced: the client is back.
	switch {
	case replaced:
	case wasAttached:
		s.host.Sessions.Fire(module.EventSessionDetached, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s, Unacked: unacked})
	case len(unacked) > told:
		// Detached before the move: what was told of then is not told
		// again, only what was queued since the move began (Deliver
		// holds back "held" while it moves).
		s.host.Sessions.Fire(module.EventSessionHeld, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s, Unacked: unacked[told:]})
	}
	if pending != nil {
		s.close(pending.cond, pending.text, pending.drain)
	}
}

// Continues implements router.Continuing for a session bound from a
// handover ("" for any other).
func (s *session) Continues() string { return s.continues }

// smOn reports whether stream management is offered.
func (srv *Server) smOn() bool { return *srv.cfg.C2S.StreamManagement.Enabled }

// resumeRemote resumes, on this connection, a session another node holds
// (see the top of this file). It returns nil on success, having written
// wrap's elements, the unacknowledged stanzas and what was delivered to
// the session meanwhile; otherwise the <failed/> answer, having written
// nothing.
func (c *conn) resumeRemote(bare jid.JID, previd string, h uint32, wrap func(full jid.JID, resumed *xml.Element) []*xml.Element) *xml.Element {
	ctx, cancel := context.WithTimeout(context.Background(), handoverTimeout)
	asked := time.Now()
	ho, err := c.srv.router.Handover(ctx, bare, previd, h)
	cancel()
	if err == nil && time.Since(asked) > handoverTimeout {
		// The holder waits longer than this (cluster HandoverWait), but
		// an answer this late leaves too little of its wait for the bind.
		err = router.ErrNoHandover
	}
	var refused *router.HandoverRefused
	switch {
	case errors.As(err, &refused):
		return sm.Failed("undefined-condition", refused.Handled, true).
			Append((&sm.HandledCountTooHigh{H: refused.H, Sent: refused.Sent}).Element())
	case err != nil:
		return sm.Failed("item-not-found", 0, false)
	}
	full, err := jid.Parse(ho.JID)
	if err != nil || full.Bare() != bare || full.Resource() == "" {
		c.srv.log.Warn("c2s: handover with a wrong JID", "want", bare.String(), "got", ho.JID)
		return sm.Failed("item-not-found", 0, false)
	}
	lim := c.handoverLimits()
	queue := make([]*xml.Element, 0, len(ho.Unacked))
	for _, b := range ho.Unacked {
		el, err := xml.ParseElement([]byte(b), lim, stanza.NSClient)
		if err != nil {
			c.srv.log.Warn("c2s: handed-over stanza does not parse; dropped", "jid", ho.JID, "err", err)
			continue
		}
		queue = append(queue, el)
	}
	st := &smState{out: sm.Restore(c.srv.cfg.C2S.StreamManagement.MaxUnacked, ho.Acked, queue), in: ho.Handled, id: previd, max: time.Duration(ho.MaxSeconds) * time.Second}
	if st.max <= 0 || st.max > c.srv.cfg.C2S.StreamManagement.ResumeTimeout.Duration {
		st.max = c.srv.cfg.C2S.StreamManagement.ResumeTimeout.Duration
	}
	s, _, cond, text := c.bindSession(full.Resource(), &bindGate{sm: st, continues: ho.Sid})
	if s == nil {
		// The registry still names the old node's session, which stays
		// there when its wait runs out; the client binds afresh.
		c.srv.log.Warn("c2s: cannot bind a handed-over session", "jid", ho.JID, "cond", cond, "text", text)
		return sm.Failed("item-not-found", 0, false)
	}
	c.restore(s, ho)
	c.srv.resumable.register(st, s)
	first := wrap(s.jid, sm.Resumed(previd, st.in))
	first = append(first, queue...)
	s.mu.Lock()
	if s.sm.out.WantRequest() {
		first = append(first, sm.Request())
	}
	s.mu.Unlock()
	s.openGate(first...)
	c.sessionBoundHere(s, true)
	s.host.Sessions.Fire(module.EventSessionResumed, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s, Moved: true})
	c.srv.log.Info("c2s: session resumed from another node", "remote", c.t.RemoteAddr().String(), "jid", s.jid.String())
	return nil
}

// restore gives a session bound from a handover the state it had on its
// old node, and publishes it to the cluster: to everyone else it never
// went away.
func (c *conn) restore(s *session, ho *router.Handover) {
	var presence *xml.Element
	if ho.Presence != "" {
		p, err := xml.ParseElement([]byte(ho.Presence), c.handoverLimits(), stanza.NSClient)
		if err == nil {
			presence = p
		}
	}
	vals := make(values, 0, len(ho.Values))
	var shared []module.SharedKey
	for name, v := range ho.Values {
		k := c.host.MovingKeyNamed(name)
		if k == nil {
			continue // a module this node does not run
		}
		vals.set(k, k.Decode(v))
		if sk, ok := k.(module.SharedKey); ok {
			shared = append(shared, sk)
		}
	}
	s.mu.Lock()
	s.presence, s.priority, s.interested = presence, ho.Priority, ho.Interested
	s.values = vals
	s.mu.Unlock()
	c.srv.router.SessionChanged(s, nil)
	for _, k := range shared {
		c.srv.router.SessionChanged(s, k)
	}
}

// handoverLimits bound the stanzas of a handover: the server's own, some
// built by it (carbons, archive results) and bigger than a client's.
func (c *conn) handoverLimits() xml.Limits {
	lim := c.srv.cfg.Limits
	return xml.Limits{MaxStanzaBytes: 8*lim.MaxStanzaBytes + 1<<20, MaxDepth: lim.MaxDepth + 8, MaxAttrs: lim.MaxAttrs}
}
