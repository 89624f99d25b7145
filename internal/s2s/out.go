package s2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/s2s/dialback"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces of stream negotiation (RFC 6120).
const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
)

// Pair states.
const (
	pairPending = iota // queued, authentication not started
	pairAuthing        // db:result sent
	pairValid
)

// outPair is one local domain on an outgoing stream.
type outPair struct {
	state  int
	method string
	queue  []*xml.Element
	since  time.Time
}

// failure is why an outgoing stream or pair could not be used; reason is
// the metrics label, timeout selects remote-server-timeout for bounces.
type failure struct {
	reason  string
	timeout bool
	err     error
}

func (f *failure) Error() string { return f.reason + ": " + f.err.Error() }

func (f *failure) Unwrap() error { return f.err }

func fail(reason string, err error) *failure { return &failure{reason: reason, err: err} }

// outConn is the outgoing stream to one remote domain. Negotiation (TLS,
// SASL EXTERNAL) runs on its own goroutine writing directly; afterwards a
// stream.Writer owns all writes and one reader dispatches dialback answers.
type outConn struct {
	s      *Service
	remote string
	first  string // local domain named in our stream header

	readyCh    chan struct{} // closed once db:verify and db:result may be sent
	doneCh     chan struct{} // closed when the stream ended
	lastActive atomic.Int64

	mu       sync.Mutex
	pairs    map[string]*outPair
	verifies map[string]chan string // local+" "+id → answer type
	closed   bool
	w        *stream.Writer
	nc       net.Conn
	tls      *tls.ConnectionState
	verdict  string
	addr     string
	streamID string
	peerDB   bool // the peer speaks dialback
	// external reports that SASL EXTERNAL authenticated first on this
	// stream; a pair for first added later is valid at once.
	external bool
	started  time.Time
	// forVerify marks a stream started to carry db:verify to the
	// authoritative server (Service.verify) that no stanza has used yet.
	// It has no pair of ours, and once no verification is using it
	// (verifying) it lingers a little for the next one and then ends
	// (settle): otherwise every domain a peer claims would leave a stream
	// open until idle_timeout. The first stanza for it clears the mark
	// for good.
	forVerify bool
	verifying int // Service.verify calls using the stream now
	// lingering reports that the stream holds one of the service's
	// linger slots (Service.lingering); lingerGen counts the uses of the
	// stream, so a linger timer that finds it changed does nothing.
	lingering bool
	lingerGen uint64
	// opened reports that our stream header is out on the current
	// transport. A new connection or a TLS handshake starts a new stream
	// that we have not opened yet, and a stream error sent there must be
	// preceded by our header to be well-formed (RFC 6120 §4.9.1.2). Only
	// the negotiating goroutine reads or writes it.
	opened bool
}

// newOutConn makes the stream to remote with local in its header, which
// carries local's stanzas, or with forVerify only db:verify requests
// until a stanza comes for it (no pair of ours is authenticated on a
// stream nobody asked to send on).
func newOutConn(s *Service, remote, local string, forVerify bool) *outConn {
	o := &outConn{
		s: s, remote: remote, first: local,
		readyCh: make(chan struct{}), doneCh: make(chan struct{}),
		pairs: map[string]*outPair{}, verifies: map[string]chan string{},
		started: s.now(), forVerify: forVerify,
	}
	if !forVerify {
		o.pairs[local] = &outPair{since: s.now()}
	}
	o.touch()
	return o
}

func (o *outConn) touch() { o.lastActive.Store(time.Now().UnixNano()) }

func (o *outConn) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// carries reports whether the live stream has a pair for local (being
// authenticated or authenticated).
func (o *outConn) carries(local string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.closed && o.pairs[local] != nil
}

