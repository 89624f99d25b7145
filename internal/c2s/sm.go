package c2s

import (
	"context"
	"strconv"
	"sync"
	"time"

	"parley/internal/module"
	"parley/internal/sm"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// XEP-0198 stream management on client streams. The counters and the
// unacknowledged queue are package sm's; this file wires them to sessions:
// <enable/> after bind, <r/> and <a/> on the bound stream, detaching a
// session whose connection was lost, and <resume/> in place of bind on a
// new connection (any listener).
//
// Acknowledgements mean durable: the read loop counts a stanza as handled
// only after router.FromSession has returned, and routing is synchronous
// up to a live session's queue, the offline store or the archive (both
// written before they return), or an outgoing federation queue. So an <a/>
// never covers a stanza that only lives in a buffer of this process.
//
// And h never misses a stanza that was routed: a resumption (or a
// handover to another node) waits until the stanza the old connection's
// reader is routing is done and counted (session.handling), and once the
// session has left a connection, what that connection still reads is
// dropped unrouted. Otherwise a stanza racing the resumption would be
// delivered, left out of <resumed h/>, and sent again by the client.

// smState is one session's stream management; the session's mu guards it.
type smState struct {
	out *sm.Outbound
	// in counts the stanzas handled from the client (mod 2^32).
	in uint32
	// id is the resumption id; "" when the session cannot be resumed.
	id string
	// max is how long a detached session waits for its client.
	max   time.Duration
	timer *time.Timer
}

// resumable reports whether a lost connection should detach the session
// (st may be nil: stream management not enabled).
func (st *smState) resumable() bool { return st != nil && st.id != "" }

// detach starts the wait for a resumption; when it runs out the session
// ends (expire). Called with s.mu held.
func (st *smState) detach(s *session) {
	st.timer = time.AfterFunc(st.max, s.expire)
}

// stopTimer cancels a pending expiry (st may be nil).
func (st *smState) stopTimer() {
	if st != nil && st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
}

// expire ends a detached session whose client did not come back in time.
func (s *session) expire() {
	if s.endDetached("resumption timeout") {
		s.srv.log.Debug("c2s: detached session expired", "jid", s.jid.String())
	}
}

// endDetached ends s if it is detached (its resumption timeout running
// out, or a shutdown: Server.BeginShutdown) and reports whether it did:
// its unacknowledged stanzas are handled as undelivered (messages to
// offline storage, error replies to the senders of IQ requests). Marking
// it closing under mu first means a resumption racing it either attached
// before (and endDetached does nothing) or is refused.
func (s *session) endDetached(reason string) bool {
	s.mu.Lock()
	if s.conn != nil || s.ending || s.moving {
		s.mu.Unlock() // attached again, ending, or handed over (handover.go)
		return false
	}
	s.closing = true
	s.mu.Unlock()
	s.terminate(reason)
	return true
}

// resumableSessions finds sessions by resumption id, server-wide, so a
// client may resume on any listener.
type resumableSessions struct {
	mu   sync.Mutex
	byID map[string]*session
}

func (r *resumableSessions) add(id string, s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = make(map[string]*session)
	}
	r.byID[id] = s
}

func (r *resumableSessions) lookup(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// forget removes s (if it was resumable); called when s ends.
func (r *resumableSessions) forget(s *session) {
	s.mu.Lock()
	var id string
	if s.sm != nil {
		id = s.sm.id
	}
	s.mu.Unlock()
	if id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[id] == s {
		delete(r.byID, id)
	}
}

// all returns every resumable session (for shutdown).
func (r *resumableSessions) all() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.byID))
	for _, s := range r.byID {
		out = append(out, s)
	}
	return out
}

// smOn reports whether stream management is offered.
func (c *conn) smOn() bool { return c.srv.smOn() }

