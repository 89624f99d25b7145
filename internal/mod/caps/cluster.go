package caps

import (
	"strings"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// In a cluster a session's capabilities are learnt on its own node (its
// presence goes out there, and the answer to the disco#info query comes
// back there). The other nodes need them too: a contact publishing on
// another node asks Supports before sending a PEP notification. So the
// verified features of a local session are kept as a module.SharedKey
// value of the session, which the cluster publishes with the session, and
// Info falls back to that value for a session of the host this module has
// not observed itself. On a single node the value is set and never read.

// sharedInfo keys a session's verified capabilities for other nodes.
type sharedInfo struct{}

var (
	_ module.SharedKey = sharedInfo{}
	_ module.MovingKey = sharedInfo{}
)

func (sharedInfo) SharedName() string { return "caps" }

// MovingName makes the verified features go with a session resumed on
// another node (module.MovingKey), which has not seen its presence.
func (sharedInfo) MovingName() string { return "caps" }

func (sharedInfo) Encode(v any) string {
	info, _ := v.(*Info)
	if info == nil {
		return ""
	}
	return strings.Join(info.Features(), "\n")
}

func (sharedInfo) Decode(s string) any {
	if s == "" {
		return (*Info)(nil)
	}
	return newInfo(strings.Split(s, "\n"))
}

// share records what a session of this host is known to support on the
// session, for the other nodes of a cluster.
func (c *Caps) share(ch *Change) bool {
	if ch.Entity.Domain() != c.h.Domain || c.h.Router == nil {
		return false
	}
	if s := c.h.Router.Session(ch.Entity); s != nil {
		s.SetValue(sharedInfo{}, ch.New)
	}
	return false
}

// sharedOf returns what another node published about a session of this
// host, or nil.
func (c *Caps) sharedOf(entity jid.JID) *Info {
	if entity.Domain() != c.h.Domain || c.h.Router == nil {
		return nil
	}
	if s := c.h.Router.Session(entity); s != nil {
		info, _ := s.Value(sharedInfo{}).(*Info)
		return info
	}
	return nil
}
