package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/bruteforce"
	"parley/internal/legacyauth"
	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/sasl"
	"parley/internal/sm"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces of stream negotiation (RFC 6120).
const (
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
	nsSASLCB  = "urn:xmpp:sasl-cb:0"
)

// errClosed ends the read loop after a stream error was sent.
var errClosed = errors.New("c2s: stream closed")

// conn is one client connection from accept to close. Negotiation (TLS,
// SASL, bind) runs synchronously on the connection's goroutine, writing
// directly; after bind all writes go through the session's stream.Writer.
type conn struct {
	srv *Server
	// t carries the stream (TCP, WebSocket); tls is its TLS state, nil
	// while unencrypted (updated after STARTTLS).
	t      Transport
	tls    *tls.ConnectionState
	id     string
	logID  atomic.Value // id, for log lines written by other goroutines
	host   *module.Host
	ctx    context.Context
	direct bool // XEP-0368 direct TLS
	// authBy is when the pre-authentication time (limits.preauth_timeout)
	// ends: fixed at accept, so neither TLS handshake (direct or
	// STARTTLS) can grant the peer a fresh allowance.
	authBy time.Time
	// loginSlot is this connection's place in limits.max_concurrent_logins
	// (stream.LoginGate), given back when negotiation is over or the
	// connection ends; nil after that.
	loginSlot *stream.LoginSlot

	user     string // authenticated localpart
	mech     string
	failures int
	// preXMPP: the client's header had no version 1.0 (RFC 6120 §4.7.5:
	// treated as 0.9): no stream features, XEP-0078 authentication only.
	preXMPP bool
	// saslFailed: a SASL attempt failed on this stream (XEP-0078 §8).
	saslFailed bool
	// inSASL2: an XEP-0388 exchange is running, so SASL answers use its
	// framing (sasl2.go).
	inSASL2 bool
	// streamFrom is the 'from' of the client's stream header, a hint at
	// who is logging in (XEP-0388 checks an authzid against it).
	streamFrom string
	// negotiationFailures counts SASL failures before any credential check
	// (see negotiationFailed); they are bounded separately from failures.
	negotiationFailures int
	// attempt is the brute-force limiter's slot of the credential check in
	// progress (beginAttempt), nil between attempts; attemptDelay is what
	// its answer still has to wait.
	attempt      *bruteforce.Attempt
	attemptDelay time.Duration
	// clientCert is the verified TLS client certificate, nil if none.
	clientCert *x509.Certificate
	// sess is the bound session; set once by the connection's own
	// goroutine and read only by it.
	sess *session

	// mu guards the two fields below, which other goroutines read when
	// they end the stream (shutdown, a replacing bind, queue overflow).
	mu sync.Mutex
	// w is the bound session's writer; nil before bind. Once set, all
	// output goes through it, the closing bytes included.
	w *stream.Writer
	// ending: the stream's end has begun (closing bytes sent or queued).
	// Ending happens once; a writer installed after it is closed at once.
	ending bool

	// lost: the stream ended because the transport failed (reset, EOF
	// without </stream:stream>, timeout), not by either side's choice; a
	// session with XEP-0198 resumption then waits for its client.
	lost bool

	// parker is the transport when the session's reader may park (nil
	// otherwise); detached, once it has, ends the acceptor's registration.
	// Both belong to whichever goroutine is the reader.
	parker   parker
	detached func()
}

// log writes a debug line about the connection. Other goroutines call it
// too (a shutdown ends every stream), so the stream ID comes from logID,
// not from id, which the reader rewrites at each stream restart.
func (c *conn) log(msg string, args ...any) {
	id, _ := c.logID.Load().(string)
	c.srv.log.Debug(msg, append([]any{"remote", c.t.RemoteAddr().String(), "stream", id}, args...)...)
}

// serve runs the connection until it closes, or until its reader parks
// (park.go): the connection then goes on on other goroutines.
func (c *conn) serve() {
	// seed 004 "authtime": the whole negotiation must finish in time.
	// (No copy of the limits struct here: this frame stays under every
	// idle session's read until it parks, and a small one lets the
	// collector halve the goroutine's stack.)
	if c.authBy.IsZero() {
		c.authBy = time.Now().Add(c.srv.cfg.Limits.PreAuthTimeout.Duration)
	}
	_ = c.t.SetReadDeadline(c.authBy)
	err := c.negotiate()
	if err != nil {
		c.fail(err)
		c.end()
		return
	}
	c.loggedIn()
	c.startReading()
	c.readLoop()
}

// readLoop runs the bound session's read loop until the stream ends, then
// cleans up; or until the reader parks, then a goroutine that only waits
// for the socket starts it again.
func (c *conn) readLoop() {
	if c.readStanzas() {
		c.park()
		return
	}
	c.end()
}

