// Package router decides where every stanza goes. It owns the registry of
// bound client sessions and implements the delivery rules of RFC 6121 §8.5
// exactly once; sessions and modules never deliver to each other directly.
//
// Lock order: Router.mu protects only the session registry and is never held
// while calling into a session, a hook or storage, so it cannot take part in
// a lock cycle.
package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Remote carries stanzas to domains this server does not serve (S2S). Until
// federation is configured the router bounces them with
// remote-server-not-found.
type Remote interface {
	Send(ctx context.Context, el *xml.Element, from, to jid.JID) error
}

// Component is an entity served at its own domain (XEP-0114 external
// components and internal services such as MUC): it receives every stanza
// addressed to that domain or to JIDs under it. It is module.Component, so
// modules can register services through module.Host.AddComponent.
type Component = module.Component

// ErrResourceConstraint is returned by Bind when the account already has the
// maximum number of sessions.
var ErrResourceConstraint = errors.New("router: too many sessions for this account")

// Router routes stanzas between local sessions, hosts, components and remote
// domains.
type Router struct {
	log         *slog.Logger
	metrics     *metrics.Metrics
	maxSessions int

	hosts map[string]*module.Host // fixed after construction

	mu         sync.RWMutex
	sessions   map[jid.JID]resources // bare JID → its sessions on this node
	components map[string]Component
	remote     Remote
	// bus reaches the other nodes of a cluster; LocalBus when there are
	// none. Set before the server starts, then fixed.
	bus Bus
}

// New returns a router for the given hosts. maxSessions bounds the sessions
// of one account (0: unlimited).
func New(log *slog.Logger, m *metrics.Metrics, maxSessions int) *Router {
	return &Router{
		log:         log,
		metrics:     m,
		maxSessions: maxSessions,
		hosts:       make(map[string]*module.Host),
		sessions:    make(map[jid.JID]resources),
		components:  make(map[string]Component),
		bus:         LocalBus{},
	}
}

// SetBus connects the router to a cluster. Call before the server starts.
func (r *Router) SetBus(b Bus) { r.bus = b }

var _ module.Router = (*Router)(nil)

// AddHost registers a virtual host and installs the core delivery handlers
// on its hooks. Call before the server starts.
func (r *Router) AddHost(h *module.Host) {
	r.hosts[h.Domain] = h
	h.Router = r
	for _, kind := range []string{"message", "presence", "iq"} {
		for _, target := range []string{"host", "bare", "full"} {
			kind, target := kind, target
			h.Stanzas.On(kind+"/"+target, module.PriorityDeliver, func(ev *module.StanzaEvent) bool {
				r.deliverDefault(ev, kind, target)
				return true
			})
		}
	}
}

// Host returns the virtual host for domain, or nil.
func (r *Router) Host(domain string) *module.Host { return r.hosts[domain] }

// Hosts returns all virtual hosts.
func (r *Router) Hosts() []*module.Host {
	out := make([]*module.Host, 0, len(r.hosts))
	for _, h := range r.hosts {
		out = append(out, h)
	}
	return out
}

// SetRemote installs the S2S transport.
func (r *Router) SetRemote(rm Remote) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remote = rm
}

// AddComponent routes domain to c, replacing an earlier one (a component
// that reconnects replaces its old connection). It returns the replaced one.
func (r *Router) AddComponent(domain string, c Component) Component {
	r.mu.Lock()
	old := r.components[domain]
	r.components[domain] = c
	r.mu.Unlock()
	r.bus.ComponentChanged(domain)
	return old
}

// RemoveComponent unroutes domain if it is still served by c.
func (r *Router) RemoveComponent(domain string, c Component) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.components[domain] == c {
		delete(r.components, domain)
	}
}

