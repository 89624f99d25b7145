// Package caps implements XEP-0115 Entity Capabilities on the server side:
// it learns what the clients of the host's accounts, and the contacts who
// send them presence, support, from the <c/> in their presence. The first
// time the server sees a verification string it asks one entity that
// advertises it for its disco#info, checks the answer against the string
// (§5.4) and, if they match, remembers the features for every entity that
// advertises the same string; an answer that does not match is ignored and
// logged, and another entity is asked. Other modules ask what an entity
// supports (Caps.Supports) and hear when it becomes known or changes
// (Caps.Changes): the personal eventing module (XEP-0163) sends events
// only to entities that advertised "<node>+notify".
package caps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces.
const (
	NS          = "http://jabber.org/protocol/caps"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsData      = "jabber:x:data"
)

// Bounds on what the module remembers; remote entities choose how many
// full JIDs and verification strings they show us, so every map is capped.
const (
	// MaxVerified is the number of verified verification strings kept;
	// beyond it an arbitrary one is forgotten (and asked again if seen).
	MaxVerified = 10000
	// MaxEntities is the number of entities (local sessions and remote full
	// JIDs) whose capabilities are tracked; presence from further ones is
	// not tracked, and they are treated as advertising nothing.
	MaxEntities = 50000
	// MaxPending is the number of disco#info queries in flight.
	MaxPending = 256
	// QueryTimeout is how long an entity has to answer.
	QueryTimeout = 30 * time.Second
)

// Priority is the priority of the module's presence and IQ handlers: above
// the modules that act on what it learns (personal eventing observes
// presence at 50) and below filtering modules, which see presence first.
const Priority = 60

// Service is the key under which the module publishes itself.
var Service = module.NewServiceKey[*Caps]("caps")

// Of returns the caps module of h, or nil when it does not run.
func Of(h *module.Host) *Caps {
	c, _ := module.Lookup(h, Service)
	return c
}

// Info is what an entity supports: the features of its disco#info answer.
// It is immutable and shared by every entity with the same capabilities.
type Info struct {
	features map[string]struct{}
}

func newInfo(features []string) *Info {
	i := &Info{features: make(map[string]struct{}, len(features))}
	for _, f := range features {
		i.features[f] = struct{}{}
	}
	return i
}

// Has reports whether the entity advertised feature; a nil Info has none.
func (i *Info) Has(feature string) bool {
	if i == nil {
		return false
	}
	_, ok := i.features[feature]
	return ok
}

