package bosh

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"parley/internal/httpfront"
	"parley/internal/stream"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// flushDelay is how long output waits for more output before it is sent in
// the response to a held request. c2s's writer hands over one element per
// Write, and a burst (a roster, presences on login) would otherwise go out
// one element per HTTP round trip; a couple of milliseconds gathers it into
// one body at no cost a person could notice.
const flushDelay = 2 * time.Millisecond

// flushBytes: output this large goes out without waiting for more.
const flushBytes = 64 << 10

// reportAfter is how old the response a client has not acknowledged must be
// before the next response reports it (XEP-0124 §9.2): a younger one may
// simply still be on its way.
const reportAfter = 3 * time.Second

// maxInputFactor bounds the client input c2s has not read yet, in
// multiples of the largest body: the rate limit keeps a client from
// outrunning c2s, so reaching it means something is wrong.
const maxInputFactor = 4

// session is one BOSH session and the client stream it carries: it is the
// c2s.Transport of that stream (transport.go). mu guards everything that
// changes; the fields above it are fixed at creation.
type session struct {
	h       *Handler
	sid     string
	remote  net.Addr
	tls     *tls.ConnectionState
	secure  bool
	release func() // the per-address slot
	rate    *rate.Limiter

	wait, inactivity, polling time.Duration
	hold, requests            int
	// legacy: the client sent no 'ver', so terminal conditions it must
	// understand are HTTP errors (XEP-0124 §17.1).
	legacy      bool
	ver         string
	contentType string
	lang, to    string
	version     string // xmpp:version the client asked for
	from        string // the client's 'from', its JID

	// done is closed when the session ends; readers and writers blocked
	// on it then return.
	done chan struct{}

	mu sync.Mutex
	// nextRID is the request ID to process next; rids below it were
	// processed (their responses may be in cache or still held).
	nextRID uint64
	// key is the key the next request's 'key' must hash to (XEP-0124
	// §15), "" while the client uses none.
	key string
	// held are the processed requests not answered yet, in rid order;
	// waiting are requests that arrived ahead of a gap in the rids.
	held    []*request
	waiting map[uint64]*request
	// cache keeps the last responses for retransmission (§14.3).
	cache []cached
	// lastResponse is when a response last went out; idleFor is how long
	// the client may then hold no request (inactivity, or a pause).
	lastResponse time.Time
	idleFor      time.Duration
	// prev is the previous request processed, for the polling rule.
	prev *request
	// timer does all of the session's timekeeping: flushing gathered
	// output, ending held requests' waits, inactivity, forgetting a
	// finished session's last words.
	timer *time.Timer

	// in is what c2s reads: payloads, stream restarts, the end. inBytes
	// counts the request bytes behind it; inReady signals a new item to
	// the one reader.
	in           []inItem
	inBytes      int
	inReady      chan struct{}
	readDeadline time.Time

	// out is the encoded output waiting for a request; outStream says
	// whether it holds stream-level elements; flushAt is when it goes out
	// even if no more comes. space is closed (and replaced) whenever out
	// is drained, waking writers waiting for room.
	out           [][]byte
	outBytes      int
	outStream     bool
	flushAt       time.Time
	space         chan struct{}
	maxItems      int // limits.output_queue, known once c2s makes its writer
	writeDeadline time.Time

	// hdr is c2s's side of the stream (from, id, version): the creation
	// response's from, authid and xmpp:version.
	hdr xml.StreamHeader
	// streamErr is the stream error c2s ended the stream with, encoded.
	streamErr []byte
	// ending: c2s has begun to end the stream (End); terminating: the
	// client asked to end the session; closed: the session has ended.
	ending, terminating, closed bool
	// final is the last response of a session that ended with output or
	// a stream error while no request was there to carry it; the next
	// request gets it, until finalUntil.
	final      *reply
	finalUntil time.Time
}

// cached is a response kept for retransmission, with the key of the
// request that got it (a retransmission is an exact copy).
type cached struct {
	rid    uint64
	key    string
	rep    reply
	sentAt time.Time
}

