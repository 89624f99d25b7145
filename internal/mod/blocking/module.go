// Package blocking implements XEP-0191 Blocking Command (urn:xmpp:blocking):
// a user keeps a list of JIDs (accounts, single resources, whole domains)
// with which no communication happens in either direction. Nothing from a
// blocked JID reaches the user (the sender sees the user as offline, §3.3),
// nothing the user's account sends reaches a blocked JID (the user's
// clients get <not-acceptable/> with <blocked xmlns='urn:xmpp:blocking:errors'/>),
// and the block lasts across sessions until the user lifts it.
//
// The list lives in the generic KV store (bucket "blocking", one key per
// blocked JID) and, while the account has sessions, in memory, because it
// is consulted for every stanza to and from the account; in a cluster,
// on every node that routes to the account, kept current by notices
// (list.go).
package blocking

import (
	"context"
	"sync"
	"time"

	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
)

// Namespaces of XEP-0191.
const (
	// NS is the protocol namespace and the disco#info feature (§3.1).
	NS = "urn:xmpp:blocking"
	// NSErrors qualifies <blocked/>, the application condition of the
	// error a user's stanza to a blocked JID is answered with (§3.3).
	NSErrors = "urn:xmpp:blocking:errors"
)

// kvBucket is the KV bucket of the lists: owner is the user's bare JID, one
// key per blocked JID (its canonical string), no value. Account deletion
// removes the owner's keys with everything else it owns.
const kvBucket = "blocking"

// priority places every filter of this module before all other modules:
// a blocked stanza must not be stored offline, archived, copied (carbons),
// answered (presence probes, vCard) or change subscription state.
const priority = 1000

// priorityForget runs the end-of-session bookkeeping after the presence
// module has routed the session's unavailable presence, which still needs
// the list to keep it from blocked contacts.
const priorityForget = -100

// Blocking is the module of one host.
type Blocking struct {
	h     *module.Host
	lists *lists
	offs  []func()
	// metrics counts XEP-0377 reports (report.go); nil on a host without
	// the server's metrics (tests).
	metrics *metrics.Metrics
	// forwarded is when each reporter's reports were last forwarded to
	// the admins ([host.reporting] forward_interval; report.go).
	forwardMu sync.Mutex
	forwarded map[jid.JID]time.Time
}

var _ module.Module = (*Blocking)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	h.Moves(interestedKey{})
	return &Blocking{h: h, lists: newLists(h)}, nil
}

// Name implements module.Module.
func (*Blocking) Name() string { return "blocking" }

// Start registers the IQ handlers (requests without 'to', §3.2-§3.5),
// announces the feature on the host and installs the filters: inbound on
// <kind>/bare and <kind>/full, outbound on out/<kind> for what clients send
// (with an error they can show) and on egress/<kind> for what modules send
// on the account's behalf (presence broadcasts and probes), and on the
// Outbound hook as a last check before a session.
func (b *Blocking) Start(context.Context) error {
	b.h.RegisterIQ(stanza.TypeGet, module.TargetSelf, NS, b.get)
	b.h.RegisterIQ(stanza.TypeSet, module.TargetSelf, NS, b.set)
	b.h.AddFeature(NS)
	// XEP-0377 §3: reports ride on the block command (report.go).
	for _, f := range reportFeatures() {
		b.h.AddFeature(f)
	}
	b.metrics, _ = module.Lookup(b.h, module.MetricsKey)
	for _, kind := range []string{stanza.KindMessage, stanza.KindPresence, stanza.KindIQ} {
		b.offs = append(b.offs,
			b.h.Stanzas.On(kind+"/bare", priority, b.inbound),
			b.h.Stanzas.On(kind+"/full", priority, b.inbound),
			b.h.Stanzas.On("out/"+kind, priority, b.outbound),
			b.h.Stanzas.On("egress/"+kind, priority, b.egress),
		)
	}
	b.offs = append(b.offs,
		b.h.Outbound.On(module.EventOutbound, priority, b.toSession),
		b.h.Sessions.On(module.EventSessionBound, 0, b.bound),
		b.h.Sessions.On(module.EventSessionUnbound, priorityForget, b.unbound),
		b.h.Accounts.On(module.EventAccountDeleted, 0, b.deleted),
	)
	if n, ok := module.Lookup(b.h, module.NoticesKey); ok {
		// In a cluster: tell the other nodes when a list changes here, and
		// drop this node's copy when one changes there (lists).
		topic := "blocking/" + b.h.Domain
		b.lists.notify = func(user jid.JID) {
			if err := n.Notify(topic, []byte(user.String())); err != nil {
				b.h.Log.Warn("blocking: telling the other nodes of a change", "user", user.String(), "err", err)
			}
		}
		b.offs = append(b.offs, n.OnNotice(topic, func(payload []byte) {
			if user, err := jid.Parse(string(payload)); err == nil {
				b.lists.changed(user.Bare())
			}
		}))
	}
	return nil
}

// Stop removes the hooks (the IQ handlers and the feature stay; the host
// registry has no removal, and Stop only runs at shutdown).
func (b *Blocking) Stop(context.Context) error {
	for i := len(b.offs) - 1; i >= 0; i-- {
		b.offs[i]()
	}
	b.offs = nil
	return nil
}

// bound keeps the session's account's list in memory while it has
// sessions (loaded at the first check).
func (b *Blocking) bound(ev *module.SessionEvent) bool {
	b.lists.track(ev.Session.JID().Bare())
	return false
}

// unbound forgets the list when the account's last session is gone.
func (b *Blocking) unbound(ev *module.SessionEvent) bool {
	b.lists.forget(ev.Session.JID().Bare())
	return false
}

// deleted drops what memory holds for a deleted account: storage removed
// its keys with the account, and a later account of the same name starts
// with an empty list.
func (b *Blocking) deleted(ev *module.AccountEvent) bool {
	b.lists.changed(ev.JID.Bare())
	if b.lists.notify != nil {
		b.lists.notify(ev.JID.Bare())
	}
	return false
}
