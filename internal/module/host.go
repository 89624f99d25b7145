package module

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"parley/internal/access"
	"parley/internal/config"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// StanzaEvent is one stanza travelling through a host's hooks.
type StanzaEvent struct {
	Ctx    context.Context
	Host   *Host
	Stanza *xml.Element
	// From is the sender, already stamped and validated by the session
	// layer; To is the parsed "to" (zero when absent).
	From, To jid.JID
	// Origin is the local client session the stanza came from, if any.
	Origin Session

	// targets remembers the answer of MessageTargets for this event.
	targets targetsMemo
}

type targetsMemo struct {
	bare jid.JID
	typ  string
	ok   bool
	list []Session
}

// MessageTargets is r.MessageTargets(bare, typ), looked up once per event:
// the handlers of one message (carbons, offline storage, push, the core's
// delivery) each need the resources a bare-JID message goes to, and every
// lookup takes the router's lock and allocates. Asked again for the same
// bare JID and type, it gives the same answer, so they all agree on the
// resources the core then delivers to. The slice is shared: callers must
// not change it. A handler that must see sessions bound since the
// stanza's handling began (offline storage, after storing) asks r itself.
func (ev *StanzaEvent) MessageTargets(r Router, bare jid.JID, typ string) []Session {
	t := &ev.targets
	if !t.ok || t.bare != bare || t.typ != typ {
		*t = targetsMemo{bare: bare, typ: typ, ok: true, list: r.MessageTargets(bare, typ)}
	}
	return t.list
}

// Reply queues a stanza back to the sender of the event (its origin session
// when it came from one, the router otherwise).
func (ev *StanzaEvent) Reply(el *xml.Element) {
	if el == nil {
		return
	}
	if ev.Origin != nil && el.Attr("to") == ev.Origin.JID().String() {
		ev.Origin.Send(el)
		return
	}
	ev.Host.Router.Route(ev.Ctx, el)
}

// OutboundEvent is a stanza on its way to one client session, after all
// routing decisions: the last point where a module can hold it back (client
// state indication) or take note of it. A handler that returns true has
// taken the stanza; it must either drop it deliberately or later hand it to
// Session.Deliver.
type OutboundEvent struct {
	Host    *Host
	Session Session
	Stanza  *xml.Element
}

// EventOutbound is the one event of Host.Outbound.
const EventOutbound = "stanza"

// SessionEvent reports a client session's lifecycle.
type SessionEvent struct {
	Ctx     context.Context
	Host    *Host
	Session Session
	// Reason is set on "unbound": why the session ended ("" when the client
	// closed its stream cleanly).
	Reason string
	// Unacked is set on "detached": the stanzas sent to the client that
	// it has not acknowledged (XEP-0198), oldest first. Some were written
	// to a connection already dead, so the client may never have seen
	// them. On "held", the stanzas queued since. Read only.
	Unacked []*xml.Element
	// Moved is set on "unbound" when the session did not end but moved:
	// its client resumed it on another node of the cluster (XEP-0198),
	// which carries on with its presence, its moving values (MovingKey)
	// and its unacknowledged stanzas. Modules forget their local state
	// and tell nobody: for everyone else the session is still there. It
	// is set on "bound" and "resumed" of the session on its new node too:
	// no login, and no initial presence.
	Moved bool
}

// AccountEvent reports a change of an account ("created", "deleted",
// "password-changed").
type AccountEvent struct {
	Ctx  context.Context
	Host *Host
	JID  jid.JID // bare
}

// Egress event names (Host.Stanzas), fired on the sender's host for every
// stanza from one of its accounts as the router is about to route it,
// whatever produced it: a client (after out/<kind>, with Origin set) or a
// module acting for the account (presence broadcasts, probes, error replies;
// Origin nil). A handler that returns true stops the stanza; one that
// replaces ev.Stanza changes what is routed. Filters that must see all of
// an account's traffic, not only what its clients send, hook these.
const (
	EventEgressMessage  = "egress/message"
	EventEgressPresence = "egress/presence"
	EventEgressIQ       = "egress/iq"
)