// inItem is one thing c2s reads from the session.
type inItem struct {
	el      *xml.Element
	header  *xml.StreamHeader // a new stream: creation or xmpp:restart
	closing bool              // the client terminated the session
	size    int
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, req *request) {
	b := req.body
	legacy := b.Attr("ver") == ""
	refuse := func(cond string) {
		status := http.StatusOK
		if legacy {
			status = legacyStatus(cond)
		}
		h.write(w, rc, defaultContentType, reply{status: status, body: terminateBody(cond)})
	}
	wait, hasWait, err1 := seconds(b, "wait")
	hold, hasHold, err2 := seconds(b, "hold")
	if err1 != nil || err2 != nil || req.restart || req.terminate || req.hasPause || len(b.Children) > 0 {
		refuse(condBadRequest)
		return
	}
	if b.Attr("to") == "" {
		refuse(condImproperAddress)
		return
	}
	addr := httpfront.ClientAddr(r)
	release, ok := h.perIP.Acquire(addr)
	if !ok {
		h.log.Debug("bosh: too many sessions from one address", "remote", addr.String())
		refuse(condPolicyViolation)
		return
	}
	cfg := h.cfg
	s := &session{
		h: h, sid: stream.NewID(), remote: addr, tls: sanitizeTLS(r.TLS), secure: httpfront.Secure(r), release: release,
		legacy: legacy, ver: lowerVersion(b.Attr("ver"), protocolVersion),
		contentType: contentType(b.Attr("content")),
		to:          b.Attr("to"), from: b.Attr("from"), lang: b.Lang(),
		version: nsAttr(b, NSXBOSH, "version"),
		done:    make(chan struct{}), inReady: make(chan struct{}, 1), space: make(chan struct{}),
		nextRID: req.rid, waiting: make(map[uint64]*request), lastResponse: time.Now(),
	}
	if s.version == "" {
		s.version = "1.0" // the XEP-0206 schema's default
	}
	s.wait = cfg.MaxWait
	if hasWait && time.Duration(wait)*time.Second < s.wait {
		s.wait = time.Duration(wait) * time.Second
	}
	s.hold = 1
	if hasHold {
		s.hold = hold
	}
	s.hold = min(s.hold, cfg.MaxHold)
	if s.wait == 0 {
		s.hold = 0 // 'wait' 0 asks for polling as much as 'hold' 0 does
	}
	s.requests = s.hold + 1
	s.inactivity = cfg.Inactivity
	if s.hold == 0 {
		// A polling client is idle between polls by design (§12).
		s.inactivity += cfg.Polling
	}
	s.polling = cfg.Polling
	s.idleFor = s.inactivity
	if cfg.RateBytesPerSecond > 0 {
		s.rate = rate.NewLimiter(rate.Limit(cfg.RateBytesPerSecond), max(cfg.RateBurstBytes, 1))
	}
	s.timer = time.AfterFunc(time.Hour, s.tick)
	h.mu.Lock()
	h.sessions[s.sid] = s
	h.mu.Unlock()
	// The session holds the creation request before its stream starts,
	// so a server shutting down, which refuses the stream at once, ends
	// the session with that request still there to carry system-shutdown.
	ch := s.handle(req)
	go func() {
		// This goroutine is the stream's read loop for its whole life.
		if !h.srv.ServeTransport(s) {
			s.mu.Lock()
			s.finishLocked(condSystemShutdown, true)
			s.mu.Unlock()
		}
	}()
	h.answer(w, r, rc, s, ch)
}

// sanitizeTLS keeps what c2s may rely on across the HTTP connections of a
// session: that it is encrypted and under which name. Nothing tied to the
// one connection the session happened to be created on goes through: no
// tls-exporter channel binding (later requests may use other connections,
// so SCRAM-PLUS would fail) and no client certificate (EXTERNAL would bind
// the session to a connection it does not stay on).
func sanitizeTLS(st *tls.ConnectionState) *tls.ConnectionState {
	if st == nil || !st.HandshakeComplete {
		return nil
	}
	return &tls.ConnectionState{
		Version: st.Version, HandshakeComplete: true, CipherSuite: st.CipherSuite,
		ServerName: st.ServerName, NegotiatedProtocol: st.NegotiatedProtocol,
	}
}

// contentType is the Content-Type the client's 'content' asks for
// (XEP-0124 §7.1), if it is a well-formed media type that fits in a
// header; otherwise the default.
func contentType(v string) string {
	if v == "" || len(v) > 128 {
		return defaultContentType
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return defaultContentType
		}
	}
	if _, _, err := mime.ParseMediaType(v); err != nil {
		return defaultContentType
	}
	return v
}

