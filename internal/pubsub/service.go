// Package pubsub is a XEP-0060 Publish-Subscribe service as a library: nodes
// with their XEP-0004 configuration, items kept in storage, affiliations,
// subscriptions and the event notifications they produce, with the XEP's
// error for every failure. It routes nothing: an embedding module hands it
// requests (HandleIQ, or the Go methods) and gets back replies and events,
// which it delivers as it sees fit. The personal eventing module (XEP-0163,
// package mod/pep) is one such embedding, with one virtual service per
// account; a standalone service at its own domain would be another.
//
// One Service serves any number of virtual services, named by a string
// (the account's bare JID for PEP); what the service knows of a requester
// beyond its address (owner, presence subscriber, roster groups) comes from
// the embedding's RelationFunc.
package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Limits bound what one service may hold; each comes from configuration.
type Limits struct {
	// MaxNodes is the number of nodes of one service.
	MaxNodes int
	// MaxItems is the number of items one node keeps (what max_items "max"
	// means).
	MaxItems int
	// MaxItemBytes bounds one serialized payload.
	MaxItemBytes int
	// MaxSubscriptions bounds the explicit subscriptions of one node.
	MaxSubscriptions int
}

// Bounds on names, so a request cannot make the service store or compare
// arbitrarily long strings.
const (
	MaxNodeNameBytes = 1024
	MaxItemIDBytes   = 1024
)

// RelationFunc tells the service what it knows of requester; see Relation.
type RelationFunc func(ctx context.Context, service string, requester jid.JID) (Relation, error)

// Options configure a Service.
type Options struct {
	Store  storage.PubSub
	Limits Limits
	// Defaults is the configuration of a node created without one.
	Defaults NodeConfig
	// Relation is required.
	Relation RelationFunc
	// Notify receives every event after its change is stored; it runs in
	// the requester's goroutine, after the reply was built but before it is
	// sent. Nil: events are dropped.
	Notify func(ctx context.Context, ev *Event)
	// ParseLimits are the limits stored payloads are parsed back with.
	ParseLimits xml.Limits
	Log         *slog.Logger
}

// Service is a publish-subscribe engine. It holds no state of its own
// beyond its options: everything lives in storage, so any number of
// goroutines may use it at once.
type Service struct {
	o      Options
	fields []field
	ops    []operation
}

// New returns a service.
func New(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{o: o, fields: configFields(), ops: operations()}
}

// Limits returns the service's limits.
func (s *Service) Limits() Limits { return s.o.Limits }

// Item is a published item.
type Item struct {
	ID        string
	Publisher string
	// Payload is nil for an item published without one.
	Payload   *xml.Element
	Published time.Time
}

// Node is a node's name and configuration.
type Node struct {
	Name   string
	Config NodeConfig
}

// request carries what every operation needs about the requester; the
// relation is looked up at most once, and only when a decision needs it.
type request struct {
	ctx  context.Context
	svc  string
	from jid.JID
	s    *Service
	rel  *Relation
}

func (s *Service) newRequest(ctx context.Context, svc string, from jid.JID) *request {
	return &request{ctx: ctx, svc: svc, from: from, s: s}
}

func (r *request) relation() (Relation, error) {
	if r.rel == nil {
		rel, err := r.s.o.Relation(r.ctx, r.svc, r.from)
		if err != nil {
			return Relation{}, err
		}
		r.rel = &rel
	}
	return *r.rel, nil
}

// owner reports whether the requester owns the service.
func (r *request) owner() (bool, error) {
	rel, err := r.relation()
	return rel.Owner, err
}

// node loads a node's configuration; errNoNode if it does not exist.
func (r *request) node(name string) (NodeConfig, error) {
	n, err := r.s.o.Store.Node(r.ctx, r.svc, name)
	if errors.Is(err, storage.ErrNotFound) {
		return NodeConfig{}, errNoNode()
	}
	if err != nil {
		return NodeConfig{}, err
	}
	return decodeConfig(n.Config, r.s.o.Defaults)
}

// access loads what access decisions about a node need.
func (r *request) access(name string, cfg NodeConfig) (access, error) {
	affs, err := r.s.o.Store.Affiliations(r.ctx, r.svc, name)
	if errors.Is(err, storage.ErrNotFound) {
		return access{}, errNoNode()
	}
	if err != nil {
		return access{}, err
	}
	return newAccess(cfg, affs), nil
}