// Session event names.
const (
	EventSessionBound   = "bound"   // resource bound, before any stanza
	EventSessionUnbound = "unbound" // session ended (any reason)
	// EventSessionAvailable fires when a session sends its initial available
	// presence (RFC 6121 §4.2): offline messages are delivered then.
	EventSessionAvailable = "available"
	// EventSessionResumed is for a session that continues on a new
	// connection after XEP-0198 resumption, once the unacknowledged
	// stanzas were sent again and before the client's next stanza is
	// read. Stream state does not survive resumption (XEP-0352 1.0: the
	// client state is not restored), so the csi module goes back to
	// active on it. c2s fires it from conn.resume.
	EventSessionResumed = "resumed"
	// EventSessionDetached is for a session whose connection was lost
	// while XEP-0198 resumption keeps it waiting (still bound and
	// available, stanzas only queued): its client is not reading, so the
	// push module notifies the account's app servers of messages queued
	// to it until "resumed" or "unbound" follows. c2s fires it from
	// session.connLost.
	EventSessionDetached = "detached"
	// EventSessionHeld is for stanzas queued to a detached session after
	// its "detached" (Unacked holds them): kept for the client, which is
	// not reading. Every stanza a detached session keeps is in exactly
	// one "detached" or "held" event, so push notifies each once. c2s
	// fires it from session.Deliver and from a handover that left the
	// session where it was. Like "detached", it fires outside the
	// session's lock, so a handler may see a "held" before the
	// "detached" it follows, or after a "resumed" that came meanwhile.
	EventSessionHeld = "held"
	// EventSessionMoving is for a stream-managed session about to be
	// handed over to another node of the cluster where its client resumed
	// it (c2s handover.go): its queue is copied right after, so a module
	// that holds stanzas back for the session (csi) delivers them now.
	// "unbound" with Moved follows if the session moved; if it stays, it
	// waits detached as before.
	EventSessionMoving = "moving"
)

// Account event names.
const (
	EventAccountCreated = "created"
	EventAccountDeleted = "deleted"
)

// SubscriptionEvent reports a change of the presence subscription state
// between a local account and a contact (RFC 6121 §3), fired after the
// change is stored and no lock is held, so handlers may route. Before and
// After are the subscription of User's roster item for Contact
// (storage.SubNone, SubTo, SubFrom, SubBoth): a change from neither "from"
// nor "both" to one of them means the contact may now see the user's
// presence (an approval, RFC 6121 §3.1.5, or an automatic one after
// pre-approval, §3.4).
type SubscriptionEvent struct {
	Ctx           context.Context
	Host          *Host
	User, Contact jid.JID // bare
	Before, After string
}

// EventSubscriptionChanged is the one event of Host.Subscriptions.
const EventSubscriptionChanged = "changed"

// Identity is a XEP-0030 identity.
type Identity struct{ Category, Type, Name string }

// DiscoItem is a XEP-0030 item: of the host (components, MUC services), or
// of an account (its pubsub nodes, with Node set).
type DiscoItem struct{ JID, Node, Name string }

// Host is one virtual host as its modules see it. The core creates it; the
// fields are set before modules are constructed and not changed afterwards.
type Host struct {
	Domain  string
	Config  *config.Config
	HostCfg *config.Host
	Store   storage.Store
	Router  Router
	Log     *slog.Logger
	// Started is when the server started (XEP-0012 uptime).
	Started time.Time
	// AccountSource, when set, is where the host's accounts live instead
	// of Store.Accounts (accounts = "directory": internal/directory). Modules
	// that need more than existence (profiles, groups) type-assert it to the
	// interface they need.
	AccountSource AccountSource

	// AdminCheck extends IsAdmin beyond the static admins list (set by the
	// server from admin_groups; nil: the static list only).
	AdminCheck AdminCheck
	// Access is the host's service access control (seed 000 SACL): modules
	// ask Access.Check before serving logins, rooms, the proxy, uploads and
	// federation. The server sets it; nil (tests that build a bare host)
	// admits everyone.
	Access *access.Control
	admins adminCache

	Stanzas  Hook[*StanzaEvent]
	Sessions Hook[*SessionEvent]
	Accounts Hook[*AccountEvent]
	// Subscriptions fires EventSubscriptionChanged for every stored
	// subscription change: the presence module's (subscription stanzas)
	// and the roster module's (an item removed, RFC 6121 §2.5).
	Subscriptions Hook[*SubscriptionEvent]
	// Outbound fires EventOutbound for every stanza sent to a client
	// session of this host (Session.Send), in the sending goroutine.
	// That goroutine may hold a roster owner lock (roster.Store sends
	// roster pushes and roster results under it, to keep them in version
	// order), so handlers must not route or wait for other sessions, and
	// a handler that holds stanzas back must not let a roster result
	// overtake a push it holds.
	Outbound Hook[*OutboundEvent]

	mu             sync.RWMutex
	iq             map[string]IQHandler // "get/host/ns" → handler
	features       map[string]bool      // host disco#info features
	acctFeatures   map[string]bool      // account (bare JID) disco#info features
	identities     []Identity
	acctIdentities []Identity
	acctNodes      []AccountNodes
	hostNodes      []HostNodes
	items          []DiscoItem
	streamFeatures []func(Session) *xml.Element

	streamElements map[string]StreamElementHandler // "ns local" → handler
	flushes        []func(context.Context) error

	services        map[any]any // ServiceKey → value (service.go)
	moving          movingKeys  // MovingKeys by name (moving.go)
	preAuthIQ       map[string]PreAuthIQHandler
	preAuthFeatures []func(*PreAuthConn) *xml.Element
}

