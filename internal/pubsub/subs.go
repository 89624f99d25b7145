package pubsub

import (
	"context"
	"errors"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
)

// Subscription states (XEP-0060 §4.2) the service stores.
const (
	stateSubscribed = "subscribed"
	stateNone       = "none"
)

// Subscribe subscribes sub (the requester's own bare or full JID) to a node
// its access model opens to the requester (§6.1). The new subscriber gets
// the node's last item when send_last_published_item asks for it (§6.1.7),
// through an EventSubscribed.
func (s *Service) Subscribe(ctx context.Context, svc string, from jid.JID, name string, sub jid.JID) error {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return err
	}
	if sub.IsZero() {
		return errf(stanza.BadRequest, "jid-required", "")
	}
	if sub.Bare() != from.Bare() {
		// §6.1.3.1: nobody subscribes someone else.
		return errf(stanza.BadRequest, "invalid-jid", "")
	}
	cfg, err := r.node(name)
	if err != nil {
		return err
	}
	if err := r.mayRetrieve(name, cfg); err != nil {
		return err
	}
	err = s.o.Store.SetSubscription(ctx, svc, name, sub.String(), stateSubscribed, s.o.Limits.MaxSubscriptions)
	switch {
	case errors.Is(err, storage.ErrQuotaExceeded):
		return errf(stanza.PolicyViolation, "too-many-subscriptions", "")
	case err != nil:
		return notFoundAsNoNode(err)
	}
	ev := &Event{Kind: EventSubscribed, Service: svc, Node: name, Config: cfg, Actor: from, Subscriber: sub}
	if cfg.SendLastPublishedItem != SendLastNever && cfg.PersistItems {
		last, err := s.LastItem(ctx, svc, name)
		if err != nil {
			return err
		}
		if last != nil {
			ev.Items = []Item{*last}
		}
	}
	s.notify(ctx, ev)
	return nil
}

// Unsubscribe removes sub's subscription to a node (§6.2).
func (s *Service) Unsubscribe(ctx context.Context, svc string, from jid.JID, name string, sub jid.JID) error {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return err
	}
	if sub.IsZero() {
		return errf(stanza.BadRequest, "jid-required", "")
	}
	if sub.Bare() != from.Bare() {
		// §6.2.3.3: insufficient privileges.
		return errForbidden()
	}
	if _, err := r.node(name); err != nil {
		return err
	}
	subs, err := s.o.Store.Subscriptions(ctx, svc, name)
	if err != nil {
		return notFoundAsNoNode(err)
	}
	for _, x := range subs {
		if x.JID == sub.String() {
			return notFoundAsNoNode(s.o.Store.SetSubscription(ctx, svc, name, x.JID, stateNone, 0))
		}
	}
	// §6.2.3.2: no such subscriber.
	return errf(stanza.UnexpectedRequest, "not-subscribed", "")
}

// Subscription is an explicit subscription as the protocol shows it.
type Subscription struct {
	Node  string
	JID   string
	State string
}

// Subscriptions lists the requester's own subscriptions to the service's
// nodes, or to one node (§5.6).
func (s *Service) Subscriptions(ctx context.Context, svc string, from jid.JID, name string) ([]Subscription, error) {
	subs, err := s.o.Store.Subscriptions(ctx, svc, name)
	if err != nil {
		return nil, notFoundAsNoNode(err)
	}
	var out []Subscription
	for _, x := range subs {
		if j, err := jid.Parse(x.JID); err == nil && j.Bare() == from.Bare() {
			out = append(out, Subscription(x))
		}
	}
	return out, nil
}

// NodeSubscriptions lists every subscription of a node for its owner (§8.8.1).
func (s *Service) NodeSubscriptions(ctx context.Context, svc string, from jid.JID, name string) ([]Subscription, error) {
	if _, err := s.Config(ctx, svc, from, name); err != nil {
		return nil, err
	}
	subs, err := s.o.Store.Subscriptions(ctx, svc, name)
	if err != nil {
		return nil, notFoundAsNoNode(err)
	}
	out := make([]Subscription, 0, len(subs))
	for _, x := range subs {
		out = append(out, Subscription(x))
	}
	return out, nil
}