// end releases everything the connection holds, once its stream has ended:
// its own cleanup, then the acceptor's registration if the connection had
// detached from the acceptor's goroutine (its reader parked).
func (c *conn) end() {
	c.cleanup()
	if c.detached != nil {
		c.detached()
	}
}

// startReading prepares the bound session's reads: no deadline but the
// idle timeout, and parking when the transport and configuration allow it.
func (c *conn) startReading() {
	_ = c.t.SetReadDeadline(time.Time{})
	if idle := c.srv.cfg.Limits.IdleTimeout.Duration; idle > 0 {
		_ = c.t.SetReadDeadline(time.Now().Add(idle))
	}
	if p, ok := c.t.(parker); ok && p.startParking(c.srv.cfg.Limits.ParkIdleAfter.Duration) {
		c.parker = p
	}
}

// park ends this goroutine's part in the connection: the first time, the
// connection detaches from the acceptor's goroutine; then a new goroutine
// waits for the client's next bytes and runs the read loop again.
func (c *conn) park() {
	if c.detached == nil {
		c.detached = c.srv.accept.Detach(c)
	}
	c.parker.park()
	c.srv.metrics.ParkedReaders.Inc()
	c.parker.awaitReadable(c.unpark)
}

// unpark runs on a goroutine of its own when a parked session's socket
// wakes: it becomes the session's reader.
func (c *conn) unpark() {
	c.srv.metrics.ParkedReaders.Dec()
	c.parker.resume()
	c.readLoop()
}

// loggedIn records the login's time on the server and gives the login
// slot back. A function of its own, never inlined: serve's frame stays
// under every idle session, and the time values would enlarge it past
// the quarter of the stack the collector needs to see free to halve it
// (BenchmarkIdleSessionMemory showed it).
//
//go:noinline
func (c *conn) loggedIn() {
	c.srv.metrics.LoginSeconds.Observe(time.Since(c.loginStart()).Seconds())
	c.endLogin()
}

// cleanup runs once, on the connection's goroutine, whichever way the
// stream ended (our stream error, the peer's close, a reset, a write
// timeout, overflow, replacement, account deletion, shutdown). It makes sure
// the stream is closed and the writer has stopped, and releases what the
// bound session holds: the router entry, the session gauge and the unbound
// hooks. The connection slot and the connection gauge are released by the
// acceptor when serve returns.
func (c *conn) cleanup() {
	c.endLogin()
	c.endStream("", "", true) // no-op when the stream already ended
	if w := c.writer(); w != nil {
		// A guard: endStream or installWriter has closed w already, and
		// Close is idempotent. Waiting for Done bounds the teardown by
		// the write timeout, never longer.
		w.Close(false, []byte(xml.StreamClose))
		<-w.Done()
	}
	if c.sess != nil {
		c.sess.connLost(c, c.lost && !c.srv.stopping.Load())
	}
}

// loginStart is when this connection's login began on the server: when it
// got its login slot, or without a gate (WebSocket, gate off) when it was
// accepted, which is when authBy was fixed.
func (c *conn) loginStart() time.Time {
	if t := c.loginSlot.Taken(); !t.IsZero() {
		return t
	}
	return c.authBy.Add(-c.srv.cfg.Limits.PreAuthTimeout.Duration)
}

// endLogin gives back the connection's login slot: it has logged in (and
// bound), or it is ending.
func (c *conn) endLogin() {
	c.loginSlot.Release()
	c.loginSlot = nil
}

// fail turns a read/negotiation error into the right stream error.
func (c *conn) fail(err error) {
	if errors.Is(err, errClosed) {
		return
	}
	var xe *xml.Error
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.lost = true
		c.closeWith("", "")
	case errors.As(err, &xe):
		c.closeWith(stanza.StreamCondition(xe.Condition), xe.Text)
	case errors.Is(err, xml.ErrStreamClosed):
		c.closeWith("", "")
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		c.lost = true
		c.closeWith("connection-timeout", "")
	default:
		c.log("connection error", "err", err)
		c.lost = true
		c.closeWith("", "")
	}
}

// writer returns the bound session's writer, nil before bind.
func (c *conn) writer() *stream.Writer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w
}

// installWriter makes w the stream's only writer. If the stream's end has
// already begun (another goroutine ended it between bind and now), w is
// closed at once, so it never outlives the connection.
func (c *conn) installWriter(w *stream.Writer) {
	c.mu.Lock()
	c.w = w
	ended := c.ending
	c.mu.Unlock()
	if ended {
		w.Close(false, []byte(xml.StreamClose))
	}
}

