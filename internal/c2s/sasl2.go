package c2s

import (
	"encoding/base64"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"parley/internal/sasl"
	"parley/internal/sm"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// XEP-0388 Extensible SASL Profile ("SASL2") on client streams, offered
// next to RFC 6120 SASL once the stream is encrypted. The mechanisms are
// exactly the ones the RFC 6120 <mechanisms/> lists (conn.offered), so a
// host's choice of mechanisms applies to both. What SASL2 adds is carried
// inside <authenticate/>: the client's user-agent, XEP-0386 Bind 2
// (bind2.go), XEP-0198 resumption and XEP-0484 FAST tokens (fast.go).
// Nothing requested inline is acted on unless authentication succeeds.

// Namespaces of SASL2 and what it carries inline.
const (
	nsSASL2 = "urn:xmpp:sasl:2"
	nsBind2 = "urn:xmpp:bind:0"
	nsFAST  = "urn:xmpp:fast:0"
	nsCSI   = "urn:xmpp:csi:0"
	nsMAM   = "urn:xmpp:mam:2"
)

// Bounds on what a client describes itself with (user-agent, Bind 2
// tag). The XEPs set none; these keep log lines and stored token rows
// small.
const (
	maxUserAgentText = 256
	maxBindTag       = 64
)

// uuidPattern is the schema's Uuid type (XEP-0388 §7): 8-4-4-4-12 hex.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// sasl2On reports whether SASL2 is offered: configured, and only on an
// encrypted stream (XEP-0388 §4).
func (c *conn) sasl2On() bool { return *c.srv.cfg.Auth.SASL2 && c.secure() }

// sasl2Feature is the <authentication/> stream feature, nil when SASL2 is
// not offered or no mechanism is (§2.1: never offered without one).
func (c *conn) sasl2Feature() *xml.Element {
	if !c.sasl2On() {
		return nil
	}
	mechs := c.offered()
	if len(mechs) == 0 {
		return nil
	}
	a := xml.New(nsSASL2, "authentication")
	for _, m := range mechs {
		a.Append(xml.New(nsSASL2, "mechanism").AppendText(m))
	}
	inline := xml.New(nsSASL2, "inline")
	b := xml.New(nsBind2, "bind")
	if vars := c.bind2Features(); len(vars) > 0 {
		bi := xml.New(nsBind2, "inline")
		for _, v := range vars {
			bi.Append(xml.New(nsBind2, "feature").SetAttr("var", v))
		}
		b.Append(bi)
	}
	inline.Append(b)
	if c.smOn() && *c.srv.cfg.C2S.StreamManagement.Resume {
		inline.Append(sm.Feature())
	}
	if c.fastOn() {
		f := xml.New(nsFAST, "fast")
		for _, m := range sasl.HTMechanisms(c.tls, c.serverCert()) {
			f.Append(xml.New(nsFAST, "mechanism").AppendText(m))
		}
		inline.Append(f)
	}
	return a.Append(inline)
}

// sasl2Request is a parsed <authenticate/>.
type sasl2Request struct {
	mech string
	// initial is the initial response; nil when absent (§2.2: an empty
	// element is an empty response, and there is no "=" form).
	initial []byte
	// The user-agent (§2.3): id a UUID, "" when not given.
	uaID, software, device string
	bind, resume           *xml.Element
	// fast is the XEP-0484 <fast/> of a token login; count its replay
	// counter (0 if absent), invalidate its logout flag.
	fast       *xml.Element
	count      int64
	invalidate bool
	// requestToken is the HT mechanism of a <request-token/>, "" if none.
	requestToken string
}

// parseAuthenticate reads <authenticate/>. Every problem is a failure the
// client can act on, reported before any credential is looked at.
// Children in namespaces Parley does not know are ignored, as XML
// extensibility and the XEP's schema (##other) allow.
// nsSASLUpgrade is XEP-0480's namespace.
const nsSASLUpgrade = "urn:xmpp:sasl:upgrade:0"

func parseAuthenticate(el *xml.Element) (*sasl2Request, *sasl.Failure) {
	r := &sasl2Request{mech: el.Attr("mechanism")}
	if r.mech == "" {
		return nil, sasl.NewFailure(sasl.CondInvalidMechanism, "no mechanism given")
	}
	// §Initiation: an upgrade the feature did not announce fails the
	// authentication, and Parley announces none (XEP-0480 upgrade tasks
	// are not offered). XEP-0388 0.4 named it in an 'upgrade' attribute;
	// XEP-0480 clients send <upgrade xmlns='urn:xmpp:sasl:upgrade:0'/>.
	if el.Attr("upgrade") != "" || el.Child(nsSASLUpgrade, "upgrade") != nil {
		return nil, sasl.NewFailure(sasl.CondInvalidMechanism, "no upgrade was offered")
	}
	seen := map[string]bool{}
	for _, ch := range el.Elements() {
		key := ch.Space + " " + ch.Local
		switch key {
		case nsSASL2 + " initial-response", nsSASL2 + " user-agent", nsBind2 + " bind", sm.NS + " resume", nsFAST + " fast", nsFAST + " request-token":
			if seen[key] {
				return nil, sasl.NewFailure(sasl.CondMalformedRequest, "<"+ch.Local+"/> given twice")
			}
			seen[key] = true
		}
		switch key {
		case nsSASL2 + " initial-response":
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ch.Text()))
			if err != nil {
				return nil, sasl.NewFailure(sasl.CondIncorrectEncoding, "")
			}
			if data == nil {
				data = []byte{}
			}
			r.initial = data
		case nsSASL2 + " user-agent":
			r.uaID = ch.Attr("id")
			if r.uaID != "" && !uuidPattern.MatchString(r.uaID) {
				return nil, sasl.NewFailure(sasl.CondMalformedRequest, "the user-agent id must be a UUID")
			}
			r.uaID = strings.ToLower(r.uaID)
			r.software, r.device = ch.ChildText(nsSASL2, "software"), ch.ChildText(nsSASL2, "device")
			if len(r.software) > maxUserAgentText || len(r.device) > maxUserAgentText {
				return nil, sasl.NewFailure(sasl.CondMalformedRequest, "user-agent software or device too long")
			}
		case nsBind2 + " bind":
			r.bind = ch
		case sm.NS + " resume":
			r.resume = ch
		case nsFAST + " fast":
			r.fast = ch
			if v := ch.Attr("count"); v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1 {
					return nil, sasl.NewFailure(sasl.CondMalformedRequest, "the FAST count must be a positive integer")
				}
				r.count = n
			}
			r.invalidate = ch.Attr("invalidate") == "true" || ch.Attr("invalidate") == "1"
		case nsFAST + " request-token":
			r.requestToken = ch.Attr("mechanism")
			if r.requestToken == "" {
				return nil, sasl.NewFailure(sasl.CondMalformedRequest, "<request-token/> names no mechanism")
			}
		default:
			if ch.Space == nsSASL2 {
				return nil, sasl.NewFailure(sasl.CondMalformedRequest, "unexpected <"+ch.Local+"/> in <authenticate/>")
			}
		}
	}
	return r, nil
}