// Features returns the features, sorted.
func (i *Info) Features() []string {
	if i == nil {
		return nil
	}
	out := make([]string, 0, len(i.features))
	for f := range i.features {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Change reports that what the server knows of an entity's capabilities
// changed: its verification string was resolved, or it advertised another
// one. Old or New is nil when nothing was (or is) known.
type Change struct {
	Ctx      context.Context
	Entity   jid.JID
	Old, New *Info
	// At is when New became what Info returns for Entity: what was sent
	// to Entity from then on already went by New (a PEP notification, say),
	// which a handler catching up on what Old missed can tell by it.
	At time.Time
}

// EventChanged is the one event of Caps.Changes.
const EventChanged = "changed"

// entity is what one full JID advertises.
type entity struct {
	key  string // hash + " " + ver, or a per-entity key for a hash not verified
	hash string
	ver  string
	node string
	via  jid.JID // the local address the disco#info query is sent from
	info *Info   // nil until known
	// failed: this entity's own answer for key was refused; it is not
	// asked again until it advertises something else.
	failed bool
}

// query is an outstanding disco#info request.
type query struct {
	id    string
	key   string
	to    jid.JID
	timer *time.Timer
}

// Caps is the module of one host.
type Caps struct {
	h   *module.Host
	log *slog.Logger

	// Changes fires EventChanged, outside any lock of this module.
	Changes module.Hook[*Change]

	mu       sync.Mutex
	verified map[string]*Info
	entities map[jid.JID]*entity
	pending  map[string]*query // by IQ id
	byKey    map[string]*query // by key: one query per verification string
	full     bool              // entities at MaxEntities; logged once per episode
	stopped  bool
	offs     []func()
}

var _ module.Module = (*Caps)(nil)

// New builds the module for h and publishes it (Of).
func New(h *module.Host) (module.Module, error) {
	h.Moves(sharedInfo{})
	c := &Caps{
		h: h, log: h.Log,
		verified: make(map[string]*Info),
		entities: make(map[jid.JID]*entity),
		pending:  make(map[string]*query),
		byKey:    make(map[string]*query),
	}
	module.Provide(h, Service, c)
	return c, nil
}

// Name implements module.Module.
func (*Caps) Name() string { return "caps" }

// Start registers the hooks: presence from the host's own sessions
// (out/presence, before the presence module broadcasts it), presence that
// remote entities send to the host's accounts, and the answers to the
// module's queries.
func (c *Caps) Start(context.Context) error {
	c.offs = append(c.offs,
		c.h.Stanzas.On("out/presence", Priority, c.outbound),
		c.h.Stanzas.On("presence/bare", Priority, c.inbound),
		c.h.Stanzas.On("iq/host", Priority, c.result),
		c.h.Stanzas.On("iq/bare", Priority, c.result),
		c.h.Sessions.On(module.EventSessionUnbound, Priority, func(ev *module.SessionEvent) bool {
			c.forget(ev.Session.JID())
			return false
		}),
		c.Changes.On(EventChanged, Priority, c.share),
	)
	return nil
}

// Stop removes the hooks and abandons outstanding queries.
func (c *Caps) Stop(context.Context) error {
	for _, off := range c.offs {
		off()
	}
	c.offs = nil
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	for _, q := range c.pending {
		q.timer.Stop()
	}
	clear(c.pending)
	clear(c.byKey)
	return nil
}

// Info returns what entity (a full JID) is known to support, nil if
// nothing is known.
func (c *Caps) Info(entity jid.JID) *Info {
	c.mu.Lock()
	if e := c.entities[entity]; e != nil {
		info := e.info
		c.mu.Unlock()
		return info
	}
	c.mu.Unlock()
	// A session bound on another node of a cluster (cluster.go).
	return c.sharedOf(entity)
}

// Supports reports whether entity advertised feature.
func (c *Caps) Supports(entity jid.JID, feature string) bool {
	return c.Info(entity).Has(feature)
}

// outbound observes a local session's broadcast presence (no 'to').
func (c *Caps) outbound(ev *module.StanzaEvent) bool {
	if ev.Origin == nil || !ev.To.IsZero() {
		return false
	}
	switch ev.Stanza.Attr("type") {
	case "":
		c.observe(ev.Ctx, ev.Origin.JID(), ev.Stanza, c.h.JID())
	case "unavailable":
		c.forget(ev.Origin.JID())
	}
	return false
}

// inbound observes presence another entity sends to an account of the
// host. The host's own sessions are observed on the way out instead, so
// that directed presence cannot override what a session broadcasts.
func (c *Caps) inbound(ev *module.StanzaEvent) bool {
	from := ev.From
	if from.Resource() == "" || from.Domain() == c.h.Domain {
		return false
	}
	switch ev.Stanza.Attr("type") {
	case "":
		// The query goes out from the account the presence came to, as
		// XEP-0163 §1.2 shows: an entity may answer its contacts only.
		c.observe(ev.Ctx, from, ev.Stanza, ev.To.Bare())
	case "unavailable":
		c.forget(from)
	}
	return false
}

// observe records the capabilities in an available presence of entity.
// Presence without <c/> changes nothing: a client may omit it when its
// capabilities did not change (§8.4), and a legacy <c/> without 'hash'
// (§6, not supported) counts as advertising nothing.
func (c *Caps) observe(ctx context.Context, from jid.JID, pres *xml.Element, via jid.JID) {
	el := pres.Child(NS, "c")
	if el == nil {
		return
	}
	hashName, ver, node := el.Attr("hash"), el.Attr("ver"), el.Attr("node")
	key := ""
	if hashName != "" && ver != "" {
		key = hashName + " " + ver
		if newHash(hashName) == nil {
			// §5.4 point 2: not verifiable, so never shared.
			key = "entity " + from.String() + " " + key
		}
	}
	c.mu.Lock()
	e := c.entities[from]
	if e != nil && e.key == key {
		c.mu.Unlock()
		return
	}
	if e == nil {
		if len(c.entities) >= MaxEntities {
			if !c.full {
				c.full = true
				c.log.Warn("caps: tracking the maximum number of entities; capabilities of further ones are ignored", "max", MaxEntities)
			}
			c.mu.Unlock()
			return
		}
		e = &entity{}
		c.entities[from] = e
	}
	old := e.info
	*e = entity{key: key, hash: hashName, ver: ver, node: node, via: via, info: c.verified[key]}
	var send *xml.Element
	if key != "" && e.info == nil {
		send = c.ask(from, e)
	}
	next := e.info
	at := time.Now()
	c.mu.Unlock()
	if send != nil {
		c.h.Router.Route(ctx, send)
	}
	if old != next {
		c.Changes.Fire(EventChanged, &Change{Ctx: ctx, Entity: from, Old: old, New: next, At: at})
	}
}

// ask starts a disco#info query to entity about e's verification string,
// unless one for the same string is outstanding or too many are. It
// returns the IQ to send once the lock is released. Called with c.mu held.
func (c *Caps) ask(to jid.JID, e *entity) *xml.Element {
	if c.stopped || c.byKey[e.key] != nil || len(c.pending) >= MaxPending {
		return nil
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	q := &query{id: "caps-" + hex.EncodeToString(b[:]), key: e.key, to: to}
	q.timer = time.AfterFunc(QueryTimeout, func() { c.expire(q.id) })
	c.pending[q.id] = q
	c.byKey[q.key] = q
	// §6.2: the query names the node#ver the entity advertised.
	return xml.New("", "iq").SetAttr("type", stanza.TypeGet).SetAttr("id", q.id).
		SetAttr("from", e.via.String()).SetAttr("to", to.String()).
		Append(xml.New(nsDiscoInfo, "query").SetAttr("node", e.node+"#"+e.ver))
}

// forget drops what is known of an entity that went away.
func (c *Caps) forget(entity jid.JID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entities) < MaxEntities {
		c.full = false
	}
	delete(c.entities, entity)
}

// result consumes the answer to one of the module's queries.
func (c *Caps) result(ev *module.StanzaEvent) bool {
	typ := ev.Stanza.Attr("type")
	if typ != stanza.TypeResult && typ != stanza.TypeError {
		return false
	}
	id := ev.Stanza.Attr("id")
	c.mu.Lock()
	q := c.pending[id]
	if q == nil || q.to != ev.From {
		c.mu.Unlock()
		return false
	}
	c.finish(q)
	var (
		changes []*Change
		send    *xml.Element
	)
	info, why, bogus := c.check(q, ev.Stanza)
	if info != nil {
		changes = c.resolved(ev.Ctx, q, info)
	} else {
		send = c.failed(q, why, bogus)
	}
	c.mu.Unlock()
	if send != nil {
		c.h.Router.Route(ev.Ctx, send)
	}
	for _, ch := range changes {
		c.Changes.Fire(EventChanged, ch)
	}
	return true
}

// finish removes q from the outstanding queries. Called with c.mu held.
func (c *Caps) finish(q *query) {
	q.timer.Stop()
	delete(c.pending, q.id)
	if c.byKey[q.key] == q {
		delete(c.byKey, q.key)
	}
}

// check validates an answer (§5.4 point 3) and returns what it says the
// entity supports, or nil, why not, and whether the answer itself is bogus
// (ill-formed, or not matching the verification string: worth a warning,
// as a client lying about its capabilities may be an attack). Called with
// c.mu held.
func (c *Caps) check(q *query, iq *xml.Element) (info *Info, why string, bogus bool) {
	if iq.Attr("type") != stanza.TypeResult {
		return nil, "answered with an error", false
	}
	res := iq.Child(nsDiscoInfo, "query")
	if res == nil {
		return nil, "answer without disco#info", true
	}
	d, ok, why := parseInfo(res)
	if !ok {
		return nil, "ill-formed answer: " + why, true
	}
	e := c.entities[q.to]
	if e == nil || e.key != q.key {
		// It advertises something else by now; the answer may not
		// describe what it advertised when asked.
		return nil, "the entity's capabilities changed meanwhile", false
	}
	if newHash(e.hash) != nil && !d.verify(e.hash, e.ver) {
		return nil, "the verification string does not match the features", true
	}
	return newInfo(d.features), "", false
}

// resolved records a verified answer and returns the changes for every
// entity that advertises the same string (for an unverified hash: only the
// one asked). Called with c.mu held.
func (c *Caps) resolved(ctx context.Context, q *query, info *Info) []*Change {
	e := c.entities[q.to]
	if e != nil && newHash(e.hash) != nil {
		if len(c.verified) >= MaxVerified {
			for k := range c.verified {
				delete(c.verified, k)
				break
			}
		}
		c.verified[q.key] = info
	}
	var out []*Change
	at := time.Now()
	for j, x := range c.entities {
		if x.key == q.key && x.info != info {
			out = append(out, &Change{Ctx: ctx, Entity: j, Old: x.info, New: info, At: at})
			x.info = info
		}
	}
	return out
}

// failed handles a refused or missing answer: the entity that gave it is
// not asked again for this string, and another entity advertising it is
// asked instead (§5.4 point 3.9). Called with c.mu held.
func (c *Caps) failed(q *query, why string, bogus bool) *xml.Element {
	if e := c.entities[q.to]; e != nil && e.key == q.key {
		e.failed = true
		if bogus {
			c.log.Warn("caps: ignoring capabilities that fail verification", "entity", q.to.String(), "hash", e.hash, "ver", e.ver, "reason", why)
		} else {
			c.log.Debug("caps: no capabilities", "entity", q.to.String(), "ver", e.ver, "reason", why)
		}
	}
	for j, x := range c.entities {
		if x.key == q.key && !x.failed && x.info == nil && j != q.to {
			return c.ask(j, x)
		}
	}
	return nil
}

// expire gives up on a query that got no answer in time.
func (c *Caps) expire(id string) {
	c.mu.Lock()
	q := c.pending[id]
	if q == nil {
		c.mu.Unlock()
		return
	}
	c.finish(q)
	send := c.failed(q, "no answer", false)
	c.mu.Unlock()
	if send != nil {
		c.h.Router.Route(context.Background(), send)
	}
}