// NewHost returns a host with empty registries.
func NewHost(domain string) *Host {
	return &Host{
		Domain:       domain,
		iq:           make(map[string]IQHandler),
		features:     make(map[string]bool),
		acctFeatures: make(map[string]bool),
	}
}

// JID returns the host's domain JID.
func (h *Host) JID() jid.JID {
	j, _ := jid.New("", h.Domain, "")
	return j
}

// Target says which addresses an IQ handler serves.
type Target string

// IQ targets.
const (
	// TargetHost: the IQ is addressed to the host itself.
	TargetHost Target = "host"
	// TargetSelf: a user's IQ addressed to their own bare JID or with no
	// "to" (roster, private storage).
	TargetSelf Target = "self"
	// TargetBare: addressed to a local account's bare JID by anyone,
	// including the account itself (vCard, last activity).
	TargetBare Target = "bare"
	// TargetUnknown: addressed to a bare JID of the host that names no
	// account. The core answers those service-unavailable (RFC 6121
	// §8.5.1), unless a handler is registered here: for a protocol whose
	// answer must be the same whether or not the account exists, so that
	// it cannot be used to harvest accounts (XEP-0030 §8: disco#items is an
	// empty result either way). Registering here announces nothing.
	TargetUnknown Target = "unknown"
)

// IQHandler answers one IQ get or set. It returns the complete reply stanza
// (a result from stanza.IQResult or an error from stanza.ErrorReply), or nil
// when it has replied by itself (asynchronously or through the router).
type IQHandler func(ev *StanzaEvent, payload *xml.Element) *xml.Element

func iqKey(typ string, t Target, ns string) string { return typ + "/" + string(t) + "/" + ns }

// RegisterIQ registers the handler for IQs of type typ ("get" or "set") whose
// payload is in namespace ns, addressed to target t. Registering a namespace
// also announces it in disco#info (on the host for TargetHost, on accounts
// for TargetBare; nothing for TargetSelf and TargetUnknown): features come
// from what modules do, never from a list.
func (h *Host) RegisterIQ(typ string, t Target, ns string, fn IQHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.iq[iqKey(typ, t, ns)] = fn
	switch t {
	case TargetHost:
		h.features[ns] = true
	case TargetBare:
		h.acctFeatures[ns] = true
	}
}

// RegisterRefusingIQ registers fn for (typ, t, ns) like RegisterIQ but
// announces nothing in disco#info. It is for handlers that refuse every
// request and exist only to say why (registration on a host whose accounts
// a directory owns): disco must not claim a protocol the host refuses, yet
// the client deserves a better answer than the core's bare
// service-unavailable for a namespace nobody handles.
func (h *Host) RegisterRefusingIQ(typ string, t Target, ns string, fn IQHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.iq[iqKey(typ, t, ns)] = fn
}

// IQ returns the handler for (typ, t, ns), falling back from self to bare.
func (h *Host) IQ(typ string, t Target, ns string) IQHandler {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if fn := h.iq[iqKey(typ, t, ns)]; fn != nil {
		return fn
	}
	if t == TargetSelf {
		return h.iq[iqKey(typ, TargetBare, ns)]
	}
	return nil
}

// AddFeature announces an extra host feature that no IQ handler implies
// (e.g. a message-processing feature).
func (h *Host) AddFeature(ns string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.features[ns] = true
}

// AddAccountFeature announces a feature on every account's bare JID.
func (h *Host) AddAccountFeature(ns string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acctFeatures[ns] = true
}

// AddIdentity announces a host identity.
func (h *Host) AddIdentity(id Identity) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.identities = append(h.identities, id)
}

