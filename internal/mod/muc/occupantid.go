package muc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// NSOccupantID is the namespace of XEP-0421 occupant identifiers. Every
// room of the service has them (there is no per-room switch), so the
// service announces the feature as well as each room (XEP-0421 §4: it
// SHOULD when they are enabled for all rooms).
const NSOccupantID = "urn:xmpp:occupant-id:0"

// The service's occupant-id key lives in the key/value store: bucket
// "muc.keys", owner the service domain. Storage, not memory, so that an id
// survives a restart and every node of a cluster (one database) computes
// the same one, as XEP-0421 §4.1 requires ("if a user joins the same room a
// second time, the occupant identifier MUST be the same").
const (
	bucketKeys       = "muc.keys"
	keyOccupantID    = "occupant-id"
	occupantKeyBytes = 32
)

// loadOccupantKey reads the service's occupant-id key, creating a random
// one on first use (storage.Secret: every node of a cluster gets the same,
// even on the cluster's very first start). The server has a persisted
// secret of its own (the SCRAM fake-salt key), but modules do not see it,
// so the service keeps a key of its own the way the upload module keeps
// its signing key.
func (s *Service) loadOccupantKey(ctx context.Context) error {
	k, err := storage.Secret(ctx, s.h.Store.KV(), bucketKeys, s.domain, keyOccupantID, occupantKeyBytes)
	if err != nil {
		return err
	}
	s.oidKey = k
	return nil
}

// occupantID is the XEP-0421 identifier of the user whose real JID is real
// in room: hex HMAC-SHA-256 under the service key of the room's bare JID, a
// NUL and the user's bare JID (the service-key construction of §4.1). It
// is stable (same user, same room, same id, whatever the nick, resource or
// node), differs between rooms (a user's ids in two rooms cannot be
// matched), and without the key nobody can compute it from a JID or the
// JID from it (§4.1 forbids hashing the JID with guessable parameters).
// 64 characters, within the schema's 128.
func (s *Service) occupantID(room, real jid.JID) string {
	m := hmac.New(sha256.New, s.oidKey)
	m.Write([]byte(room.Bare().String()))
	m.Write([]byte{0})
	m.Write([]byte(real.Bare().String()))
	return hex.EncodeToString(m.Sum(nil))
}

// occupantIDElement is <occupant-id xmlns='urn:xmpp:occupant-id:0' id=…/>.
func occupantIDElement(id string) *xml.Element {
	return xml.New(NSOccupantID, "occupant-id").SetAttr("id", id)
}

// isOccupantID reports an occupant-id element. Any a client put in a
// stanza is dropped before the room sends it on: §4 says the service MUST
// replace it, and there is never more than one, the room's.
func isOccupantID(c *xml.Element) bool { return c.Space == NSOccupantID }
