package s2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/s2s/dialback"
	"parley/internal/stream"
	"parley/internal/tlsfrag"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// pairKey is a (remote, local) domain pair.
type pairKey struct{ remote, local string }

// inConn is one incoming stream. A single goroutine reads; dialback
// verifications run on their own goroutines and write their answers
// through write, which serialises all output.
type inConn struct {
	s      *Service
	raw    net.Conn
	nc     net.Conn
	direct bool
	tls    *tls.ConnectionState
	dec    *xml.Decoder
	id     string
	local  string // the 'to' of the stream header
	peer   string // the 'from' of the stream header, if any
	v1     bool
	ext    bool // SASL EXTERNAL done
	// preAuthDeadline is fixed at accept: TLS handshakes (direct or after
	// STARTTLS) and negotiation all count against one pre-authentication
	// budget, so a peer cannot restart the clock by starting TLS late.
	preAuthDeadline time.Time

	lastActive atomic.Int64
	wmu        sync.Mutex
	// opened reports that our stream header is out on nc (guarded by
	// wmu). STARTTLS replaces nc with a transport on which the peer must
	// open a new stream and we have not answered yet; anything that ends
	// the stream there (a timeout, a shutdown, an unreadable header) has
	// to open ours first (RFC 6120 §4.9.1.2).
	opened bool

	closeOnce sync.Once
	done      chan struct{}

	mu       sync.Mutex
	verified map[pairKey]string // → method
	pending  map[pairKey]bool
	claimed  map[pairKey]bool // domain pairs this stream asked to verify (max_dialback_domains)
	// authFailures counts failed SASL EXTERNAL attempts (saslFailure).
	authFailures int
	verdicts     map[string]string // peer domain → certificate verdict
	started      time.Time
}

func newInConn(s *Service, nc net.Conn, direct bool) *inConn {
	return &inConn{
		s: s, raw: nc, nc: nc, direct: direct, done: make(chan struct{}),
		verified: map[pairKey]string{}, pending: map[pairKey]bool{}, claimed: map[pairKey]bool{}, verdicts: map[string]string{},
		started: s.now(),
	}
}

// streamErr ends the stream with a condition.
type streamErr struct {
	cond stanza.StreamCondition
	text string
}

func (e *streamErr) Error() string { return string(e.cond) + ": " + e.text }

func (c *inConn) remoteAddr() string { return c.raw.RemoteAddr().String() }

func (c *inConn) serve() {
	defer close(c.done)
	c.lastActive.Store(time.Now().UnixNano())
	c.preAuthDeadline = time.Now().Add(c.s.cfg.Limits.PreAuthTimeout.Duration)
	if c.direct {
		tc := tls.Server(tlsfrag.Server(c.s.rateLimit(c.raw)), c.s.serverTLS())
		_ = tc.SetDeadline(c.preAuthDeadline)
		if err := tc.Handshake(); err != nil {
			c.s.failures.WithLabelValues("in", "tls-failed").Inc()
			_ = c.raw.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.setConn(tc, &st)
	} else {
		c.setConn(c.s.rateLimit(c.raw), nil)
	}
	// Until a domain is verified the whole stream runs on the
	// pre-authentication clock; then the idle watcher takes over.
	_ = c.nc.SetReadDeadline(c.preAuthDeadline)
	stop := c.watchIdle()
	defer stop()
	err := c.loop()
	c.finish(err)
}

func (c *inConn) finish(err error) {
	var se *streamErr
	var xe *xml.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, xml.ErrStreamClosed), errors.Is(err, net.ErrClosed):
		c.close("", "")
	case errors.As(err, &se):
		c.s.failures.WithLabelValues("in", string(se.cond)).Inc()
		c.close(se.cond, se.text)
	case errors.As(err, &xe):
		c.s.failures.WithLabelValues("in", "protocol").Inc()
		c.close(stanza.StreamCondition(xe.Condition), xe.Text)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.s.failures.WithLabelValues("in", "timeout").Inc()
		c.close(stanza.StreamConnectionTimeout, "")
	default:
		c.close("", "")
	}
}

// close sends an optional stream error and the closing tag, then closes.
func (c *inConn) close(cond stanza.StreamCondition, text string) {
	c.closeOnce.Do(func() {
		if cond != "" {
			c.s.metrics.StreamErrors.WithLabelValues(string(cond)).Inc()
			c.s.log.Info("incoming stream error", "remote", c.remoteAddr(), "peer", c.peerName(), "condition", cond, "text", text)
		}
		c.wmu.Lock()
		nc := c.nc
		if b := c.endingLocked(cond, text); len(b) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write(b)
		}
		c.wmu.Unlock()
		stream.CloseConn(nc)
	})
}

