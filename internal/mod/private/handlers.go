package private

import (
	"context"
	"errors"
	"strconv"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// get returns the fragment named by the single child of <query/>, or that
// child back empty when nothing is stored (the XEP's "blank" answer, which
// clients such as bookmark readers expect instead of an error).
func (p *Private) get(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if errEl := p.check(ev, q); errEl != nil {
		return errEl
	}
	children := q.Elements()
	switch {
	case len(children) == 0:
		// "Bad Format" in XEP-0049's table, i.e. bad-request.
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "query names no element to retrieve")
	case len(children) > 1:
		// "A client MUST NOT query for more than namespace in a single IQ get."
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "query one element per request")
	}
	want := children[0]
	if reserved(want.Space) {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "reserved namespace")
	}
	owner := ev.To.Bare().String()
	b, err := p.h.Store.Private().Get(ev.Ctx, owner, key(want))
	var found *xml.Element
	switch {
	case errors.Is(err, storage.ErrNotFound):
		found = xml.New(want.Space, want.Local)
	case err != nil:
		p.h.Log.Warn("private: get", "owner", owner, "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	default:
		if found, err = xml.ParseElement(b, p.parseLimits(), stanza.NSClient); err != nil {
			p.h.Log.Error("private: stored element does not parse", "owner", owner, "err", err)
			return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
		}
	}
	return stanza.IQResult(ev.Stanza, xml.New(NS, "query").Append(found))
}

// set stores every child of <query/> under its own name and namespace,
// replacing what was stored there. Everything is validated before anything
// is written, so a request with one bad child stores nothing. Two children
// with the same name and namespace in one set: the last one wins, as a later
// set would replace it anyway.
func (p *Private) set(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if errEl := p.check(ev, q); errEl != nil {
		return errEl
	}
	children := q.Elements()
	if len(children) == 0 {
		// §2.3: "At least one child element with a proper namespace MUST be
		// included; otherwise the server MUST respond with Not Acceptable".
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "nothing to store")
	}
	limit := p.h.Config.Limits.MaxPrivateBytes
	data := make([][]byte, len(children))
	for i, c := range children {
		if reserved(c.Space) {
			return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "reserved namespace")
		}
		if data[i] = c.Bytes(); len(data[i]) > limit {
			return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "element exceeds "+strconv.Itoa(limit)+" bytes")
		}
	}
	owner := ev.To.Bare().String()
	kv := p.h.Store.KV()
	index, err := kv.List(ev.Ctx, kvBucket, owner)
	if err != nil {
		p.h.Log.Warn("private: index", "owner", owner, "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	n := len(index)
	for _, c := range children {
		if _, ok := index[key(c)]; !ok {
			index[key(c)] = nil
			n++
		}
	}
	if n > maxNamespaces {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "more than "+strconv.Itoa(maxNamespaces)+" private elements")
	}
	for i, c := range children {
		if err := p.store(ev.Ctx, owner, c, data[i]); err != nil {
			p.h.Log.Warn("private: set", "owner", owner, "err", err)
			return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
		}
	}
	for _, c := range children {
		for _, fn := range p.watchersOf(c) {
			fn(ev.Ctx, ev.To.Bare(), c)
		}
	}
	return stanza.IQResult(ev.Stanza, nil)
}

// store writes one fragment and its index entry. The index entry goes
// first: an entry without data only costs its owner one slot, while data
// without an entry would escape the bound.
func (p *Private) store(ctx context.Context, owner string, el *xml.Element, data []byte) error {
	if err := p.h.Store.KV().Set(ctx, kvBucket, owner, key(el), nil); err != nil {
		return err
	}
	return p.h.Store.Private().Set(ctx, owner, key(el), data)
}

// Put stores el for owner on the server's own behalf, as a client's set
// would, without telling watchers (the caller is the one keeping a view in
// step) and without the size bound, which is for clients: the caller
// bounds what it writes. It is refused only when el would be a new
// fragment beyond the per-account count.
func (p *Private) Put(ctx context.Context, owner jid.JID, el *xml.Element) error {
	o := owner.Bare().String()
	index, err := p.h.Store.KV().List(ctx, kvBucket, o)
	if err != nil {
		return err
	}
	if _, ok := index[key(el)]; !ok && len(index) >= maxNamespaces {
		return errors.New("private: too many private elements")
	}
	return p.store(ctx, o, el, el.Bytes())
}

// Get returns the stored fragment named {space}local of owner, or nil
// when there is none.
func (p *Private) Get(ctx context.Context, owner jid.JID, space, local string) (*xml.Element, error) {
	b, err := p.h.Store.Private().Get(ctx, owner.Bare().String(), local+" "+space)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return xml.ParseElement(b, p.parseLimits(), stanza.NSClient)
}

// check applies the rules common to get and set: only the account itself
// may touch its private XML (XEP-0049 prefers forbidden over the
// service-unavailable some servers send), and the payload is <query/>.
func (p *Private) check(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if ev.From.Bare() != ev.To.Bare() {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "")
	}
	if q.Local != "query" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <query xmlns='jabber:iq:private'/>")
	}
	return nil
}

// reserved reports whether fragments in namespace ns may not be stored: no
// namespace or the stream content namespaces (both read as "" here, see
// xml.Element), jabber:server and jabber:component:accept, and
// jabber:iq:private itself, which could only nest the protocol in itself.
// XEP-0049 §2.3 makes rejecting reserved namespaces optional; this is the
// set that can never be meaningful, while other "jabber:" namespaces some
// old clients use stay allowed.
func reserved(ns string) bool {
	switch ns {
	case "", stanza.NSClient, stanza.NSServer, stanza.NSComponent, NS:
		return true
	}
	return false
}

// key is the storage key of a fragment: "<local> <namespace>", as
// storage.Private documents.
func key(el *xml.Element) string { return el.Local + " " + el.Space }

// parseLimits are the limits stored fragments are read back with. The data
// is the server's own, so they are generous (twice the larger of the element
// and stanza bounds, so lowering either later does not make stored data
// unreadable) and only guard against a corrupted store.
func (p *Private) parseLimits() xml.Limits {
	l := p.h.Config.Limits
	return xml.Limits{MaxStanzaBytes: 2 * max(l.MaxPrivateBytes, l.MaxStanzaBytes), MaxDepth: l.MaxDepth + 1, MaxAttrs: l.MaxAttrs}
}
