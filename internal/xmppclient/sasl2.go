package xmppclient

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdg-go/scram"

	"parley/internal/xmpp/xml"
)

// The client side of XEP-0388 SASL2 with XEP-0386 Bind 2, XEP-0198 inline
// resumption, XEP-0484 FAST and the XEP-0474 downgrade check, written to
// the XEPs as a test client for Parley (and usable against any server).

// Namespaces of SASL2 and what it carries inline.
const (
	NSSASL2   = "urn:xmpp:sasl:2"
	NSBind2   = "urn:xmpp:bind:0"
	NSFAST    = "urn:xmpp:fast:0"
	NSSM      = "urn:xmpp:sm:3"
	NSCarbons = "urn:xmpp:carbons:2"
	NSCSI     = "urn:xmpp:csi:0"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsSASLCB  = "urn:xmpp:sasl-cb:0"
)

// SASL2Login says how to log in with SASL2 and what to ask for inline.
type SASL2Login struct {
	User string // localpart
	// Password for a SCRAM-* mechanism (or PLAIN); Token for an HT-*
	// mechanism (a FAST login).
	Password, Token string
	// Mechanism: SCRAM-SHA-1/-256 with or without -PLUS (tls-exporter),
	// PLAIN, or HT-SHA-256-NONE/-EXPR/-ENDP with Token.
	Mechanism string
	// The user-agent (UserAgentID a UUID).
	UserAgentID, Software, Device string
	// Bind asks for Bind 2 with this tag; nil for no bind.
	Bind *Bind2
	// ResumeID and ResumeH ask for inline XEP-0198 resumption.
	ResumeID string
	ResumeH  uint32
	// RequestToken asks for a FAST token for that HT mechanism.
	RequestToken string
	// FASTCount and Invalidate are the <fast/> attributes of a token login.
	FASTCount  int
	Invalidate bool
	// Extra elements to put into <authenticate/> (tests of unknown ones).
	Extra []*xml.Element
}

// Bind2 is the <bind/> request.
type Bind2 struct {
	Tag string
	// EnableSM asks for stream management with resumption.
	EnableSM bool
	Carbons  bool
	// Inactive starts the session inactive (XEP-0352).
	Inactive bool
	// Extra elements inside <bind/>.
	Extra []*xml.Element
}

// SASL2Result is what the server answered.
type SASL2Result struct {
	// Success is the <success/> element; Features the stream features
	// that followed it.
	Success, Features *xml.Element
	// AuthzID is the authorization identifier (a full JID when bound).
	AuthzID string
	// Token and Expiry are a FAST token the server issued, "" if none.
	Token  string
	Expiry time.Time
	// SMID is the resumption id of stream management enabled by Bind 2.
	SMID string
	// Resumed is the <resumed/> answer of an inline resumption, nil if
	// none; ResumeFailed its <failed/>.
	Resumed, ResumeFailed *xml.Element
	// RoundTrips counts the client messages that waited for an answer.
	RoundTrips int
	// SSDPChecked: the server sent an XEP-0474 hash and it matched.
	SSDPChecked bool
}

// SASL2Failure is a SASL2 <failure/>.
type SASL2Failure struct {
	Condition, Text string
}

func (f *SASL2Failure) Error() string {
	return "sasl2 failure: " + f.Condition + " " + f.Text
}

// Send writes one element.
func (c *Client) Send(el *xml.Element) error { return c.write(el) }

// Next reads the next top-level element (a stream error is returned as
// *StreamError).
func (c *Client) Next() (*xml.Element, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	el, err := c.dec.Next()
	if err != nil {
		return nil, err
	}
	if el.Space == nsStream && el.Local == "error" {
		return nil, streamError(el)
	}
	return el, nil
}

// Conn is the underlying connection (for tests that cut it).
func (c *Client) Conn() interface{ Close() error } { return c.conn }