// endingLocked is what ends the stream on the wire (wmu held): the stream
// error, if any, and the closing tag. A stream we have not opened on this
// transport is opened first when there is an error to report, since a
// bare <stream:error> is not well-formed and the peer would log that
// instead of the reason; without an error there is nothing to close and
// nothing is written (the peer went away before its header, or never
// sent one after STARTTLS).
func (c *inConn) endingLocked(cond stanza.StreamCondition, text string) []byte {
	if !c.opened && cond == "" {
		return nil
	}
	var b []byte
	if !c.opened {
		c.mu.Lock()
		hdr := serverHeader(c.local, c.peer)
		c.mu.Unlock()
		c.s.traceHeader("in", "send", c.remoteAddr(), hdr)
		b = xml.StreamHeaderBytes(hdr)
		c.opened = true
	}
	if cond != "" {
		b = append(b, streamErrorBytes(cond, text)...)
	}
	return append(b, xml.StreamClose...)
}

// serverHeader is the header of a stream we answer: a new stream ID,
// jabber:server with the dialback prefix declared, XMPP 1.0.
func serverHeader(from, to string) xml.StreamHeader {
	return xml.StreamHeader{
		DefaultNS: stanza.NSServer, ID: stream.NewID(), From: from, To: to, Version: "1.0", Lang: "en",
		Prefixes: []xml.NSDecl{{Prefix: "db", URI: dialback.NS}},
	}
}

// peerName is the 'from' of the peer's first header, for logs.
func (c *inConn) peerName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

func (c *inConn) write(el *xml.Element) error {
	el = wire(el)
	c.s.traceEl("in", "send", c.remoteAddr(), el)
	var buf bytes.Buffer
	_, _ = el.WriteToNS(&buf, stanza.NSServer)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.Limits.WriteTimeout.Duration))
	_, err := c.nc.Write(buf.Bytes())
	return err
}

func (c *inConn) loop() error {
	for {
		if err := c.open(); err != nil {
			return err
		}
		for {
			el, err := c.dec.Next()
			if err != nil {
				return err
			}
			c.lastActive.Store(time.Now().UnixNano())
			restart, err := c.handle(el)
			if err != nil {
				return err
			}
			if restart {
				break
			}
		}
	}
}

// open reads the peer's header and answers with ours and the features.
func (c *inConn) open() error {
	c.dec = c.s.newDecoder(c.nc)
	h, err := c.dec.ReadHeader()
	if err != nil {
		return err // close opens our stream before the error, if there is one
	}
	c.s.traceHeader("in", "recv", c.remoteAddr(), h)
	to := strings.ToLower(strings.TrimSuffix(h.To, "."))
	if d, err := jid.PrepareDomain(to); err == nil {
		to = d // hosts are named in U-labels; a peer may write A-labels
	}
	reply := serverHeader(to, "")
	c.id = reply.ID
	c.v1 = versionAtLeast1(h.Version)
	if !c.v1 {
		reply.Version = ""
	}
	if h.From != "" {
		if fj, err := jid.Parse(h.From); err == nil && fj.Local() == "" && fj.Resource() == "" {
			reply.To = fj.String()
			c.mu.Lock()
			if c.peer == "" {
				c.peer = fj.String()
			}
			c.mu.Unlock()
		}
	}
	c.s.traceHeader("in", "send", c.remoteAddr(), reply)
	c.wmu.Lock()
	_, err = c.nc.Write(xml.StreamHeaderBytes(reply))
	c.opened = true
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case h.Space != stanza.NSStream || h.Local != "stream":
		return &streamErr{stanza.StreamInvalidNamespace, ""}
	case h.DefaultNS != stanza.NSServer:
		return &streamErr{stanza.StreamInvalidNamespace, "this port serves jabber:server"}
	case to == "" && c.local == "":
		// RFC 6120 §4.7.2: the initiating server includes 'to'.
		return &streamErr{stanza.StreamImproperAddressing, "the stream header has no 'to'"}
	case to != "" && !c.s.isLocal(to):
		return &streamErr{stanza.StreamHostUnknown, "this server does not serve " + h.To}
	}
	if c.local == "" {
		c.mu.Lock()
		c.local = to
		c.mu.Unlock()
	}
	if !c.v1 {
		return nil
	}
	if err := c.refuseWithoutMethod(); err != nil {
		return err
	}
	return c.write(c.features())
}