// send queues or writes a stanza from local. It reports false, having
// done nothing, when the stream has ended: the caller tries a new one.
func (o *outConn) send(local string, el *xml.Element) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if o.forVerify {
		o.forVerify = false // a route now: never closed as unused
		o.unlingerLocked()
	}
	p := o.pairs[local]
	if p == nil {
		p = &outPair{since: o.s.now()}
		o.pairs[local] = p
		switch {
		case o.w == nil: // still negotiating: run starts the pair
		case local == o.first && o.external:
			// A stream opened for verification that authenticated
			// with SASL EXTERNAL: the header's domain is valid already.
			p.state, p.method = pairValid, MethodExternal
			o.authenticatedLocked(local, p)
		default:
			o.startPairLocked(local, p)
		}
	}
	if p.state == pairValid {
		w := o.w
		o.mu.Unlock()
		o.touch()
		// false: the writer closed since the lock was let go (idle,
		// overflow); the caller tries a new stream or bounces.
		return w.Send(el)
	}
	if len(p.queue) >= o.s.cfg.S2S.QueueSize {
		o.mu.Unlock()
		o.s.bounce(el, stanza.ResourceConstraint, "too many stanzas waiting for the connection to "+o.remote)
		return true
	}
	p.queue = append(p.queue, el)
	o.mu.Unlock()
	return true
}

// run sets the stream up, then reads until it ends.
func (o *outConn) run() {
	defer close(o.doneCh)
	ctx, cancel := context.WithTimeout(context.Background(), o.s.cfg.S2S.ConnectTimeout.Duration)
	// SASL EXTERNAL presents OUR certificate to the peer, so it is worth
	// trying only when that certificate passes the checks we apply to
	// peers (chains to a trusted root, names our domain). A self-signed
	// certificate is refused by every conforming peer; dialback is the
	// method then, whatever the peer's certificate is.
	own := o.s.ownVerdict(o.first)
	tryExternal := own == VerdictValid
	external, dec, err := o.negotiate(ctx, tryExternal, own)
	if errors.Is(err, errExternalRefused) && o.s.policy(o.first).dialback {
		// Some servers (ejabberd) ignore dialback on a stream whose SASL
		// attempt failed, so dialback gets a fresh connection.
		o.resetTransport()
		external, dec, err = o.negotiate(ctx, false, own)
	}
	cancel()
	if err != nil {
		o.failAll(err)
		return
	}
	lim := o.s.cfg.Limits
	w := stream.NewWriter(o.nc, lim.OutputQueue, lim.WriteTimeout.Duration, stanza.NSServer)
	w.Drains = o.s.drains
	w.OnOverflow = func() { go o.failAll(fail("output-overflow", errors.New("peer does not read"))) }
	w.OnWrite = func(el *xml.Element) {
		if stanza.IsStanza(el) {
			o.s.metrics.CountStanzaOut(el.Local)
		}
	}
	o.mu.Lock()
	o.w, o.external = w, external
	if p := o.pairs[o.first]; external && p != nil {
		p.state, p.method = pairValid, MethodExternal
		o.authenticatedLocked(o.first, p)
	}
	for local, p := range o.pairs {
		if p.state == pairPending {
			o.startPairLocked(local, p)
		}
	}
	o.mu.Unlock()
	close(o.readyCh)
	stop := o.watchIdle()
	defer stop()
	// A stream for verification whose verifications gave up while it was
	// set up has nothing to do.
	o.settle()
	o.read(dec)
}

// errExternalRefused reports that the peer answered our SASL EXTERNAL with
// a failure; the stream has been closed.
var errExternalRefused = errors.New("s2s: SASL EXTERNAL refused by the peer")

// resetTransport closes the stream after a refused SASL EXTERNAL and
// forgets its TLS state, so negotiate starts over on a new connection.
func (o *outConn) resetTransport() {
	o.mu.Lock()
	nc := o.nc
	o.nc, o.tls, o.verdict, o.streamID, o.peerDB = nil, nil, "", "", false
	o.mu.Unlock()
	o.opened = false
	if nc != nil {
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte(xml.StreamClose))
		_ = nc.Close()
	}
}