// uninstallWriter gives the connection back to direct writes after a
// failed bind: w stops without closing the connection, unless the
// stream's end already began, in which case w is finishing it.
func (c *conn) uninstallWriter(w *stream.Writer) {
	c.mu.Lock()
	if !c.ending {
		c.w = nil
		w.Release()
	}
	c.mu.Unlock()
	<-w.Done()
}

// closeWith sends an optional stream error and the closing tag, then closes
// the transport. Before bind it writes directly; after, through the writer
// (so it never races with stanza writes).
func (c *conn) closeWith(cond stanza.StreamCondition, text string) {
	c.endStream(cond, text, stream.DrainsOnEnd(cond))
}

// endStream is the one way a client stream ends: the first call sends
// the stream error for cond (if any) and the closing tag, through the
// writer once there is one, and closes the transport; later calls do
// nothing. drain chooses whether stanzas already queued go out first.
// Safe from any goroutine.
func (c *conn) endStream(cond stanza.StreamCondition, text string, drain bool) {
	c.endStreamWith(cond, text, nil, drain)
}

// endStreamWith is endStream with an application-specific condition
// element in the stream error (nil for none).
func (c *conn) endStreamWith(cond stanza.StreamCondition, text string, extra *xml.Element, drain bool) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.ending = true
	w := c.w
	c.mu.Unlock()
	var errEl *xml.Element
	if cond != "" {
		c.srv.metrics.StreamErrors.WithLabelValues(string(cond)).Inc()
		// At info, with the remote address (README, "Logs"): most say
		// what a client did wrong. A shutdown's, one per session, is
		// routine.
		level := slog.LevelInfo
		if cond == stanza.StreamSystemShutdown {
			level = slog.LevelDebug
		}
		id, _ := c.logID.Load().(string)
		c.srv.log.Log(context.Background(), level, "c2s: stream error", "remote", c.t.RemoteAddr().String(), "stream", id, "condition", cond, "text", text)
		errEl = stanza.StreamError(cond, text)
		if extra != nil {
			errEl.Append(extra)
		}
	}
	c.t.End(w, errEl, drain)
}

// streamErr is a negotiation failure that ends the stream with a condition.
type streamErr struct {
	cond stanza.StreamCondition
	text string
	// extra is an application-specific condition element added to the
	// stream error (XEP-0198 <handled-count-too-high/>); usually nil.
	extra *xml.Element
}

func (e *streamErr) Error() string { return string(e.cond) + ": " + e.text }

func (c *conn) writeEl(el *xml.Element) error { return c.t.WriteElement(el) }

// openStream reads the client's stream header and answers with ours and the
// features for the current state (RFC 6120 §4.2, §4.3).
func (c *conn) openStream() error {
	h, err := c.t.ReadHeader()
	if err != nil {
		c.t.OpenBeforeError(err, c.srv.cfg.Hosts[0].Domain)
		return err
	}
	c.id = stream.NewID()
	c.logID.Store(c.id)
	reply := xml.StreamHeader{
		Space: stanza.NSStream, Local: "stream", DefaultNS: stanza.NSClient,
		ID: c.id, Version: "1.0", Lang: "en",
	}
	domain := strings.ToLower(strings.TrimSuffix(h.To, "."))
	if d, err := jid.PrepareDomain(domain); err == nil {
		domain = d // hosts are named in U-labels; a client may write A-labels
	}
	host := c.srv.router.Host(domain)
	if c.host != nil && host != c.host {
		host = nil // a restart may not switch hosts
	}
	// Pre-XMPP-1.0 clients are served only on hosts that enable some
	// XEP-0078 method, since that is the only way they can log in. The
	// answer carries no version (the lower of the two, 0.9) and no features.
	legacyOK := false
	if host != nil && isPreXMPP(h.Version) && c.user == "" {
		if hc := c.srv.cfg.HostByDomain(host.Domain); hc != nil && hc.LegacyAuth.Enabled() {
			legacyOK = true
			reply.Version = ""
		}
	}
	if host != nil {
		reply.From = host.Domain
	} else if hs := c.srv.router.Hosts(); len(hs) > 0 {
		reply.From = hs[0].Domain
	}
	c.streamFrom = h.From
	if h.From != "" {
		if fj, err := jid.Parse(h.From); err == nil {
			reply.To = fj.String()
		}
	}
	// Send our header before any stream error: RFC 6120 §4.9.1.2 requires
	// the receiving entity to open a stream first.
	if err := c.t.WriteHeader(reply); err != nil {
		return err
	}
	switch {
	case h.Space != stanza.NSStream || h.Local != "stream":
		return &streamErr{cond: "invalid-namespace", text: ""}
	case h.DefaultNS != stanza.NSClient:
		return &streamErr{cond: "invalid-namespace", text: "this port serves jabber:client"}
	case host == nil:
		return &streamErr{cond: "host-unknown", text: "this server does not serve " + h.To}
	case !versionAtLeast1(h.Version) && !legacyOK:
		return &streamErr{cond: "unsupported-version", text: "XMPP 1.0 is required"}
	}
	c.preXMPP = legacyOK
	c.host = host
	c.ctx = context.Background()
	return nil
}

