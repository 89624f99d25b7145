package c2s

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"

	"parley/internal/module"
	"parley/internal/sm"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// session is a bound resource; it implements module.Session. It usually
// lives exactly as long as its connection, but with XEP-0198 resumption it
// can outlive one connection (detached, waiting) and continue on another,
// so the connection is a field that changes, not the session's identity.
//
// Lock order: session.mu, then conn.mu, then the stream.Writer's mutex.
// Nothing is called out of the package (router, hooks, storage) with mu
// held.
type session struct {
	srv  *Server
	host *module.Host
	ctx  context.Context
	id   string  // stream ID of the connection that bound the resource
	jid  jid.JID // set once by router.Bind (SetJID)
	// done is closed when terminate has finished (the router forgot the
	// session and the unbound hooks ran): a bind that replaces it waits.
	done chan struct{}

	mu sync.Mutex
	// conn and w are the attached connection and its writer; both nil
	// while the session is detached or after it ended.
	conn *conn
	w    *stream.Writer
	// sm is the XEP-0198 state once the client enabled it; nil before.
	sm *smState
	// gated: the session is bound but its client has not yet been told
	// (XEP-0386 binds inside the SASL2 <success/>, which must be the
	// first thing the client reads); what is delivered meanwhile waits
	// in gate, in order, until openGate (bind2.go).
	gated bool
	gate  []*xml.Element
	// closing: Close was called, so the end of the connection is the end
	// of the session (no detaching); ending: terminate has begun; ended:
	// the router no longer knows the session, and what still arrives is
	// handled as undelivered.
	closing, ending, ended bool
	// detached: the connection was lost and the session waits for a
	// resumption (connLost); an attach ends that.
	detached bool
	// handling: the attached connection's reader is routing a stanza
	// from the client (beginHandling to endHandling); handled is closed
	// when it is done, for a resumption or handover waiting to take the
	// session over (nil when none waits). Taking over while a stanza is
	// in flight would report an h without it, and the client would send
	// it again: delivered twice.
	handling bool
	handled  chan struct{}
	// moving: the session is being handed over to another node
	// (handover.go) until the cluster says whether it moved; handedOver
	// is how many queued stanzas went with the handover. A Close meanwhile
	// is kept in closeAfter and done if the session stays.
	moving     bool
	handedOver int
	// toldBeforeMove is how many queued stanzas a session detached before
	// its move had told of ("detached" or "held") when the move began;
	// if it stays, the rest are told of then.
	toldBeforeMove int
	closeAfter     *pendingClose
	// continues is the ID of the session on another node this one was
	// handed over from (set before it is bound; router.Continuing).
	continues string

	presence   *xml.Element
	priority   int
	interested bool
	values     values
}

var _ module.Session = (*session)(nil)

func (s *session) JID() jid.JID { return s.jid }
func (s *session) ID() string   { return s.id }

// SetJID is called by router.Bind before the session becomes visible
// (router.JIDReceiver); jid is not written again.
func (s *session) SetJID(full jid.JID) { s.jid = full }

// Send runs the host's Outbound hooks (a module may hold the stanza back)
// and queues what they leave.
func (s *session) Send(el *xml.Element) {
	if s.host.Outbound.Fire(module.EventOutbound, &module.OutboundEvent{Host: s.host, Session: s, Stanza: el}) {
		return
	}
	s.Deliver(el)
}