// negotiate connects, secures and (with SASL EXTERNAL, when tryExternal)
// authenticates the stream. It returns the decoder positioned after the
// final features. own is our certificate's verdict, for the log.
func (o *outConn) negotiate(ctx context.Context, tryExternal bool, own string) (external bool, dec *xml.Decoder, err error) {
	pol := o.s.policy(o.first)
	ts, err := o.s.targets(ctx, o.remote)
	if err != nil {
		return false, nil, fail("dns", err)
	}
	raw, t, err := o.s.dialAny(ctx, ts)
	if err != nil {
		f := fail("connect", err)
		f.timeout = errors.Is(err, context.DeadlineExceeded)
		return false, nil, f
	}
	o.mu.Lock()
	if o.closed { // failAll (shutdown) ran while we were dialling
		o.mu.Unlock()
		_ = raw.Close()
		return false, nil, fail("connection-lost", errShutdown)
	}
	o.nc, o.addr = o.s.rateLimit(raw), t.addr
	o.mu.Unlock()
	o.opened = false
	// Every negotiation step shares the connect deadline.
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
		defer func() { _ = raw.SetDeadline(time.Time{}) }()
	}
	if t.direct {
		if err := o.handshake(raw, true); err != nil {
			return false, nil, err
		}
	}
	for restarts := 0; restarts < 4; restarts++ {
		if err := o.open(); err != nil {
			return false, nil, o.ioFail(err)
		}
		dec = o.s.newDecoder(o.nc)
		h, err := dec.ReadHeader()
		if err != nil {
			return false, nil, o.ioFail(err)
		}
		o.s.traceHeader("out", "recv", o.remote, h)
		if h.DefaultNS != stanza.NSServer {
			return false, nil, fail("protocol", errors.New("peer answered with namespace "+h.DefaultNS))
		}
		for _, p := range h.Prefixes {
			if p.URI == dialback.NS {
				o.peerDB = true
			}
		}
		o.mu.Lock()
		o.streamID = h.ID
		o.mu.Unlock()
		if !versionAtLeast1(h.Version) {
			// A pre-1.0 peer: no features, no TLS; dialback only.
			if pol.requireTLS {
				return false, nil, fail("no-tls", errors.New("peer does not support TLS (pre-XMPP 1.0 stream)"))
			}
			o.setVerdict(VerdictNone)
			return false, dec, nil
		}
		feats, err := dec.Next()
		if err != nil {
			return false, nil, o.ioFail(err)
		}
		o.s.traceEl("out", "recv", o.remote, feats)
		if feats.Space != stanza.NSStream || feats.Local != "features" {
			return false, nil, fail("protocol", errors.New("expected stream features"))
		}
		if feats.Child(dialback.NSFeature, "dialback") != nil {
			o.peerDB = true
		}
		if o.tls == nil {
			if feats.Child(nsTLS, "starttls") != nil {
				if err := o.writeNow(xml.New(nsTLS, "starttls")); err != nil {
					return false, nil, o.ioFail(err)
				}
				ans, err := dec.Next()
				if err != nil {
					return false, nil, o.ioFail(err)
				}
				o.s.traceEl("out", "recv", o.remote, ans)
				if ans.Space != nsTLS || ans.Local != "proceed" {
					return false, nil, fail("tls-failed", errors.New("peer refused STARTTLS"))
				}
				if err := o.handshake(o.nc, false); err != nil {
					return false, nil, err
				}
				continue
			}
			if pol.requireTLS {
				o.writeClose(stanza.StreamPolicyViolation, "encryption is required")
				return false, nil, fail("no-tls", errors.New("peer offers no STARTTLS and encryption is required"))
			}
			o.setVerdict(VerdictNone)
			return false, dec, nil
		}
		if !external && o.offersExternal(feats) {
			if !tryExternal {
				o.s.log.Debug("not trying SASL EXTERNAL: our certificate would not be accepted", "local", o.first,
					"remote", o.remote, "own_certificate", own)
				return false, dec, nil
			}
			ok, err := o.saslExternal(dec)
			if err != nil {
				return false, nil, err
			}
			if !ok {
				return false, nil, fail("external-refused", errExternalRefused)
			}
			external = true
			continue
		}
		return external, dec, nil
	}
	return false, nil, fail("protocol", errors.New("too many stream restarts"))
}

// header is our stream header: from the local domain this stream
// authenticates, declaring the dialback prefix.
func (o *outConn) header() xml.StreamHeader {
	return xml.StreamHeader{
		DefaultNS: stanza.NSServer, From: o.first, To: o.remote, Version: "1.0", Lang: "en",
		Prefixes: []xml.NSDecl{{Prefix: "db", URI: dialback.NS}},
	}
}