// DeliverComponent hands a stanza that another node forwarded (Bus.Forward)
// to the component serving its domain here, without forwarding it again.
func (r *Router) DeliverComponent(ctx context.Context, el *xml.Element, from, to jid.JID) {
	r.mu.RLock()
	comp := r.components[to.Domain()]
	r.mu.RUnlock()
	if comp == nil {
		r.bounce(ctx, el, stanza.ServiceUnavailable, "")
		return
	}
	comp.Deliver(ctx, el, from, to)
}

// IsLocal reports whether domain is a host or component of this server.
func (r *Router) IsLocal(domain string) bool {
	if r.hosts[domain] != nil {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.components[domain] != nil
}

// JIDReceiver is implemented by sessions that learn their full JID from
// Bind: it is called under the registry lock, before any other goroutine
// can find the session, so the session never appears without its JID.
type JIDReceiver interface {
	SetJID(full jid.JID)
}

// Bind registers s under bare with resource res (a random one when res is
// empty). If a session with that resource exists, here or on another node
// of the cluster, it is returned as replaced; the caller closes it with
// <conflict/> (RFC 6120 §7.7.2.2). The cluster's registry is asked
// without the router's lock held: the session becomes visible here only
// once the cluster has granted the full JID.
func (r *Router) Bind(s module.Session, bare jid.JID, res string) (full jid.JID, replaced module.Session, err error) {
	for tries := 0; ; tries++ {
		generated := res == ""
		if generated {
			res = randomResource()
		}
		full, err = bare.WithResource(res)
		if err != nil {
			return jid.JID{}, nil, err
		}
		r.mu.RLock()
		m := r.sessions[bare]
		old := m.get(full.Resource())
		n := len(m)
		r.mu.RUnlock()
		if old != nil && generated && tries < 3 {
			res = ""
			continue
		}
		if old == nil && r.maxSessions > 0 && n >= r.maxSessions {
			return jid.JID{}, nil, ErrResourceConstraint
		}
		ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
		elsewhere, err := r.bus.Claim(ctx, full, s, r.maxSessions)
		cancel()
		if err != nil {
			return jid.JID{}, nil, err
		}
		r.mu.Lock()
		if jr, ok := s.(JIDReceiver); ok {
			jr.SetJID(full)
		}
		m = r.sessions[bare]
		if i := m.find(full.Resource()); i >= 0 {
			old, m[i].s = m[i].s, s
		} else {
			old = nil
			r.sessions[bare] = append(m, bound{full.Resource(), s})
		}
		r.mu.Unlock()
		switch {
		case old == nil:
			old = elsewhere
		case elsewhere != nil:
			// Both a local and a remote holder: the registry had not
			// yet heard of the local one. Both go.
			go elsewhere.Close("conflict", "replaced by a new session with the same resource")
		}
		return full, old, nil
	}
}

// claimTimeout bounds a bind's wait for the cluster's registry.
const claimTimeout = 10 * time.Second

// Unbind removes s if it is still the session bound to full.
func (r *Router) Unbind(s module.Session, full jid.JID) {
	r.mu.Lock()
	bare := full.Bare()
	m := r.sessions[bare]
	i := m.find(full.Resource())
	mine := i >= 0 && m[i].s == s
	switch {
	case mine && len(m) == 1:
		delete(r.sessions, bare)
	case mine:
		r.sessions[bare] = slices.Delete(m, i, i+1)
	}
	r.mu.Unlock()
	if mine {
		r.bus.Release(full, s)
	}
}

// SessionChanged tells the cluster that a local session's routing state
// (presence, priority, roster interest, a module.SharedKey value)
// changed; key is the module.SharedKey set, or nil. Sessions call it
// after the change, holding no lock.
func (r *Router) SessionChanged(s module.Session, key any) {
	if r.LocalSession(s.JID()) != s {
		return
	}
	sk, _ := key.(module.SharedKey)
	r.bus.Changed(s, sk)
}

// Sessions returns the bound sessions of a bare JID, on this node and on
// the other nodes of the cluster.
func (r *Router) Sessions(bare jid.JID) []module.Session {
	out := r.LocalSessions(bare)
	return append(out, r.bus.Peers(bare)...)
}

// LocalSessions returns the sessions of a bare JID bound on this node.
func (r *Router) LocalSessions(bare jid.JID) []module.Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.sessions[bare]
	out := make([]module.Session, 0, len(m))
	for _, b := range m {
		out = append(out, b.s)
	}
	return out
}