// Deliver queues el without the Outbound hooks (module.Session). With
// stream management the stanza is also kept until the client acknowledges
// it, and while the session is detached it is only kept. A stanza that
// reaches a session that has already ended is handled as undelivered.
func (s *session) Deliver(el *xml.Element) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		s.srv.undelivered(s, []*xml.Element{el})
		return
	}
	full := false
	if s.sm != nil {
		full = s.sm.out.Push(el) != nil
	}
	overflow, held := false, false
	switch {
	case s.gated:
		s.gate = append(s.gate, el)
		overflow = len(s.gate) > s.srv.cfg.Limits.OutputQueue
	case s.w != nil:
		// Under mu, so the writer's order is the order of the
		// unacknowledged queue (a resumption re-sends in that order).
		s.w.Send(el)
		if s.sm != nil && !full && s.sm.out.WantRequest() {
			s.w.Send(sm.Request())
		}
	default:
		// Decided under mu, where connLost takes the "detached" snapshot:
		// each stanza is either in that snapshot or told of here, never
		// neither. While moving, the client is on another node.
		held = s.detached && !s.moving
	}
	s.mu.Unlock()
	if overflow {
		s.Close(stanza.StreamPolicyViolation, "output queue overflow: the client does not read")
		return
	}
	if held && s.host.Sessions.Has(module.EventSessionHeld) {
		// Even when it overflows the queue: it is in the queue, which
		// the close below hands on as leftovers push does not tell of.
		s.host.Sessions.Fire(module.EventSessionHeld, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s, Unacked: []*xml.Element{el}})
	}
	if full {
		// Drained, unlike other stream errors: a client this far behind
		// with its acknowledgements may still be reading, and what was
		// queued to it (up to this stanza) is written before the error,
		// within write_timeout. It all stays unacknowledged, so the
		// session's end still hands it on as undelivered (offline
		// storage, error replies): written and kept, never neither.
		s.CloseDrained(stanza.StreamResourceConstraint, "too many unacknowledged stanzas")
	}
}

// Close ends the session with a stream error condition (or a clean close
// when cond is ""). Safe to call from any goroutine, any number of times.
// A detached session has no stream to close and ends at once.
func (s *session) Close(cond stanza.StreamCondition, text string) {
	s.close(cond, text, stream.DrainsOnEnd(cond))
}

// CloseDrained ends the session with a stream error after writing every
// stanza already queued: XEP-0077 §3.2 answers <remove/> with a result and
// then ends the stream with not-authorized, and the result must not be
// lost; and a client over max_unacked gets what was queued to it (Deliver).
func (s *session) CloseDrained(cond stanza.StreamCondition, text string) {
	s.close(cond, text, true)
}

func (s *session) close(cond stanza.StreamCondition, text string, drain bool) {
	s.mu.Lock()
	if s.moving {
		// Whether it still exists here is not known yet: a move makes
		// the close moot (the client is elsewhere), a stay does it.
		s.closeAfter = &pendingClose{cond, text, drain}
		s.mu.Unlock()
		return
	}
	s.closing = true
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.endStream(cond, text, drain) // its cleanup ends the session
		return
	}
	s.terminate(string(cond))
}

// attach makes c the session's connection with writer w (at bind, or at
// a resumption) and returns the connection it replaces, if any.
func (s *session) attach(c *conn, w *stream.Writer) (old *conn) {
	old = s.conn
	s.conn, s.w = c, w
	s.detached = false
	return old
}

// connLost is called by c's cleanup once c is closed and its writer has
// stopped. If c is still the session's connection, the session either
// detaches (stream management with resumption, the connection was lost
// rather than closed on purpose) or ends.
func (s *session) connLost(c *conn, transportLost bool) {
	s.mu.Lock()
	if s.conn != c {
		s.mu.Unlock() // resumed elsewhere: the session lives on there
		return
	}
	s.conn, s.w = nil, nil
	if transportLost && !s.closing && !s.ending && s.sm.resumable() {
		s.sm.detach(s)
		s.detached = true
		unacked := slices.Clone(s.sm.out.Unacked())
		s.mu.Unlock()
		s.srv.log.Debug("c2s: session detached, waiting for resumption", "jid", s.jid.String(), "unacked", len(unacked))
		s.host.Sessions.Fire(module.EventSessionDetached, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s, Unacked: unacked})
		return
	}
	s.mu.Unlock()
	s.terminate("")
}

// terminate ends the session once: the router forgets it, the gauge and
// the unbound hooks are told, and the stanzas the client never
// acknowledged are handled as undelivered (RFC 6121, as if the resource
// had been offline).
func (s *session) terminate(reason string) { s.end(reason, false) }