// open sends our stream header on the current transport.
func (o *outConn) open() error {
	hdr := o.header()
	o.s.traceHeader("out", "send", o.remote, hdr)
	_, err := o.nc.Write(xml.StreamHeaderBytes(hdr))
	o.opened = true
	return err
}

func (o *outConn) offersExternal(feats *xml.Element) bool {
	m := feats.Child(nsSASL, "mechanisms")
	if m == nil {
		return false
	}
	for _, c := range m.Elements() {
		if c.Local == "mechanism" && strings.TrimSpace(c.Text()) == "EXTERNAL" {
			return true
		}
	}
	return false
}

// saslExternal authenticates o.first with its certificate (XEP-0178 §3).
// A failure is not fatal: dialback may still work, on a new connection.
func (o *outConn) saslExternal(dec *xml.Decoder) (bool, error) {
	auth := xml.New(nsSASL, "auth").SetAttr("mechanism", "EXTERNAL").AppendText(base64.StdEncoding.EncodeToString([]byte(o.first)))
	if err := o.writeNow(auth); err != nil {
		return false, o.ioFail(err)
	}
	ans, err := dec.Next()
	if err != nil {
		return false, o.ioFail(err)
	}
	o.s.traceEl("out", "recv", o.remote, ans)
	switch {
	case ans.Space == nsSASL && ans.Local == "success":
		return true, nil
	case ans.Space == nsSASL && ans.Local == "failure":
		o.s.log.Info("SASL EXTERNAL refused by peer; dialback on a new connection if allowed", "local", o.first,
			"remote", o.remote, "failure", ans.String())
		return false, nil
	default:
		return false, fail("protocol", errors.New("unexpected answer to SASL auth: "+ans.Local))
	}
}

// handshake runs TLS on c and applies the policy to the peer certificate.
func (o *outConn) handshake(c net.Conn, direct bool) error {
	tc := tls.Client(c, o.s.clientTLS(o.first, o.remote, direct))
	if err := tc.Handshake(); err != nil {
		return fail("tls-failed", err)
	}
	st := tc.ConnectionState()
	v := verdict(&st, o.s.roots, o.remote, o.s.now())
	o.mu.Lock()
	o.nc, o.tls, o.verdict = tc, &st, v
	o.mu.Unlock()
	o.opened = false // TLS starts a new stream (RFC 6120 §5.4.3.3)
	if !o.s.policy(o.first).trusts(v) {
		o.writeClose(stanza.StreamPolicyViolation, "certificate not accepted: "+v)
		return fail("certificate-"+v, fmt.Errorf("certificate of %s is %s and accept_self_signed is off", o.remote, v))
	}
	return nil
}

// encrypted reports whether the stream runs over TLS.
func (o *outConn) encrypted() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tls != nil
}

func (o *outConn) setVerdict(v string) {
	o.mu.Lock()
	o.verdict = v
	o.mu.Unlock()
}

func (o *outConn) ioFail(err error) error {
	var xe *xml.Error
	if errors.As(err, &xe) {
		return fail("protocol", err)
	}
	f := fail("connection-lost", err)
	f.timeout = errors.Is(err, os.ErrDeadlineExceeded)
	if f.timeout {
		f.reason = "timeout"
	}
	return f
}

func (o *outConn) writeNow(el *xml.Element) error {
	el = wire(el)
	o.s.traceEl("out", "send", o.remote, el)
	var buf bytes.Buffer
	_, _ = el.WriteToNS(&buf, stanza.NSServer)
	_, err := o.nc.Write(buf.Bytes())
	return err
}

// writeClose ends the stream during negotiation. When the error comes
// before our header on this transport (a certificate refused right after
// the TLS handshake), the header goes first, in the same write: a bare
// <stream:error> is not well-formed XML, and the peer would report that
// instead of our reason.
func (o *outConn) writeClose(cond stanza.StreamCondition, text string) {
	var buf bytes.Buffer
	if !o.opened {
		hdr := o.header()
		o.s.traceHeader("out", "send", o.remote, hdr)
		buf.Write(xml.StreamHeaderBytes(hdr))
		o.opened = true
	}
	if cond != "" {
		buf.Write(streamErrorBytes(cond, text))
	}
	buf.WriteString(xml.StreamClose)
	_ = o.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = o.nc.Write(buf.Bytes())
}