// handle takes a request of this session and returns the channel its reply
// comes on.
func (s *session) handle(req *request) chan reply {
	ch := make(chan reply, 1)
	req.ch = ch
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if s.final != nil {
			send(ch, *s.final)
			s.final = nil
			s.h.remove(s)
		} else {
			send(ch, s.terminalReply(condItemNotFound))
		}
		return ch
	}
	limit := s.requests
	if req.hasPause || req.terminate {
		limit++ // one more request may pause or end the session (§11)
	}
	switch {
	case req.rid < s.nextRID:
		s.retransmit(req)
	case req.rid > s.nextRID-1+uint64(limit):
		// Beyond the window (§14.2): the same answer as a rid too old,
		// so an attacker learns nothing about the window's place.
		s.fail(req, condItemNotFound)
	case s.waiting[req.rid] != nil:
		// A retransmission is an exact copy: with keys in use, a request
		// of this rid carrying another key is not the client's (§15.4),
		// or anyone who learnt the sid could take the answer meant for
		// the client.
		if w := s.waiting[req.rid]; w.key == req.key {
			s.takeOver(w, req)
		} else {
			s.fail(req, condItemNotFound)
		}
	case len(s.held)+len(s.waiting)+1 > limit:
		// More simultaneous requests than 'requests' (§11).
		s.fail(req, condPolicyViolation)
	case req.rid > s.nextRID:
		s.waiting[req.rid] = req // held until the gap fills (§14.2)
	default:
		s.process(req)
		for !s.closed {
			next := s.waiting[s.nextRID]
			if next == nil {
				break
			}
			delete(s.waiting, s.nextRID)
			s.process(next)
		}
		if !s.closed {
			s.rearm(time.Now())
		}
	}
	return ch
}

// retransmit answers a request whose rid was processed already: the
// response kept for it (§14.3), or the request still held is taken over by
// this copy; otherwise the session ends with item-not-found.
func (s *session) retransmit(req *request) {
	for _, c := range s.cache {
		if c.rid == req.rid {
			if c.key != req.key {
				s.fail(req, condItemNotFound) // not the exact copy keys require
				return
			}
			send(req.ch, c.rep)
			return
		}
	}
	for _, r := range s.held {
		if r.rid == req.rid && r.key == req.key {
			s.takeOver(r, req)
			return
		}
	}
	s.fail(req, condItemNotFound)
}

// takeOver lets dup, a retransmission, wait for r's answer: the client has
// given up on the HTTP request that carried r. That one is released with an
// empty body (nobody should be reading it), which is not kept.
func (s *session) takeOver(r, dup *request) {
	send(r.ch, reply{status: http.StatusOK, body: buildBody(nil, false)})
	r.ch = dup.ch
}

// process carries out a request in rid order.
func (s *session) process(req *request) {
	now := time.Now()
	if s.key != "" && !keyMatches(req.key, s.key) {
		s.fail(req, condItemNotFound) // §15.4: not processed at all
		return
	}
	if req.newkey != "" {
		s.key = req.newkey
	} else if req.key != "" {
		s.key = req.key
	}
	s.nextRID = req.rid + 1
	req.processed = now
	report := s.acknowledged(req, now)
	if req.hasPause {
		if s.h.cfg.MaxPause <= 0 || req.pause > s.h.cfg.MaxPause {
			s.fail(req, condPolicyViolation)
			return
		}
	}
	if !s.pushInput(req) {
		return
	}
	if req.hasPause {
		// §10: everything held is answered now (output may go to the
		// older ones, never to the pause itself) and the session may be
		// idle for the pause.
		for len(s.held) > 0 {
			s.answer(s.held[0], true, nil)
		}
		s.answerPause(req, now)
		s.idleFor = req.pause
		s.prev = req
		return
	}
	if s.pollTooSoon(req) {
		// The previous poll was answered before this one came: in a
		// polling session (hold 0) this one would be answered at once
		// below, leaving no request to carry the error.
		s.fail(req, condPolicyViolation)
		return
	}
	s.idleFor = s.inactivity // a pause lasts until the next request
	s.held = append(s.held, req)
	if len(s.out) > 0 && !s.held[0].terminate {
		s.answer(s.held[0], true, report)
		report = nil
	}
	for len(s.held) > s.hold {
		r := s.held[0]
		// A terminate waits for the stream to end; a creation or restart
		// waits for the features even in a polling session.
		if r.terminate || r == req && (req.creation || req.restart) {
			break
		}
		s.answer(r, true, report)
		report = nil
	}
	if report != nil && len(s.held) > 0 && !s.held[0].terminate {
		s.held[0].exempt = true
		s.answer(s.held[0], true, report)
	}
	if s.pollTooSoon(req) {
		// The previous poll was answered empty because this one came.
		s.fail(req, condPolicyViolation)
		return
	}
	s.prev = req
}

