package cluster

import (
	"context"
	"sync"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// A chat room's message goes to every occupant, each copy with its own
// 'to'. Routed one by one, the copies for occupants on another node would
// each be a NATS message, and each parsed again there. In a fan-out
// (module.Batch) they are held per node instead, and a run of copies that
// differ only in 'to' travels as one "fanout" message: the stanza once and
// the recipients (full JID and session ID) as headers; the receiving node
// parses it once and gives each of its sessions its copy.

// nodeBatchKey keys the part of a module.Batch that holds the copies for
// one node.
type nodeBatchKey struct{ node string }

// nodeBatch is that part: runs of copies, in the order given.
type nodeBatch struct {
	n    *Node
	node string

	mu   sync.Mutex
	runs []fanRun
}

// fanRun is copies of el (the first of them) for targets.
type fanRun struct {
	el      *xml.Element
	targets []Target
}

// SendIn implements module.BatchSender: in a fan-out, a copy for a
// session on another node waits in the batch for the others to its node.
func (p *remote) SendIn(ctx context.Context, el *xml.Element) bool {
	b := module.BatchFrom(ctx)
	if b == nil {
		return false
	}
	part := b.Part(nodeBatchKey{p.node}, func() module.BatchPart { return &nodeBatch{n: p.n, node: p.node} })
	if part == nil {
		return false // flushed already: sent at once
	}
	part.(*nodeBatch).add(p, el)
	return true
}

func (nb *nodeBatch) add(p *remote, el *xml.Element) {
	t := Target{To: p.full.String(), Sid: p.sid}
	nb.mu.Lock()
	defer nb.mu.Unlock()
	// Only the last run may grow: runs go out in order, so what one
	// session is sent keeps its order.
	if k := len(nb.runs); k > 0 && sameButTo(nb.runs[k-1].el, el) {
		nb.runs[k-1].targets = append(nb.runs[k-1].targets, t)
		return
	}
	nb.runs = append(nb.runs, fanRun{el: el, targets: []Target{t}})
}

// Flush implements module.BatchPart.
func (nb *nodeBatch) Flush() {
	nb.mu.Lock()
	runs := nb.runs
	nb.runs = nil
	nb.mu.Unlock()
	for _, r := range runs {
		body := r.el.AppendToNS(nil, contentNS)
		if len(r.targets) == 1 {
			nb.n.publish(nb.node, Msg{Op: "send", To: r.targets[0].To, Sid: r.targets[0].Sid, Body: body})
			continue
		}
		nb.n.publish(nb.node, Msg{Op: "fanout", Targets: r.targets, Body: body})
	}
}

// sameButTo reports whether b is a copy of a with another 'to': the same
// name, the same attributes otherwise, and the very same children (a
// fan-out's copies share them).
func sameButTo(a, b *xml.Element) bool {
	if a.Space != b.Space || a.Local != b.Local || len(a.Children) != len(b.Children) {
		return false
	}
	if len(a.Children) > 0 && &a.Children[0] != &b.Children[0] {
		return false
	}
	i, j := 0, 0
	for {
		for i < len(a.Attrs) && isTo(a.Attrs[i]) {
			i++
		}
		for j < len(b.Attrs) && isTo(b.Attrs[j]) {
			j++
		}
		if i == len(a.Attrs) || j == len(b.Attrs) {
			return i == len(a.Attrs) && j == len(b.Attrs)
		}
		if a.Attrs[i] != b.Attrs[j] {
			return false
		}
		i, j = i+1, j+1
	}
}

func isTo(a xml.Attr) bool { return a.Space == "" && a.Local == "to" }

// fanoutIn gives each target session of a "fanout" its copy.
func (n *Node) fanoutIn(m Msg) {
	el, err := xml.ParseElement(m.Body, n.opts.Limits, contentNS)
	if err != nil {
		n.log.Warn("cluster: unparsable stanza from another node", "err", err)
		return
	}
	for _, t := range m.Targets {
		full, err := jid.Parse(t.To)
		if err != nil {
			continue
		}
		s := n.router.LocalSession(full)
		if s == nil || s.ID() != t.Sid {
			n.passOn("send", el.WithAttr("to", full.String()), full)
			continue
		}
		n.m.received.Inc()
		s.Send(el.WithAttr("to", full.String()))
	}
}
