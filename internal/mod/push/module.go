// Package push implements XEP-0357 Push Notifications: a client registers
// an app server (a pubsub service and node of its vendor) with its account,
// and when a message arrives that no client of the account will read now,
// the server publishes a small summary to that node, from which the app
// server wakes the device through a platform push service.
package push

import (
	"context"
	"sync"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// NS is the XEP-0357 namespace, also its disco feature.
const NS = "urn:xmpp:push:0"

// kvBucket holds an account's registrations: key "<app server JID> <node>",
// value the publish-options form the client gave (possibly empty).
const kvBucket = "push"

// queueLen bounds the notifications waiting for the worker. Routing only
// hands them over and never waits: when the queue is full (the worker is
// behind, e.g. a slow store) notifications are dropped, which only costs a
// wake-up while the messages themselves are in offline storage.
const queueLen = 256

// maxCounted bounds the accounts whose waiting-message count is kept in
// memory (message-count of the summary); beyond it counts start at 1.
const maxCounted = 10000

// priority places the message/bare handler just above offline storage
// (module.PriorityDeliver + 100), after every module that may still take the
// message, so only messages that end up stored for later trigger a push.
const priority = module.PriorityDeliver + 101

// replyPriority is the iq/bare handler's priority: answers of app servers to
// the account's notifications are the module's own and are taken first.
const replyPriority = 1000

// job is one notification to send: a message for owner that no client of
// it will read now.
type job struct {
	owner jid.JID // bare
	from  jid.JID // the (last) message's sender
	body  string
	// n is how many waiting messages the job adds to the owner's count
	// (0 counts as 1).
	n int
}

// pending is a notification awaiting its app server's answer.
type pending struct {
	owner   jid.JID // bare
	service string  // the app server's JID, as registered
	node    string
	timer   *time.Timer
}

// Push is the module of one host.
type Push struct {
	h    *module.Host
	offs []func()

	queue  chan job
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pending map[string]*pending // IQ id → notification
	counts  map[jid.JID]int     // bare → messages notified since it was last online
}

var _ module.Module = (*Push)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	return &Push{
		h:       h,
		pending: make(map[string]*pending),
		counts:  make(map[jid.JID]int),
	}, nil
}

// Name implements module.Module.
func (*Push) Name() string { return "push" }

// Start registers enable/disable for the account itself, announces the
// feature on accounts (XEP-0357 §5: clients look for it at their own bare
// JID), and installs the hooks that find messages worth a notification.
func (p *Push) Start(context.Context) error {
	if p.h.HostCfg == nil {
		return nil
	}
	p.h.RegisterIQ("set", module.TargetSelf, NS, p.iqSet)
	p.h.AddAccountFeature(NS)
	p.queue = make(chan job, queueLen)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.work(ctx)
	p.offs = append(p.offs,
		p.h.Stanzas.On("message/bare", priority, p.onMessage),
		p.h.Stanzas.On("iq/bare", replyPriority, p.onReply),
		p.h.Sessions.On(module.EventSessionAvailable, 0, p.onOnline),
		p.h.Sessions.On(module.EventSessionResumed, 0, p.onOnline),
		p.h.Sessions.On(module.EventSessionDetached, 0, p.onHeld),
		p.h.Sessions.On(module.EventSessionHeld, 0, p.onHeld),
	)
	return nil
}

// Stop removes the hooks, stops the worker and forgets pending answers.
func (p *Push) Stop(context.Context) error {
	for i := len(p.offs) - 1; i >= 0; i-- {
		p.offs[i]()
	}
	p.offs = nil
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pe := range p.pending {
		pe.timer.Stop()
		delete(p.pending, id)
	}
	return nil
}
