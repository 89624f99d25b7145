package module

import (
	"context"
	"errors"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// MaySeePresence reports whether requester may see the presence of owner, a
// bare JID of this host: requester is the owner (any of its resources) or
// has a subscription to it, i.e. the owner's roster item for requester has
// subscription "from" or "both" (RFC 6121 §2.1.2.5). Modules that answer
// queries about an account only for those who may see its presence (disco
// of an account, XEP-0030 §4; last activity, XEP-0012 §3 and §4) share this rule.
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

// UnavailableTo routes unavailable presence from each of user's available
// resources (a bare JID of this host) to contact. RFC 6121 asks for exactly
// that whenever contact stops being allowed to see user's presence: a
// cancelled subscription (§3.2.2), a removed roster item (§2.5.2), and so
// an account cancelled in-band (XEP-0077 §3.2), whose subscriptions all
// end. A contact's client tracks the full JIDs it was shown; one
// unavailable presence from the bare JID would leave them all online
// there. Resources that never sent available presence were never shown,
// so they send nothing. The roster, presence and register modules share it.
func (h *Host) UnavailableTo(ctx context.Context, user, contact jid.JID) {
	for _, s := range h.Router.Sessions(user) {
		if Available(s) {
			h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", s.JID().String()).
				SetAttr("to", contact.String()).SetAttr("type", "unavailable"))
		}
	}
}
