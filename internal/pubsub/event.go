package pubsub

import (
	"context"
	"errors"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// EventKind says what happened to a node.
type EventKind int

// Event kinds (XEP-0060 §7.1.2, §7.2.2, §8.2.5, §8.4.2, §8.5.2, §6.1.7).
const (
	EventPublish EventKind = iota + 1
	EventRetract
	EventPurge
	EventDelete
	EventConfig
	// EventSubscribed: an entity subscribed explicitly. Items holds the
	// last published item to send it when the node's
	// send_last_published_item asks for that (§6.1.7), else nothing.
	EventSubscribed
)

// Event is a change of a node that its audience is to hear about. The
// embedding decides who that is: for EventSubscribed the new subscriber,
// otherwise the node's explicit subscribers (Service.Subscribers) plus
// whoever its own rules add (for PEP: contacts who advertised interest).
type Event struct {
	Kind    EventKind
	Service string
	Node    string
	Config  NodeConfig
	// Items are the published items (EventPublish) or the last one
	// (EventSubscribed).
	Items []Item
	// Retracted are the IDs of retracted items (EventRetract).
	Retracted []string
	// Actor is who caused the event (the publishing resource).
	Actor jid.JID
	// Subscriber is the new subscriber (EventSubscribed).
	Subscriber jid.JID
	// Subscribers, for EventDelete, were the node's explicit subscribers:
	// the node and its subscriptions are gone when the event is delivered.
	Subscribers []jid.JID

	subscribersKnown bool
}

// Element renders the event as the <event/> of a notification (§7.1.2.1,
// §7.2.2.1, §8.2.5, §8.4.2, §8.5.2). Items carry their payloads when the
// node's pubsub#deliver_payloads says so, and only their IDs otherwise.
func (e *Event) Element() *xml.Element {
	ev := xml.New(NSEvent, "event")
	switch e.Kind {
	case EventPublish, EventSubscribed:
		items := xml.New(NSEvent, "items").SetAttr("node", e.Node)
		for _, it := range e.Items {
			item := xml.New(NSEvent, "item").SetAttr("id", it.ID)
			if e.Config.DeliverPayloads && it.Payload != nil {
				item.Append(it.Payload)
			}
			items.Append(item)
		}
		ev.Append(items)
	case EventRetract:
		items := xml.New(NSEvent, "items").SetAttr("node", e.Node)
		for _, id := range e.Retracted {
			items.Append(xml.New(NSEvent, "retract").SetAttr("id", id))
		}
		ev.Append(items)
	case EventPurge:
		ev.Append(xml.New(NSEvent, "purge").SetAttr("node", e.Node))
	case EventDelete:
		ev.Append(xml.New(NSEvent, "delete").SetAttr("node", e.Node))
	case EventConfig:
		c := xml.New(NSEvent, "configuration").SetAttr("node", e.Node)
		if e.Config.DeliverPayloads {
			c.Append(e.Config.form(resultForm, configFields()))
		}
		ev.Append(c)
	}
	return ev
}

// Message builds the notification of e from 'from' (the service's address)
// to 'to' (§7.1.2.1; XEP-0163 §4.3.1 for PEP), typed as the node's
// pubsub#notification_type asks. replyTo, when not zero, is added as a
// XEP-0033 replyto address (XEP-0163 §4.3.1 point 3).
func (e *Event) Message(from, to jid.JID, id string, replyTo jid.JID) *xml.Element {
	typ := e.Config.NotificationType
	if typ == "" {
		typ = notificationTypeHeadline
	}
	msg := xml.New("", "message").SetAttr("from", from.String()).SetAttr("to", to.String()).SetAttr("type", typ)
	if id != "" {
		msg.SetAttr("id", id)
	}
	msg.Append(e.Element())
	if !replyTo.IsZero() {
		msg.Append(xml.New(NSAddress, "addresses").Append(
			xml.New(NSAddress, "address").SetAttr("type", "replyto").SetAttr("jid", replyTo.String())))
	}
	return msg
}

// Audience answers "may this entity hear about this node?" for one event,
// however many entities are asked: it holds the node's affiliations.
type Audience struct {
	a access
}

// Audience returns the audience of a node with configuration cfg.
func (s *Service) Audience(ctx context.Context, svc, name string, cfg NodeConfig) (*Audience, error) {
	affs, err := s.o.Store.Affiliations(ctx, svc, name)
	if errors.Is(err, storage.ErrNotFound) {
		affs = nil // deleted meanwhile: only the relation counts
	} else if err != nil {
		return nil, err
	}
	return &Audience{a: newAccess(cfg, affs)}, nil
}

// Allows reports whether who, with relation rel to the service, may receive
// the node's events: exactly those who may retrieve its items.
func (au *Audience) Allows(who jid.JID, rel Relation) bool {
	return au.a.mayRetrieve(who, rel) == nil
}

// Subscribers returns the explicit subscribers of the event's node that may
// still receive its events. A subscriber that lost access (a presence
// subscription cancelled, a roster group changed, a whitelist shortened) is
// unsubscribed here, as XEP-0163 §7.1 requires, when it would otherwise
// have been notified.
func (s *Service) Subscribers(ctx context.Context, ev *Event) ([]jid.JID, error) {
	if ev.subscribersKnown || ev.Kind == EventDelete {
		return ev.Subscribers, nil
	}
	return s.subscribers(ctx, ev.Service, ev.Node, ev.Config)
}

func (s *Service) subscribers(ctx context.Context, svc, name string, cfg NodeConfig) ([]jid.JID, error) {
	subs, err := s.o.Store.Subscriptions(ctx, svc, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil || len(subs) == 0 {
		return nil, err
	}
	au, err := s.Audience(ctx, svc, name, cfg)
	if err != nil {
		return nil, err
	}
	var out []jid.JID
	for _, sub := range subs {
		if sub.State != stateSubscribed {
			continue
		}
		j, err := jid.Parse(sub.JID)
		if err != nil {
			continue
		}
		rel, err := s.o.Relation(ctx, svc, j)
		if err != nil {
			return nil, err
		}
		if !au.Allows(j, rel) {
			if err := s.o.Store.SetSubscription(ctx, svc, name, sub.JID, "none", 0); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, err
			}
			s.o.Log.Info("pubsub: subscription cancelled, access lost", "service", svc, "node", name, "jid", sub.JID)
			continue
		}
		out = append(out, j)
	}
	return out, nil
}