// pollTooSoon: two empty polls closer than 'polling', the first answered
// empty (§11, §12).
func (s *session) pollTooSoon(req *request) bool {
	return req.emptyPoll() && s.polling > 0 && s.prev != nil && s.prev.emptyPoll() &&
		s.prev.answered && s.prev.answeredEmpty && !s.prev.exempt &&
		req.arrived.Sub(s.prev.arrived) < s.polling
}

// keyMatches checks a key of the sequence against the previous one:
// hex(SHA-1(key)) must be it (XEP-0124 §15; SHA-1 is what the XEP fixes).
func keyMatches(key, prev string) bool {
	if key == "" {
		return false
	}
	sum := sha1.Sum([]byte(key))
	return strings.EqualFold(hex.EncodeToString(sum[:]), prev)
}

// acknowledged applies the client's 'ack' (§9.2): responses it has
// received are no longer kept, and if one it has not acknowledged went out
// a while ago, the next response reports it so the client can ask again.
func (s *session) acknowledged(req *request, now time.Time) []xml.Attr {
	if req.ack == 0 {
		return nil
	}
	s.cache = slices.DeleteFunc(s.cache, func(c cached) bool { return c.rid <= req.ack })
	for _, c := range s.cache {
		if c.rid == req.ack+1 && now.Sub(c.sentAt) >= reportAfter {
			return []xml.Attr{
				{Local: "report", Value: strconv.FormatUint(c.rid, 10)},
				{Local: "time", Value: strconv.FormatInt(now.Sub(c.sentAt).Milliseconds(), 10)},
			}
		}
	}
	return nil
}

// pushInput hands the request's payloads (and a restart or the end) to
// c2s. It reports false when the session ended instead.
func (s *session) pushInput(req *request) bool {
	payloads := req.payloads()
	if s.inBytes+req.size > maxInputFactor*s.h.maxBody {
		s.h.log.Debug("bosh: input not read by c2s", "sid", s.sid, "bytes", s.inBytes)
		s.fail(req, condPolicyViolation)
		return false
	}
	n := len(s.in)
	if req.creation || req.restart {
		h := s.header(req)
		s.in = append(s.in, inItem{header: &h})
	}
	for _, el := range payloads {
		s.in = append(s.in, inItem{el: el})
	}
	if req.terminate {
		s.in = append(s.in, inItem{closing: true})
		s.terminating = true
	}
	if len(s.in) > n {
		s.in[n].size = req.size
		s.inBytes += req.size
		select {
		case s.inReady <- struct{}{}:
		default:
		}
	}
	return true
}

// header is the stream header a creation or restart request stands for.
func (s *session) header(req *request) xml.StreamHeader {
	to, lang := req.body.Attr("to"), req.body.Lang()
	if to == "" {
		to = s.to
	}
	if lang == "" {
		lang = s.lang
	}
	return xml.StreamHeader{
		Space: stanza.NSStream, Local: "stream", DefaultNS: stanza.NSClient,
		To: to, From: s.from, Version: s.version, Lang: lang,
	}
}

// answer sends held request r its response: the queued output when
// withOutput, extra attributes (a report) if any. r must be held.
func (s *session) answer(r *request, withOutput bool, extra []xml.Attr) {
	if i := slices.Index(s.held, r); i >= 0 {
		s.held = slices.Delete(s.held, i, i+1)
	}
	var attrs []xml.Attr
	if r.creation {
		attrs = s.creationAttrs(r)
	} else if last := s.nextRID - 1; last != r.rid {
		// §9.1: the highest rid received in order, when it is not the
		// one answered (the client learns its later requests arrived).
		attrs = append(attrs, xml.Attr{Local: "ack", Value: strconv.FormatUint(last, 10)})
	}
	attrs = append(attrs, extra...)
	var payload [][]byte
	streamNS := r.creation
	if withOutput && len(s.out) > 0 {
		payload, streamNS = s.out, streamNS || s.outStream
		s.drainOut()
	}
	rep := reply{status: http.StatusOK, body: buildBody(attrs, streamNS, payload...)}
	send(r.ch, rep)
	r.answered, r.answeredEmpty = true, len(payload) == 0
	now := time.Now()
	s.remember(cached{rid: r.rid, key: r.key, rep: rep, sentAt: now})
	s.lastResponse = now
}