// requireOwner fails with forbidden unless the requester owns the service
// or has the owner affiliation with the node.
func (r *request) requireOwner(name string, cfg NodeConfig) error {
	rel, err := r.relation()
	if err != nil {
		return err
	}
	if rel.Owner {
		return nil
	}
	a, err := r.access(name, cfg)
	if err != nil {
		return err
	}
	if a.affiliation(r.from, rel) != AffOwner {
		return errForbidden()
	}
	return nil
}

func validNodeName(name string) error {
	switch {
	case name == "":
		return errNodeRequired()
	case len(name) > MaxNodeNameBytes:
		return errf(stanza.NotAcceptable, "", "node name too long")
	}
	return nil
}

// CreateNode creates a node owned by the service with the default
// configuration changed by cfgForm (a submitted pubsub#node_config form, or
// nil), XEP-0060 §8.1. Only the service's owner may create nodes.
func (s *Service) CreateNode(ctx context.Context, svc string, from jid.JID, name string, cfgForm *xml.Element) error {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		if name == "" {
			// §8.1.2: no NodeID and no instant nodes.
			return errf(stanza.NotAcceptable, "nodeid-required", "")
		}
		return err
	}
	owner, err := r.owner()
	if err != nil {
		return err
	}
	if !owner {
		return errForbidden()
	}
	cfg := s.o.Defaults
	if cfgForm != nil {
		f, cancelled, perr := parseForm(cfgForm, NSNodeConfig)
		if perr != nil {
			return perr
		}
		if !cancelled {
			if perr := f.apply(&cfg, s.fields, s.o.Limits); perr != nil {
				return perr
			}
		}
	}
	return r.create(name, cfg)
}

func (r *request) create(name string, cfg NodeConfig) error {
	err := r.s.o.Store.CreateNode(r.ctx, storage.PubSubNode{Service: r.svc, Node: name, Config: cfg.encode()}, r.s.o.Limits.MaxNodes)
	switch {
	case errors.Is(err, storage.ErrExists):
		return errf(stanza.Conflict, "", "")
	case errors.Is(err, storage.ErrQuotaExceeded):
		// XEP-0060 defines no error for this limit; the schema's
		// max-nodes-exceeded says which limit was hit.
		return errf(stanza.ResourceConstraint, "max-nodes-exceeded",
			fmt.Sprintf("this service may have at most %d nodes", r.s.o.Limits.MaxNodes))
	}
	return err
}

// Config returns a node's configuration for its owner (§8.2).
func (s *Service) Config(ctx context.Context, svc string, from jid.JID, name string) (NodeConfig, error) {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return NodeConfig{}, err
	}
	cfg, err := r.node(name)
	if err != nil {
		return NodeConfig{}, err
	}
	if err := r.requireOwner(name, cfg); err != nil {
		return NodeConfig{}, err
	}
	return cfg, nil
}

// Configure applies a submitted configuration form to a node (§8.2.3).
// Lowering max_items discards the oldest items at once; turning
// persistence off discards them all.
func (s *Service) Configure(ctx context.Context, svc string, from jid.JID, name string, form *xml.Element) error {
	cfg, err := s.Config(ctx, svc, from, name)
	if err != nil {
		return err
	}
	f, cancelled, perr := parseForm(form, NSNodeConfig)
	if perr != nil {
		return perr
	}
	if cancelled {
		return nil
	}
	next := cfg
	if perr := f.apply(&next, s.fields, s.o.Limits); perr != nil {
		return perr
	}
	st := s.o.Store
	if err := st.SetConfig(ctx, svc, name, next.encode()); err != nil {
		return notFoundAsNoNode(err)
	}
	keep := next.ItemLimit(s.o.Limits)
	if !next.PersistItems {
		keep = 0
	}
	if keep < cfg.ItemLimit(s.o.Limits) || !next.PersistItems {
		if err := st.TrimItems(ctx, svc, name, keep); err != nil {
			return notFoundAsNoNode(err)
		}
	}
	if next.NotifyConfig {
		s.notify(ctx, &Event{Kind: EventConfig, Service: svc, Node: name, Config: next, Actor: from})
	}
	return nil
}

func notFoundAsNoNode(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errNoNode()
	}
	return err
}

// DefaultConfig returns the configuration new nodes get (§8.3).
func (s *Service) DefaultConfig() NodeConfig { return s.o.Defaults }

