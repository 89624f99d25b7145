// Package bosh carries XMPP client streams over BOSH (XEP-0124, with the
// XMPP profile of XEP-0206): an http.Handler for /http-bind that turns each
// BOSH session into a c2s.Transport. It only frames: every request body is
// parsed once, under the stream limits and restricted-XML rules a TCP
// stream has, into the payloads c2s reads as a stream; everything c2s
// writes is queued and goes out in the response to a request the client
// left waiting. Negotiation (SASL, bind), sessions and stream management
// are c2s's, exactly as on TCP and WebSocket.
//
// What BOSH adds is request bookkeeping: request IDs processed strictly in
// order within a window, responses kept for retransmission, long polls held
// up to 'wait' seconds, the inactivity, overactivity and polling rules, and
// the optional key sequence. All of it lives in one session value guarded by
// one mutex, and time is kept by one timer per session: the goroutines a
// session has are the c2s read loop (and, once bound, c2s's writer) and the
// HTTP requests it is holding.
package bosh

import (
	"bytes"
	stdxml "encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"parley/internal/c2s"
	"parley/internal/stream"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces of XEP-0124 and XEP-0206.
const (
	// NSHTTPBind qualifies the <body/> wrapper (XEP-0124 §6).
	NSHTTPBind = "http://jabber.org/protocol/httpbind"
	// NSXBOSH qualifies the xmpp:version, xmpp:restart and
	// xmpp:restartlogic attributes (XEP-0206).
	NSXBOSH = "urn:xmpp:xbosh"
)

// protocolVersion is the XEP-0124 version implemented ('ver').
const protocolVersion = "1.11"

// bodyOverhead is what the <body/> wrapper may add to a request beyond
// limits.max_stanza_bytes, so that a stanza as large as a TCP client may
// send still fits in one request.
const bodyOverhead = 1024

// Config bounds and shapes the BOSH endpoint. The server fills it from the
// [https] and [limits] tables; zero fields get the defaults below.
type Config struct {
	// MaxWait bounds the 'wait' a client may ask for: the longest a
	// request is held before an empty response (default 60s). Proxies
	// and NAT boxes drop idle HTTP connections, so longer is not better.
	MaxWait time.Duration
	// Inactivity is the longest a client may leave the server holding no
	// request before its session counts as lost (default 60s); c2s then
	// detaches a stream-managed session or ends it, as for a TCP reset.
	Inactivity time.Duration
	// MaxPause bounds a 'pause' request (XEP-0124 §10; default 120s):
	// a page being reloaded may keep its session that long.
	MaxPause time.Duration
	// Polling is the shortest interval allowed between empty polls
	// (default 2s); a client polling faster is ended with
	// policy-violation (XEP-0124 §11, §12).
	Polling time.Duration
	// MaxHold bounds the requests held at once ('hold', default 1);
	// clients may use hold+1 requests at a time.
	MaxHold int
	// MaxSessionsPerIP bounds the sessions open at once from one source
	// address (IPv4 address, IPv6 /64; default 10): a session costs
	// memory and a goroutine even before authentication.
	MaxSessionsPerIP int
	// MaxQueuedBytes bounds a session's output waiting for a request to
	// carry it (default 4 × limits.max_stanza_bytes), beside the count
	// bound limits.output_queue. A client that stops polling fills it,
	// c2s's writer then times out, and the stream ends as on a TCP
	// connection whose peer stopped reading.
	MaxQueuedBytes int
	// ReadTimeout bounds reading one request body (the server passes
	// https.read_timeout; default 10s): the slow-loris defence for
	// bodies.
	ReadTimeout time.Duration
	// OriginPatterns lists the web origins (host patterns such as
	// "chat.example.com" or "*.example.com", "*" for any) whose pages may
	// use the endpoint; they get CORS headers. Requests with an Origin
	// that matches neither a pattern nor the request's own host are
	// refused with 403 (a page of another site could otherwise create
	// sessions from its visitors' addresses); requests without Origin
	// (non-browser clients) are served.
	OriginPatterns []string
	// RateBytesPerSecond and RateBurstBytes throttle what one session may
	// make the server parse, as on TCP (limits.rate_*).
	RateBytesPerSecond, RateBurstBytes int
	// WriteTimeout bounds writing one response and queueing one element
	// (limits.write_timeout; default 30s).
	WriteTimeout time.Duration
}

func (c *Config) applyDefaults(lim xml.Limits) {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	setDur(&c.MaxWait, 60*time.Second)
	setDur(&c.Inactivity, 60*time.Second)
	setDur(&c.MaxPause, 120*time.Second)
	setDur(&c.Polling, 2*time.Second)
	setInt(&c.MaxHold, 1)
	setInt(&c.MaxSessionsPerIP, 10)
	setInt(&c.MaxQueuedBytes, 4*lim.MaxStanzaBytes)
	setDur(&c.ReadTimeout, 10*time.Second)
	setDur(&c.WriteTimeout, 30*time.Second)
}

// Handler serves the BOSH endpoint: session creation and every request of
// every session.
type Handler struct {
	srv *c2s.Server
	cfg Config
	log *slog.Logger
	// lim are the limits a request body is parsed under: the stream's,
	// with room for the wrapper.
	lim     xml.Limits
	maxBody int
	perIP   *stream.ConnLimiter

	// mu guards sessions. Lock order: a session's mutex, then mu.
	mu       sync.Mutex
	sessions map[string]*session
}

// NewHandler returns the handler for the BOSH endpoint; the HTTPS listener
// mounts it at /http-bind. Sessions are served by srv like any client
// stream, and end with it (c2s.Server.Shutdown).
func NewHandler(srv *c2s.Server, cfg Config, log *slog.Logger) *Handler {
	lim := srv.StreamLimits()
	cfg.applyDefaults(lim)
	body := lim
	body.MaxStanzaBytes += bodyOverhead
	body.MaxDepth++ // the <body/> wrapper is one level more than a stream
	return &Handler{
		srv: srv, cfg: cfg, log: log,
		lim: body, maxBody: body.MaxStanzaBytes,
		perIP:    stream.NewConnLimiter(cfg.MaxSessionsPerIP),
		sessions: make(map[string]*session),
	}
}

// Sessions returns how many BOSH sessions are open (metrics, tests).
func (h *Handler) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (h *Handler) lookup(sid string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[sid]
}

func (h *Handler) remove(s *session) {
	h.mu.Lock()
	if h.sessions[s.sid] == s {
		delete(h.sessions, s.sid)
	}
	h.mu.Unlock()
}

// ServeHTTP serves one BOSH request: a session creation or a request of a
// session, which may be held until output comes or its wait is over.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.cors(w, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "BOSH takes POST requests (XEP-0124)", http.StatusMethodNotAllowed)
		return
	}
	rc := http.NewResponseController(w)
	data, status := h.readBody(r, rc)
	if status != 0 {
		// The rest of the body is not worth waiting for.
		w.Header().Set("Connection", "close")
		cond := condBadRequest
		if status == http.StatusRequestEntityTooLarge {
			cond = condPolicyViolation
		}
		h.write(w, rc, defaultContentType, reply{status: status, body: terminateBody(cond)})
		return
	}
	sid, ok := peekSID(data)
	if !ok {
		h.badRequest(w, r, rc, nil, errNotBody)
		return
	}
	var s *session
	if sid != "" {
		// Only a session's own requests are parsed in full, and only at
		// its rate (limits.rate_*), as a TCP stream is read: the start
		// tag alone finds the session.
		if s = h.lookup(sid); s == nil {
			// Whether the client is a legacy one (no 'ver') is part of
			// the session we do not have: the status says it to legacy
			// clients, the body to the others.
			h.write(w, rc, defaultContentType, reply{status: http.StatusNotFound, body: terminateBody(condItemNotFound)})
			return
		}
		if s.rate != nil {
			if err := s.rate.WaitN(r.Context(), min(len(data), s.rate.Burst())); err != nil {
				return // the client went away while being slowed down
			}
		}
	} else if len(data) > maxCreationBody {
		// A session creation request carries no payload.
		h.badRequest(w, r, rc, nil, errCreationBody)
		return
	}
	body, err := parseBody(data, h.lim)
	if err != nil {
		h.badRequest(w, r, rc, s, err)
		return
	}
	req, err := newRequest(body, len(data))
	if err != nil {
		h.badRequest(w, r, rc, s, err)
		return
	}
	if s == nil {
		h.create(w, r, rc, req)
		return
	}
	h.serve(w, r, rc, s, req)
}