// refuseWithoutMethod ends a TLS stream on which the peer cannot
// authenticate at all: dialback is off for our domain and its certificate
// does not pass SASL EXTERNAL (or its header named no domain for EXTERNAL
// to check). Offering empty features would leave it waiting for the
// pre-authentication timeout; policy-violation tells it why. It runs after
// our header is out, so the error is inside a stream.
func (c *inConn) refuseWithoutMethod() error {
	if c.tls == nil || c.ext || c.s.policy(c.local).dialback {
		return nil
	}
	if c.peer == "" {
		return &streamErr{stanza.StreamPolicyViolation, "dialback is disabled and the stream header names no domain for SASL EXTERNAL"}
	}
	if v := c.peerVerdict(c.peer); v != VerdictValid {
		return &streamErr{stanza.StreamPolicyViolation, "certificate of " + c.peer + " not accepted (" + v + ") and dialback is disabled"}
	}
	return nil
}

// features offers, in order of preference: STARTTLS (required when the
// policy requires encryption); after TLS, SASL EXTERNAL when the peer's
// certificate is valid for the domain in its header; dialback when the
// policy allows it (before TLS only when encryption is not required).
func (c *inConn) features() *xml.Element {
	pol := c.s.policy(c.local)
	f := xml.New(stanza.NSStream, "features")
	if c.tls == nil {
		st := xml.New(nsTLS, "starttls")
		if pol.requireTLS {
			st.Append(xml.New(nsTLS, "required"))
		}
		f.Append(st)
		if !pol.requireTLS && pol.dialback {
			f.Append(dialback.Feature())
		}
		return f
	}
	if !c.ext && c.peer != "" && c.peerVerdict(c.peer) == VerdictValid {
		f.Append(xml.New(nsSASL, "mechanisms").Append(xml.New(nsSASL, "mechanism").AppendText("EXTERNAL")))
	}
	if pol.dialback {
		f.Append(dialback.Feature())
	}
	return f
}

// peerVerdict is the client certificate's verdict for a domain.
func (c *inConn) peerVerdict(domain string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.verdicts[domain]; ok {
		return v
	}
	v := verdict(c.tls, c.s.roots, domain, c.s.now())
	c.verdicts[domain] = v
	return v
}

// handle processes one element; restart reports a stream restart.
func (c *inConn) handle(el *xml.Element) (restart bool, err error) {
	if !stanza.IsStanza(el) {
		c.s.traceEl("in", "recv", c.remoteAddr(), el)
	}
	switch {
	case el.Space == nsTLS && el.Local == "starttls":
		return true, c.startTLS()
	case el.Space == nsSASL && el.Local == "auth":
		return c.auth(el)
	case el.Space == dialback.NS && el.Local == "result":
		if el.Attr("type") != "" {
			c.s.log.Debug("ignoring db:result answer on an incoming stream", "remote", c.remoteAddr())
			return false, nil
		}
		return false, c.dbResult(el)
	case el.Space == dialback.NS && el.Local == "verify":
		if el.Attr("type") != "" {
			c.s.log.Debug("ignoring unsolicited db:verify answer", "remote", c.remoteAddr())
			return false, nil
		}
		return false, c.write(c.s.answerVerify(el, c.tls != nil))
	case el.Space == "" && (el.Local == "message" || el.Local == "presence" || el.Local == "iq"):
		return false, c.stanza(el)
	case el.Space == stanza.NSStream && el.Local == "error":
		// The peer ends the stream (RFC 6120 §4.9.1.1): no error back.
		c.s.log.Info("stream error from peer", "remote", c.remoteAddr(), "peer", c.peer, "error", el.String())
		return false, io.EOF
	default:
		return false, &streamErr{stanza.StreamUnsupportedStanzaType, ""}
	}
}

// startTLS upgrades the stream. Plaintext pipelined after <starttls/> is
// dropped with the old decoder (see xml.Decoder).
func (c *inConn) startTLS() error {
	if c.tls != nil {
		return &streamErr{stanza.StreamPolicyViolation, "TLS is already negotiated"}
	}
	if err := c.write(xml.New(nsTLS, "proceed")); err != nil {
		return err
	}
	tc := tls.Server(tlsfrag.Server(c.nc), c.s.serverTLS())
	_ = tc.SetDeadline(c.preAuthDeadline)
	if err := tc.Handshake(); err != nil {
		c.s.failures.WithLabelValues("in", "tls-failed").Inc()
		_ = c.raw.Close()
		return net.ErrClosed
	}
	_ = tc.SetWriteDeadline(time.Time{})
	st := tc.ConnectionState()
	c.setConn(tc, &st)
	return nil
}