// Session returns the session bound to a full JID, on this node or
// another, or nil.
func (r *Router) Session(full jid.JID) module.Session {
	if s := r.LocalSession(full); s != nil {
		return s
	}
	return r.bus.Peer(full)
}

// LocalSession returns the session bound to a full JID on this node, or nil.
func (r *Router) LocalSession(full jid.JID) module.Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sessions[full.Bare()].get(full.Resource())
}

// AllSessions returns every session bound on this node (for shutdown and
// admin tools).
func (r *Router) AllSessions() []module.Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []module.Session
	for _, m := range r.sessions {
		for _, b := range m {
			out = append(out, b.s)
		}
	}
	return out
}

// resources are an account's sessions on this node, in the order they
// bound. A slice, not a map: most accounts have one to three, found faster
// by a scan, and a map of one costs about 300 bytes more per idle session.
// Its length is bounded by limits.max_sessions_per_account.
type resources []bound

type bound struct {
	res string
	s   module.Session
}

// find returns the index of resource res, or -1.
func (rs resources) find(res string) int {
	return slices.IndexFunc(rs, func(b bound) bool { return b.res == res })
}

// get returns the session bound to resource res, or nil.
func (rs resources) get(res string) module.Session {
	if i := rs.find(res); i >= 0 {
		return rs[i].s
	}
	return nil
}

func randomResource() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "parley-" + hex.EncodeToString(b[:])
}

// FromSession processes a stanza a local client sent. The session layer has
// already stamped "from" with the full JID and parsed "to". Modules see it
// first as out/<kind> on the sender's host (outbound presence and roster
// processing), then it is routed.
func (r *Router) FromSession(ctx context.Context, origin module.Session, el *xml.Element, to jid.JID) {
	from := origin.JID()
	h := r.hosts[from.Domain()]
	// Both events this stanza can raise (out/<kind> here, the delivery
	// event in route) in one allocation: this is every message's path.
	evs := new([2]module.StanzaEvent)
	ev := &evs[0]
	*ev = module.StanzaEvent{Ctx: ctx, Host: h, Stanza: el, From: from, To: to, Origin: origin}
	if h.Stanzas.Fire(outEvent(el.Local), ev) {
		return
	}
	if to.IsZero() {
		// RFC 6120 §10.3: no "to" means the account's bare JID.
		to = from.Bare()
		ev.To = to
	}
	r.route(ctx, ev.Stanza, from, to, origin, &evs[1])
}

// outEvent is "out/" + kind without building the string for the three
// stanza kinds.
func outEvent(kind string) string {
	switch kind {
	case "message":
		return "out/message"
	case "presence":
		return "out/presence"
	case "iq":
		return "out/iq"
	}
	return "out/" + kind
}

// deliveryEvent is kind + "/" + target (full, bare or host) without
// building the string for the three stanza kinds.
func deliveryEvent(kind, target string) string {
	switch kind {
	case "message":
		switch target {
		case "full":
			return "message/full"
		case "bare":
			return "message/bare"
		}
		return "message/host"
	case "presence":
		switch target {
		case "full":
			return "presence/full"
		case "bare":
			return "presence/bare"
		}
		return "presence/host"
	case "iq":
		switch target {
		case "full":
			return "iq/full"
		case "bare":
			return "iq/bare"
		}
		return "iq/host"
	}
	return kind + "/" + target
}