// TLS is the connection's TLS state, nil without TLS.
func (c *Client) TLS() *tls.ConnectionState {
	if tc, ok := c.conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// SASL2Mechanisms lists the mechanisms of the SASL2 feature, nil if the
// server offers no SASL2.
func (c *Client) SASL2Mechanisms() []string {
	a := c.Features.Child(NSSASL2, "authentication")
	if a == nil {
		return nil
	}
	var out []string
	for _, m := range a.Elements() {
		if m.Space == NSSASL2 && m.Local == "mechanism" {
			out = append(out, m.Text())
		}
	}
	return out
}

// FASTMechanisms lists the HT mechanisms the server offers for FAST.
func (c *Client) FASTMechanisms() []string {
	a := c.Features.Child(NSSASL2, "authentication")
	if a == nil || a.Child(NSSASL2, "inline") == nil || a.Child(NSSASL2, "inline").Child(NSFAST, "fast") == nil {
		return nil
	}
	var out []string
	for _, m := range a.Child(NSSASL2, "inline").Child(NSFAST, "fast").Elements() {
		out = append(out, m.Text())
	}
	return out
}

// channelBindings lists the XEP-0440 types the server announced.
func (c *Client) channelBindings() []string {
	cb := c.Features.Child(nsSASLCB, "sasl-channel-binding")
	if cb == nil {
		return nil
	}
	var out []string
	for _, t := range cb.Elements() {
		out = append(out, t.Attr("type"))
	}
	return out
}

// LoginSASL2 authenticates with SASL2 as l says and returns the server's
// answer. A refusal is a *SASL2Failure. It checks what a careful client
// checks: the server's SCRAM signature or HT hash, and the XEP-0474 hash
// of the advertised mechanisms and channel bindings when the server sent
// one.
func (c *Client) LoginSASL2(l SASL2Login) (*SASL2Result, error) {
	res := &SASL2Result{}
	cbData := func(t string) ([]byte, error) {
		st := c.TLS()
		if st == nil {
			return nil, errors.New("channel binding without TLS")
		}
		switch t {
		case "tls-exporter":
			return st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		case "tls-server-end-point":
			b, err := scram.NewTLSServerEndpointBinding(st)
			return b.Data, err
		}
		return nil, nil
	}

	var step func(challenge []byte) ([]byte, error)
	var verify func(additional []byte) error
	var initial []byte
	switch {
	case strings.HasPrefix(l.Mechanism, "SCRAM-"):
		var hg scram.HashGeneratorFcn
		var newHash func() hash.Hash
		switch strings.TrimSuffix(l.Mechanism, "-PLUS") {
		case "SCRAM-SHA-1":
			hg, newHash = scram.SHA1, sha1.New
		case "SCRAM-SHA-256":
			hg, newHash = scram.SHA256, sha256.New
		default:
			return nil, fmt.Errorf("unsupported mechanism %s", l.Mechanism)
		}
		cl, err := hg.NewClient(l.User, l.Password, "")
		if err != nil {
			return nil, err
		}
		var conv *scram.ClientConversation
		if strings.HasSuffix(l.Mechanism, "-PLUS") {
			d, err := cbData("tls-exporter")
			if err != nil {
				return nil, err
			}
			conv = cl.NewConversationWithChannelBinding(scram.ChannelBinding{Type: "tls-exporter", Data: d})
		} else {
			conv = cl.NewConversation()
		}
		first, err := conv.Step("")
		if err != nil {
			return nil, err
		}
		initial = []byte(first)
		mechs, cbs := c.SASL2Mechanisms(), c.channelBindings()
		step = func(ch []byte) ([]byte, error) {
			if h, ok := scramAttr(string(ch), "h"); ok {
				if h != SSDP(newHash, mechs, cbs) {
					return nil, errors.New("XEP-0474 downgrade protection hash does not match what was advertised")
				}
				res.SSDPChecked = true
			}
			out, err := conv.Step(string(ch))
			return []byte(out), err
		}
		verify = func(add []byte) error {
			if _, err := conv.Step(string(add)); err != nil || !conv.Valid() {
				return fmt.Errorf("server signature invalid: %v", err)
			}
			return nil
		}
	case l.Mechanism == "PLAIN":
		initial = []byte("\x00" + l.User + "\x00" + l.Password)
	case strings.HasPrefix(l.Mechanism, "HT-SHA-256-"):
		var cb []byte
		switch l.Mechanism {
		case "HT-SHA-256-EXPR":
			d, err := cbData("tls-exporter")
			if err != nil {
				return nil, err
			}
			cb = d
		case "HT-SHA-256-ENDP":
			d, err := cbData("tls-server-end-point")
			if err != nil {
				return nil, err
			}
			cb = d
		}
		mac := func(label string) []byte {
			m := hmac.New(sha256.New, []byte(l.Token))
			m.Write([]byte(label))
			m.Write(cb)
			return m.Sum(nil)
		}
		initial = append([]byte(l.User+"\x00"), mac("Initiator")...)
		verify = func(add []byte) error {
			if !hmac.Equal(add, mac("Responder")) {
				return errors.New("server's HT hash is wrong: it does not hold the token")
			}
			return nil
		}
	default:
		return nil, fmt.Errorf("unsupported mechanism %s", l.Mechanism)
	}

	auth := xml.New(NSSASL2, "authenticate").SetAttr("mechanism", l.Mechanism)
	auth.Append(xml.New(NSSASL2, "initial-response").AppendText(base64.StdEncoding.EncodeToString(initial)))
	if l.UserAgentID != "" || l.Software != "" {
		ua := xml.New(NSSASL2, "user-agent")
		if l.UserAgentID != "" {
			ua.SetAttr("id", l.UserAgentID)
		}
		if l.Software != "" {
			ua.Append(xml.New(NSSASL2, "software").AppendText(l.Software))
		}
		if l.Device != "" {
			ua.Append(xml.New(NSSASL2, "device").AppendText(l.Device))
		}
		auth.Append(ua)
	}
	if l.ResumeID != "" {
		auth.Append(xml.New(NSSM, "resume").SetAttr("previd", l.ResumeID).SetAttr("h", strconv.FormatUint(uint64(l.ResumeH), 10)))
	}
	if b := l.Bind; b != nil {
		bel := xml.New(NSBind2, "bind")
		if b.Tag != "" {
			bel.Append(xml.New(NSBind2, "tag").AppendText(b.Tag))
		}
		if b.EnableSM {
			bel.Append(xml.New(NSSM, "enable").SetAttr("resume", "true"))
		}
		if b.Carbons {
			bel.Append(xml.New(NSCarbons, "enable"))
		}
		if b.Inactive {
			bel.Append(xml.New(NSCSI, "inactive"))
		}
		for _, e := range b.Extra {
			bel.Append(e)
		}
		auth.Append(bel)
	}
	if l.RequestToken != "" {
		auth.Append(xml.New(NSFAST, "request-token").SetAttr("mechanism", l.RequestToken))
	}
	if l.Token != "" {
		f := xml.New(NSFAST, "fast")
		if l.FASTCount > 0 {
			f.SetAttr("count", strconv.Itoa(l.FASTCount))
		}
		if l.Invalidate {
			f.SetAttr("invalidate", "true")
		}
		auth.Append(f)
	}
	for _, e := range l.Extra {
		auth.Append(e)
	}
	if err := c.write(auth); err != nil {
		return nil, err
	}
	res.RoundTrips = 1
	for {
		el, err := c.Next()
		if err != nil {
			return nil, err
		}
		switch {
		case el.Space == NSSASL2 && el.Local == "challenge":
			if step == nil {
				return nil, errors.New("unexpected challenge")
			}
			ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
			if err != nil {
				return nil, err
			}
			out, err := step(ch)
			if err != nil {
				_ = c.write(xml.New(NSSASL2, "abort"))
				return nil, err
			}
			if err := c.write(xml.New(NSSASL2, "response").AppendText(base64.StdEncoding.EncodeToString(out))); err != nil {
				return nil, err
			}
			res.RoundTrips++
		case el.Space == NSSASL2 && el.Local == "failure":
			f := &SASL2Failure{Text: el.ChildText(NSSASL2, "text")}
			for _, ch := range el.Elements() {
				if ch.Space == nsSASL {
					f.Condition = ch.Local
				}
			}
			return nil, f
		case el.Space == NSSASL2 && el.Local == "success":
			res.Success = el
			res.AuthzID = strings.TrimSpace(el.ChildText(NSSASL2, "authorization-identifier"))
			if verify != nil {
				add, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.ChildText(NSSASL2, "additional-data")))
				if err != nil {
					return nil, err
				}
				if err := verify(add); err != nil {
					return nil, err
				}
			}
			if t := el.Child(NSFAST, "token"); t != nil {
				res.Token = t.Attr("token")
				res.Expiry, _ = time.Parse(time.RFC3339, t.Attr("expiry"))
			}
			res.Resumed = el.Child(NSSM, "resumed")
			res.ResumeFailed = el.Child(NSSM, "failed")
			if b := el.Child(NSBind2, "bound"); b != nil {
				if en := b.Child(NSSM, "enabled"); en != nil {
					res.SMID = en.Attr("id")
				}
			}
			f, err := c.Next()
			if err != nil {
				return nil, err
			}
			if f.Space != nsStream || f.Local != "features" {
				return nil, fmt.Errorf("expected features after success, got %s", f.Local)
			}
			res.Features = f
			c.Features = f
			return res, nil
		default:
			return nil, fmt.Errorf("unexpected %s during SASL2", el.Local)
		}
	}
}

// SSDP is the XEP-0474 downgrade protection hash of the advertised
// mechanisms and channel-binding types (nil cbs: XEP-0440 not used).
func SSDP(newHash func() hash.Hash, mechs, cbs []string) string {
	m := slices.Clone(mechs)
	slices.Sort(m)
	s := strings.Join(m, "\x1e")
	if cbs != nil {
		c := slices.Clone(cbs)
		slices.Sort(c)
		s += "\x1f" + strings.Join(c, "\x1e")
	}
	h := newHash()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// scramAttr finds attribute name in a SCRAM message.
func scramAttr(msg, name string) (string, bool) {
	for _, f := range strings.Split(msg, ",") {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Expect reads and discards elements until one matches, and returns it.
func (c *Client) Expect(match func(*xml.Element) bool) (*xml.Element, error) {
	for {
		el, err := c.Next()
		if err != nil {
			return nil, err
		}
		if match(el) {
			return el, nil
		}
	}
}