// DeleteNode deletes a node and everything in it (§8.4); the owner only.
func (s *Service) DeleteNode(ctx context.Context, svc string, from jid.JID, name string) error {
	cfg, err := s.Config(ctx, svc, from, name)
	if err != nil {
		return err
	}
	// Subscribers are collected before the node (and its subscriptions)
	// goes, so that they can be told.
	var ev *Event
	if cfg.NotifyDelete {
		ev = &Event{Kind: EventDelete, Service: svc, Node: name, Config: cfg, Actor: from}
		ev.Subscribers, err = s.subscribers(ctx, svc, name, cfg)
		if err != nil {
			return err
		}
	}
	if err := s.o.Store.DeleteNode(ctx, svc, name); err != nil {
		return notFoundAsNoNode(err)
	}
	if ev != nil {
		ev.subscribersKnown = true
		s.notify(ctx, ev)
	}
	return nil
}

// Purge deletes every item of a node (§8.5); the owner only.
func (s *Service) Purge(ctx context.Context, svc string, from jid.JID, name string) error {
	cfg, err := s.Config(ctx, svc, from, name)
	if err != nil {
		return err
	}
	if !cfg.PersistItems {
		return unsupported("persistent-items")
	}
	if err := s.o.Store.TrimItems(ctx, svc, name, 0); err != nil {
		return notFoundAsNoNode(err)
	}
	if cfg.NotifyRetract {
		s.notify(ctx, &Event{Kind: EventPurge, Service: svc, Node: name, Config: cfg, Actor: from})
	}
	return nil
}

// Publish publishes item to a node (§7.1), creating the node if it does not
// exist and the requester owns the service (auto-create, §7.1.4) with the
// default configuration changed by the publish-options form options (nil
// for none). An existing node must match options (§7.1.5). The item's ID is
// generated when empty; the published item is returned.
func (s *Service) Publish(ctx context.Context, svc string, from jid.JID, name string, item Item, options *xml.Element) (Item, error) {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return Item{}, err
	}
	var opts submitted
	if options != nil {
		f, cancelled, perr := parseForm(options, NSPublishOptions)
		if perr != nil {
			return Item{}, perr
		}
		if !cancelled {
			opts = f
		}
	}
	if len(item.ID) > MaxItemIDBytes {
		return Item{}, errf(stanza.NotAcceptable, "", "item id too long")
	}
	var payloadBytes []byte
	if item.Payload != nil {
		payloadBytes = item.Payload.Bytes()
		if limit := s.o.Limits.MaxItemBytes; limit > 0 && len(payloadBytes) > limit {
			return Item{}, errf(stanza.NotAcceptable, "payload-too-big", fmt.Sprintf("payloads are limited to %d bytes", limit))
		}
	}
	cfg, err := r.node(name)
	var pe *Error
	if errors.As(err, &pe) && pe.Condition == stanza.ItemNotFound {
		cfg, err = r.autoCreate(name, opts)
	} else if err == nil && opts.values != nil {
		if perr := opts.preconditionsMet(cfg, s.fields, s.o.Limits); perr != nil {
			return Item{}, perr
		}
	}
	if err != nil {
		return Item{}, err
	}
	if err := r.mayPublish(name, cfg); err != nil {
		return Item{}, err
	}
	// §7.1.3.6: what the node's event type requires of the request.
	switch {
	case item.Payload == nil && cfg.DeliverPayloads:
		return Item{}, errf(stanza.BadRequest, "payload-required", "")
	case cfg.Type != "" && item.Payload != nil && item.Payload.Space != cfg.Type:
		return Item{}, errf(stanza.BadRequest, "invalid-payload", "payloads of this node are in namespace "+cfg.Type)
	}
	if item.ID == "" {
		item.ID = newID()
	}
	item.Publisher = from.String()
	item.Published = time.Now().UTC()
	if cfg.PersistItems {
		err := s.o.Store.PutItem(ctx, svc, name, storage.PubSubItem{
			ID: item.ID, Publisher: item.Publisher, Payload: payloadBytes, Published: item.Published,
		}, cfg.ItemLimit(s.o.Limits))
		if err != nil {
			return Item{}, notFoundAsNoNode(err)
		}
	}
	if cfg.DeliverNotifications {
		s.notify(ctx, &Event{Kind: EventPublish, Service: svc, Node: name, Config: cfg, Items: []Item{item}, Actor: from})
	}
	return item, nil
}

