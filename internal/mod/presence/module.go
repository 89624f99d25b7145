// Package presence implements presence subscriptions and presence exchange
// (RFC 6121 §3 and §4): the subscription state machine of RFC 6121
// Appendix A with pre-approval (§3.4), initial presence with probes,
// broadcast to subscribers and to the user's own resources, directed
// presence (§4.6) and the unavailable presence the server sends for a
// session that ends without saying goodbye.
//
// Subscription state lives in the roster (package roster); every change
// goes through the roster module's Store, which serialises changes per user
// and sends the roster pushes.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"parley/internal/mod/roster"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// PriorityInbound is the priority of the inbound subscription and probe
// handlers: above the core's delivery rules, which must not see these
// stanzas, and low enough that filtering modules (privacy, blocking) can
// run first.
const PriorityInbound = 100

// MaxDirected bounds how many entities one session's directed presence is
// remembered for (RFC 6121 §4.6.3). A client that sends directed presence
// to more entities still reaches them, but those beyond the limit get no
// unavailable presence when the session ends.
const MaxDirected = 1000

// Presence is the presence module of one host.
type Presence struct {
	h      *module.Host
	roster *roster.Store
	offs   []func()
}

var _ module.Module = (*Presence)(nil)

// New builds the presence module for h.
func New(h *module.Host) (module.Module, error) {
	h.Moves(directedKey{})
	h.Moves(announcedKey{})
	return &Presence{h: h}, nil
}

// Name implements module.Module.
func (p *Presence) Name() string { return "presence" }

// Start registers the hooks. The roster module must have started before.
func (p *Presence) Start(ctx context.Context) error {
	p.roster = roster.StoreOf(p.h)
	if p.roster == nil {
		return errors.New("presence: the roster module must run (and start) before the presence module")
	}
	p.offs = append(p.offs,
		p.h.Stanzas.On("out/presence", 0, p.outbound),
		p.h.Stanzas.On("presence/bare", PriorityInbound, p.inbound),
		p.h.Stanzas.On("presence/full", PriorityInbound, p.inbound),
		p.h.Sessions.On(module.EventSessionUnbound, 0, p.unbound),
		p.h.Sessions.On(module.EventSessionResumed, 0, p.movedHere),
	)
	return nil
}

// Stop removes the hooks.
func (p *Presence) Stop(ctx context.Context) error {
	for _, off := range p.offs {
		off()
	}
	p.offs = nil
	return nil
}

// Per-session state keys (module.Session.Value). Both move with a
// session resumed on another node (module.MovingKey): the new node must
// tell the directed-presence targets when the session ends, and must not
// announce it a second time.
type (
	directedKey  struct{}
	announcedKey struct{}
)

var (
	_ module.MovingKey = directedKey{}
	_ module.MovingKey = announcedKey{}
)

func (directedKey) MovingName() string { return "presence.directed" }

// Encode writes the set as a JSON array of JIDs.
func (directedKey) Encode(v any) string {
	d, ok := v.(*directed)
	if !ok {
		return "[]"
	}
	d.mu.Lock()
	list := make([]string, len(d.list))
	for i, j := range d.list {
		list[i] = j.String()
	}
	d.mu.Unlock()
	b, _ := json.Marshal(list)
	return string(b)
}

// Decode reads Encode's array; JIDs that do not parse are left out, and
// at most MaxDirected are kept.
func (directedKey) Decode(s string) any {
	var list []string
	_ = json.Unmarshal([]byte(s), &list)
	d := &directed{}
	for _, x := range list {
		if j, err := jid.Parse(x); err == nil && len(d.list) < MaxDirected {
			d.list = append(d.list, j)
		}
	}
	return d
}

func (announcedKey) MovingName() string { return "presence.announced" }
func (announcedKey) Encode(any) string  { return "1" }
func (announcedKey) Decode(string) any  { return true }

// directed is the set of entities a session sent directed available
// presence to (RFC 6121 §4.6), in order, so that they learn when it goes
// away.
type directed struct {
	mu   sync.Mutex
	list []jid.JID
}

func directedOf(s module.Session) *directed {
	if d, ok := s.Value(directedKey{}).(*directed); ok {
		return d
	}
	// Only the session's own goroutine (its stanzas, its unbind) reaches
	// here, so the check-then-set cannot race with itself.
	d := &directed{}
	s.SetValue(directedKey{}, d)
	return d
}

func (d *directed) add(j jid.JID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.list {
		if x == j {
			return
		}
	}
	if len(d.list) < MaxDirected {
		d.list = append(d.list, j)
	}
}

func (d *directed) remove(j jid.JID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range d.list {
		if x == j {
			d.list = append(d.list[:i:i], d.list[i+1:]...)
			return
		}
	}
}

// take returns and forgets the whole set.
func (d *directed) take() []jid.JID {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.list
	d.list = nil
	return l
}