// method is how a pair on this stream is authenticated by dialback.
func (o *outConn) dialbackMethod() string {
	if o.tls != nil && o.verdict != VerdictNone {
		return MethodDialbackTLS
	}
	return MethodDialback
}

// startPairLocked begins authenticating local with dialback, or fails the
// pair when the policy or the peer does not allow it.
func (o *outConn) startPairLocked(local string, p *outPair) {
	pol := o.s.policy(local)
	var f *failure
	switch {
	case !pol.trusts(o.verdict):
		f = fail("certificate-"+o.verdict, fmt.Errorf("the policy of %s does not accept this peer (%s)", local, o.verdict))
	case !pol.dialback:
		f = fail("dialback-disabled", errors.New("SASL EXTERNAL unavailable and dialback disabled for "+local))
	case !o.peerDB:
		f = fail("no-method", errors.New(o.remote+" offers neither SASL EXTERNAL nor dialback"))
	}
	if f != nil {
		q := p.queue
		delete(o.pairs, local)
		go o.failPair(local, q, f)
		return
	}
	p.state = pairAuthing
	o.sendDialback(dialback.Result(local, o.remote, "", o.s.keys.Key(o.remote, local, o.streamID)))
	time.AfterFunc(o.s.cfg.S2S.ConnectTimeout.Duration, func() { o.expire(local, p) })
}

// sendDialback writes a dialback element after negotiation (o.w is set).
func (o *outConn) sendDialback(el *xml.Element) {
	el = wire(el)
	o.s.traceEl("out", "send", o.remote, el)
	o.w.Send(el)
}

// expire fails a pair still not authenticated after connect_timeout.
func (o *outConn) expire(local string, p *outPair) {
	o.mu.Lock()
	if o.pairs[local] != p || p.state == pairValid {
		o.mu.Unlock()
		return
	}
	delete(o.pairs, local)
	q := p.queue
	o.mu.Unlock()
	o.failPair(local, q, &failure{reason: "timeout", timeout: true, err: errors.New("dialback not answered in time")})
}

func (o *outConn) failPair(local string, queue []*xml.Element, f *failure) {
	o.s.failures.WithLabelValues("out", f.reason).Inc()
	o.s.log.Warn("outgoing domain pair failed", "local", local, "remote", o.remote, "reason", f.reason, "err", f.err, "bounced", len(queue))
	cond := stanza.RemoteServerNotFound
	if f.timeout {
		cond = stanza.RemoteServerTimeout
	}
	for _, el := range queue {
		o.s.bounce(el, cond, "")
	}
}

// authenticatedLocked flushes a pair's queue and logs the connection.
func (o *outConn) authenticatedLocked(local string, p *outPair) {
	o.s.conns.WithLabelValues("out", p.method).Inc()
	o.s.log.Info("s2s authenticated", "direction", "out", "local", local, "remote", o.remote, "addr", o.addr,
		"tls", tlsVersion(o.tls), "certificate", o.verdict, "method", p.method)
	for _, el := range p.queue {
		o.w.Send(el)
	}
	p.queue = nil
	o.touch()
}

// read dispatches what the receiving server sends on our outgoing stream:
// dialback answers and db:verify requests. Stanzas do not belong here
// (streams are unidirectional without XEP-0288) and are dropped.
func (o *outConn) read(dec *xml.Decoder) {
	for {
		el, err := dec.Next()
		if err != nil {
			if errors.Is(err, xml.ErrStreamClosed) || errors.Is(err, net.ErrClosed) {
				o.failAll(nil)
			} else {
				o.failAll(o.ioFail(err))
			}
			return
		}
		o.touch()
		if !stanza.IsStanza(el) {
			o.s.traceEl("out", "recv", o.remote, el)
		}
		switch {
		case el.Space == dialback.NS && el.Local == "result" && el.Attr("type") != "":
			o.onResult(el)
		case el.Space == dialback.NS && el.Local == "verify" && el.Attr("type") != "":
			o.onVerify(el)
		case el.Space == dialback.NS && el.Local == "verify":
			o.sendDialback(o.s.answerVerify(el, o.encrypted()))
		case el.Space == stanza.NSStream && el.Local == "error":
			o.s.log.Info("stream error from peer", "remote", o.remote, "error", el.String())
			o.failAll(fail("stream-error", errors.New(el.String())))
			return
		default:
			o.s.log.Debug("ignoring element on outgoing stream", "remote", o.remote, "element", el.Local)
		}
	}
}