// handleSMBound handles an XEP-0198 element on a bound stream.
func (c *conn) handleSMBound(el *xml.Element) error {
	s := c.sess
	s.mu.Lock()
	mine := s.conn == c
	s.mu.Unlock()
	if !mine {
		// The session went on without this connection (resumed on
		// another one, or handed over to another node) and it is being
		// closed: an <a/> read from it now would acknowledge stanzas the
		// session's new connection is sending, and an <r/> would be
		// answered there.
		return nil
	}
	switch el.Local {
	case "enable":
		return c.enableSM(el)
	case "r":
		s.mu.Lock()
		on := s.sm != nil
		s.mu.Unlock()
		if !on {
			return &streamErr{cond: stanza.StreamUnsupportedStanzaType, text: "stream management is not enabled"}
		}
		// Acknowledged means stored: what modules write in the background
		// (the archive) must be durable before h covers it. If storage
		// cannot confirm that, no answer: the client asks again or
		// resumes, and re-sends what was not acknowledged.
		ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.Limits.WriteTimeout.Duration)
		err := c.host.Flush(ctx)
		cancel()
		if err != nil {
			c.srv.log.Warn("c2s: not acknowledging: storage did not confirm", "jid", s.jid.String(), "err", err)
			return nil
		}
		return c.writeSM(sm.Answer(c.handledCount()))
	case "a":
		h, ok := sm.ParseH(el.Attr("h"))
		if !ok {
			return &streamErr{cond: stanza.StreamInvalidXML, text: "h is not an unsigned 32-bit integer"}
		}
		s.mu.Lock()
		if s.sm == nil {
			s.mu.Unlock()
			return &streamErr{cond: stanza.StreamUnsupportedStanzaType, text: "stream management is not enabled"}
		}
		err := s.sm.out.Ack(h)
		s.mu.Unlock()
		if e, ok := err.(*sm.HandledCountTooHigh); ok {
			return &streamErr{cond: stanza.StreamUndefinedCondition, text: "acknowledged more stanzas than were sent", extra: e.Element()}
		}
		return nil
	case "resume":
		return c.writeSM(sm.Failed("unexpected-request", 0, false))
	default:
		return &streamErr{cond: stanza.StreamUnsupportedStanzaType, text: ""}
	}
}

// writeSM sends a stream management element on the bound stream.
func (c *conn) writeSM(el *xml.Element) error {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	if c.sess.w != nil {
		c.sess.w.Send(el)
	}
	return nil
}

// enableSM answers <enable/> (XEP-0198 §3).
func (c *conn) enableSM(el *xml.Element) error {
	st, failed := c.newSMState(el)
	if failed != nil {
		return c.writeSM(failed)
	}
	s := c.sess
	s.mu.Lock()
	if s.sm != nil {
		s.mu.Unlock()
		return c.writeSM(sm.Failed("unexpected-request", 0, false))
	}
	s.sm = st
	s.w.Send(st.enabled())
	s.mu.Unlock()
	c.srv.resumable.register(st, s)
	return nil
}

// newSMState makes the state an <enable/> asks for, or the <failed/>
// answer when stream management is off. The resumption time is the
// client's max if it asked for less than the server allows.
func (c *conn) newSMState(el *xml.Element) (*smState, *xml.Element) {
	cfg := c.srv.cfg.C2S.StreamManagement
	if !c.smOn() {
		return nil, sm.Failed("feature-not-implemented", 0, false)
	}
	st := &smState{out: sm.NewOutbound(cfg.MaxUnacked), max: cfg.ResumeTimeout.Duration}
	if r := el.Attr("resume"); (r == "true" || r == "1") && *cfg.Resume {
		st.id = sm.NewResumptionID()
		if m, err := strconv.Atoi(el.Attr("max")); err == nil && m > 0 && time.Duration(m)*time.Second < st.max {
			st.max = time.Duration(m) * time.Second
		}
	}
	return st, nil
}

// enabled is the <enabled/> answer for st.
func (st *smState) enabled() *xml.Element { return sm.Enabled(st.id, int(st.max/time.Second)) }

// register makes s resumable under st's id, if it has one.
func (r *resumableSessions) register(st *smState, s *session) {
	if st.id != "" {
		r.add(st.id, s)
	}
}

// handledCount is the h to report: stanzas handled from the client.
func (c *conn) handledCount() uint32 {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.sm.in
}

// beginHandling marks a stanza from the client in flight on c and
// reports whether c still carries the session: once it was resumed on
// another connection (or handed over), what the old connection reads is
// dropped unrouted, since the client will send it again after <resumed/>.
func (c *conn) beginHandling() bool {
	s := c.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != c {
		return false
	}
	s.handling = true
	return true
}

// endHandling ends what beginHandling began: a stanza (not a stream
// management element) counts as handled, after it was routed (see the
// file's comment), and a takeover waiting for it goes on.
func (c *conn) endHandling(stanza bool) {
	s := c.sess
	s.mu.Lock()
	if stanza && s.sm != nil {
		s.sm.in++
	}
	s.handling = false
	if s.handled != nil {
		close(s.handled)
		s.handled = nil
	}
	s.mu.Unlock()
}

// waitHandledLocked waits, releasing s.mu, until no stanza from the
// client is in flight, so that the h a takeover reports counts it; it
// reports false when ctx ends first (routing that waits on storage can
// take long: the takeover then fails rather than hang). s.mu is held
// again on return; the caller checks the session's state again.
func (s *session) waitHandledLocked(ctx context.Context) bool {
	for s.handling {
		if s.handled == nil {
			s.handled = make(chan struct{})
		}
		ch := s.handled
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			return false
		}
		s.mu.Lock()
	}
	return true
}