func versionAtLeast1(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	return major != "" && major != "0" && strings.Trim(major, "0123456789") == ""
}

// negotiate runs the stream from open to bound session.
func (c *conn) negotiate() error {
	for {
		if err := c.openStream(); err != nil {
			return c.asStreamError(err)
		}
		if !c.preXMPP {
			if err := c.writeEl(c.features()); err != nil {
				return err
			}
		}
		for {
			el, err := c.t.Next()
			if err != nil {
				return c.asStreamError(err)
			}
			restart, done, err := c.handleNegotiation(el)
			if err != nil {
				return c.asStreamError(err)
			}
			if done {
				return nil
			}
			if restart {
				break
			}
		}
	}
}

// asStreamError sends streamErr conditions and passes other errors through.
func (c *conn) asStreamError(err error) error {
	var se *streamErr
	if errors.As(err, &se) {
		c.endStreamWith(se.cond, se.text, se.extra, stream.DrainsOnEnd(se.cond))
		return errClosed
	}
	return err
}

// preAuth describes this connection to pre-authentication handlers.
func (c *conn) preAuth() *module.PreAuthConn {
	return &module.PreAuthConn{Ctx: c.ctx, Host: c.host, RemoteAddr: c.t.RemoteAddr(), Encrypted: c.secure(), StreamID: c.id}
}

// serverCert is the leaf certificate presented on this connection (for
// tls-server-end-point channel binding). None on a resumed TLS session:
// the client hashes the certificate of the handshake that made the
// session, which may be one replaced since (a renewal and SIGHUP), and a
// binding that cannot match would make every SCRAM-PLUS login fail; with
// TLS 1.3, tls-exporter still binds such a connection.
func (c *conn) serverCert() *x509.Certificate {
	if c.tls == nil || c.tls.DidResume {
		return nil
	}
	if cert := c.srv.certs.ForName(c.tls.ServerName); cert != nil {
		return cert.Leaf
	}
	return nil
}

func (c *conn) tlsRequired() bool { return *c.srv.cfg.C2S.RequireTLS }

// secure reports whether the stream is encrypted (Transport.Secure): by
// our TLS, or by a trusted proxy's for WebSocket and BOSH behind one.
func (c *conn) secure() bool { return c.tls != nil || c.t.Secure() }

// features builds the <stream:features/> for the current state.
func (c *conn) features() *xml.Element {
	f := xml.New(stanza.NSStream, "features")
	switch {
	case !c.secure() && c.user == "":
		if _, ok := c.t.(tlsUpgrader); ok {
			st := xml.New(nsTLS, "starttls")
			if c.tlsRequired() {
				st.Append(xml.New(nsTLS, "required"))
			}
			f.Append(st)
		}
		if !c.tlsRequired() {
			f.Append(c.mechanisms())
			if el := c.legacyFeature(); el != nil {
				f.Append(el)
			}
			for _, el := range c.host.PreAuthStreamFeatures(c.preAuth()) {
				f.Append(el)
			}
		}
	case c.user == "":
		f.Append(c.mechanisms())
		if el := c.legacyFeature(); el != nil {
			f.Append(el)
		}
		for _, el := range c.host.PreAuthStreamFeatures(c.preAuth()) {
			f.Append(el)
		}
		if el := c.sasl2Feature(); el != nil {
			f.Append(el)
		}
		if cbs := sasl.ChannelBindingTypes(c.tls, c.serverCert()); len(cbs) > 0 {
			cb := xml.New(nsSASLCB, "sasl-channel-binding")
			for _, t := range cbs {
				cb.Append(xml.New(nsSASLCB, "channel-binding").SetAttr("type", t))
			}
			f.Append(cb)
		}
	default:
		f.Append(xml.New(nsBind, "bind"))
		f.Append(xml.New(nsSession, "session").Append(xml.New(nsSession, "optional")))
		if c.smOn() {
			f.Append(sm.Feature())
		}
		for _, el := range c.host.StreamFeatures(nil) {
			f.Append(el)
		}
	}
	return f
}

func (c *conn) mechanisms() *xml.Element {
	m := xml.New(nsSASL, "mechanisms")
	for _, name := range c.offered() {
		m.Append(xml.New(nsSASL, "mechanism").AppendText(name))
	}
	return m
}