// maxCreationBody bounds a session creation request, which is an empty
// <body/> with a dozen attributes.
const maxCreationBody = 4096

// badRequest answers a body that is not a well-formed request. A session
// it names ends: bad-request is a terminal condition (XEP-0124 §17.2), as
// bad XML ends a TCP stream.
func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, s *session, err error) {
	h.log.Debug("bosh: bad request", "remote", r.RemoteAddr, "err", err)
	if s == nil {
		h.write(w, rc, defaultContentType, reply{status: http.StatusBadRequest, body: terminateBody(condBadRequest)})
		return
	}
	h.write(w, rc, s.contentType, s.reject(condBadRequest))
}

// serve hands req to its session and writes the answer when there is one.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, s *session, req *request) {
	h.answer(w, r, rc, s, s.handle(req))
}

// answer writes the reply that comes on ch, the channel of a request s
// holds.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, s *session, ch chan reply) {
	select {
	case rep := <-ch:
		h.write(w, rc, s.contentType, rep)
	case <-r.Context().Done():
		// The client gave up on this HTTP request; a request still held
		// is answered (empty) now, so no output goes into the void.
		s.abandon(ch)
	}
}

// readBody reads the request body under ReadTimeout and the size bound. It
// returns an HTTP status when the body cannot be used.
func (h *Handler) readBody(r *http.Request, rc *http.ResponseController) ([]byte, int) {
	_ = rc.SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
	if r.ContentLength > int64(h.maxBody) {
		return nil, http.StatusRequestEntityTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, int64(h.maxBody)+1))
	switch {
	case err != nil:
		// The deadline stays: net/http would otherwise wait for the
		// rest of the body before closing the connection.
		return nil, http.StatusBadRequest
	case len(data) > h.maxBody:
		return nil, http.StatusRequestEntityTooLarge
	}
	// Held requests outlive any read deadline: net/http cancels the
	// request's context when its background read of the idle connection
	// fails, and a deadline passing is such a failure.
	_ = rc.SetReadDeadline(time.Time{})
	return data, 0
}