// handleSMPreBind handles XEP-0198 elements after authentication and
// before bind: <resume/> takes the place of resource binding, <enable/>
// must wait for it (§3).
func (c *conn) handleSMPreBind(el *xml.Element) (done bool, err error) {
	switch el.Local {
	case "resume":
		return c.resume(el)
	case "enable":
		return false, c.writeEl(sm.Failed("unexpected-request", 0, false))
	default:
		return false, &streamErr{cond: stanza.StreamUnsupportedStanzaType, text: "bind a resource first"}
	}
}

// resume continues a detached (or not yet noticed as lost) session of the
// same account on this connection (XEP-0198 §5): the stanzas the client
// reports handled leave the queue, <resumed/> tells the client what the
// server handled, and what is left of the queue is sent again, in order,
// with its original numbering. A previd this node does not know is asked
// of the other nodes of a cluster (handover.go). A previd that is
// unknown, expired, or another account's gets item-not-found, all alike,
// and without h.
func (c *conn) resume(el *xml.Element) (bool, error) {
	failed := c.resumeWith(el, func(_ jid.JID, resumed *xml.Element) []*xml.Element { return []*xml.Element{resumed} })
	if failed != nil {
		return false, c.writeEl(failed)
	}
	return true, nil
}

// resumeWith attempts the resumption el asks for. On success the
// connection carries the session and the first things written to it are
// wrap's elements (made from the session's full JID and the <resumed/>
// answer; XEP-0388 puts that answer inside its <success/>), then the
// unacknowledged stanzas; it returns nil. Otherwise it returns the
// <failed/> answer, having written nothing.
func (c *conn) resumeWith(el *xml.Element, wrap func(full jid.JID, resumed *xml.Element) []*xml.Element) *xml.Element {
	if !c.smOn() {
		return sm.Failed("feature-not-implemented", 0, false)
	}
	previd := el.Attr("previd")
	h, ok := sm.ParseH(el.Attr("h"))
	if previd == "" || !ok {
		return sm.Failed("bad-request", 0, false)
	}
	bare, err := jid.New(c.user, c.host.Domain, "")
	if err != nil {
		return sm.Failed("item-not-found", 0, false)
	}
	s := c.srv.resumable.lookup(previd)
	if s == nil {
		// Perhaps held by another node of the cluster (handover.go).
		return c.resumeRemote(bare, previd, h, wrap)
	}
	if s.jid.Bare() != bare {
		return sm.Failed("item-not-found", 0, false)
	}
	w := c.newSessionWriter(s)
	c.installWriter(w)
	wctx, cancel := context.WithTimeout(c.ctx, c.srv.cfg.Limits.WriteTimeout.Duration)
	defer cancel()
	s.mu.Lock()
	if !s.waitHandledLocked(wctx) {
		s.mu.Unlock()
		c.uninstallWriter(w)
		return sm.Failed("resource-constraint", 0, false)
	}
	if s.closing || s.ending || s.moving || s.sm == nil || s.sm.id != previd {
		s.mu.Unlock()
		c.uninstallWriter(w)
		return sm.Failed("item-not-found", 0, false)
	}
	if err := s.sm.out.Ack(h); err != nil {
		handled := s.sm.in
		s.mu.Unlock()
		c.uninstallWriter(w)
		return sm.Failed("undefined-condition", handled, true).Append(err.(*sm.HandledCountTooHigh).Element())
	}
	s.sm.stopTimer()
	old := s.attach(c, w)
	c.sess = s
	for _, first := range wrap(s.jid, sm.Resumed(previd, s.sm.in)) {
		w.Send(first)
	}
	for _, q := range s.sm.out.Unacked() {
		w.Send(q)
	}
	s.sm.out.Resumed()
	if s.sm.out.WantRequest() {
		w.Send(sm.Request())
	}
	s.mu.Unlock()
	if old != nil {
		// The client gave up on that connection; it may not know yet.
		old.closeWith(stanza.StreamConflict, "the session was resumed on another connection")
	}
	// Per-stream state that modules keep (XEP-0352 starts active again).
	s.host.Sessions.Fire(module.EventSessionResumed, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s})
	c.srv.log.Info("c2s: session resumed", "remote", c.t.RemoteAddr().String(), "jid", s.jid.String())
	return nil
}

// newSessionWriter makes the writer for s on this connection.
func (c *conn) newSessionWriter(s *session) *stream.Writer {
	lim := c.srv.cfg.Limits
	w := c.t.NewWriter(lim.OutputQueue, lim.WriteTimeout.Duration)
	w.Drains = c.srv.drains
	w.OnOverflow = func() {
		c.srv.metrics.QueueDrops.Inc()
		go s.Close(stanza.StreamPolicyViolation, "output queue overflow: the client does not read")
	}
	w.OnWrite = func(el *xml.Element) {
		if el.Space == "" { // stanzas, not stream management elements
			c.srv.metrics.CountStanzaOut(el.Local)
		}
	}
	return w
}