// setConn replaces the transport. The reader goroutine is the only writer;
// other goroutines read nc under wmu (writes, close) and tls under mu
// (List, logs), so both locks are held, in the order wmu then mu.
func (c *inConn) setConn(nc net.Conn, st *tls.ConnectionState) {
	c.wmu.Lock()
	c.mu.Lock()
	c.nc, c.tls = nc, st
	c.opened = false
	c.mu.Unlock()
	c.wmu.Unlock()
}

// saslFailure answers a failed SASL EXTERNAL attempt; after
// limits.max_auth_failures of them the stream ends, as a client stream
// does, rather than let a peer try on forever.
func (c *inConn) saslFailure(cond string) error {
	if err := c.write(xml.New(nsSASL, "failure").Append(xml.New(nsSASL, cond))); err != nil {
		return err
	}
	c.authFailures++
	if c.authFailures >= c.s.cfg.Limits.MaxAuthFailures {
		return &streamErr{stanza.StreamPolicyViolation, "too many failed authentication attempts"}
	}
	return nil
}

// auth is SASL EXTERNAL for servers (XEP-0178): the authorization
// identity, or the header's 'from' when empty, must be the domain the
// peer certificate is valid for.
func (c *inConn) auth(el *xml.Element) (bool, error) {
	if el.Attr("mechanism") != "EXTERNAL" || c.tls == nil || c.ext {
		return false, c.saslFailure("invalid-mechanism")
	}
	authz := c.peer
	if t := strings.TrimSpace(el.Text()); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return false, c.saslFailure("incorrect-encoding")
		}
		if authz, err = jid.PrepareDomain(string(b)); err != nil {
			return false, c.saslFailure("invalid-authzid")
		}
	}
	if authz == "" || authz != c.peer {
		return false, c.saslFailure("invalid-authzid")
	}
	v := c.peerVerdict(authz)
	if v != VerdictValid {
		c.s.failures.WithLabelValues("in", "certificate-"+v).Inc()
		return false, c.saslFailure("not-authorized")
	}
	if ok, reason := c.s.policy(c.local).permits(authz); !ok {
		c.s.failures.WithLabelValues("in", reason).Inc()
		c.s.log.Info("refused incoming stream by policy", "local", c.local, "remote", authz, "reason", reason)
		return false, c.saslFailure("not-authorized")
	}
	if err := c.write(xml.New(nsSASL, "success")); err != nil {
		return false, err
	}
	c.ext = true
	c.verifiedPair(pairKey{authz, c.local}, MethodExternal, v)
	return true, nil
}

// verifiedPair records an authenticated pair, logs it and counts it.
func (c *inConn) verifiedPair(k pairKey, method, v string) {
	c.mu.Lock()
	first := len(c.verified) == 0
	c.verified[k] = method
	delete(c.pending, k)
	tlsState := c.tls
	c.mu.Unlock()
	if first {
		c.wmu.Lock()
		nc := c.nc
		c.wmu.Unlock()
		_ = nc.SetReadDeadline(time.Time{})
	}
	c.s.conns.WithLabelValues("in", method).Inc()
	c.s.log.Info("s2s authenticated", "direction", "in", "local", k.local, "remote", k.remote, "addr", c.remoteAddr(),
		"tls", tlsVersion(tlsState), "certificate", v, "method", method)
}