// end is terminate; moved ends a session handed over to another node
// (handover.go): the unbound hooks learn it moved and tell nobody, the
// stanzas that went with the handover are dropped here, and those queued
// since are delivered to the session on its new node.
func (s *session) end(reason string, moved bool) {
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		return
	}
	s.ending = true
	s.sm.stopTimer()
	s.mu.Unlock()

	s.srv.router.Unbind(s, s.jid)
	s.srv.resumable.forget(s)
	s.mu.Lock()
	s.ended = true
	var unacked []*xml.Element
	if s.sm != nil {
		unacked = s.sm.out.Take()
	}
	handedOver := s.handedOver
	ctx := s.ctx
	if s.detached && !s.moving {
		// Each was told of ("detached" or "held"). Not so what a session
		// that moved routes again (its new node's session is gone): it
		// came after the copy, while it moved.
		ctx = module.WithDetachedLeftovers(ctx)
	}
	s.mu.Unlock()

	s.srv.metrics.Sessions.WithLabelValues(s.host.Domain).Dec()
	s.host.Sessions.Fire(module.EventSessionUnbound, &module.SessionEvent{Ctx: s.ctx, Host: s.host, Session: s, Reason: reason, Moved: moved})
	close(s.done)
	if moved {
		// Already routed once (hooks, archive, carbons): handed to the
		// session on its new node as they are.
		rest := unacked[min(handedOver, len(unacked)):]
		if len(rest) == 0 {
			return
		}
		if to := s.srv.router.Session(s.jid); to != nil {
			for _, el := range rest {
				to.Deliver(el)
			}
			return
		}
		unacked = rest
	}
	s.srv.undeliveredIn(ctx, s, unacked)
}

// pendingClose is a Close that waits for a handover's outcome.
type pendingClose struct {
	cond  stanza.StreamCondition
	text  string
	drain bool
}

func (s *session) Presence() *xml.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

func (s *session) SetPresence(p *xml.Element) {
	s.mu.Lock()
	s.presence = p
	s.priority = 0
	if p != nil {
		s.priority = parsePriority(p.ChildText("", "priority"))
	}
	s.mu.Unlock()
	s.srv.router.SessionChanged(s, nil) // the cluster's copy
}

func (s *session) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}

func (s *session) Interested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}

func (s *session) SetInterested(v bool) {
	s.mu.Lock()
	s.interested = v
	s.mu.Unlock()
	s.srv.router.SessionChanged(s, nil)
}

func (s *session) Value(key any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values.get(key)
}

func (s *session) SetValue(key, value any) {
	s.mu.Lock()
	s.values.set(key, value)
	s.mu.Unlock()
	if _, ok := key.(module.SharedKey); ok {
		s.srv.router.SessionChanged(s, key)
	}
}

// parsePriority reads RFC 6121 §4.7.2.3 priority: an integer -128..127,
// anything else counts as 0.
func parsePriority(s string) int {
	if s == "" {
		return 0
	}
	n, neg := 0, false
	for i, c := range s {
		switch {
		case i == 0 && (c == '-' || c == '+'):
			neg = c == '-'
		case c >= '0' && c <= '9':
			n = n*10 + int(c-'0')
			if n > 128 {
				return 0
			}
		default:
			return 0
		}
	}
	if neg {
		n = -n
	}
	if n < -128 || n > 127 {
		return 0
	}
	return n
}

// RemoteAddr is the network address of the attached connection (the
// console's session lists show it), nil while the session is detached.
func (s *session) RemoteAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.t.RemoteAddr()
}

// values holds what modules keep per session (SetValue). A session has a
// handful, one per module that keeps anything, so a slice of pairs
// scanned in order does as well as a map at this size and is much
// smaller: at 10,000 idle sessions with roster and presence the map was
// about 500 bytes of each session's heap, the slice about 100, and an
// idle session is mostly such fixed costs.
type values []valuePair