// authenticate2 runs one XEP-0388 exchange. done is true when the stream
// ends up bound (Bind 2 or a resumption); after a success without either
// the stream goes on unbound and unrestarted, with new features.
func (c *conn) authenticate2(el *xml.Element) (done bool, err error) {
	if !c.sasl2On() {
		return false, &streamErr{cond: "policy-violation", text: "SASL2 is not offered on this stream"}
	}
	c.inSASL2 = true
	defer func() { c.inSASL2 = false }()

	req, f := parseAuthenticate(el)
	if f != nil {
		return false, c.negotiationFailed(el.Attr("mechanism"), f.Condition, f.Text)
	}
	if f := c.checkSASL2Mechanisms(req); f != nil {
		return false, c.negotiationFailed(req.mech, f.Condition, f.Text)
	}
	defer c.endAttempt()

	env := c.srv.saslEnv(c)
	if c.clientCert != nil {
		env.External = c.external(c.clientCert)
	}
	var sess sasl.Session
	if req.fast != nil {
		sess, err = sasl.StartFAST(req.mech, env, c.fastEnv(req))
	} else {
		sess, err = sasl.Start(req.mech, env)
	}
	if err != nil {
		var f *sasl.Failure
		if errors.As(err, &f) && f.Condition == sasl.CondTemporaryAuthFailure {
			return false, c.saslFailure(f.Condition, "")
		}
		return false, c.negotiationFailed(req.mech, sasl.CondInvalidMechanism, "")
	}
	msg := req.initial
	for {
		if text := c.beginAttempt(); text != "" {
			return false, c.attemptRefused(text)
		}
		out, done, err := sess.Next(msg)
		if err != nil {
			var f *sasl.Failure
			cond := sasl.CondNotAuthorized
			if errors.As(err, &f) {
				cond = f.Condition
				if f.Negotiation {
					return false, c.negotiationFailed(req.mech, cond, "")
				}
			}
			return false, c.authFailed(req.mech, cond)
		}
		if done {
			return c.sasl2Succeeded(req, sess, out)
		}
		c.endAttempt() // no slot while the client takes its time
		ch := xml.New(nsSASL2, "challenge").AppendText(base64.StdEncoding.EncodeToString(out))
		if err := c.writeEl(ch); err != nil {
			return false, err
		}
		next, err := c.t.Next()
		if err != nil {
			return false, err
		}
		switch {
		case next.Space == nsSASL2 && next.Local == "abort":
			c.saslFailed = true
			return false, c.saslFailure(sasl.CondAborted, "")
		case next.Space == nsSASL2 && next.Local == "response":
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(next.Text()))
			if err != nil {
				return false, c.negotiationFailed(req.mech, sasl.CondIncorrectEncoding, "")
			}
			msg = data
			if msg == nil {
				msg = []byte{}
			}
		default:
			// §2.5: anything else during authentication disconnects.
			return false, &streamErr{cond: "policy-violation", text: "expected a SASL2 response"}
		}
	}
}