// onResult applies a db:result answer to the pair it names. Answers for
// pairs we are not authenticating are ignored (XEP-0220 §2.4: unsolicited).
func (o *outConn) onResult(el *xml.Element) {
	local, from := el.Attr("to"), el.Attr("from")
	o.mu.Lock()
	p := o.pairs[local]
	if from != o.remote || p == nil || p.state != pairAuthing {
		o.mu.Unlock()
		o.s.log.Debug("ignoring unsolicited db:result", "remote", o.remote, "to", local, "from", from)
		return
	}
	if el.Attr("type") == "valid" {
		p.state, p.method = pairValid, o.dialbackMethod()
		o.authenticatedLocked(local, p)
		o.mu.Unlock()
		return
	}
	delete(o.pairs, local)
	q := p.queue
	o.mu.Unlock()
	reason := "dialback-" + el.Attr("type")
	o.failPair(local, q, fail(reason, errors.New(o.remote+" rejected our dialback key")))
}

// onVerify hands the authoritative server's answer to the verification
// waiting for it. The answer names the domains as our request did, which
// is as the originating server wrote them (A-labels, say, where o.remote
// and our domains are prepared): both are compared prepared.
func (o *outConn) onVerify(el *xml.Element) {
	from, ferr := jid.PrepareDomain(el.Attr("from"))
	to, terr := jid.PrepareDomain(el.Attr("to"))
	if ferr != nil || terr != nil || from != o.remote {
		o.s.log.Debug("ignoring db:verify answer from another domain", "remote", o.remote, "from", el.Attr("from"))
		return
	}
	k := to + " " + el.Attr("id")
	o.mu.Lock()
	ch := o.verifies[k]
	delete(o.verifies, k)
	o.mu.Unlock()
	if ch == nil {
		o.s.log.Debug("ignoring unsolicited db:verify answer", "remote", o.remote, "to", el.Attr("to"))
		return
	}
	ch <- el.Attr("type")
}

// errStreamGone reports that a stream ended before a verification could
// use it; Service.verify tries another.
var errStreamGone = errors.New("s2s: outgoing stream ended before the verification was sent")