// handleNegotiation processes one element before the session is bound.
func (c *conn) handleNegotiation(el *xml.Element) (restart, done bool, err error) {
	switch {
	case el.Space == nsTLS && el.Local == "starttls":
		if c.secure() || c.user != "" {
			return false, false, &streamErr{cond: "policy-violation", text: "TLS is already negotiated"}
		}
		return true, false, c.startTLS()
	case el.Space == nsSASL && el.Local == "auth":
		if c.user != "" {
			return false, false, &streamErr{cond: "policy-violation", text: "already authenticated"}
		}
		ok, err := c.authenticate(el)
		return ok, false, err
	case el.Space == nsSASL2 && el.Local == "authenticate":
		if c.user != "" {
			// XEP-0388 §3.8: after success, another authenticate is a
			// stream error.
			return false, false, &streamErr{cond: "policy-violation", text: "already authenticated"}
		}
		done, err := c.authenticate2(el)
		return false, done, err
	case el.Space == "" && el.Local == "iq" && c.user != "":
		return c.handlePreBindIQ(el)
	case el.Space == sm.NS && c.user != "":
		done, err := c.handleSMPreBind(el)
		return false, done, err
	case el.Space == sm.NS && (el.Local == "enable" || el.Local == "resume"):
		// XEP-0198 §3 and §5: both come after authentication; the order
		// is enforced with <failed/>, and the stream goes on.
		return false, false, c.writeEl(sm.Failed("unexpected-request", 0, false))
	case el.Space == sm.NS:
		return false, false, &streamErr{cond: "not-authorized", text: "authenticate first"}
	case el.Space == "" && el.Local == "iq" && el.FirstElement() != nil && el.FirstElement().Space == legacyauth.NS:
		if err := stanza.ValidateIQ(el); err != nil {
			return false, false, c.writeEl(stanza.ErrorReply(el, stanza.BadRequest, err.Error()))
		}
		done, err := c.handleLegacyAuth(el, el.FirstElement())
		return false, done, err
	case el.Space == "" && el.Local == "iq" && el.FirstElement() != nil && c.host.PreAuthIQ(el.FirstElement().Space) != nil:
		if err := stanza.ValidateIQ(el); err != nil {
			return false, false, c.writeEl(stanza.ErrorReply(el, stanza.BadRequest, err.Error()))
		}
		p := el.FirstElement()
		reply := c.host.PreAuthIQ(p.Space)(c.preAuth(), el, p)
		if reply == nil {
			return false, false, nil
		}
		return false, false, c.writeEl(reply)
	case el.Space == "" && (el.Local == "message" || el.Local == "presence" || el.Local == "iq"):
		return false, false, &streamErr{cond: "not-authorized", text: "authenticate first"}
	default:
		return false, false, &streamErr{cond: "unsupported-stanza-type", text: ""}
	}
}

// startTLS upgrades the connection (RFC 6120 §5.4). Every byte the client
// sent after <starttls/> and before the handshake is discarded with the old
// decoder: those bytes were not protected by TLS, and treating them as if
// they were is the classic STARTTLS command-injection bug.
func (c *conn) startTLS() error {
	up, ok := c.t.(tlsUpgrader)
	if !ok {
		return &streamErr{cond: stanza.StreamUnsupportedFeature, text: "this transport has no STARTTLS"}
	}
	if err := c.writeEl(xml.New(nsTLS, "proceed")); err != nil {
		return err
	}
	starttls, _ := c.srv.tlsConfigs()
	n, err := up.StartTLS(starttls, c.authBy)
	if n > 0 {
		// A byte or two is a client's trailing newline or keepalive; more
		// is someone pipelining plaintext, which is worth an operator's
		// attention (it is dropped either way).
		level := slog.LevelDebug
		if n > 2 {
			level = slog.LevelWarn
		}
		c.srv.log.Log(context.Background(), level, "c2s: discarding plaintext sent after <starttls/>", "remote", c.t.RemoteAddr().String(), "bytes", n)
	}
	if err != nil {
		c.log("TLS handshake failed", "err", err)
		return errClosed
	}
	c.tls = c.t.TLS()
	c.verifyPeer()
	return nil
}

