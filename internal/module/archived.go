package module

import (
	"time"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// nsStanzaID is XEP-0359's namespace.
const nsStanzaID = "urn:xmpp:sid:0"

// ArchivedFor reports whether el carries a XEP-0359 <stanza-id/> by owner:
// the owner's archive holds it (the archive module stamps what it stores
// and strips such ids that others wrote), so a client that reads the
// archive finds it there.
func ArchivedFor(el *xml.Element, owner jid.JID) bool { return StanzaIDBy(el, owner) != "" }

// StanzaIDBy returns the id of el's XEP-0359 <stanza-id/> by owner, ""
// if it has none.
func StanzaIDBy(el *xml.Element, owner jid.JID) string {
	by := owner.String()
	for _, ch := range el.Children {
		if e, ok := ch.(*xml.Element); ok && e.Space == nsStanzaID && e.Local == "stanza-id" && e.Attr("by") == by {
			return e.Attr("id")
		}
	}
	return ""
}

// archiveSyncKey marks a session whose client catches up from the archive.
type archiveSyncKey struct{}

// MarkArchiveSynced records that s's client fetches what it missed from
// the account's archive up to the moment at (it bound with XEP-0386 Bind 2,
// which got the archive's metadata then): offline storage then clears the
// messages the archive holds from before that moment instead of sending
// them a second time (XEP-0386 §3.2).
func MarkArchiveSynced(s Session, at time.Time) { s.SetValue(archiveSyncKey{}, at) }

// ArchiveSynced returns the moment given to MarkArchiveSynced for s, and
// false if there was none.
func ArchiveSynced(s Session) (time.Time, bool) {
	at, ok := s.Value(archiveSyncKey{}).(time.Time)
	return at, ok
}
