package c2s

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"

	"parley/internal/module"
	"parley/internal/sm"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// XEP-0386 Bind 2: resource binding inside the SASL2 <authenticate/>, with
// session features enabled in the same step: XEP-0198 stream management,
// XEP-0280 carbons and the XEP-0352 client state. Carbons and CSI are the
// modules' own handlers (the host's IQ handler for carbons <enable/>, its
// nonza handlers for <active/>/<inactive/>), called for the new session
// before anything reaches it, and offered only when those modules run.
// Requests for features not offered are ignored, as unknown extension
// elements are; none of them has a failure to report (carbons "MUST
// succeed", CSI has no answer), except stream management, whose
// <enabled/> or <failed/> goes into <bound/>, with the XEP-0313 archive
// metadata when the archive module runs.

// bindGate is how a Bind 2 session starts: gated (see session.gate) and
// with the stream management state its client asked for (nil: none).
type bindGate struct {
	sm *smState
	// continues is the ID of the session on another node this one
	// continues (handover.go, router.Continuing): the bind replaces that
	// session in the registry, and it ends by itself once it sees so; it
	// is not closed from here.
	continues string
}

// bind2Features lists the inline features <bind/> advertises.
func (c *conn) bind2Features() []string {
	var out []string
	if c.smOn() {
		out = append(out, sm.NS)
	}
	if c.host.IQ(stanza.TypeSet, module.TargetSelf, nsCarbons) != nil {
		out = append(out, nsCarbons)
	}
	if c.host.StreamElement(nsCSI, "inactive") != nil {
		out = append(out, nsCSI)
	}
	return out
}

// bind2 binds the session requested by req.bind and sends success, made
// from the full JID and the inline answers (resumeFailed, if a resumption
// was asked for and failed, then <bound/>), followed by the features of
// the bound stream and whatever was delivered to the session meanwhile.
func (c *conn) bind2(req *sasl2Request, success func(authzid string, inline ...*xml.Element) *xml.Element, resumeFailed *xml.Element) (bool, error) {
	b := req.bind
	gate := &bindGate{}
	var smAnswer *xml.Element
	if en := b.Child(sm.NS, "enable"); en != nil {
		st, failed := c.newSMState(en)
		if failed != nil {
			smAnswer = failed
		} else {
			gate.sm, smAnswer = st, st.enabled()
		}
	}
	res := c.bind2Resource(b.ChildText(nsBind2, "tag"), req.uaID)
	s, full, _, text := c.bindSession(res, gate)
	if s == nil {
		// Authenticated, but no session can be made (too many): the
		// client is told and stays unauthenticated, free to retry.
		c.user, c.mech = "", ""
		return false, c.saslFailure("temporary-auth-failure", text)
	}
	if gate.sm != nil {
		c.srv.resumable.register(gate.sm, s)
	}
	if b.Child(nsCarbons, "enable") != nil {
		c.inlineCarbons(s, full)
	}
	for _, state := range []string{"active", "inactive"} {
		if el := b.Child(nsCSI, state); el != nil {
			if fn := c.host.StreamElement(nsCSI, state); fn != nil {
				fn(s, el)
			}
		}
	}
	for _, ch := range b.Elements() {
		switch ch.Space {
		case nsBind2, sm.NS, nsCarbons, nsCSI:
		default:
			c.log("ignoring an inline feature Parley does not offer", "ns", ch.Space, "element", ch.Local)
		}
	}
	bound := xml.New(nsBind2, "bound")
	synced := time.Now()
	if md := c.archiveMetadata(s, full); md != nil {
		bound.Append(md)
		// The client syncs from the archive, so offline storage only
		// clears what the archive holds from before now (XEP-0386 §3.2).
		module.MarkArchiveSynced(s, synced)
	}
	if smAnswer != nil {
		bound.Append(smAnswer)
	}
	var inline []*xml.Element
	if resumeFailed != nil {
		inline = append(inline, resumeFailed)
	}
	inline = append(inline, bound)
	s.openGate(success(full.String(), inline...), c.boundFeatures(gate.sm != nil))
	c.sessionBound(s)
	c.srv.log.Info("c2s: bound (XEP-0386)", "remote", c.t.RemoteAddr().String(), "jid", full.String())
	return true, nil
}

