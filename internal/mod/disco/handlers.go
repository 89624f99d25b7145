package disco

import (
	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// hostInfo answers disco#info to the domain: the server/im identity, the
// identities other modules added (e.g. a PubSub service), every feature
// in the host registry, read at request time so that modules registering
// late are included, and the host's contact addresses (XEP-0157).
func (d *Disco) hostInfo(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if node := q.Attr("node"); node != "" {
		// §3.2: a node of the host, if a module serves it (the ad-hoc
		// command list and its commands).
		for _, p := range d.h.HostNodeProviders() {
			info, found, err := p.HostNodeInfo(ev.Ctx, ev.From, node)
			if err != nil {
				d.h.Log.Warn("disco: host node", "node", node, "err", err)
				return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
			}
			if found {
				return stanza.IQResult(ev.Stanza, infoResult(info.Identities, info.Features).SetAttr("node", node))
			}
		}
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	}
	ids := append([]module.Identity{{Category: "server", Type: "im", Name: ServerName}}, d.h.Identities()...)
	res := infoResult(ids, d.h.Features())
	if form := d.contactForm(); form != nil {
		res.Append(form) // XEP-0157, as a XEP-0128 extension
	}
	return stanza.IQResult(ev.Stanza, res)
}

// hostItems answers disco#items to the domain with the host's items
// (components, MUC services), or with a node the items of a host node a
// module serves (XEP-0050 §2.2: the commands the requester may run).
func (d *Disco) hostItems(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if node := q.Attr("node"); node != "" {
		for _, p := range d.h.HostNodeProviders() {
			items, found, err := p.HostNodeItems(ev.Ctx, ev.From, node)
			if err != nil {
				d.h.Log.Warn("disco: host node items", "node", node, "err", err)
				return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
			}
			if found {
				res := xml.New(NSItems, "query").SetAttr("node", node)
				appendItems(res, items)
				return stanza.IQResult(ev.Stanza, res)
			}
		}
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	}
	res := xml.New(NSItems, "query")
	appendItems(res, d.h.Items())
	return stanza.IQResult(ev.Stanza, res)
}

func appendItems(res *xml.Element, items []module.DiscoItem) {
	for _, it := range items {
		item := xml.New(NSItems, "item").SetAttr("jid", it.JID)
		if it.Node != "" {
			item.SetAttr("node", it.Node)
		}
		if it.Name != "" {
			item.SetAttr("name", it.Name)
		}
		res.Append(item)
	}
}

// accountInfo answers disco#info to an account's bare JID on its behalf
// (§3.1). Security Considerations (§8) require service-unavailable, the
// same answer a non-existent account gets from the core, to anyone not
// allowed to see the account's presence, so the reply cannot be used to
// harvest accounts.
func (d *Disco) accountInfo(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	ok, err := d.h.MaySeePresence(ev.Ctx, ev.To.Bare(), ev.From)
	if err != nil {
		d.h.Log.Warn("disco: roster lookup", "owner", ev.To.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	if !ok {
		return stanza.ErrorReply(ev.Stanza, stanza.ServiceUnavailable, "")
	}
	owner := ev.To.Bare()
	if node := q.Attr("node"); node != "" {
		// §3.2: a node of the account, if a module serves it (a pubsub
		// node of its personal eventing service).
		for _, p := range d.h.AccountNodeProviders() {
			info, found, err := p.AccountNodeInfo(ev.Ctx, owner, ev.From, node)
			if err != nil {
				d.h.Log.Warn("disco: account node", "owner", owner.String(), "node", node, "err", err)
				return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
			}
			if found {
				res := infoResult(info.Identities, info.Features).SetAttr("node", node)
				for _, f := range info.Forms {
					res.Append(f)
				}
				return stanza.IQResult(ev.Stanza, res)
			}
		}
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	}
	ids := append([]module.Identity{{Category: "account", Type: "registered"}}, d.h.AccountIdentities()...)
	return stanza.IQResult(ev.Stanza, infoResult(ids, d.h.AccountFeatures()))
}

// accountItems answers disco#items to an account's bare JID: its available
// resources to those allowed to see its presence, and, as §8 requires, an
// empty result to everybody else (never an error, which would reveal that
// the account exists).
func (d *Disco) accountItems(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	res := emptyItems(q)
	ok, err := d.h.MaySeePresence(ev.Ctx, ev.To.Bare(), ev.From)
	if err != nil {
		d.h.Log.Warn("disco: roster lookup", "owner", ev.To.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	if !ok {
		return stanza.IQResult(ev.Stanza, res)
	}
	owner := ev.To.Bare()
	if node := q.Attr("node"); node != "" {
		for _, p := range d.h.AccountNodeProviders() {
			items, found, err := p.AccountNodeChildren(ev.Ctx, owner, ev.From, node)
			if err != nil {
				d.h.Log.Warn("disco: account node items", "owner", owner.String(), "node", node, "err", err)
				return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
			}
			if found {
				appendItems(res, items)
				break
			}
		}
		return stanza.IQResult(ev.Stanza, res)
	}
	for _, s := range d.h.Router.Sessions(owner) {
		if module.Available(s) {
			res.Append(xml.New(NSItems, "item").SetAttr("jid", s.JID().String()))
		}
	}
	// The account's nodes (XEP-0163 §6.2: those the requester may use).
	for _, p := range d.h.AccountNodeProviders() {
		items, err := p.AccountNodeItems(ev.Ctx, owner, ev.From)
		if err != nil {
			d.h.Log.Warn("disco: account nodes", "owner", owner.String(), "err", err)
			return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
		}
		appendItems(res, items)
	}
	return stanza.IQResult(ev.Stanza, res)
}

// unknownItems answers disco#items to a bare JID of the host that names
// no account: the empty result a stranger gets from an account that
// exists (accountItems), with or without a node, as §8 requires, so the
// two cannot be told apart.
func (d *Disco) unknownItems(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	return stanza.IQResult(ev.Stanza, emptyItems(q))
}

// emptyItems is an empty disco#items result for q, naming q's node if it
// has one (§4.2: the reply carries the node of the request).
func emptyItems(q *xml.Element) *xml.Element {
	res := xml.New(NSItems, "query")
	if n := q.Attr("node"); n != "" {
		res.SetAttr("node", n)
	}
	return res
}

func infoResult(ids []module.Identity, features []string) *xml.Element {
	res := xml.New(NSInfo, "query")
	for _, id := range ids {
		el := xml.New(NSInfo, "identity").SetAttr("category", id.Category).SetAttr("type", id.Type)
		if id.Name != "" {
			el.SetAttr("name", id.Name)
		}
		res.Append(el)
	}
	for _, f := range features {
		res.Append(xml.New(NSInfo, "feature").SetAttr("var", f))
	}
	return res
}
