package proxy65

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"

	"parley/internal/access"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Deliver implements module.Component: the XMPP side of the proxy.
func (p *Proxy) Deliver(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if reply := p.handle(ctx, el, from, to); reply != nil {
		p.h.Router.Route(ctx, reply)
	}
}

func (p *Proxy) handle(ctx context.Context, el *xml.Element, from, to jid.JID) *xml.Element {
	q, reply := module.ServiceRequest(el, to)
	if q == nil {
		return reply
	}
	typ := el.Attr("type")
	switch {
	case typ == stanza.TypeGet && q.Space == nsInfo && q.Local == "query":
		if q.Attr("node") != "" {
			return stanza.ErrorReply(el, stanza.ItemNotFound, "")
		}
		return stanza.IQResult(el, xml.New(nsInfo, "query").
			Append(xml.New(nsInfo, "identity").SetAttr("category", "proxy").SetAttr("type", "bytestreams").SetAttr("name", "SOCKS5 Bytestreams Service")).
			Append(xml.New(nsInfo, "feature").SetAttr("var", nsInfo)).
			Append(xml.New(nsInfo, "feature").SetAttr("var", NS)))
	case typ == stanza.TypeGet && q.Space == nsItems && q.Local == "query":
		return stanza.IQResult(el, xml.New(nsItems, "query"))
	case q.Space == NS && q.Local == "query":
		if !p.allowed(from) {
			// XEP-0065 §4.4: a proxy that does not serve the requester
			// answers forbidden.
			return stanza.ErrorReply(el, stanza.Forbidden, "this proxy serves local users only")
		}
		if e := p.access(ctx, from); e != nil {
			return stanza.ErrorReplyFor(el, e)
		}
		if typ == stanza.TypeGet {
			host, port := p.streamhost()
			sh := xml.New(NS, "streamhost").SetAttr("jid", p.cfg.Domain).SetAttr("host", host).SetAttr("port", port)
			return stanza.IQResult(el, xml.New(NS, "query").Append(sh))
		}
		return p.activateIQ(ctx, el, q, from)
	}
	return stanza.ErrorReply(el, stanza.ServiceUnavailable, "")
}

// allowed reports whether from may use the proxy: accounts of this server's
// virtual hosts.
func (p *Proxy) allowed(from jid.JID) bool {
	return from.Local() != "" && p.h.Config.HostByDomain(from.Domain()) != nil
}

// access applies the proxy65 access rule of the requester's host (seed
// 000 SACL); nil when it may use the proxy.
func (p *Proxy) access(ctx context.Context, from jid.JID) *stanza.Error {
	of, ok := module.Lookup(p.h, module.AccessByDomain)
	if !ok {
		return nil
	}
	c := of(from.Domain())
	if c == nil {
		return nil
	}
	if err := c.Check(ctx, access.Proxy65, from); err != nil {
		return access.ErrorFor(err)
	}
	return nil
}

// activateIQ handles <query sid='...'><activate>target</activate></query>
// (XEP-0065 §6.3.5). The hash is computed from the stanza's 'from', which
// the server stamped, so only the initiator named in the hash can activate.
func (p *Proxy) activateIQ(ctx context.Context, el, q *xml.Element, from jid.JID) *xml.Element {
	sid := q.Attr("sid")
	act := q.Child(NS, "activate")
	if sid == "" || act == nil {
		return stanza.ErrorReply(el, stanza.BadRequest, "need sid and <activate/>")
	}
	target, err := jid.Parse(strings.TrimSpace(act.Text()))
	if err != nil {
		return stanza.ErrorReply(el, stanza.JIDMalformed, "")
	}
	// The target uses the proxy too: a user its host's proxy65 rule
	// refuses cannot be sent files through it either.
	if p.allowed(target) {
		if e := p.access(ctx, target); e != nil {
			return stanza.ErrorReplyFor(el, &stanza.Error{Condition: e.Condition, Type: e.Type, Text: "the target may not use this file-transfer proxy"})
		}
	}
	if c, text := p.activate(Hash(sid, from, target)); c != "" {
		return stanza.ErrorReply(el, c, text)
	}
	return stanza.IQResult(el, nil)
}

// Hash is the SOCKS5 DST.ADDR of a bytestream: hex SHA-1 of SID + initiator
// JID + target JID, with the JIDs in their prepared form (XEP-0065 §5.3.2).
func Hash(sid string, initiator, target jid.JID) string {
	sum := sha1.Sum([]byte(sid + initiator.String() + target.String()))
	return hex.EncodeToString(sum[:])
}