// AddItem announces a disco#items entry of the host.
func (h *Host) AddItem(it DiscoItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.items {
		if x.JID == it.JID {
			return // announced already (a service and a test, or a reconnect)
		}
	}
	h.items = append(h.items, it)
}

// AddStreamFeature registers a post-authentication stream feature (RFC 6120
// §4.3.2), such as roster versioning; fn may return nil to offer nothing.
func (h *Host) AddStreamFeature(fn func(Session) *xml.Element) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streamFeatures = append(h.streamFeatures, fn)
}

// AddFlush registers fn, which returns once what its module writes in the
// background (the message archive's batches) and was handed to it before
// the call is stored. Call it from New or Start.
func (h *Host) AddFlush(fn func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushes = append(h.flushes, fn)
}

// Flush runs every registered flush: when it returns nil, everything the
// host's modules accepted so far is in storage. c2s calls it before it
// acknowledges a client's stanzas (XEP-0198 <a/>), which is what makes an
// acknowledgement mean stored although the archive writes in batches.
func (h *Host) Flush(ctx context.Context) error {
	h.mu.RLock()
	fns := append([]func(context.Context) error(nil), h.flushes...)
	h.mu.RUnlock()
	for _, fn := range fns {
		if err := fn(ctx); err != nil {
			return err
		}
	}
	return nil
}

// StreamElementHandler handles a top-level element that is not a stanza
// (a "nonza": XEP-0352 <active/>, XEP-0198 <r/>) sent by a bound session.
type StreamElementHandler func(s Session, el *xml.Element)

// HandleStreamElement registers fn for top-level elements {space}local
// from bound client sessions. Elements nobody handles end the stream with
// <unsupported-stanza-type/> (RFC 6120 §8.3.3.12). Call it from New or
// Start; a second registration for the same name replaces the first.
func (h *Host) HandleStreamElement(space, local string, fn StreamElementHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streamElements == nil {
		h.streamElements = make(map[string]StreamElementHandler)
	}
	h.streamElements[space+" "+local] = fn
}

// StreamElement returns the handler for {space}local, or nil.
func (h *Host) StreamElement(space, local string) StreamElementHandler {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.streamElements[space+" "+local]
}

// Features returns the host's disco#info features, sorted.
func (h *Host) Features() []string { return h.sorted(h.features) }

// AccountFeatures returns the disco#info features of an account, sorted.
func (h *Host) AccountFeatures() []string { return h.sorted(h.acctFeatures) }

func (h *Host) sorted(m map[string]bool) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Identities returns the host's identities.
func (h *Host) Identities() []Identity {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]Identity(nil), h.identities...)
}

// Items returns the host's disco#items.
func (h *Host) Items() []DiscoItem {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]DiscoItem(nil), h.items...)
}

// StreamFeatures returns the post-authentication features offered to s.
func (h *Host) StreamFeatures(s Session) []*xml.Element {
	h.mu.RLock()
	fns := append([]func(Session) *xml.Element(nil), h.streamFeatures...)
	h.mu.RUnlock()
	var out []*xml.Element
	for _, fn := range fns {
		if el := fn(s); el != nil {
			out = append(out, el)
		}
	}
	return out
}

// AccountSource is an account store other than storage (a directory).
type AccountSource interface {
	// AccountExists reports whether username is an enabled account; an
	// error means the source could not be asked.
	AccountExists(ctx context.Context, username string) (bool, error)
}

// AccountExists reports whether a local account exists.
func (h *Host) AccountExists(ctx context.Context, username string) (bool, error) {
	if h.AccountSource != nil {
		return h.AccountSource.AccountExists(ctx, username)
	}
	_, err := h.Store.Accounts().Get(ctx, h.Domain, username)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// leftoversKey marks a context (WithDetachedLeftovers).
type leftoversKey struct{}

// WithDetachedLeftovers marks ctx as routing again the stanzas a session
// never acknowledged, when it ends after waiting detached for its client
// (XEP-0198): the push module told the account's app servers about them
// when the session detached or when they were queued to it, and does not
// a second time when they go to offline storage.
func WithDetachedLeftovers(ctx context.Context) context.Context {
	return context.WithValue(ctx, leftoversKey{}, true)
}

// DetachedLeftovers reports whether ctx was marked by
// WithDetachedLeftovers.
func DetachedLeftovers(ctx context.Context) bool {
	return ctx != nil && ctx.Value(leftoversKey{}) != nil
}
