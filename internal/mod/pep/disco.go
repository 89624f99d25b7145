package pep

import (
	"context"
	"errors"

	"parley/internal/module"
	"parley/internal/pubsub"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// accountNodes serves the account's pubsub nodes in service discovery
// (XEP-0060 §5.2–§5.5; XEP-0163 §6.2: only nodes the requester may
// subscribe to or retrieve items from).
type accountNodes struct{ p *PEP }

var _ module.AccountNodes = accountNodes{}

func (a accountNodes) AccountNodeItems(ctx context.Context, owner, requester jid.JID) ([]module.DiscoItem, error) {
	nodes, err := a.p.svc.Nodes(ctx, owner.String(), requester)
	if err != nil {
		return nil, err
	}
	out := make([]module.DiscoItem, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, module.DiscoItem{JID: owner.String(), Node: n.Name, Name: n.Config.Title})
	}
	return out, nil
}

func (a accountNodes) AccountNodeInfo(ctx context.Context, owner, requester jid.JID, node string) (module.DiscoInfo, bool, error) {
	n, err := a.p.svc.Node(ctx, owner.String(), requester, node)
	var pe *pubsub.Error
	if errors.As(err, &pe) {
		// Missing or not for this requester: not a node it can see.
		return module.DiscoInfo{}, false, nil
	}
	if err != nil {
		return module.DiscoInfo{}, false, err
	}
	return module.DiscoInfo{
		Identities: []module.Identity{{Category: "pubsub", Type: "leaf"}},
		Features:   []string{pubsub.NS},
		Forms:      []*xml.Element{n.MetaData(owner.String())},
	}, true, nil
}

func (a accountNodes) AccountNodeChildren(ctx context.Context, owner, requester jid.JID, node string) ([]module.DiscoItem, bool, error) {
	items, err := a.p.svc.Items(ctx, owner.String(), requester, node, nil, 0)
	var pe *pubsub.Error
	if errors.As(err, &pe) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]module.DiscoItem, 0, len(items))
	for _, it := range items {
		// §5.5: the item ID is the item's name.
		out = append(out, module.DiscoItem{JID: owner.String(), Name: it.ID})
	}
	return out, true, nil
}
