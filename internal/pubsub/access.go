package pubsub

import (
	"slices"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
)

// Affiliations (XEP-0060 §4.1).
const (
	AffOwner       = "owner"
	AffPublisher   = "publisher"
	AffPublishOnly = "publish-only"
	AffMember      = "member"
	AffNone        = "none"
	AffOutcast     = "outcast"
)

// Relation is what the embedding service knows of a requester: whether it
// owns the service, and for a personal eventing service what the owner's
// roster says of it. The roster is the embedding's business (package
// pubsub has no notion of accounts); a standalone service would report no
// presence relation at all.
type Relation struct {
	// Owner: the requester owns the service and every node of it (for PEP,
	// any resource of the account).
	Owner bool
	// Subscriber: the requester has a presence subscription to the owner
	// (subscription "from" or "both" in the owner's roster; RFC 6121).
	Subscriber bool
	// Groups are the owner's roster groups the requester is in.
	Groups []string
}

// access holds what an access decision about one node needs: its
// configuration and its affiliations, loaded once however many entities
// are checked (a notification fans out to every contact).
type access struct {
	cfg  NodeConfig
	affs map[string]string // JID as stored → affiliation
}

func newAccess(cfg NodeConfig, affs []storage.PubSubAffiliation) access {
	a := access{cfg: cfg, affs: make(map[string]string, len(affs))}
	for _, af := range affs {
		a.affs[af.JID] = af.Affiliation
	}
	return a
}

// affiliation returns who's affiliation: the one stored for its full JID,
// else for its bare JID, else the owner's for the service owner.
func (a access) affiliation(who jid.JID, rel Relation) string {
	if rel.Owner {
		return AffOwner
	}
	if af, ok := a.affs[who.String()]; ok {
		return af
	}
	if af, ok := a.affs[who.Bare().String()]; ok {
		return af
	}
	return AffNone
}

// mayRetrieve decides whether who may retrieve items of and subscribe to
// the node (XEP-0060 §4.5 and the error cases of §6.1.3 and §6.5.9): the
// owner and affiliated publishers and members always, outcasts never,
// everyone else as the access model says.
func (a access) mayRetrieve(who jid.JID, rel Relation) *Error {
	switch a.affiliation(who, rel) {
	case AffOwner, AffPublisher, AffMember:
		return nil
	case AffOutcast:
		return errForbidden()
	}
	switch a.cfg.AccessModel {
	case AccessOpen:
		return nil
	case AccessPresence:
		if rel.Subscriber {
			return nil
		}
		return errf(stanza.NotAuthorized, "presence-subscription-required", "")
	case AccessRoster:
		if rel.Subscriber && slices.ContainsFunc(rel.Groups, func(g string) bool { return slices.Contains(a.cfg.RosterGroups, g) }) {
			return nil
		}
		return errf(stanza.NotAuthorized, "not-in-roster-group", "")
	}
	// Whitelist, and any model this version does not know: closed.
	return errf(stanza.NotAllowed, "closed-node", "")
}

// mayPublish decides whether who may publish to and retract from the node
// (pubsub#publish_model, XEP-0060 §4.1 affiliation table).
func (a access) mayPublish(who jid.JID, rel Relation, subscribed bool) bool {
	switch a.affiliation(who, rel) {
	case AffOwner, AffPublisher, AffPublishOnly:
		return true
	case AffOutcast:
		return false
	}
	switch a.cfg.PublishModel {
	case publishModelOpen:
		return true
	case publishModelSubscribers:
		return subscribed
	}
	return false
}