// inlineCarbons enables carbons for s through the carbons module's own
// IQ handler, as if the client had sent the <enable/> IQ.
func (c *conn) inlineCarbons(s *session, full jid.JID) {
	fn := c.host.IQ(stanza.TypeSet, module.TargetSelf, nsCarbons)
	if fn == nil {
		return
	}
	payload := xml.New(nsCarbons, "enable")
	iq := xml.New("", "iq").SetAttr("type", stanza.TypeSet).SetAttr("id", "bind2").SetAttr("from", full.String()).Append(payload)
	reply := fn(&module.StanzaEvent{Ctx: c.ctx, Host: c.host, Stanza: iq, From: full, Origin: s}, payload)
	if reply != nil && reply.Attr("type") == stanza.TypeError {
		c.srv.log.Warn("c2s: inline carbons refused", "jid", full.String(), "reply", reply.String())
	}
}

// archiveMetadata is the XEP-0313 <metadata/> of the account's archive
// at the moment of binding (XEP-0386 §3.2: the client learns what to
// fetch), from the archive module's own handler; nil when no archive
// module runs or it could not answer.
func (c *conn) archiveMetadata(s *session, full jid.JID) *xml.Element {
	fn := c.host.IQ(stanza.TypeGet, module.TargetBare, nsMAM)
	if fn == nil {
		return nil
	}
	payload := xml.New(nsMAM, "metadata")
	iq := xml.New("", "iq").SetAttr("type", stanza.TypeGet).SetAttr("id", "bind2").
		SetAttr("from", full.String()).SetAttr("to", full.Bare().String()).Append(payload)
	reply := fn(&module.StanzaEvent{Ctx: c.ctx, Host: c.host, Stanza: iq, From: full, To: full.Bare(), Origin: s}, payload)
	if reply == nil || reply.Attr("type") != stanza.TypeResult {
		return nil
	}
	return reply.Child(nsMAM, "metadata")
}

// bind2Resource makes the resource of a Bind 2 session: the client's tag
// (when it is a valid resource by itself), '/', and an identifier of the
// server's (XEP-0386 §3.2.1). With a user-agent id the identifier is
// derived from it, the user and the tag under the server's secret, so a
// client gets the same resource every time (and its new session replaces
// its old one) while the id itself stays hidden; without, it is random.
func (c *conn) bind2Resource(tag, uaID string) string {
	tag = cleanText(tag, maxBindTag)
	if tag != "" {
		if _, err := jid.New("x", c.host.Domain, tag); err != nil || strings.Contains(tag, "/") {
			tag = ""
		}
	}
	var raw []byte
	if uaID != "" {
		m := hmac.New(sha256.New, c.srv.fakeKey)
		m.Write([]byte("XEP-0386 resource\x00" + c.user + "@" + c.host.Domain + "\x00" + uaID + "\x00" + tag))
		raw = m.Sum(nil)
	} else {
		raw = make([]byte, 16)
		_, _ = rand.Read(raw)
	}
	id := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)[:12])
	if tag == "" {
		return id
	}
	return tag + "/" + id
}

// boundFeatures are the features of a bound stream, sent after a SASL2
// <success/> that bound or resumed the session (XEP-0388 §2.6.1): stream
// management unless it is already on, and what the modules offer.
func (c *conn) boundFeatures(smEnabled bool) *xml.Element {
	f := xml.New(stanza.NSStream, "features")
	if c.smOn() && !smEnabled {
		f.Append(sm.Feature())
	}
	for _, el := range c.host.StreamFeatures(nil) {
		f.Append(el)
	}
	return f
}

// openGate sends first, then what was delivered to the gated session
// since it was bound, and lets later stanzas through.
func (s *session) openGate(first ...*xml.Element) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		for _, el := range first {
			s.w.Send(el)
		}
		for _, el := range s.gate {
			s.w.Send(el)
		}
		if s.sm != nil && len(s.gate) > 0 && s.sm.out.WantRequest() {
			s.w.Send(sm.Request())
		}
	}
	s.gate, s.gated = nil, false
}
