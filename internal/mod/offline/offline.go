package offline

import (
	"context"
	"errors"
	"time"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces that decide whether a message is worth storing.
const (
	nsHints      = "urn:xmpp:hints"                        // XEP-0334
	nsChatStates = "http://jabber.org/protocol/chatstates" // XEP-0085
)

// delayReason is the <delay/> text of XEP-0160 §2's example.
const delayReason = "Offline Storage"

// verdict is what to do with a message no resource can take now.
type verdict int

const (
	store   verdict = iota // keep it for the next session
	discard                // drop it silently: it only matters now
)

// classify applies XEP-0160 §3 and XEP-0334 to a message of type normal or
// chat:
//   - <no-store/> (XEP-0334 §4.2): the sender asked that it not be kept,
//     even temporarily, so it is discarded;
//   - <store/> (§4.4): stored whatever it contains;
//   - a message whose only payload is chat states (XEP-0085), hints or a
//     <thread/> is a notification about a conversation happening now, and
//     XEP-0160 §3 says not to store it;
//   - everything else is stored, including body-less messages with other
//     payloads (receipts, markers, encrypted content), which clients
//     rely on receiving later.
//
// Discarded messages are dropped silently rather than bounced: an error for
// every lost typing notification would be noise for the sender, and both
// hints and XEP-0085 treat these stanzas as disposable.
func classify(msg *xml.Element) verdict {
	if msg.Child(nsHints, "no-store") != nil {
		return discard
	}
	if msg.Child(nsHints, "store") != nil {
		return store
	}
	for _, c := range msg.Elements() {
		switch {
		case c.Space == nsChatStates, c.Space == nsHints:
		case c.Space == "" && c.Local == "thread":
		default:
			return store
		}
	}
	return discard
}

// onMessage takes a normal or chat message to an existing account that no
// resource would receive now (RFC 6121 §8.5.2.2.1; messages to an
// unavailable full JID arrive here too, re-fired as bare by the core). Other
// types fall through to the core, which bounces groupchat and ignores
// headline and error (XEP-0160 §3).
func (o *Offline) onMessage(ev *module.StanzaEvent) bool {
	typ := stanza.Type(ev.Stanza)
	if typ != stanza.TypeNormal && typ != "chat" {
		return false
	}
	bare := ev.To.Bare()
	if len(ev.MessageTargets(o.h.Router, bare, typ)) > 0 {
		return false
	}
	if ok, err := o.h.AccountExists(ev.Ctx, bare.Local()); !ok && err == nil {
		// No such account: the core bounces.
		return false
	}
	// An error means the account source could not answer (a directory
	// outage): like the router, assume the account exists and store the
	// message; if storage itself is down, Push fails and the core's
	// service-unavailable below is the truthful answer.
	if classify(ev.Stanza) == discard {
		return true
	}
	// The stamp is added now, when the server takes the message, and is
	// stored with it: it must say when the message was sent, not when it
	// was delivered.
	stamped := ev.Stanza.WithChildren(stanza.Delay(o.h.Domain, time.Now(), delayReason))
	err := o.h.Store.Offline().Push(ev.Ctx, bare.String(), stamped.Bytes(), o.h.Config.Limits.OfflineQuota)
	switch {
	case errors.Is(err, storage.ErrQuotaExceeded):
		// XEP-0160 §2 step 3 and RFC 6121 §8.5.2.2.1: a full offline queue
		// is answered with service-unavailable.
		ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.ServiceUnavailable, "offline storage of the recipient is full"))
		return true
	case err != nil:
		o.h.Log.Warn("offline: store", "owner", bare.String(), "err", err)
		return false // the core bounces with service-unavailable
	}
	// A resource may have become available between the check above and the
	// Push, and already have collected its offline messages: deliver what
	// is stored now so this message does not wait for the next login.
	if targets := o.h.Router.MessageTargets(bare, typ); len(targets) > 0 {
		o.deliver(ev.Ctx, bare, targets)
	}
	return true
}

// onAvailable delivers the stored messages to a session that just sent its
// initial presence (XEP-0160 §2 step 5), unless its priority is negative:
// such a resource never receives messages addressed to the bare JID
// (RFC 6121 §8.5.2.1.1), and XEP-0160 waits for "non-negative available
// presence".
func (o *Offline) onAvailable(ev *module.SessionEvent) bool {
	if ev.Session.Priority() < 0 {
		return false
	}
	o.deliver(ev.Ctx, ev.Session.JID().Bare(), []module.Session{ev.Session})
	return false
}

// onMovedHere delivers the stored messages to an available session that
// was just handed over from another node of the cluster (XEP-0198
// resumption there): a message that reached the old node after the
// session left it, before this node bound it, was stored as for an
// account with no available resource, and the session will send no
// initial presence to collect it.
func (o *Offline) onMovedHere(ev *module.SessionEvent) bool {
	if ev.Moved && module.Available(ev.Session) {
		return o.onAvailable(ev)
	}
	return false
}