// answerPause answers a pause request: no payload, and not kept for
// retransmission (§14.3).
func (s *session) answerPause(r *request, now time.Time) {
	send(r.ch, reply{status: http.StatusOK, body: buildBody(nil, false)})
	r.answered, r.answeredEmpty, r.exempt = true, true, true
	s.lastResponse = now
}

// remember keeps a response for retransmission: the last 'requests' ones,
// fewer once the client acknowledges them.
func (s *session) remember(c cached) {
	s.cache = append(s.cache, c)
	if n := len(s.cache) - s.requests; n > 0 {
		s.cache = slices.Delete(s.cache, 0, n)
	}
}

// creationAttrs are the session creation response's attributes (XEP-0124
// §7.2, XEP-0206 §4).
func (s *session) creationAttrs(r *request) []xml.Attr {
	cfg := s.h.cfg
	a := []xml.Attr{
		{Local: "sid", Value: s.sid},
		{Local: "wait", Value: secs(s.wait)},
		{Local: "inactivity", Value: secs(s.inactivity)},
		{Local: "requests", Value: strconv.Itoa(s.requests)},
		{Local: "hold", Value: strconv.Itoa(s.hold)},
		{Local: "ver", Value: s.ver},
		{Local: "ack", Value: strconv.FormatUint(r.rid, 10)},
		// The stream to the XMPP server is in-process.
		{Local: "secure", Value: "true"},
	}
	if s.polling > 0 {
		a = append(a, xml.Attr{Local: "polling", Value: secs(s.polling)})
	}
	if cfg.MaxPause > 0 {
		a = append(a, xml.Attr{Local: "maxpause", Value: secs(cfg.MaxPause)})
	}
	if s.hdr.From != "" {
		a = append(a, xml.Attr{Local: "from", Value: s.hdr.From})
	}
	if s.hdr.ID != "" {
		a = append(a, xml.Attr{Local: "authid", Value: s.hdr.ID})
	}
	v := s.hdr.Version
	if v == "" && s.hdr.ID == "" {
		v = "1.0" // c2s has not answered yet
	}
	a = append(a, xml.Attr{Local: "xmlns:xmpp", Value: NSXBOSH})
	if v != "" {
		a = append(a, xml.Attr{Local: "xmpp:version", Value: v})
	}
	return append(a, xml.Attr{Local: "xmpp:restartlogic", Value: "true"})
}

// drainOut empties the output queue and wakes writers waiting for room.
func (s *session) drainOut() {
	s.out, s.outBytes, s.outStream = nil, 0, false
	close(s.space)
	s.space = make(chan struct{})
}

// abandon answers, empty, a request still held whose HTTP request the
// client gave up on, so no output goes out on a connection nobody reads;
// the empty answer is kept, should the client ask again.
func (s *session) abandon(ch chan reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.held {
		if r.ch == ch && !r.terminate {
			r.exempt = true
			s.answer(r, false, nil)
			s.rearm(time.Now())
			return
		}
	}
}

// reject ends the session with cond for a request that could not be
// attributed to a rid, and returns the answer to it.
func (s *session) reject(cond string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.log.Debug("bosh: session terminated", "sid", s.sid, "condition", cond)
	s.finishLocked(cond, true)
	return s.terminalReply(cond)
}

// send gives r its reply. A request gets exactly one; the check keeps a
// mistake from blocking under the session's lock.
func send(ch chan reply, rep reply) {
	select {
	case ch <- rep:
	default:
	}
}

// fail ends the session with a terminal binding condition, answering req
// (which is not held) with it.
func (s *session) fail(req *request, cond string) {
	s.h.log.Debug("bosh: session terminated", "sid", s.sid, "condition", cond, "rid", req.rid)
	if i := slices.Index(s.held, req); i >= 0 {
		s.held = slices.Delete(s.held, i, i+1)
	}
	if s.waiting[req.rid] == req {
		delete(s.waiting, req.rid)
	}
	send(req.ch, s.terminalReply(cond))
	s.finishLocked(cond, true)
}

