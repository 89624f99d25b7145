package module

import (
	"context"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// DiscoInfo is a XEP-0030 disco#info answer: identities, features and
// XEP-0128 extension forms.
type DiscoInfo struct {
	Identities []Identity
	Features   []string
	Forms      []*xml.Element
}

// AccountNodes serves the disco nodes of accounts' bare JIDs (XEP-0030 §3.2
// and §4.2 with a 'node'): a personal eventing service's pubsub nodes
// (XEP-0163 §6, XEP-0060 §5.2–§5.5). The disco module asks every
// registered provider; the first that knows a node answers. Requesters are
// only those the disco module lets see the account at all.
type AccountNodes interface {
	// AccountNodeItems returns the nodes of owner that requester may
	// discover, as items of the account (JID the owner, Node the name).
	AccountNodeItems(ctx context.Context, owner, requester jid.JID) ([]DiscoItem, error)
	// AccountNodeInfo answers disco#info about one node; ok is false when
	// the provider has no such node for requester.
	AccountNodeInfo(ctx context.Context, owner, requester jid.JID, node string) (info DiscoInfo, ok bool, err error)
	// AccountNodeChildren answers disco#items about one node (the items
	// of a pubsub node, XEP-0060 §5.5); ok as for AccountNodeInfo.
	AccountNodeChildren(ctx context.Context, owner, requester jid.JID, node string) (items []DiscoItem, ok bool, err error)
}

// AddAccountIdentity announces an identity of every account's bare JID
// (XEP-0163 §6.1: pubsub/pep), next to account/registered.
func (h *Host) AddAccountIdentity(id Identity) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acctIdentities = append(h.acctIdentities, id)
}

// AccountIdentities returns the identities modules announced for accounts.
func (h *Host) AccountIdentities() []Identity {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]Identity(nil), h.acctIdentities...)
}

// AddAccountNodes registers a provider of account disco nodes.
func (h *Host) AddAccountNodes(p AccountNodes) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acctNodes = append(h.acctNodes, p)
}

// AccountNodeProviders returns the registered providers, in order.
func (h *Host) AccountNodeProviders() []AccountNodes {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]AccountNodes(nil), h.acctNodes...)
}