// deliver pops every stored message of bare, oldest first, and sends each to
// every session in to. Pop deletes what it returns atomically, so each
// message is delivered exactly once however many sessions log in at once.
// The stanzas keep their original 'to' (XEP-0160 §2 example). A session
// whose client syncs from the archive (XEP-0386 Bind 2:
// module.ArchiveSynced) is not sent the messages the archive still holds
// from before its bind (inArchive): the XEP has the server clear offline
// messages "as they will be provided by MAM". Every other message is
// sent, never dropped: one the archive never kept (archiving off, a kind
// it does not keep), no longer keeps (retention, its cap, a purge) or has
// not written yet, and one stored after the bind, which the client's
// catch-up may not reach.
func (o *Offline) deliver(ctx context.Context, bare jid.JID, to []module.Session) {
	msgs, err := o.h.Store.Offline().Pop(ctx, bare.String())
	if err != nil {
		o.h.Log.Warn("offline: pop", "owner", bare.String(), "err", err)
		return
	}
	lim := o.parseLimits()
	els := make([]*xml.Element, 0, len(msgs))
	for _, m := range msgs {
		el, err := xml.ParseElement(m.Stanza, lim, stanza.NSClient)
		if err != nil {
			o.h.Log.Error("offline: stored stanza does not parse; dropped", "owner", bare.String(), "id", m.ID, "err", err)
			continue
		}
		els = append(els, el)
	}
	var held map[*xml.Element]time.Time
	for _, s := range to {
		if _, ok := module.ArchiveSynced(s); ok {
			held = o.inArchive(ctx, bare, els)
			break
		}
	}
	for _, el := range els {
		for _, s := range to {
			if stamp, ok := held[el]; ok {
				// Stamps are to the millisecond: only what was stored
				// before the bind's millisecond counts as before it.
				if at, synced := module.ArchiveSynced(s); synced && stamp.Before(at.Truncate(time.Millisecond)) {
					continue // the client gets it from the archive
				}
			}
			s.Send(el)
		}
	}
}

// inArchive returns, for each of els that the account's archive holds
// now, the time the server took it (its offline <delay/> stamp). A
// message carries the archive's <stanza-id/> from the moment it was
// queued for the archive, which may since have dropped it (retention, the
// per-account cap, a purge): the archive is asked, after the host's
// flush. When it cannot answer, nothing counts as held (everything is
// sent: a duplicate, never a loss).
func (o *Offline) inArchive(ctx context.Context, bare jid.JID, els []*xml.Element) map[*xml.Element]time.Time {
	byID := map[string]*xml.Element{}
	var ids []string
	for _, el := range els {
		if id := module.StanzaIDBy(el, bare); id != "" && byID[id] == nil {
			byID[id] = el
			ids = append(ids, id)
		}
	}
	held := map[*xml.Element]time.Time{}
	keep := func(page storage.ArchivePage) {
		for _, m := range page.Messages {
			if el := byID[m.ID]; el != nil {
				held[el] = delayStamp(el)
			}
		}
	}
	if len(ids) == 0 {
		return held
	}
	// What the archive module accepted so far is written first (it
	// writes in batches), so that a message just archived counts.
	if err := o.h.Flush(ctx); err != nil {
		o.h.Log.Warn("offline: flushing the archive", "owner", bare.String(), "err", err)
		return held
	}
	arch := o.h.Store.Archive()
	page, err := arch.Query(ctx, bare.String(), storage.ArchiveQuery{IDs: ids, Limit: len(ids)})
	switch {
	case err == nil:
		keep(page)
	case errors.Is(err, storage.ErrNotFound):
		// Some are gone: ask for each.
		for _, id := range ids {
			if page, err := arch.Query(ctx, bare.String(), storage.ArchiveQuery{IDs: []string{id}, Limit: 1}); err == nil {
				keep(page)
			}
		}
	default:
		o.h.Log.Warn("offline: asking the archive", "owner", bare.String(), "err", err)
	}
	return held
}

// delayStamp is the stamp of el's offline <delay/> (when the server took
// it), the zero time if it has none, which counts as before any bind
// (offline storage stamps every message it takes).
func delayStamp(el *xml.Element) time.Time {
	for _, ch := range el.Elements() {
		if ch.Space == "urn:xmpp:delay" && ch.Local == "delay" {
			if t, err := time.Parse(time.RFC3339Nano, ch.Attr("stamp")); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// parseLimits are the limits stored stanzas are read back with. They passed
// the stream limits when they arrived; re-serialization and the added
// <delay/> can make them slightly bigger, and the limits may have been
// lowered since, so the byte bound is doubled. The data is the server's own;
// the limits only guard against a corrupted store.
func (o *Offline) parseLimits() xml.Limits {
	l := o.h.Config.Limits
	return xml.Limits{MaxStanzaBytes: 2 * l.MaxStanzaBytes, MaxDepth: l.MaxDepth + 1, MaxAttrs: l.MaxAttrs}
}
