package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// XEP-0114 components connect to one node; the others forward what they
// route to the component's domain to that node. The node that has the
// connection holds the lease "comp.<domain>" (written when the component
// connects, so a reconnection to another node moves it; removed with a
// revision check when it disconnects). A node without the connection
// reads the lease (cached for a second) and forwards; with no live holder
// the local placeholder answers service-unavailable as on one node.

// SetComponents names the external component domains and how to tell
// whether one is connected here. Call before Start.
func (n *Node) SetComponents(domains []string, connected func(domain string) bool) {
	n.compDomains = make(map[string]bool, len(domains))
	for _, d := range domains {
		n.compDomains[d] = true
	}
	n.compConnected = connected
}

func compKey(domain string) string {
	return "comp." + base64.RawURLEncoding.EncodeToString([]byte(domain))
}

// ComponentChanged implements router.Bus. The component server calls the
// router with its own lock held, and Connected takes it: the lease is
// written from a queue of its own, in order.
func (n *Node) ComponentChanged(domain string) {
	if n.compDomains[domain] {
		n.compQueue.push(domain)
	}
}

func (n *Node) componentChanged(domain string) {
	if !n.compDomains[domain] || n.compConnected == nil || n.leases == nil || !n.healthy.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	k := compKey(domain)
	me := roomLease{Node: n.opts.Name, Inc: n.incarnation()}
	if n.compConnected(domain) {
		b, _ := json.Marshal(me)
		if _, err := n.leases.Put(ctx, k, b); err != nil {
			n.log.Warn("cluster: component lease", "domain", domain, "err", err)
		}
		return
	}
	en, err := n.leases.Get(ctx, k)
	var l roomLease
	if err != nil || json.Unmarshal(en.Value, &l) != nil || l != me {
		return
	}
	if err := n.leases.Delete(ctx, k, en.Revision); err != nil && !errors.Is(err, ErrRevision) {
		n.log.Warn("cluster: component lease", "domain", domain, "err", err)
	}
}

// componentHolder returns the node holding domain's component, if live.
func (n *Node) componentHolder(ctx context.Context, domain string) (string, bool) {
	n.mu.RLock()
	c, ok := n.compCache[domain]
	n.mu.RUnlock()
	if !ok || time.Since(c.read) > time.Second {
		c = compHolder{read: time.Now()}
		if en, err := n.leases.Get(ctx, compKey(domain)); err == nil {
			_ = json.Unmarshal(en.Value, &c.l)
		}
		n.mu.Lock()
		n.compCache[domain] = c
		n.mu.Unlock()
	}
	if c.l.Node == "" || c.l.Node == n.opts.Name || !n.live(c.l.Node, c.l.Inc) {
		return "", false
	}
	return c.l.Node, true
}

type compHolder struct {
	l    roomLease
	read time.Time
}
