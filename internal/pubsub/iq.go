package pubsub

import (
	"context"
	"slices"
	"strconv"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// operation is one request the service answers: an IQ of type typ whose
// <pubsub/> (in namespace space) starts with <local/>. features are the
// XEP-0060 features (§10) the operation implements; Service.Features is
// their union, so what the service announces is what this table routes.
type operation struct {
	typ, space, local string
	features          []string
	handle            func(s *Service, r *iqRequest) (*xml.Element, error)
}

// iqRequest is one pubsub IQ: the <pubsub/> element and its first child,
// the operation element.
type iqRequest struct {
	ctx    context.Context
	svc    string
	from   jid.JID
	pubsub *xml.Element
	op     *xml.Element
}

// sibling returns the element after the operation element with the given
// name (<publish-options/> after <publish/>, <configure/> after <create/>).
func (r *iqRequest) sibling(local string) *xml.Element {
	return r.pubsub.Child(r.pubsub.Space, local)
}

func operations() []operation {
	return []operation{
		{stanza.TypeSet, NS, "create", []string{"create-nodes", "create-and-configure"}, (*Service).iqCreate},
		{stanza.TypeSet, NS, "publish", []string{"publish", "item-ids", "auto-create", "publish-options", "persistent-items", "multi-items"}, (*Service).iqPublish},
		{stanza.TypeSet, NS, "retract", []string{"retract-items", "delete-items"}, (*Service).iqRetract},
		{stanza.TypeGet, NS, "items", []string{"retrieve-items"}, (*Service).iqItems},
		{stanza.TypeSet, NS, "subscribe", []string{"subscribe"}, (*Service).iqSubscribe},
		{stanza.TypeSet, NS, "unsubscribe", nil, (*Service).iqUnsubscribe},
		{stanza.TypeGet, NS, "subscriptions", []string{"retrieve-subscriptions"}, (*Service).iqSubscriptions},
		{stanza.TypeGet, NS, "affiliations", []string{"retrieve-affiliations"}, (*Service).iqAffiliations},
		{stanza.TypeGet, NSOwner, "configure", []string{"config-node", "config-node-max"}, (*Service).iqGetConfig},
		{stanza.TypeSet, NSOwner, "configure", nil, (*Service).iqSetConfig},
		{stanza.TypeGet, NSOwner, "default", []string{"retrieve-default"}, (*Service).iqDefault},
		{stanza.TypeSet, NSOwner, "delete", []string{"delete-nodes"}, (*Service).iqDelete},
		{stanza.TypeSet, NSOwner, "purge", []string{"purge-nodes"}, (*Service).iqPurge},
		{stanza.TypeGet, NSOwner, "subscriptions", []string{"manage-subscriptions"}, (*Service).iqGetNodeSubscriptions},
		{stanza.TypeSet, NSOwner, "subscriptions", nil, (*Service).iqSetNodeSubscriptions},
		{stanza.TypeGet, NSOwner, "affiliations", []string{"modify-affiliations", "member-affiliation",
			"outcast-affiliation", "publisher-affiliation", "publish-only-affiliation"}, (*Service).iqGetNodeAffiliations},
		{stanza.TypeSet, NSOwner, "affiliations", nil, (*Service).iqSetNodeAffiliations},
	}
}

// Features returns the disco#info features of the service (XEP-0060 §10):
// the protocol namespaces, what the operation table implements, and an
// access-* feature for each access model the configuration form offers.
func (s *Service) Features() []string {
	out := []string{NS, NSOwner}
	for _, op := range s.ops {
		for _, f := range op.features {
			out = append(out, Feature(f))
		}
	}
	if f, ok := lookupField(s.fields, "pubsub#access_model"); ok {
		for _, m := range f.options {
			out = append(out, Feature("access-"+m))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// HandleIQ answers a pubsub IQ request (type get or set) from 'from' to the
// virtual service svc; payload is its <pubsub/> child in the pubsub or
// pubsub#owner namespace. It returns the result's payload (nil for an empty
// result) or an error: an *Error to send back, anything else an internal
// failure (see ErrorReply).
func (s *Service) HandleIQ(ctx context.Context, svc string, from jid.JID, typ string, payload *xml.Element) (*xml.Element, error) {
	if payload.Local != "pubsub" || (payload.Space != NS && payload.Space != NSOwner) {
		return nil, errf(stanza.BadRequest, "", "expected <pubsub/>")
	}
	first := payload.FirstElement()
	if first == nil {
		return nil, errf(stanza.BadRequest, "", "empty <pubsub/>")
	}
	for _, op := range s.ops {
		if op.typ == typ && op.space == payload.Space && op.local == first.Local && first.Space == payload.Space {
			return op.handle(s, &iqRequest{ctx: ctx, svc: svc, from: from, pubsub: payload, op: first})
		}
	}
	// Subscription options (§6.3) and anything else not in the table.
	if first.Local == "options" {
		return nil, unsupported("subscription-options")
	}
	return nil, errf(stanza.FeatureNotImplemented, "", "unsupported pubsub request <"+first.Local+"/>")
}

func (s *Service) iqCreate(r *iqRequest) (*xml.Element, error) {
	var form *xml.Element
	if c := r.sibling("configure"); c != nil {
		if c.Attr("node") != "" {
			// §8.1.3: the node is named by <create/> only.
			return nil, errf(stanza.BadRequest, "", "<configure/> of a create request has no node")
		}
		form = c.Child(NSData, "x")
	}
	name := r.op.Attr("node")
	if err := s.CreateNode(r.ctx, r.svc, r.from, name, form); err != nil {
		return nil, err
	}
	return xml.New(NS, "pubsub").Append(xml.New(NS, "create").SetAttr("node", name)), nil
}

func (s *Service) iqPublish(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	var items []*xml.Element
	for _, el := range r.op.Elements() {
		if el.Space == NS && el.Local == "item" {
			items = append(items, el)
		}
	}
	var item Item
	switch len(items) {
	case 0:
		// §7.1.3.6: every node of this service is persistent or delivers
		// payloads, so an item is always required.
		if err := validNodeName(name); err != nil {
			return nil, err
		}
		return nil, errf(stanza.BadRequest, "item-required", "")
	case 1:
	default:
		return nil, errf(stanza.BadRequest, "invalid-payload", "publish one item per request")
	}
	item.ID = items[0].Attr("id")
	switch payloads := items[0].Elements(); len(payloads) {
	case 0:
	case 1:
		item.Payload = payloads[0]
	default:
		// §7.1.3.5: exactly one payload element.
		return nil, errf(stanza.BadRequest, "invalid-payload", "an item has one payload element")
	}
	var options *xml.Element
	if po := r.sibling("publish-options"); po != nil {
		if options = po.Child(NSData, "x"); options == nil && len(po.Elements()) > 0 {
			return nil, errf(stanza.BadRequest, "", "<publish-options/> holds a data form")
		}
	}
	published, err := s.Publish(r.ctx, r.svc, r.from, name, item, options)
	if err != nil {
		return nil, err
	}
	// §7.1.2: the item ID, which the publisher needs when the service
	// generated it.
	return xml.New(NS, "pubsub").Append(xml.New(NS, "publish").SetAttr("node", name).
		Append(xml.New(NS, "item").SetAttr("id", published.ID))), nil
}

func (s *Service) iqRetract(r *iqRequest) (*xml.Element, error) {
	var notify *bool
	switch r.op.Attr("notify") {
	case "1", "true":
		t := true
		notify = &t
	case "0", "false":
		f := false
		notify = &f
	}
	name := r.op.Attr("node")
	item := r.op.Child(NS, "item")
	if err := validNodeName(name); err != nil {
		return nil, err
	}
	if item == nil || item.Attr("id") == "" {
		return nil, errf(stanza.BadRequest, "item-required", "")
	}
	return nil, s.Retract(r.ctx, r.svc, r.from, name, item.Attr("id"), notify)
}

func (s *Service) iqItems(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	max := 0
	if v := r.op.Attr("max_items"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, errf(stanza.BadRequest, "", "max_items must be a positive number")
		}
		max = n
	}
	var ids []string
	for _, el := range r.op.Elements() {
		if el.Space == NS && el.Local == "item" && el.Attr("id") != "" {
			ids = append(ids, el.Attr("id"))
		}
	}
	items, err := s.Items(r.ctx, r.svc, r.from, name, ids, max)
	if err != nil {
		return nil, err
	}
	res := xml.New(NS, "items").SetAttr("node", name)
	for _, it := range items {
		el := xml.New(NS, "item").SetAttr("id", it.ID)
		if it.Payload != nil {
			el.Append(it.Payload)
		}
		res.Append(el)
	}
	return xml.New(NS, "pubsub").Append(res), nil
}

// parseJID reads a 'jid' attribute; absent is the zero JID.
func parseJID(el *xml.Element) (jid.JID, error) {
	v := el.Attr("jid")
	if v == "" {
		return jid.JID{}, nil
	}
	j, err := jid.Parse(v)
	if err != nil {
		return jid.JID{}, errf(stanza.BadRequest, "invalid-jid", "")
	}
	return j, nil
}

func (s *Service) iqSubscribe(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	sub, err := parseJID(r.op)
	if err != nil {
		return nil, err
	}
	if err := s.Subscribe(r.ctx, r.svc, r.from, name, sub); err != nil {
		return nil, err
	}
	return xml.New(NS, "pubsub").Append(xml.New(NS, "subscription").SetAttr("node", name).
		SetAttr("jid", sub.String()).SetAttr("subscription", stateSubscribed)), nil
}

func (s *Service) iqUnsubscribe(r *iqRequest) (*xml.Element, error) {
	sub, err := parseJID(r.op)
	if err != nil {
		return nil, err
	}
	return nil, s.Unsubscribe(r.ctx, r.svc, r.from, r.op.Attr("node"), sub)
}

func (s *Service) iqSubscriptions(r *iqRequest) (*xml.Element, error) {
	subs, err := s.Subscriptions(r.ctx, r.svc, r.from, r.op.Attr("node"))
	if err != nil {
		return nil, err
	}
	return subscriptionsResult(NS, r.op.Attr("node"), subs, true), nil
}

func subscriptionsResult(space, node string, subs []Subscription, withNode bool) *xml.Element {
	res := xml.New(space, "subscriptions")
	if node != "" {
		res.SetAttr("node", node)
	}
	for _, x := range subs {
		el := xml.New(space, "subscription")
		if withNode {
			el.SetAttr("node", x.Node)
		}
		res.Append(el.SetAttr("jid", x.JID).SetAttr("subscription", x.State))
	}
	return xml.New(space, "pubsub").Append(res)
}

func (s *Service) iqAffiliations(r *iqRequest) (*xml.Element, error) {
	affs, err := s.Affiliations(r.ctx, r.svc, r.from, r.op.Attr("node"))
	if err != nil {
		return nil, err
	}
	res := xml.New(NS, "affiliations")
	if n := r.op.Attr("node"); n != "" {
		res.SetAttr("node", n)
	}
	for _, a := range affs {
		res.Append(xml.New(NS, "affiliation").SetAttr("node", a.Node).SetAttr("affiliation", a.Affiliation))
	}
	return xml.New(NS, "pubsub").Append(res), nil
}

func (s *Service) iqGetConfig(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	cfg, err := s.Config(r.ctx, r.svc, r.from, name)
	if err != nil {
		return nil, err
	}
	return xml.New(NSOwner, "pubsub").Append(xml.New(NSOwner, "configure").SetAttr("node", name).
		Append(cfg.form(formForm, s.fields))), nil
}

func (s *Service) iqSetConfig(r *iqRequest) (*xml.Element, error) {
	x := r.op.Child(NSData, "x")
	if x == nil {
		return nil, errf(stanza.BadRequest, "", "expected a data form")
	}
	return nil, s.Configure(r.ctx, r.svc, r.from, r.op.Attr("node"), x)
}

func (s *Service) iqDefault(r *iqRequest) (*xml.Element, error) {
	return xml.New(NSOwner, "pubsub").Append(xml.New(NSOwner, "default").
		Append(s.o.Defaults.form(formForm, s.fields))), nil
}

func (s *Service) iqDelete(r *iqRequest) (*xml.Element, error) {
	return nil, s.DeleteNode(r.ctx, r.svc, r.from, r.op.Attr("node"))
}

func (s *Service) iqPurge(r *iqRequest) (*xml.Element, error) {
	return nil, s.Purge(r.ctx, r.svc, r.from, r.op.Attr("node"))
}

func (s *Service) iqGetNodeSubscriptions(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	if err := validNodeName(name); err != nil {
		return nil, err
	}
	subs, err := s.NodeSubscriptions(r.ctx, r.svc, r.from, name)
	if err != nil {
		return nil, err
	}
	return subscriptionsResult(NSOwner, name, subs, false), nil
}

func (s *Service) iqSetNodeSubscriptions(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	if err := validNodeName(name); err != nil {
		return nil, err
	}
	var changes []Subscription
	for _, el := range r.op.Elements() {
		if el.Space == NSOwner && el.Local == "subscription" {
			changes = append(changes, Subscription{Node: name, JID: el.Attr("jid"), State: el.Attr("subscription")})
		}
	}
	return nil, s.SetNodeSubscriptions(r.ctx, r.svc, r.from, name, changes)
}

func (s *Service) iqGetNodeAffiliations(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	if err := validNodeName(name); err != nil {
		return nil, err
	}
	affs, err := s.NodeAffiliations(r.ctx, r.svc, r.from, name)
	if err != nil {
		return nil, err
	}
	res := xml.New(NSOwner, "affiliations").SetAttr("node", name)
	for _, a := range affs {
		res.Append(xml.New(NSOwner, "affiliation").SetAttr("jid", a.JID).SetAttr("affiliation", a.Affiliation))
	}
	return xml.New(NSOwner, "pubsub").Append(res), nil
}

func (s *Service) iqSetNodeAffiliations(r *iqRequest) (*xml.Element, error) {
	name := r.op.Attr("node")
	if err := validNodeName(name); err != nil {
		return nil, err
	}
	var changes []Affiliation
	for _, el := range r.op.Elements() {
		if el.Space == NSOwner && el.Local == "affiliation" {
			changes = append(changes, Affiliation{Node: name, JID: el.Attr("jid"), Affiliation: el.Attr("affiliation")})
		}
	}
	return nil, s.SetNodeAffiliations(r.ctx, r.svc, r.from, name, changes)
}