// Route delivers a stanza whose "from" and "to" are set (module.Router).
func (r *Router) Route(ctx context.Context, el *xml.Element) {
	from, err := jid.Parse(el.Attr("from"))
	if err != nil {
		r.log.Debug("route: dropping stanza with bad from", "from", el.Attr("from"))
		return
	}
	to, err := jid.Parse(el.Attr("to"))
	if err != nil {
		r.bounce(ctx, el, stanza.JIDMalformed, "")
		return
	}
	r.route(ctx, el, from, to, nil, nil)
}

// route delivers el. ev, when not nil, is storage for the delivery event
// (FromSession allocates it with its own); nil allocates one.
func (r *Router) route(ctx context.Context, el *xml.Element, from, to jid.JID, origin module.Session, ev *module.StanzaEvent) {
	el, handled := r.egress(ctx, el, from, to, origin)
	if handled {
		return
	}
	if h := r.hosts[to.Domain()]; h != nil {
		target := "full"
		switch {
		case to.Local() == "":
			target = "host"
		case to.Resource() == "":
			target = "bare"
		}
		if ev == nil {
			ev = new(module.StanzaEvent)
		}
		*ev = module.StanzaEvent{Ctx: ctx, Host: h, Stanza: el, From: from, To: to, Origin: origin}
		h.Stanzas.Fire(deliveryEvent(el.Local, target), ev)
		return
	}
	r.mu.RLock()
	comp := r.components[to.Domain()]
	remote := r.remote
	r.mu.RUnlock()
	switch {
	case comp != nil:
		if !r.bus.Forward(ctx, el, from, to) {
			comp.Deliver(ctx, el, from, to)
		}
	case remote != nil:
		if err := remote.Send(ctx, el, from, to); err != nil {
			r.bounce(ctx, el, stanza.RemoteServerNotFound, "")
		}
	default:
		r.bounce(ctx, el, stanza.RemoteServerNotFound, "Federation is not enabled on this server")
	}
}

// egress fires egress/<kind> on the host of the local account that sends el,
// whatever produced it: a client's stanza (after out/<kind>), or one a
// module routes on the account's behalf (presence broadcasts and probes,
// subscription answers, error replies). Policies that govern everything an
// account sends, such as XEP-0191 blocking, therefore act in one place
// instead of in every module that routes for users. It returns the stanza
// to route (a handler may replace ev.Stanza) and whether a handler took it.
// Stanzas from the server itself, components and remote domains have no
// local account and skip the event.
func (r *Router) egress(ctx context.Context, el *xml.Element, from, to jid.JID, origin module.Session) (*xml.Element, bool) {
	if from.Local() == "" {
		return el, false
	}
	h := r.hosts[from.Domain()]
	if h == nil {
		return el, false
	}
	var name string
	switch el.Local {
	case "message":
		name = module.EventEgressMessage
	case "presence":
		name = module.EventEgressPresence
	case "iq":
		name = module.EventEgressIQ
	default:
		return el, false
	}
	// Has first: most hosts run no egress filter on most stanzas' way, and
	// the event would otherwise cost an allocation per routed stanza.
	if !h.Stanzas.Has(name) {
		return el, false
	}
	ev := &module.StanzaEvent{Ctx: ctx, Host: h, Stanza: el, From: from, To: to, Origin: origin}
	if h.Stanzas.Fire(name, ev) {
		return nil, true
	}
	return ev.Stanza, false
}

// bounce returns an error reply to the sender of el; replies to errors are
// never generated, so two servers cannot ping-pong errors forever.
func (r *Router) bounce(ctx context.Context, el *xml.Element, c stanza.Condition, text string) {
	reply := stanza.ErrorReply(el, c, text)
	if reply == nil || reply.Attr("to") == "" {
		return
	}
	if reply.Attr("from") == "" {
		// The original had no 'to': it was addressed to the sender's own
		// account (RFC 6120 §10.3), which is who answers. Without a
		// 'from' Route would drop the error and the client would wait.
		if to, err := jid.Parse(reply.Attr("to")); err == nil {
			reply = reply.WithAttr("from", to.Bare().String())
		}
	}
	r.Route(ctx, reply)
}