// dbResult is a dialback request from an originating server (XEP-0220
// §2.1.2): check the policy, then verify the key with the authoritative
// server on a separate stream and answer.
func (c *inConn) dbResult(el *xml.Element) error {
	// Both domains as addresses' domains are prepared (RFC 7622 §3.2),
	// so that the policy lists, the verified pairs and the 'from' of the
	// stanzas that follow all compare the same form of a name (an
	// internationalised domain claimed by its U-label is the domain an
	// A-label in blocked_domains names).
	//
	// On the wire (the db:verify to the authoritative server, the answer
	// to this db:result) the domains stay as the peer wrote them: the key
	// is a hash over its strings, and it matches answers by them.
	key := strings.TrimSpace(el.Text())
	wireFrom, wireTo := strings.ToLower(el.Attr("from")), strings.ToLower(el.Attr("to"))
	from, ferr := jid.PrepareDomain(el.Attr("from"))
	to, terr := jid.PrepareDomain(el.Attr("to"))
	if ferr != nil || terr != nil || key == "" {
		return &streamErr{stanza.StreamImproperAddressing, "db:result needs a 'from' domain, a 'to' domain and a key"}
	}
	if !c.s.isLocal(to) {
		return c.write(dialback.Error("result", wireTo, wireFrom, "", stanza.ItemNotFound))
	}
	pol := c.s.policy(to)
	refuse := func(reason string) error {
		c.s.failures.WithLabelValues("in", reason).Inc()
		c.s.log.Info("refused incoming dialback by policy", "local", to, "remote", from, "reason", reason, "addr", c.remoteAddr())
		return c.write(dialback.Error("result", wireTo, wireFrom, "", stanza.PolicyViolation))
	}
	if ok, reason := pol.permits(from); !ok {
		return refuse(reason)
	}
	if c.s.isLocal(from) {
		// Only this server holds its own key: a claim to be one of its
		// domains is refused at once rather than asked of itself.
		return refuse("own-domain")
	}
	if !pol.dialback {
		return refuse("dialback-disabled")
	}
	if c.tls == nil && pol.requireTLS {
		return refuse("no-tls")
	}
	k := pairKey{from, to}
	lim := c.s.cfg.S2S
	c.mu.Lock()
	busy := c.pending[k] || c.verified[k] != ""
	tooMany, overLife := false, false
	switch {
	case busy:
	case !c.claimed[k] && len(c.claimed) >= lim.MaxDialbackDomains:
		overLife = true // a retry of a pair already claimed is no new one
	case len(c.pending) >= lim.MaxDialbackPending:
		tooMany = true
	default:
		c.claimed[k] = true
		c.pending[k] = true
	}
	c.mu.Unlock()
	switch {
	case busy:
		return nil
	case overLife:
		c.s.failures.WithLabelValues("in", "too-many-domains").Inc()
		return &streamErr{stanza.StreamPolicyViolation, "too many domains claimed on one stream"}
	case tooMany:
		c.s.failures.WithLabelValues("in", "too-many-pending").Inc()
		return c.write(dialback.Error("result", wireTo, wireFrom, "", stanza.ResourceConstraint))
	}
	// Each verification may open a stream to the claimed domain: a
	// bounded number run across the server.
	select {
	case c.s.verifications <- struct{}{}:
	default:
		c.mu.Lock()
		delete(c.pending, k)
		c.mu.Unlock()
		c.s.failures.WithLabelValues("in", "too-many-verifications").Inc()
		return c.write(dialback.Error("result", wireTo, wireFrom, "", stanza.ResourceConstraint))
	}
	method := MethodDialback
	v := VerdictNone
	if c.tls != nil {
		method = MethodDialbackTLS
		v = c.peerVerdict(from)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.S2S.ConnectTimeout.Duration)
		defer cancel()
		ok, err := c.s.verify(ctx, to, from, wireTo, wireFrom, c.id, key)
		<-c.s.verifications
		select {
		case <-c.done:
			return
		default:
		}
		switch {
		case err != nil:
			c.mu.Lock()
			delete(c.pending, k)
			c.mu.Unlock()
			cond, reason := stanza.RemoteServerNotFound, "verify-failed"
			if errors.Is(err, context.DeadlineExceeded) {
				cond, reason = stanza.RemoteServerTimeout, "verify-timeout"
			}
			c.s.failures.WithLabelValues("in", reason).Inc()
			c.s.log.Info("dialback verification failed", "local", to, "remote", from, "err", err)
			_ = c.write(dialback.Error("result", wireTo, wireFrom, "", cond))
		case ok:
			// Record the pair before answering: the peer sends its queued
			// stanzas as soon as it reads type='valid', and the reader
			// goroutine must already accept them (otherwise a fast peer
			// meets not-authorized).
			c.verifiedPair(k, method, v)
			_ = c.write(dialback.Result(wireTo, wireFrom, "valid", ""))
		default:
			c.mu.Lock()
			delete(c.pending, k)
			c.mu.Unlock()
			c.s.failures.WithLabelValues("in", "dialback-invalid").Inc()
			c.s.log.Warn("dialback key rejected by the authoritative server", "local", to, "remote", from, "addr", c.remoteAddr())
			_ = c.write(dialback.Result(wireTo, wireFrom, "invalid", ""))
		}
	}()
	return nil
}