// authenticate runs one SASL exchange (RFC 6120 §6.4). It returns true on
// success (the stream restarts).
func (c *conn) authenticate(auth *xml.Element) (bool, error) {
	if !c.secure() && c.tlsRequired() {
		return false, c.saslFailure("encryption-required", "")
	}
	name := auth.Attr("mechanism")
	offered := false
	for _, m := range c.offered() {
		offered = offered || m == name
	}
	if !offered {
		return false, c.saslFailure("invalid-mechanism", "")
	}
	defer c.endAttempt()
	env := c.srv.saslEnv(c)
	if c.clientCert != nil {
		env.External = c.external(c.clientCert)
	}
	sess, err := sasl.Start(name, env)
	if err != nil {
		return false, c.saslFailure("invalid-mechanism", "")
	}
	msg := auth
	for {
		data, ok := decodeSASL(msg.Text())
		if !ok {
			return false, c.saslFailure("incorrect-encoding", "")
		}
		if text := c.beginAttempt(); text != "" {
			return false, c.attemptRefused(text)
		}
		out, done, err := sess.Next(data)
		if err != nil {
			var f *sasl.Failure
			cond := "not-authorized"
			if errors.As(err, &f) {
				cond = f.Condition
				if f.Negotiation {
					return false, c.negotiationFailed(name, cond, "")
				}
			}
			return false, c.authFailed(name, cond)
		}
		if done {
			return c.authSucceeded(name, sess, out)
		}
		c.endAttempt() // no slot while the client takes its time
		ch := xml.New(nsSASL, "challenge").AppendText(base64.StdEncoding.EncodeToString(out))
		if err := c.writeEl(ch); err != nil {
			return false, err
		}
		next, err := c.t.Next()
		if err != nil {
			return false, err
		}
		switch {
		case next.Space == nsSASL && next.Local == "abort":
			return false, c.saslFailure("aborted", "")
		case next.Space == nsSASL && next.Local == "response":
			msg = next
		default:
			return false, &streamErr{cond: "policy-violation", text: "expected a SASL response"}
		}
	}
}