// checkSASL2Mechanisms applies §2.3 (the mechanism must have been
// offered) and XEP-0484: a token login names a FAST mechanism and carries
// <fast/>, a password login names a mechanism of <authentication/>, and a
// token request names a FAST mechanism and comes from a client with a
// user-agent id (tokens are issued per client).
func (c *conn) checkSASL2Mechanisms(req *sasl2Request) *sasl.Failure {
	fastMechs := []string{}
	if c.fastOn() {
		fastMechs = sasl.HTMechanisms(c.tls, c.serverCert())
	}
	offered := c.offered()
	if req.fast != nil {
		offered = fastMechs
	}
	if !slices.Contains(offered, req.mech) {
		return sasl.NewFailure(sasl.CondInvalidMechanism, "")
	}
	if req.fast != nil && req.uaID == "" {
		return sasl.NewFailure(sasl.CondMalformedRequest, "FAST needs a user-agent id")
	}
	if req.requestToken != "" {
		if !slices.Contains(fastMechs, req.requestToken) {
			return sasl.NewFailure(sasl.CondMalformedRequest, "FAST tokens are not offered for that mechanism")
		}
		if req.uaID == "" {
			return sasl.NewFailure(sasl.CondMalformedRequest, "a FAST token needs a user-agent id")
		}
	}
	return nil
}

// sasl2Succeeded finishes a successful exchange: authorization, the access
// policy and the FAST token's use are checked as after an RFC 6120
// exchange (a refusal looks like a wrong password), then the inline
// requests run: resumption first, then Bind 2 (XEP-0386 §3.2), and the
// <success/> carries their answers and any new token.
func (c *conn) sasl2Succeeded(req *sasl2Request, sess sasl.Session, out []byte) (bool, error) {
	user := sess.Username()
	if az := sess.Authzid(); az != "" {
		want := user + "@" + c.host.Domain
		aj, err := jid.Parse(az)
		if err != nil || aj.String() != want {
			return false, c.authFailed(req.mech, sasl.CondInvalidAuthzid)
		}
		// §3.4: a non-empty authzid must match the stream's from.
		if c.streamFrom != "" {
			if fj, err := jid.Parse(c.streamFrom); err != nil || fj.Bare() != aj.Bare() {
				return false, c.authFailed(req.mech, sasl.CondInvalidAuthzid)
			}
		}
	}
	if !c.admit(user, req.mech) {
		return false, c.authFailed(req.mech, sasl.CondNotAuthorized)
	}
	ht, _ := sess.(*sasl.HTSession)
	if ht != nil {
		if cond := c.useFASTToken(user, req, ht); cond != "" {
			if cond == sasl.CondTemporaryAuthFailure {
				return false, c.saslFailure(cond, "")
			}
			return false, c.authFailed(req.mech, cond)
		}
	}
	c.verdictDelay()
	c.user, c.mech = user, req.mech
	c.srv.metrics.AuthSuccesses.WithLabelValues(req.mech).Inc()
	c.srv.log.Info("c2s: authenticated", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain,
		"mechanism", req.mech, "sasl", "2", "client_id", req.uaID, "software", req.software, "device", req.device)

	var extra []*xml.Element
	if tok := c.fastTokenFor(user, req, ht); tok != nil {
		extra = append(extra, tok)
	}
	success := func(authzid string, inline ...*xml.Element) *xml.Element {
		s := xml.New(nsSASL2, "success")
		if len(out) > 0 {
			s.Append(xml.New(nsSASL2, "additional-data").AppendText(base64.StdEncoding.EncodeToString(out)))
		}
		s.Append(xml.New(nsSASL2, "authorization-identifier").AppendText(authzid))
		for _, el := range inline {
			s.Append(el)
		}
		for _, el := range extra {
			s.Append(el)
		}
		return s
	}

	var resumeFailed *xml.Element
	if req.resume != nil {
		features := c.boundFeatures(false)
		resumeFailed = c.resumeWith(req.resume, func(full jid.JID, resumed *xml.Element) []*xml.Element {
			return []*xml.Element{success(full.String(), resumed), features}
		})
		if resumeFailed == nil {
			return true, nil
		}
	}
	if req.bind != nil {
		return c.bind2(req, success, resumeFailed)
	}
	bare := user + "@" + c.host.Domain
	var inline []*xml.Element
	if resumeFailed != nil {
		inline = append(inline, resumeFailed)
	}
	if err := c.writeEl(success(bare, inline...)); err != nil {
		return false, err
	}
	// §2.6.1: no stream restart; the features of the authenticated
	// stream follow at once.
	return false, c.writeEl(c.features())
}

// cleanText keeps a client-supplied label printable and short.
func cleanText(s string, max int) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	for len(s) > max {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}