// autoCreate creates a node a publish names (§7.1.4), with the default
// configuration changed by the publish-options (§7.1.5: "in all respects
// except those specified in the preconditions"). Someone else's publish
// that created it first wins; this one then checks its preconditions
// against that node like against any existing one.
func (r *request) autoCreate(name string, opts submitted) (NodeConfig, error) {
	owner, err := r.owner()
	if err != nil {
		return NodeConfig{}, err
	}
	if !owner {
		// Only the owner creates nodes, so nobody else can publish to one
		// that does not exist: §7.1.3.1, insufficient privileges.
		return NodeConfig{}, errForbidden()
	}
	cfg := r.s.o.Defaults
	if opts.values != nil {
		if perr := opts.apply(&cfg, r.s.fields, r.s.o.Limits); perr != nil {
			// An option the node could not be created with is a
			// precondition that cannot be met.
			return NodeConfig{}, errf(stanza.Conflict, "precondition-not-met", perr.Text)
		}
	}
	err = r.create(name, cfg)
	var pe *Error
	if errors.As(err, &pe) && pe.Condition == stanza.Conflict {
		cfg, err = r.node(name)
		if err == nil && opts.values != nil {
			if perr := opts.preconditionsMet(cfg, r.s.fields, r.s.o.Limits); perr != nil {
				return NodeConfig{}, perr
			}
		}
	}
	return cfg, err
}

// mayPublish applies the node's publish model to the requester.
func (r *request) mayPublish(name string, cfg NodeConfig) error {
	rel, err := r.relation()
	if err != nil {
		return err
	}
	if rel.Owner {
		return nil
	}
	a, err := r.access(name, cfg)
	if err != nil {
		return err
	}
	subscribed := false
	if cfg.PublishModel == publishModelSubscribers {
		subscribed, err = r.subscribed(name)
		if err != nil {
			return err
		}
	}
	if !a.mayPublish(r.from, rel, subscribed) {
		return errForbidden()
	}
	return nil
}

// subscribed reports whether the requester (full or bare JID) has an
// explicit subscription to the node.
func (r *request) subscribed(name string) (bool, error) {
	subs, err := r.s.o.Store.Subscriptions(r.ctx, r.svc, name)
	if err != nil {
		return false, notFoundAsNoNode(err)
	}
	for _, sub := range subs {
		if sub.State == stateSubscribed && (sub.JID == r.from.String() || sub.JID == r.from.Bare().String()) {
			return true, nil
		}
	}
	return false, nil
}

// newID generates an item ID (§7.1.2: the service MUST when the publisher
// gives none): random, so it can never collide with an earlier one.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Retract deletes an item (§7.2). notify overrides the node's
// pubsub#notify_retract when not nil (the request's 'notify' attribute).
func (s *Service) Retract(ctx context.Context, svc string, from jid.JID, name, id string, notify *bool) error {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return err
	}
	if id == "" {
		return errf(stanza.BadRequest, "item-required", "")
	}
	cfg, err := r.node(name)
	if err != nil {
		return err
	}
	if err := r.mayPublish(name, cfg); err != nil {
		return err
	}
	if !cfg.PersistItems {
		return unsupported("persistent-items")
	}
	if err := s.o.Store.DeleteItem(ctx, svc, name, id); err != nil {
		return notFoundAsNoNode(err)
	}
	send := cfg.NotifyRetract
	if notify != nil {
		send = *notify
	}
	if send {
		s.notify(ctx, &Event{Kind: EventRetract, Service: svc, Node: name, Config: cfg, Retracted: []string{id}, Actor: from})
	}
	return nil
}

// Items returns items of a node to a requester its access model admits
// (§6.5): those with the given IDs, else the max newest (max <= 0: all).
func (s *Service) Items(ctx context.Context, svc string, from jid.JID, name string, ids []string, max int) ([]Item, error) {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return nil, err
	}
	cfg, err := r.node(name)
	if err != nil {
		return nil, err
	}
	if err := r.mayRetrieve(name, cfg); err != nil {
		return nil, err
	}
	if !cfg.PersistItems {
		return nil, unsupported("persistent-items")
	}
	var stored []storage.PubSubItem
	if len(ids) > 0 {
		stored, err = s.o.Store.ItemsByID(ctx, svc, name, ids)
	} else {
		stored, err = s.o.Store.Items(ctx, svc, name, max)
	}
	if err != nil {
		return nil, notFoundAsNoNode(err)
	}
	return s.decodeItems(svc, name, stored), nil
}