// SetNodeSubscriptions applies the owner's changes to a node's subscriptions
// (§8.8.2): state "subscribed" adds one, "none" removes one. Everything is
// validated before anything is stored.
func (s *Service) SetNodeSubscriptions(ctx context.Context, svc string, from jid.JID, name string, changes []Subscription) error {
	if _, err := s.Config(ctx, svc, from, name); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := jid.Parse(c.JID); err != nil || c.JID == "" {
			return errf(stanza.BadRequest, "invalid-jid", "")
		}
		if c.State != stateSubscribed && c.State != stateNone {
			return errf(stanza.NotAcceptable, "", "subscription state must be subscribed or none")
		}
	}
	for _, c := range changes {
		err := s.o.Store.SetSubscription(ctx, svc, name, jid.MustParse(c.JID).String(), c.State, s.o.Limits.MaxSubscriptions)
		switch {
		case errors.Is(err, storage.ErrQuotaExceeded):
			return errf(stanza.PolicyViolation, "too-many-subscriptions", "")
		case err != nil:
			return notFoundAsNoNode(err)
		}
	}
	return nil
}

// Affiliation is an affiliation as the protocol shows it.
type Affiliation struct {
	Node        string
	JID         string
	Affiliation string
}

// Affiliations lists the requester's own affiliations with the service's
// nodes, or with one node (§5.7): owner of every node for the service's
// owner, the stored ones for anyone else.
func (s *Service) Affiliations(ctx context.Context, svc string, from jid.JID, name string) ([]Affiliation, error) {
	r := s.newRequest(ctx, svc, from)
	rel, err := r.relation()
	if err != nil {
		return nil, err
	}
	if rel.Owner {
		var nodes []storage.PubSubNode
		if name != "" {
			if _, err := r.node(name); err != nil {
				return nil, err
			}
			nodes = []storage.PubSubNode{{Node: name}}
		} else if nodes, err = s.o.Store.Nodes(ctx, svc); err != nil {
			return nil, err
		}
		out := make([]Affiliation, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, Affiliation{Node: n.Node, Affiliation: AffOwner})
		}
		return out, nil
	}
	affs, err := s.o.Store.Affiliations(ctx, svc, name)
	if err != nil {
		return nil, notFoundAsNoNode(err)
	}
	var out []Affiliation
	for _, a := range affs {
		if a.JID == from.String() || a.JID == from.Bare().String() {
			out = append(out, Affiliation(a))
		}
	}
	return out, nil
}

// NodeAffiliations lists a node's affiliations for its owner (§8.9.1),
// the service's owner first.
func (s *Service) NodeAffiliations(ctx context.Context, svc string, from jid.JID, name string) ([]Affiliation, error) {
	if _, err := s.Config(ctx, svc, from, name); err != nil {
		return nil, err
	}
	affs, err := s.o.Store.Affiliations(ctx, svc, name)
	if err != nil {
		return nil, notFoundAsNoNode(err)
	}
	out := make([]Affiliation, 0, len(affs)+1)
	out = append(out, Affiliation{Node: name, JID: svc, Affiliation: AffOwner})
	for _, a := range affs {
		out = append(out, Affiliation(a))
	}
	return out, nil
}

// SetNodeAffiliations applies the owner's changes to a node's affiliations
// (§8.9.2). The service has a single owner, so "owner" cannot be granted
// and the owner's own affiliation cannot change (§8.9.2.4: an owner cannot
// remove the last owner). Everything is validated before anything is
// stored.
func (s *Service) SetNodeAffiliations(ctx context.Context, svc string, from jid.JID, name string, changes []Affiliation) error {
	if _, err := s.Config(ctx, svc, from, name); err != nil {
		return err
	}
	for _, c := range changes {
		j, err := jid.Parse(c.JID)
		if err != nil || c.JID == "" {
			return errf(stanza.BadRequest, "invalid-jid", "")
		}
		rel, err := s.o.Relation(ctx, svc, j)
		if err != nil {
			return err
		}
		switch {
		case rel.Owner:
			return errf(stanza.NotAcceptable, "", "the owner's affiliation cannot change")
		case c.Affiliation == AffOwner:
			return errf(stanza.NotAcceptable, "", "this service has a single owner")
		case c.Affiliation != AffPublisher && c.Affiliation != AffPublishOnly && c.Affiliation != AffMember &&
			c.Affiliation != AffOutcast && c.Affiliation != AffNone:
			return errf(stanza.BadRequest, "", "unknown affiliation")
		}
	}
	for _, c := range changes {
		if err := s.o.Store.SetAffiliation(ctx, svc, name, jid.MustParse(c.JID).String(), c.Affiliation); err != nil {
			return notFoundAsNoNode(err)
		}
	}
	return nil
}