func (s *session) terminalReply(cond string) reply {
	status := http.StatusOK
	if s.legacy {
		status = legacyStatus(cond)
	}
	return reply{status: status, body: terminateBody(cond)}
}

// finishLocked ends the session once, with s.mu held. cond is the terminal
// binding condition ("" when the stream ended normally; a stream error
// becomes remote-stream-error with the <stream:error/> inside, XEP-0206
// §7). lost says the client is gone or broke the rules, so c2s sees a lost
// transport (a stream-managed session waits for resumption). Every request
// still outstanding is answered: the oldest with the output and the stream
// error, all with type='terminate'.
func (s *session) finishLocked(cond string, lost bool) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.done)
	s.in, s.inBytes = nil, 0
	if cond == "" && s.streamErr != nil {
		cond = condRemoteStreamError
	}
	attrs := []xml.Attr{{Local: "type", Value: "terminate"}}
	if cond != "" {
		attrs = append(attrs, xml.Attr{Local: "condition", Value: cond})
	}
	status := http.StatusOK
	if s.legacy {
		status = legacyStatus(cond)
	}
	payload, streamNS := s.out, s.outStream
	if s.streamErr != nil {
		payload, streamNS = append(payload, s.streamErr), true
	}
	s.drainOut()
	outstanding := s.held
	for _, rid := range slices.Sorted(mapKeys(s.waiting)) {
		outstanding = append(outstanding, s.waiting[rid])
	}
	s.held, s.waiting = nil, nil
	for i, r := range outstanding {
		var p [][]byte
		if i == 0 {
			p = payload
		}
		send(r.ch, reply{status: status, body: buildBody(attrs, streamNS || r.creation, p...)})
	}
	s.release()
	if len(outstanding) == 0 && len(payload) > 0 && !lost {
		// Nobody to tell now; the next request will be (for a while).
		s.final = &reply{status: status, body: buildBody(attrs, streamNS, payload...)}
		s.finalUntil = time.Now().Add(s.idleFor)
		s.timer.Reset(s.idleFor)
		return
	}
	s.timer.Stop()
	s.h.remove(s)
}

func mapKeys(m map[uint64]*request) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// rearm sets the timer for the session's next deadline: gathered output to
// flush, the oldest held request's wait, or the end of the time the client
// may hold no request.
func (s *session) rearm(now time.Time) {
	var next time.Time
	if len(s.held) > 0 {
		next = s.expiry(s.held[0])
		if len(s.out) > 0 && s.flushAt.Before(next) {
			next = s.flushAt
		}
	} else {
		next = s.lastResponse.Add(s.idleFor)
	}
	s.timer.Reset(max(next.Sub(now), 0))
}

// expiry is when held request r is answered at the latest: its wait after
// it was processed. A creation or restart request waits for the stream
// features at least a moment even in a polling session (wait 0), so that
// they come in its response rather than in the next poll.
func (s *session) expiry(r *request) time.Time {
	d := s.wait
	if r.creation || r.restart {
		d = max(d, featuresGrace)
	}
	return r.processed.Add(d)
}

// featuresGrace: see expiry.
const featuresGrace = time.Second

// tick runs when the timer fires.
func (s *session) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.closed {
		if now.Before(s.finalUntil) {
			return // a tick from before the session ended; the last words stay
		}
		s.final = nil
		s.h.remove(s)
		return
	}
	if len(s.held) > 0 && len(s.out) > 0 && !now.Before(s.flushAt) && !s.held[0].terminate {
		s.answer(s.held[0], true, nil)
	}
	for len(s.held) > 0 && !now.Before(s.expiry(s.held[0])) {
		if s.held[0].terminate {
			// c2s did not end the stream within 'wait': end the
			// session anyway, the client asked for it.
			s.finishLocked("", true)
			return
		}
		s.held[0].exempt = true
		s.answer(s.held[0], true, nil)
	}
	if len(s.held) == 0 && !now.Before(s.lastResponse.Add(s.idleFor)) {
		// §10: no request for longer than allowed; the client is gone.
		s.h.log.Debug("bosh: session inactive", "sid", s.sid, "idle", now.Sub(s.lastResponse))
		s.finishLocked("", true)
		return
	}
	s.rearm(now)
}