// verify sends db:verify for (local, id, key) once the stream is ready
// and waits for the authoritative answer. local is our domain prepared,
// which the answer is matched by; wireLocal and wireRemote are the
// domains as the originating server wrote them, which the request
// carries.
func (o *outConn) verify(ctx context.Context, local, wireLocal, wireRemote, id, key string) (bool, error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false, errStreamGone
	}
	o.verifying++
	o.unlingerLocked()
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.verifying--
		o.mu.Unlock()
		o.settle()
	}()
	select {
	case <-o.readyCh:
	default:
		select {
		case <-o.readyCh:
		case <-o.doneCh:
			return false, errors.New("s2s: cannot reach the authoritative server of " + o.remote)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	ch := make(chan string, 1)
	k := local + " " + id
	o.mu.Lock()
	if o.closed { // ended after it was set up (idle, or the peer closed it)
		o.mu.Unlock()
		return false, errStreamGone
	}
	o.verifies[k] = ch
	w := o.w
	o.mu.Unlock()
	req := wire(dialback.Verify(wireLocal, wireRemote, id, "", key))
	o.s.traceEl("out", "send", o.remote, req)
	w.Send(req)
	select {
	case typ := <-ch:
		return typ == "valid", nil
	case <-o.doneCh:
		return false, errors.New("s2s: stream to " + o.remote + " closed during verification")
	case <-ctx.Done():
		o.mu.Lock()
		delete(o.verifies, k)
		o.mu.Unlock()
		return false, ctx.Err()
	}
}

// watchIdle closes the stream when nothing went either way for
// idle_timeout (checked on a ticker: a read deadline would break the
// decoder).
func (o *outConn) watchIdle() func() {
	return watchIdle(o.s.cfg.S2S.IdleTimeout.Duration, &o.lastActive, func() {
		o.s.log.Info("closing idle outgoing stream", "remote", o.remote)
		o.failAll(nil)
	})
}

// unlingerLocked records a use of the stream: a linger timer running
// does nothing when it fires, and the linger slot is given back.
func (o *outConn) unlingerLocked() {
	o.lingerGen++
	if o.lingering {
		o.lingering = false
		o.s.lingering.Add(-1)
	}
}

// unusedLocked reports that the stream was set up for verification only,
// has carried no stanza and no verification is using it.
func (o *outConn) unusedLocked() bool {
	return o.forVerify && o.verifying == 0 && len(o.pairs) == 0 && o.w != nil
}

// settle runs when a verification stops using the stream and when it is
// set up. An unused stream lingers for the service's verify linger, so
// that verifications in quick succession (a peer's claims for several of
// its domains) share it, and then ends with </stream:stream>. The linger
// slots are as many as max_verifications: past them an unused stream ends
// at once, so lingering streams stay bounded however fast a peer makes
// claims that are answered quickly.
func (o *outConn) settle() {
	o.mu.Lock()
	if o.closed || o.lingering || !o.unusedLocked() {
		o.mu.Unlock()
		return
	}
	if d := o.s.verifyLinger(); d > 0 && o.s.takeLingerSlot() {
		o.lingering = true
		gen := o.lingerGen
		o.mu.Unlock()
		time.AfterFunc(d, func() { o.retire(func() bool { return o.lingerGen == gen }) })
		return
	}
	o.mu.Unlock()
	o.retire(func() bool { return true })
}

// retire ends the stream if it is still unused and still (o.mu held)
// ok to end.
func (o *outConn) retire(still func() bool) {
	if o.end(nil, func() bool { return o.unusedLocked() && still() }) {
		o.s.log.Debug("closed outgoing stream used only for dialback verification", "remote", o.remote, "local", o.first)
	}
}

// failAll ends the stream: queued stanzas bounce (remote-server-timeout
// when setting up timed out, else remote-server-not-found), verifications
// waiting on it fail, and the next Send starts a new stream. err nil is an
// orderly close (idle or peer closed).
func (o *outConn) failAll(err error) { o.end(err, nil) }

// end is failAll, done only if when (called with o.mu held) allows it at
// that moment; it reports whether it ended the stream.
func (o *outConn) end(err error, when func() bool) bool {
	o.mu.Lock()
	if o.closed || (when != nil && !when()) {
		o.mu.Unlock()
		return false
	}
	o.closed = true
	if o.lingering {
		o.lingering = false
		o.s.lingering.Add(-1)
	}
	pairs := o.pairs
	o.pairs = map[string]*outPair{}
	o.verifies = map[string]chan string{}
	w, nc := o.w, o.nc
	o.mu.Unlock()
	cond := stanza.StreamCondition("")
	if errors.Is(err, errShutdown) {
		cond = stanza.StreamSystemShutdown
	}
	switch {
	case w != nil:
		var buf bytes.Buffer
		if cond != "" {
			buf.Write(streamErrorBytes(cond, ""))
		}
		buf.WriteString(xml.StreamClose)
		w.Close(true, buf.Bytes())
	case nc != nil:
		stream.CloseConn(nc)
	}
	var f *failure
	if err != nil && !errors.As(err, &f) {
		f = fail("connection-lost", err)
	}
	for local, p := range pairs {
		if len(p.queue) == 0 && f == nil {
			continue
		}
		if f == nil {
			f = fail("connection-lost", errors.New("stream closed"))
		}
		o.failPair(local, p.queue, f)
	}
	if f != nil && len(pairs) == 0 {
		o.s.failures.WithLabelValues("out", f.reason).Inc()
	}
	if err != nil {
		o.s.log.Info("outgoing stream ended", "remote", o.remote, "err", err)
	}
	return true
}

// fail is failAll with a stream condition (shutdown).
func (o *outConn) fail(err error, _ stanza.StreamCondition) { o.failAll(err) }

func versionAtLeast1(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	return major != "" && major != "0" && strings.Trim(major, "0123456789") == ""
}
