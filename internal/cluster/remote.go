package cluster

import (
	"sync"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// remote is a session bound on another node, as this node's modules see
// it: its routing state comes from the registry, and what is sent to it
// travels to its node. One value per session, so identity comparisons in
// modules hold.
type remote struct {
	n    *Node
	full jid.JID
	node string
	inc  string
	sid  string

	mu         sync.Mutex
	presence   *xml.Element
	presText   string
	priority   int
	interested bool
	shared     map[string]string
	values     map[any]any // module values set here: this node's only
}

var _ module.Session = (*remote)(nil)

func (p *remote) set(e entry, lim xml.Limits) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Presence != p.presText {
		p.presText, p.presence = e.Presence, nil
		if e.Presence != "" {
			if el, err := xml.ParseElement([]byte(e.Presence), lim, contentNS); err == nil {
				p.presence = el
			}
		}
	}
	p.priority, p.interested, p.shared = e.Priority, e.Interested, e.Shared
}

func (p *remote) JID() jid.JID { return p.full }
func (p *remote) ID() string   { return p.sid }

// Send queues el for the session on its node, which runs its own
// Outbound hooks (client state indication) there.
func (p *remote) Send(el *xml.Element) { p.n.send(p, "send", el) }

// Deliver is Send without the Outbound hooks.
func (p *remote) Deliver(el *xml.Element) { p.n.send(p, "deliver", el) }

// Close ends the session on its node and waits (bounded) until it ended.
func (p *remote) Close(cond stanza.StreamCondition, text string) { p.n.closeRemote(p, cond, text) }

func (p *remote) Presence() *xml.Element {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.presence
}

// SetPresence changes only this node's view; the session's own node
// publishes the truth.
func (p *remote) SetPresence(el *xml.Element) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.presence = el
}

func (p *remote) Priority() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.priority
}

func (p *remote) Interested() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interested
}

func (p *remote) SetInterested(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interested = v
}

// Value returns a module.SharedKey's value as the session's node
// published it, and other keys' values set on this node.
func (p *remote) Value(key any) any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := key.(module.SharedKey); ok {
		if v, ok := p.shared[k.SharedName()]; ok {
			return k.Decode(v)
		}
		return nil
	}
	return p.values[key]
}

func (p *remote) SetValue(key, value any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.values == nil {
		p.values = make(map[any]any)
	}
	p.values[key] = value
}
