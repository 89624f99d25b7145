package c2s

import (
	"sync"

	"parley/internal/module"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// session is one client connection after resource binding; it implements
// module.Session. The connection goroutine reads, the stream.Writer writes.
type session struct {
	conn *conn
	jid  jid.JID
	w    *stream.Writer

	mu         sync.Mutex
	presence   *xml.Element
	priority   int
	interested bool
	values     map[any]any
	closed     bool
}

var _ module.Session = (*session)(nil)

func (s *session) JID() jid.JID { return s.jid }
func (s *session) ID() string   { return s.conn.id }

// SetJID is called by router.Bind before the session becomes visible
// (router.JIDReceiver); jid is not written again.
func (s *session) SetJID(full jid.JID) { s.jid = full }

// Send runs the host's Outbound hooks (a module may hold the stanza back)
// and queues what they leave.
func (s *session) Send(el *xml.Element) {
	if s.conn.host.Outbound.Fire(module.EventOutbound, &module.OutboundEvent{Host: s.conn.host, Session: s, Stanza: el}) {
		return
	}
	s.Deliver(el)
}

// Deliver queues el without the Outbound hooks (module.Session).
func (s *session) Deliver(el *xml.Element) {
	s.w.Send(el)
}

// Close ends the session with a stream error condition (or a clean close
// when cond is ""). Safe to call from any goroutine, any number of times.
func (s *session) Close(cond stanza.StreamCondition, text string) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.conn.closeWith(cond, text)
}

// CloseDrained ends the session with a stream error after writing every
// stanza already queued: XEP-0077 §3.2 answers <remove/> with a result and
// then ends the stream with not-authorized, and the result must not be lost.
func (s *session) CloseDrained(cond stanza.StreamCondition, text string) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.conn.endStream(cond, text, true)
}

func (s *session) Presence() *xml.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

func (s *session) SetPresence(p *xml.Element) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence = p
	s.priority = 0
	if p != nil {
		s.priority = parsePriority(p.ChildText("", "priority"))
	}
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
	defer s.mu.Unlock()
	s.interested = v
}

func (s *session) Value(key any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[key]
}

func (s *session) SetValue(key, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = make(map[any]any)
	}
	s.values[key] = value
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
