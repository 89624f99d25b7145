package module

import (
	"context"

	"parley/internal/xmpp/jid"
)

// HostNodes serves disco nodes of the host's own JID (XEP-0030 §3.2 and
// §4.2 with a 'node'): the ad-hoc command list (XEP-0050 §2.2) is one. The
// disco module asks every registered provider; the first that knows the
// node answers. Providers decide per requester what it may see, so a list
// of commands shows only those the requester may run.
type HostNodes interface {
	// HostNodeInfo answers disco#info about node; ok is false when the
	// provider has no such node.
	HostNodeInfo(ctx context.Context, requester jid.JID, node string) (info DiscoInfo, ok bool, err error)
	// HostNodeItems answers disco#items about node; ok as for HostNodeInfo.
	HostNodeItems(ctx context.Context, requester jid.JID, node string) (items []DiscoItem, ok bool, err error)
}

// AddHostNodes registers a provider of host disco nodes.
func (h *Host) AddHostNodes(p HostNodes) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hostNodes = append(h.hostNodes, p)
}

// HostNodeProviders returns the registered providers, in order.
func (h *Host) HostNodeProviders() []HostNodes {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]HostNodes(nil), h.hostNodes...)
}