func (r *request) mayRetrieve(name string, cfg NodeConfig) error {
	rel, err := r.relation()
	if err != nil {
		return err
	}
	if rel.Owner {
		return nil
	}
	a, err := r.access(name, cfg)
	if err != nil {
		return err
	}
	if perr := a.mayRetrieve(r.from, rel); perr != nil {
		return perr
	}
	return nil
}

// decodeItems parses stored payloads. One that does not parse (a damaged
// store) is returned without payload and logged, rather than failing the
// whole request.
func (s *Service) decodeItems(svc, name string, stored []storage.PubSubItem) []Item {
	out := make([]Item, 0, len(stored))
	for _, st := range stored {
		it := Item{ID: st.ID, Publisher: st.Publisher, Published: st.Published}
		if len(st.Payload) > 0 {
			el, err := xml.ParseElement(st.Payload, s.o.ParseLimits, stanza.NSClient)
			if err != nil {
				s.o.Log.Error("pubsub: stored payload does not parse", "service", svc, "node", name, "item", st.ID, "err", err)
			} else {
				it.Payload = el
			}
		}
		out = append(out, it)
	}
	return out
}

// Nodes lists the nodes of a service whose items the requester may
// retrieve (XEP-0060 §5.2; XEP-0163 §6.2 asks for exactly this filter).
func (s *Service) Nodes(ctx context.Context, svc string, from jid.JID) ([]Node, error) {
	r := s.newRequest(ctx, svc, from)
	nodes, err := s.o.Store.Nodes(ctx, svc)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		cfg, err := decodeConfig(n.Config, s.o.Defaults)
		if err != nil {
			return nil, err
		}
		err = r.mayRetrieve(n.Node, cfg)
		var pe *Error
		switch {
		case errors.As(err, &pe):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, Node{Name: n.Node, Config: cfg})
	}
	return out, nil
}

// AllNodes lists every node of a service with its configuration, for the
// embedding (sending last items), without access checks.
func (s *Service) AllNodes(ctx context.Context, svc string) ([]Node, error) {
	nodes, err := s.o.Store.Nodes(ctx, svc)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		cfg, err := decodeConfig(n.Config, s.o.Defaults)
		if err != nil {
			return nil, err
		}
		out = append(out, Node{Name: n.Node, Config: cfg})
	}
	return out, nil
}

// LastItem returns the newest item of a node, or nil if it has none (or
// keeps none), for the embedding, without access checks.
func (s *Service) LastItem(ctx context.Context, svc, name string) (*Item, error) {
	stored, err := s.o.Store.Items(ctx, svc, name, 1)
	if errors.Is(err, storage.ErrNotFound) || len(stored) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	it := s.decodeItems(svc, name, stored)[0]
	return &it, nil
}

func (s *Service) notify(ctx context.Context, ev *Event) {
	if s.o.Notify != nil {
		s.o.Notify(ctx, ev)
	}
}

// Node returns one node for a requester its access model admits (node
// discovery, XEP-0060 §5.3).
func (s *Service) Node(ctx context.Context, svc string, from jid.JID, name string) (Node, error) {
	r := s.newRequest(ctx, svc, from)
	if err := validNodeName(name); err != nil {
		return Node{}, err
	}
	cfg, err := r.node(name)
	if err != nil {
		return Node{}, err
	}
	if err := r.mayRetrieve(name, cfg); err != nil {
		return Node{}, err
	}
	return Node{Name: name, Config: cfg}, nil
}

// MetaData renders the node's metadata form (XEP-0060 §5.4, FORM_TYPE
// pubsub#meta-data) for a disco#info answer about the node.
func (n Node) MetaData(owner string) *xml.Element {
	x := xml.New(NSData, "x").SetAttr("type", resultForm)
	add := func(name, value string) {
		x.Append(xml.New(NSData, "field").SetAttr("var", name).Append(xml.New(NSData, "value").AppendText(value)))
	}
	x.Append(xml.New(NSData, "field").SetAttr("var", formTypeVar).SetAttr("type", hiddenType).
		Append(xml.New(NSData, "value").AppendText(NSMetaData)))
	add("pubsub#access_model", n.Config.AccessModel)
	add("pubsub#owner", owner)
	if n.Config.Title != "" {
		add("pubsub#title", n.Config.Title)
	}
	if n.Config.Type != "" {
		add("pubsub#type", n.Config.Type)
	}
	return x
}