type valuePair struct{ key, value any }

func (vs values) index(key any) int {
	return slices.IndexFunc(vs, func(p valuePair) bool { return p.key == key })
}

func (vs values) get(key any) any {
	if i := vs.index(key); i >= 0 {
		return vs[i].value
	}
	return nil
}

func (vs *values) set(key, value any) {
	if i := vs.index(key); i >= 0 {
		(*vs)[i].value = value
		return
	}
	*vs = append(*vs, valuePair{key, value})
}

// archiveQueries are the XEP-0313 queries a session sent to an archive at
// a bare JID other than its account's own, a chat room's above all: at
// most maxArchiveQueries, oldest first. A result of one of them that the
// client never acknowledged, or that reaches the session after it ended,
// answered this session's question and is dropped then, not routed again
// (offline storage would replay it to every later login); see
// Server.undelivered. A result answers a query when it comes from the JID
// the query went to and carries the query's queryid. Only the archive
// there can send from that bare JID (a client's stanzas carry its full
// JID, a room's occupants their occupant JIDs), and only for a query the
// session issued, so nobody can make a message of theirs disappear by
// dressing it up as a result. Past the cap the oldest query is forgotten:
// a result of it still unacknowledged at the end is stored offline, as
// before this tracking, which costs a replay, never a message. Query ids
// longer than maxQueryIDBytes are not tracked at all (the same fallback),
// so the set stays small: at most 16 pairs of a JID and a short id. A
// session keeps them among its values (archiveQueriesKey), not in a field
// of its own: most sessions never query another archive, and a field
// would take every session's struct into the next allocation size class.
type archiveQueries []archiveQuery

// archiveQueriesKey is the session value holding its archiveQueries.
type archiveQueriesKey struct{}

// archiveQuery is one query: the archive's JID (canonical) and the
// queryid ("" when the client gave none; its results carry none either).
type archiveQuery struct{ archive, id string }

// The bounds of archiveQueries. Clients page through one archive at a
// time; 16 covers a catch-up over several rooms.
const (
	maxArchiveQueries = 16
	maxQueryIDBytes   = 256
)

// noteArchiveQuery records iq, a request from the client to to, if it is
// an archive query of another JID than the account's own (whose results
// isQueryResult recognises by their sender alone). It runs before the
// query is routed: a local room answers while it is being routed.
func (s *session) noteArchiveQuery(iq *xml.Element, to jid.JID) {
	if iq.Attr("type") != stanza.TypeSet || !to.IsBare() || to == s.jid.Bare() {
		return
	}
	q := iq.FirstElement()
	if q == nil || q.Local != "query" || !strings.HasPrefix(q.Space, nsMAMPrefix) {
		return
	}
	id := q.Attr("queryid")
	if len(id) > maxQueryIDBytes {
		return
	}
	// Copies: the element's strings share one allocation with the whole
	// stanza, which the session must not keep alive.
	aq := archiveQuery{archive: strings.Clone(to.String()), id: strings.Clone(id)}
	s.mu.Lock()
	defer s.mu.Unlock()
	qs, _ := s.values.get(archiveQueriesKey{}).(archiveQueries)
	if slices.Contains(qs, aq) {
		return
	}
	if len(qs) == maxArchiveQueries {
		qs = slices.Delete(qs, 0, 1)
	}
	s.values.set(archiveQueriesKey{}, append(qs, aq))
}

// answersQuery reports whether el is a result of an archive query this
// session sent (noteArchiveQuery).
func (s *session) answersQuery(el *xml.Element) bool {
	res := mamResult(el)
	if res == nil {
		return false
	}
	from, err := jid.Parse(el.Attr("from"))
	if err != nil || !from.IsBare() {
		return false
	}
	aq := archiveQuery{archive: from.String(), id: res.Attr("queryid")}
	s.mu.Lock()
	defer s.mu.Unlock()
	qs, _ := s.values.get(archiveQueriesKey{}).(archiveQueries)
	return slices.Contains(qs, aq)
}