const defaultContentType = "text/xml; charset=utf-8"

func (h *Handler) write(w http.ResponseWriter, rc *http.ResponseController, contentType string, rep reply) {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Cache-Control", "no-store")
	// The listener's write deadline was set when the request arrived; a
	// held request is answered up to 'wait' later.
	_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// cors adds the CORS headers for an allowed Origin and reports whether the
// request may be served: browsers send Origin on cross-origin requests
// (and on same-origin POSTs), other clients usually send none.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if !strings.EqualFold(u.Host, r.Host) && !h.originAllowed(u.Host) {
		return false
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Add("Vary", "Origin")
	hdr.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Content-Type")
	hdr.Set("Access-Control-Max-Age", "86400")
	return true
}

func (h *Handler) originAllowed(host string) bool {
	host = strings.ToLower(host)
	for _, p := range h.cfg.OriginPatterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// Terminal binding conditions (XEP-0124 §17.2) used here.
const (
	condBadRequest        = "bad-request"
	condItemNotFound      = "item-not-found"
	condPolicyViolation   = "policy-violation"
	condImproperAddress   = "improper-addressing"
	condRemoteStreamError = "remote-stream-error"
	condSystemShutdown    = "system-shutdown"
)

// legacyStatus is the HTTP status XEP-0124 §17.1 gives a terminal
// condition for legacy clients (no 'ver' in the session creation request);
// other clients get 200 and read the condition.
func legacyStatus(cond string) int {
	switch cond {
	case condBadRequest:
		return http.StatusBadRequest
	case condPolicyViolation:
		return http.StatusForbidden
	case condItemNotFound:
		return http.StatusNotFound
	}
	return http.StatusOK
}

// reply is one HTTP response to a BOSH request.
type reply struct {
	status int
	body   []byte
}

// buildBody serialises a <body/> wrapper with attrs around payload, the
// elements already encoded by encode. Prefixed attributes are given with
// the prefix in Local (xmpp:version) and their declaration as an attribute
// (xmlns:xmpp): clients look them up by prefixed name, and the serialiser
// writes such names as they are. streamNS declares the stream prefix for a
// <stream:features/> or <stream:error/> in the payload (XEP-0206 §2).
func buildBody(attrs []xml.Attr, streamNS bool, payload ...[]byte) []byte {
	el := xml.New(NSHTTPBind, "body")
	el.Attrs = attrs
	if streamNS {
		el.Attrs = append(el.Attrs, xml.Attr{Local: "xmlns:stream", Value: stanza.NSStream})
	}
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	b := el.AppendTo(make([]byte, 0, 128+32*len(attrs)+n))
	if n == 0 {
		return b
	}
	b = append(b[:len(b)-2], '>') // "/>" of the empty element
	for _, p := range payload {
		b = append(b, p...)
	}
	return append(b, "</body>"...)
}

// terminateBody is <body type='terminate' condition='cond'/>.
func terminateBody(cond string) []byte {
	return buildBody([]xml.Attr{{Local: "type", Value: "terminate"}, {Local: "condition", Value: cond}}, false)
}

// encode writes el as a payload of its own: stanzas with
// xmlns='jabber:client' (XEP-0206 §2), stream-level elements as
// <stream:features>, <stream:error> relying on the wrapper's xmlns:stream,
// everything else with its namespace.
func encode(dst []byte, el *xml.Element) []byte {
	switch el.Space {
	case stanza.NSStream:
		return stream.Prefixed(el).AppendTo(dst)
	case "":
		return el.AppendStandalone(dst, stanza.NSClient)
	default:
		return el.AppendTo(dst)
	}
}

// isStreamLevel reports whether an encoded payload needs the stream prefix
// declared on its wrapper.
func isStreamLevel(b []byte) bool { return bytes.HasPrefix(b, []byte("<stream:")) }

var (
	errNotBody      = errors.New("bosh: the document is not a <body xmlns='" + NSHTTPBind + "'/>")
	errTextInBody   = errors.New("bosh: character data in <body/>")
	errBadDecl      = errors.New("bosh: XML declaration other than version 1.0 in UTF-8")
	errCreationBody = errors.New("bosh: session creation request too large")
)

// peekSID reads the wrapper's start tag, and nothing more, for its 'sid'.
// ok is false when the document does not start with an element (a DTD
// among others: nothing is expanded here either).
func peekSID(data []byte) (sid string, ok bool) {
	d := stdxml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	for range 4 {
		tok, err := d.RawToken()
		if err != nil {
			return "", false
		}
		switch t := tok.(type) {
		case stdxml.StartElement:
			for _, a := range t.Attr {
				if a.Name.Space == "" && a.Name.Local == "sid" {
					return a.Value, true
				}
			}
			return "", true
		case stdxml.ProcInst:
		case stdxml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return "", false
			}
		default:
			return "", false
		}
	}
	return "", false
}