// answerVerify answers a db:verify request as the authoritative server
// (XEP-0220 §2.1.3): the key is recomputed from our secret, so nothing
// needs remembering and a key we never issued cannot match.
//
// Where the policy of the domain asked about requires encryption, a
// request on a stream without TLS gets no verdict: it is refused with
// policy-violation, as a db:result before TLS is (valid or invalid would
// tell whoever reads or rewrites the plaintext whether a key holds).
//
// We made our keys over prepared domains (ours, and the receiving
// server's as outConn holds it), so they are checked over the prepared
// forms of the request's domains: a receiving server that writes them
// otherwise (A-labels for the U-labels we sent) asks about the same key.
// The answer names the domains as the request did, which is how the
// receiving server matches it.
func (s *Service) answerVerify(el *xml.Element, encrypted bool) *xml.Element {
	from, to, id := strings.ToLower(el.Attr("from")), strings.ToLower(el.Attr("to")), el.Attr("id")
	pfrom, ferr := jid.PrepareDomain(from)
	pto, terr := jid.PrepareDomain(to)
	if terr != nil || !s.isLocal(pto) {
		return dialback.Error("verify", to, from, id, stanza.ItemNotFound)
	}
	if !encrypted && s.policy(pto).requireTLS {
		s.failures.WithLabelValues("in", "no-tls").Inc()
		s.log.Info("refused db:verify without TLS", "local", pto, "remote", from)
		return dialback.Error("verify", to, from, id, stanza.PolicyViolation)
	}
	typ := "invalid"
	if ferr == nil && s.keys.Valid(pfrom, pto, id, strings.TrimSpace(el.Text())) {
		typ = "valid"
	}
	return dialback.Verify(to, from, id, typ, "")
}

// stanza accepts a stanza only from a verified (remote, local) pair: no
// pair at all is not-authorized, a 'from' outside the verified domains is
// invalid-from (RFC 6120 §4.9.3.9), a 'to' we do not serve host-unknown.
func (c *inConn) stanza(el *xml.Element) error {
	c.mu.Lock()
	n := len(c.verified)
	c.mu.Unlock()
	if n == 0 {
		return &streamErr{stanza.StreamNotAuthorized, "no domain is verified on this stream"}
	}
	if el.Attr("from") == "" || el.Attr("to") == "" {
		return &streamErr{stanza.StreamImproperAddressing, "stanzas between servers need 'from' and 'to'"}
	}
	from, err := jid.Parse(el.Attr("from"))
	if err != nil {
		return &streamErr{stanza.StreamInvalidFrom, "malformed from"}
	}
	to, err := jid.Parse(el.Attr("to"))
	if err != nil {
		c.s.bounce(el.WithAttr("from", from.String()), stanza.JIDMalformed, "")
		return nil
	}
	c.mu.Lock()
	ok := c.verified[pairKey{from.Domain(), to.Domain()}] != ""
	c.mu.Unlock()
	if !ok {
		if !c.s.isLocal(to.Domain()) {
			return &streamErr{stanza.StreamHostUnknown, to.Domain() + " is not served here"}
		}
		return &streamErr{stanza.StreamInvalidFrom, from.Domain() + " is not verified for " + to.Domain() + " on this stream"}
	}
	c.s.metrics.CountStanzaIn(el.Local)
	el = el.WithAttr("from", from.String()).WithAttr("to", to.String())
	if el.Local == "iq" {
		if err := stanza.ValidateIQ(el); err != nil {
			if reply := stanza.ErrorReply(el, stanza.BadRequest, err.Error()); reply != nil {
				c.s.router.Route(context.Background(), reply)
			}
			return nil
		}
	}
	c.s.router.Route(context.Background(), el)
	return nil
}

// watchIdle closes the stream after idle_timeout without input.
func (c *inConn) watchIdle() func() {
	return watchIdle(c.s.cfg.S2S.IdleTimeout.Duration, &c.lastActive, func() { c.close("", "") })
}

// watchIdle calls onIdle once when lastActive (UnixNano) is idle or more in
// the past, checking on a ticker (a read deadline would break the
// decoder), until the returned stop is called.
func watchIdle(idle time.Duration, lastActive *atomic.Int64, onIdle func()) (stop func()) {
	t := time.NewTicker(max(idle/4, 50*time.Millisecond))
	done := make(chan struct{})
	go func() {
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastActive.Load())) >= idle {
					onIdle()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