// decodeSASL decodes a SASL payload; "=" is an explicitly empty response.
func decodeSASL(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if s == "=" {
		return []byte{}, true
	}
	if s == "" {
		return nil, true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// saslFailure answers a SASL exchange with <failure/>: RFC 6120's, or
// during an XEP-0388 exchange SASL2's, which carries the same RFC 6120
// condition element.
func (c *conn) saslFailure(cond, text string) error {
	ns := nsSASL
	if c.inSASL2 {
		ns = nsSASL2
	}
	f := xml.New(ns, "failure").Append(xml.New(nsSASL, cond))
	if text != "" {
		f.Append(xml.New(ns, "text").AppendText(text))
	}
	return c.writeEl(f)
}

// negotiationFailed answers a SASL exchange that failed before any
// credential was examined (a malformed message, a channel-binding type the
// server cannot offer). It is not a password guess: no delay, no brute-force
// count. Stock clients hit this routinely (slixmpp asks for tls-unique, which
// TLS 1.3 lacks, on every -PLUS mechanism before falling back), so counting
// it would lock them out; a separate, larger bound still ends a client that
// loops.
func (c *conn) negotiationFailed(mech, cond, text string) error {
	c.saslFailed = true
	c.negotiationFailures++
	// Info, not debug: rare, never a password guess, and the first thing to
	// look for when a client cannot log in (README, troubleshooting).
	c.srv.log.Info("c2s: SASL negotiation failed", "remote", c.t.RemoteAddr().String(), "mechanism", mech, "condition", cond)
	if err := c.saslFailure(cond, text); err != nil {
		return err
	}
	if c.negotiationFailures >= 2*c.srv.cfg.Limits.MaxAuthFailures+4 {
		return &streamErr{cond: "policy-violation", text: "too many failed authentication attempts"}
	}
	return nil
}

// authFailed answers a failed attempt after a delay that grows with each
// failure on this connection, and closes the stream after too many. Unknown
// users and wrong passwords take the same path (the mechanism reports both
// as not-authorized).
func (c *conn) authFailed(mech, cond string) error {
	c.saslFailed = true
	if cond == sasl.CondTemporaryAuthFailure {
		// The server could not check (the directory is down): not the
		// client's failure, so no delay and no brute-force count.
		c.srv.log.Info("c2s: authentication could not be checked", "remote", c.t.RemoteAddr().String(), "mechanism", mech)
		return c.saslFailure(cond, "")
	}
	c.countFailure(mech, cond)
	if err := c.saslFailure(cond, ""); err != nil {
		return err
	}
	return c.tooManyFailures()
}

func (c *conn) authSucceeded(mech string, sess sasl.Session, out []byte) (bool, error) {
	user := sess.Username()
	if az := sess.Authzid(); az != "" {
		want := user + "@" + c.host.Domain
		if aj, err := jid.Parse(az); err != nil || aj.String() != want {
			return false, c.authFailed(mech, "invalid-authzid")
		}
	}
	if !c.admit(user, mech) {
		// Same answer, delay and counting as a wrong password: a refused
		// user must not learn that the password was right.
		return false, c.authFailed(mech, sasl.CondNotAuthorized)
	}
	succ := xml.New(nsSASL, "success")
	if len(out) > 0 {
		succ.AppendText(base64.StdEncoding.EncodeToString(out))
	}
	c.verdictDelay()
	if err := c.writeEl(succ); err != nil {
		return false, err
	}
	c.user, c.mech = user, mech
	c.srv.metrics.AuthSuccesses.WithLabelValues(mech).Inc()
	c.srv.log.Info("c2s: authenticated", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain, "mechanism", mech)
	return true, nil
}

// handlePreBindIQ handles resource binding (RFC 6120 §7) and answers the
// RFC 3921 session IQ that old clients send.
func (c *conn) handlePreBindIQ(el *xml.Element) (restart, done bool, err error) {
	payload := el.FirstElement()
	typ := el.Attr("type")
	switch {
	case typ == "set" && payload != nil && payload.Space == nsBind && payload.Local == "bind":
		return false, c.bind(el, payload), nil
	case typ == "set" && payload != nil && payload.Space == nsSession && payload.Local == "session":
		return false, false, c.writeEl(stanza.IQResult(el, nil))
	default:
		// RFC 6120 §7.1: stanzas before bind are not allowed.
		return false, false, &streamErr{cond: "not-authorized", text: "bind a resource first"}
	}
}

// bind binds the resource. On success the session is registered with the
// router (replacing a session with the same resource, which is closed with
// <conflict/>) and the writer goroutine takes over all output.
func (c *conn) bind(iq, b *xml.Element) bool {
	res := strings.TrimSpace(b.ChildText(nsBind, "resource"))
	return c.bindResource(iq, res, func(full jid.JID) *xml.Element {
		return stanza.IQResult(iq, xml.New(nsBind, "bind").Append(xml.New(nsBind, "jid").AppendText(full.String())))
	})
}

// bindResource creates the session for c.user with resource res (generated
// when empty) and sends result(full) as its first stanza. Resource binding
// (RFC 6120 §7) and XEP-0078 share it, so both get the same session
// machinery: router registration, writer, hooks.
func (c *conn) bindResource(iq *xml.Element, res string, result func(full jid.JID) *xml.Element) bool {
	s, full, cond, text := c.bindSession(res, nil)
	if s == nil {
		_ = c.writeEl(stanza.ErrorReply(iq, cond, text))
		return false
	}
	s.Send(result(full))
	c.sessionBound(s)
	return true
}

// bindSession creates and registers the session for c.user with resource
// res (generated when empty). With gate set (XEP-0386) the session starts
// gated, holding what is delivered to it until openGate, and with gate's
// stream management state (nil: none). On failure it returns a nil
// session and the stanza error condition and text, and the stream goes
// on unbound. The caller sends the first element and then calls
// sessionBound.
func (c *conn) bindSession(res string, gate *bindGate) (*session, jid.JID, stanza.Condition, string) {
	bare, err := jid.New(c.user, c.host.Domain, "")
	if err != nil {
		return nil, jid.JID{}, stanza.InternalServerError, ""
	}
	if res != "" {
		if _, err := bare.WithResource(res); err != nil {
			return nil, jid.JID{}, stanza.BadRequest, "invalid resource"
		}
	}
	// The session is complete, writer included, before the router can
	// see it: a stanza routed to it the moment Bind returns must find a
	// queue to go to.
	s := &session{srv: c.srv, host: c.host, ctx: c.ctx, id: c.id, done: make(chan struct{})}
	if gate != nil {
		s.gated, s.sm, s.continues = true, gate.sm, gate.continues
	}
	w := c.newSessionWriter(s)
	s.attach(c, w)
	c.installWriter(w)
	full, replaced, err := c.srv.router.Bind(s, bare, res)
	if err != nil {
		// The stream goes on unbound (the client may try again): the
		// connection returns to direct writes.
		c.uninstallWriter(w)
		cond, text := stanza.BadRequest, err.Error()
		switch {
		case errors.Is(err, router.ErrResourceConstraint):
			cond, text = stanza.ResourceConstraint, "too many sessions for this account"
		case errors.Is(err, router.ErrUnavailable):
			cond, text = stanza.ServiceUnavailable, "this node has lost its cluster; connect to another"
		}
		return nil, jid.JID{}, cond, text
	}
	c.sess = s // s.jid was set by Bind (router.JIDReceiver)
	if _, local := replaced.(*session); replaced != nil && gate != nil && gate.continues != "" && !local {
		replaced = nil // the holder of a handover (bindGate)
	}
	if replaced != nil {
		// The old session ends, its unavailable presence and unbound
		// hooks included, before the client learns its bind succeeded:
		// otherwise the old session's goodbye could reach contacts after
		// the new session's first presence.
		replaced.Close("conflict", "replaced by a new session with the same resource")
		if old, ok := replaced.(*session); ok {
			select {
			case <-old.done:
			case <-time.After(c.srv.cfg.Limits.WriteTimeout.Duration):
			}
		}
	}
	return s, full, "", ""
}

// sessionBound counts the new session and tells the modules.
func (c *conn) sessionBound(s *session) { c.sessionBoundHere(s, false) }

// sessionBoundHere is sessionBound; moved is for a session handed over
// from another node, which is no new login (SessionEvent.Moved).
func (c *conn) sessionBoundHere(s *session, moved bool) {
	c.srv.metrics.Sessions.WithLabelValues(c.host.Domain).Inc()
	c.host.Sessions.Fire(module.EventSessionBound, &module.SessionEvent{Ctx: c.ctx, Host: c.host, Session: s, Moved: moved})
}

// readStanzas is the bound session's read loop. It reports true when the
// reader parked (the stream goes on), false when the stream ended. The
// idle timeout's deadline is moved at each stanza, after it, so that a
// parked reader waking at that deadline does not extend it.
func (c *conn) readStanzas() (parked bool) {
	idle := c.srv.cfg.Limits.IdleTimeout.Duration
	for {
		el, err := c.t.Next()
		if err != nil {
			if errors.Is(err, errParked) {
				return true
			}
			c.fail(err)
			return false
		}
		if !c.beginHandling() {
			// Resumed elsewhere: this stream is being closed (with
			// <conflict/>), and the client sends again what <resumed/>
			// did not count. Read on until the close ends the read.
			continue
		}
		err = c.handleStanza(el)
		c.endHandling(el.Space == "") // after routing: see sm.go on durable acks
		if err != nil {
			c.fail(c.asStreamError(err))
			return false
		}
		if idle > 0 {
			_ = c.t.SetReadDeadline(time.Now().Add(idle))
		}
	}
}

// canonicalTo is the 'to' a stanza goes on with when the client wrote t
// for the JID tj (canon, its canonical form). Everything is canonical,
// except the resource of a presence to a JID of no local account's host
// (a chat room, another server): a room must see the nickname as written,
// to tell the client with status 210 that it changed it (XEP-0045 §7.2),
// and a remote server prepares the resource itself. Routing goes by the
// parsed JID either way.
func (c *conn) canonicalTo(el *xml.Element, t string, tj jid.JID, canon string) string {
	if el.Local != "presence" || tj.Resource() == "" || c.srv.router.Host(tj.Domain()) != nil {
		return canon
	}
	_, res, _ := strings.Cut(t, "/")
	return tj.Bare().String() + "/" + res
}

// handleStanza validates and stamps a stanza from the client and hands it
// to the router (RFC 6120 §8.1).
func (c *conn) handleStanza(el *xml.Element) error {
	if el.Space == sm.NS {
		return c.handleSMBound(el)
	}
	if !stanza.IsStanza(el) {
		if fn := c.host.StreamElement(el.Space, el.Local); fn != nil {
			fn(c.sess, el)
			return nil
		}
		return &streamErr{cond: "unsupported-stanza-type", text: ""}
	}
	c.srv.metrics.CountStanzaIn(el.Local)
	full := c.sess.jid
	if f := el.Attr("from"); f != "" {
		fj, err := jid.Parse(f)
		if err != nil || (fj != full && fj != full.Bare()) {
			// RFC 6120 §8.1.2.1: a from the session may not use.
			return &streamErr{cond: "invalid-from", text: ""}
		}
	}
	// el is the decoder's fresh tree, this session's own value: "from" is
	// stamped in place (the decoder leaves a spare attribute slot for it,
	// so this neither copies nor allocates), and so is the canonical "to".
	el.SetAttr("from", full.String())
	var to jid.JID
	if t := el.Attr("to"); t != "" {
		tj, err := jid.Parse(t)
		if err != nil {
			c.sess.Send(stanza.ErrorReply(el.WithAttr("to", ""), stanza.JIDMalformed, ""))
			return nil
		}
		to = tj
		if canon := tj.String(); canon != t {
			el.SetAttr("to", c.canonicalTo(el, t, tj, canon))
		}
	}
	if el.Local == "iq" {
		if err := stanza.ValidateIQ(el); err != nil {
			if reply := stanza.ErrorReply(el, stanza.BadRequest, err.Error()); reply != nil {
				c.sess.Send(reply)
			}
			return nil
		}
		if p := el.FirstElement(); p != nil && p.Space == nsSession && el.Attr("type") == "set" && (to.IsZero() || to.String() == c.host.Domain) {
			c.sess.Send(stanza.IQResult(el, nil))
			return nil
		}
		c.sess.noteArchiveQuery(el, to)
	}
	c.srv.router.FromSession(c.ctx, c.sess, el, to)
	return nil
}
