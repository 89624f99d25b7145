package module

import (
	"context"
	"errors"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// MaySeePresence reports whether requester may see the presence of owner, a
// bare JID of this host: requester is the owner (any of its resources) or
// has a subscription to it, i.e. the owner's roster item for requester has
// subscription "from" or "both" (RFC 6121 §2.1.2.5). Modules that answer
// queries about an account only for those who may see its presence (disco
// of an account, XEP-0030 §4; last activity, XEP-0012 §3) share this rule.
// It reads storage directly, so it holds whether or not the roster module
// runs on the host.
func (h *Host) MaySeePresence(ctx context.Context, owner, requester jid.JID) (bool, error) {
	if requester.Bare() == owner {
		return true, nil
	}
	it, err := h.Store.Roster().Get(ctx, owner.String(), requester.Bare().String())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth, nil
}