// parseBody parses a request as one <body/> document under lim (restricted
// XML: no DTD, so no entity expansion; size, depth and attribute bounds)
// and returns the wrapper with its payloads. Payloads qualified by
// 'jabber:client' get the empty namespace, as stanzas read from a stream
// do; so do payloads that inherited the wrapper's namespace, which many
// clients send (XEP-0206 §2 notes they treat jabber:client as a subset of
// the httpbind namespace).
func parseBody(data []byte, lim xml.Limits) (*xml.Element, error) {
	data, err := stripDecl(data)
	if err != nil {
		return nil, err
	}
	el, err := xml.ParseDocument(data, lim, stanza.NSClient)
	if err != nil {
		return nil, err
	}
	if el.Space != NSHTTPBind || el.Local != "body" {
		return nil, errNotBody
	}
	kids := el.Children[:0:0]
	for _, c := range el.Children {
		switch c := c.(type) {
		case xml.CharData:
			if strings.TrimSpace(string(c)) != "" {
				return nil, errTextInBody
			}
		case *xml.Element:
			unwrapNS(c)
			kids = append(kids, c)
		}
	}
	el.Children = kids
	return el, nil
}

// unwrapNS moves el and its descendants out of the httpbind namespace into
// the stream's content namespace. The tree is fresh from the parser and
// not shared yet, so it is changed in place.
func unwrapNS(el *xml.Element) {
	if el.Space == NSHTTPBind {
		el.Space = ""
	}
	for _, c := range el.Children {
		if e, ok := c.(*xml.Element); ok {
			unwrapNS(e)
		}
	}
}

// stripDecl drops a leading XML declaration, which some clients put before
// the wrapper: the parser reads the body as part of a stream, where a
// declaration cannot appear. Only version 1.0 in UTF-8 is accepted, as on
// a stream.
func stripDecl(b []byte) ([]byte, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if !bytes.HasPrefix(t, []byte("<?xml")) || len(t) < 6 || !strings.ContainsRune(" \t\r\n", rune(t[5])) {
		return b, nil
	}
	end := bytes.Index(t, []byte("?>"))
	if end < 0 {
		return nil, errBadDecl
	}
	decl := strings.ToLower(string(t[5:end]))
	if strings.ContainsAny(decl, "<>") || !strings.Contains(decl, "version") ||
		strings.Contains(decl, "encoding") && !strings.Contains(decl, "utf-8") ||
		!strings.Contains(decl, "1.0") {
		return nil, errBadDecl
	}
	return t[end+2:], nil
}
