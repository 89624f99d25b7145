// Package adhoc implements XEP-0050 Ad-Hoc Commands on the host's JID: a
// registry of commands that other modules add to, their discovery (the
// disco#items node http://jabber.org/protocol/commands lists only what the
// requester may run), and multi-stage sessions (execute, next, complete,
// cancel) with XEP-0004 forms, bounded in number and expiring when idle.
//
// On top of it the module offers the XEP-0133 service administration
// commands to the host's administrators (Host.IsAdmin): see admin.go.
package adhoc

import (
	"context"
	"time"

	"parley/internal/admin"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces.
const (
	// NS is the ad-hoc commands namespace and the disco node listing them
	// (XEP-0050 §2).
	NS = "http://jabber.org/protocol/commands"
	// NSData is XEP-0004 data forms.
	NSData = "jabber:x:data"
	// NSAdmin is the FORM_TYPE and node prefix of XEP-0133.
	NSAdmin = "http://jabber.org/protocol/admin"
)

// Key is how other modules reach the registry: module.Lookup(h, adhoc.Key)
// in their Start, then Add.
var Key = module.NewServiceKey[*Adhoc]("adhoc")

// Bounds of the pending sessions. A session is only kept between stages
// of a multi-stage command; a client that walks away must not make the
// server hold state for ever, and no client may fill the table for others.
const (
	sessionTTL       = 10 * time.Minute
	maxSessions      = 1000 // per host
	maxOwnerSessions = 10   // per full JID
)

// Adhoc is the module of one host.
type Adhoc struct {
	h        *module.Host
	ops      *admin.Ops
	cmds     *registry
	sessions *sessions
	offs     []func()
}

var _ module.Module = (*Adhoc)(nil)

// New builds the module for h and publishes it under Key, so modules that
// start later can add commands.
func New(h *module.Host) (module.Module, error) {
	a := &Adhoc{
		h:        h,
		ops:      admin.For(h),
		cmds:     newRegistry(),
		sessions: newSessions(time.Now, sessionTTL, maxSessions, maxOwnerSessions),
	}
	module.Provide(h, Key, a)
	return a, nil
}

// Name implements module.Module.
func (*Adhoc) Name() string { return "adhoc" }

// Start registers the command IQ handler (which announces the namespace
// on the host), the disco nodes, the service administration commands and
// the session hooks they need (last login, message of the day, forgetting
// a client's pending commands when its session ends).
func (a *Adhoc) Start(context.Context) error {
	a.h.RegisterIQ(stanza.TypeSet, module.TargetHost, NS, a.handle)
	a.h.AddHostNodes(a)
	a.addAdminCommands()
	a.offs = append(a.offs,
		a.h.Sessions.On(module.EventSessionBound, 0, a.onBound),
		a.h.Sessions.On(module.EventSessionAvailable, 0, a.onAvailable),
		a.h.Sessions.On(module.EventSessionUnbound, 0, a.onUnbound),
	)
	return nil
}

// Stop removes the hooks. IQ handlers and disco nodes live as long as the
// host; the module API has no way to unregister them.
func (a *Adhoc) Stop(context.Context) error {
	for i := len(a.offs) - 1; i >= 0; i-- {
		a.offs[i]()
	}
	a.offs = nil
	return nil
}

// Add registers a command; a second command with the same node replaces
// the first.
func (a *Adhoc) Add(c Command) { a.cmds.add(c) }

// onUnbound forgets the pending sessions of a client that went away: its
// full JID may be bound again by someone else's client.
func (a *Adhoc) onUnbound(ev *module.SessionEvent) bool {
	a.sessions.dropOwner(ev.Session.JID())
	return false
}

// HostNodeItems implements module.HostNodes: the command list (XEP-0050
// §2.2) holds only the commands the requester may run.
func (a *Adhoc) HostNodeItems(ctx context.Context, requester jid.JID, node string) ([]module.DiscoItem, bool, error) {
	if node != NS {
		return nil, false, nil
	}
	var items []module.DiscoItem
	for _, c := range a.cmds.list() {
		if c.allowed(ctx, requester) {
			items = append(items, module.DiscoItem{JID: a.h.Domain, Node: c.Node, Name: c.Name})
		}
	}
	return items, true, nil
}

// HostNodeInfo implements module.HostNodes: the command list and each
// command the requester may run (§2.3); a command it may not run is not
// found, so disco reveals nothing the items list hides.
func (a *Adhoc) HostNodeInfo(ctx context.Context, requester jid.JID, node string) (module.DiscoInfo, bool, error) {
	if node == NS {
		return module.DiscoInfo{
			Identities: []module.Identity{{Category: "automation", Type: "command-list", Name: "Commands"}},
		}, true, nil
	}
	c, ok := a.cmds.get(node)
	if !ok || !c.allowed(ctx, requester) {
		return module.DiscoInfo{}, false, nil
	}
	return module.DiscoInfo{
		Identities: []module.Identity{{Category: "automation", Type: "command-node", Name: c.Name}},
		Features:   []string{NS, NSData},
	}, true, nil
}

// appError is a stanza error with one of XEP-0050's application conditions
// (§4.6: bad-action, bad-sessionid, session-expired, ...).
func appError(orig *xml.Element, c stanza.Condition, app, text string) *xml.Element {
	e := &stanza.Error{Condition: c, Text: text}
	if app != "" {
		e.App = xml.New(NS, app)
	}
	return stanza.ErrorReplyFor(orig, e)
}
