package blocking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// interestedKey marks, in Session.Value, a session that retrieved the
// blocklist: only those get pushes (§3.3, §3.4), as only they keep a copy.
type interestedKey struct{}

// interestedKey moves with a session resumed on another node
// (module.MovingKey): its client keeps its copy of the list.
var _ module.MovingKey = interestedKey{}

func (interestedKey) MovingName() string { return "blocking.interested" }
func (interestedKey) Encode(any) string  { return "1" }
func (interestedKey) Decode(string) any  { return true }

// errListFull is the refusal of a block command over the limit; nothing
// was stored.
var errListFull = errors.New("blocklist full")

// get answers the blocklist retrieval (§3.2) with every item, sorted; an
// empty list is an empty <blocklist/>. The session is marked interested
// before the list is read, so a change made meanwhile by another resource
// reaches it as a push rather than falling between the two.
func (b *Blocking) get(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	if payload.Local != "blocklist" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <blocklist/>")
	}
	if ev.Origin != nil {
		ev.Origin.SetValue(interestedKey{}, true)
	}
	set, err := b.lists.get(ev.Ctx, ev.From.Bare())
	if err != nil {
		b.h.Log.Warn("blocking: get", "user", ev.From.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	list := xml.New(NS, "blocklist")
	for _, j := range set.sorted() {
		list.Append(itemElement(j))
	}
	return stanza.IQResult(ev.Stanza, list)
}

// set dispatches <block/> and <unblock/>.
func (b *Blocking) set(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	switch payload.Local {
	case "block":
		return b.block(ev, payload)
	case "unblock":
		return b.unblock(ev, payload)
	}
	return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <block/> or <unblock/>")
}

func itemElement(j jid.JID) *xml.Element {
	return xml.New(NS, "item").SetAttr("jid", j.String())
}

// parseItems returns the JIDs of payload's <item/> children, canonical and
// without duplicates, in request order. Other children are ignored, as
// extensions may add them. Every item must carry a 'jid' (bad-request)
// that is a JID (jid-malformed): one bad item refuses the whole request,
// before anything is stored. At most limit items are looked at: a request
// with more is refused with resource-constraint before any JID is prepared,
// so an oversized request costs little.
func parseItems(payload *xml.Element, limit int) ([]jid.JID, *stanza.Error) {
	var raw []*xml.Element
	for _, el := range payload.Elements() {
		if el.Space == NS && el.Local == "item" {
			raw = append(raw, el)
		}
	}
	if len(raw) > limit {
		return nil, &stanza.Error{Condition: stanza.ResourceConstraint, Text: "a blocklist holds at most " + strconv.Itoa(limit) + " items"}
	}
	out := make([]jid.JID, 0, len(raw))
	seen := make(map[jid.JID]bool, len(raw))
	for _, el := range raw {
		if !el.HasAttr("jid") {
			return nil, &stanza.Error{Condition: stanza.BadRequest, Text: "<item/> without 'jid'"}
		}
		j, err := jid.Parse(el.Attr("jid"))
		if err != nil {
			return nil, &stanza.Error{Condition: stanza.JIDMalformed, Text: "not a JID: " + truncate(el.Attr("jid"))}
		}
		if !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	return out, nil
}

// truncate bounds what an error text repeats of the request.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// block adds items to the list (§3.3): at least one item (bad-request),
// never the account itself (not-acceptable: its own resources are never
// blocked, so the item could only mislead), and never beyond
// limits.max_blocklist_items (resource-constraint, nothing stored). Items
// already blocked are not an error. Then the newly blocked JIDs stop
// seeing the user's presence, the user's sessions see them go offline,
// the result goes to the requester and the pushes to every interested
// session.
func (b *Blocking) block(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	limit := b.h.Config.Limits.MaxBlocklistItems
	items, serr := parseItems(payload, limit)
	if serr != nil {
		return stanza.ErrorReplyFor(ev.Stanza, serr)
	}
	if len(items) == 0 {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "<block/> needs at least one <item/>")
	}
	user := ev.From.Bare()
	for _, j := range items {
		if j.Bare() == user {
			return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "an account cannot block itself")
		}
	}
	kv := b.h.Store.KV()
	var added []jid.JID
	err := b.lists.change(ev.Ctx, user, func(cur *blockSet) (*blockSet, error) {
		for _, j := range items {
			if !cur.has(j) {
				added = append(added, j)
			}
		}
		if len(added) == 0 {
			return nil, nil
		}
		if cur.len()+len(added) > limit {
			added = nil
			return nil, errListFull
		}
		next := cur.clone()
		for i, j := range added {
			if err := kv.Set(ev.Ctx, kvBucket, user.String(), j.String(), nil); err != nil {
				added = added[:i]
				return next, err
			}
			next.items[j] = struct{}{}
		}
		return next, nil
	})
	switch {
	case errors.Is(err, errListFull):
		return stanza.ErrorReply(ev.Stanza, stanza.ResourceConstraint, "a blocklist holds at most "+strconv.Itoa(limit)+" items")
	case err != nil:
		b.h.Log.Error("blocking: block", "user", user.String(), "err", err)
	}
	if len(added) > 0 {
		b.withdrawPresence(ev.Ctx, user, added)
	}
	if err == nil {
		// XEP-0377: once the block stands, whatever it reports
		// (report.go), before the answer, so that a result means the
		// report was taken. An item already blocked may be reported again.
		b.reports(ev.Ctx, user, payload)
	}
	// After a storage failure, what was stored before it is in force: the
	// requester gets the error, every interested session the push of what
	// is blocked now.
	ev.Reply(result(ev.Stanza, err))
	if len(added) > 0 {
		b.push(user, itemsElement("block", added))
	}
	return nil
}

// result is the answer to a change: a result, or internal-server-error
// after a storage failure (logged by the caller).
func result(req *xml.Element, err error) *xml.Element {
	if err != nil {
		return stanza.ErrorReply(req, stanza.InternalServerError, "")
	}
	return stanza.IQResult(req, nil)
}

// unblock removes the items (§3.4), or every item when there is none
// (§3.5). Items that are not blocked are not an error: the result says the
// JID is not blocked now, which is true. The JIDs actually removed are
// pushed (an empty <unblock/> after unblocking everything) and get the
// user's presence again.
func (b *Blocking) unblock(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	items, serr := parseItems(payload, b.h.Config.Limits.MaxBlocklistItems)
	if serr != nil {
		return stanza.ErrorReplyFor(ev.Stanza, serr)
	}
	user := ev.From.Bare()
	all := len(items) == 0
	kv := b.h.Store.KV()
	var removed []jid.JID
	err := b.lists.change(ev.Ctx, user, func(cur *blockSet) (*blockSet, error) {
		targets := items
		if all {
			targets = cur.sorted()
		}
		next := cur.clone()
		for _, j := range targets {
			if !next.has(j) {
				continue
			}
			if err := kv.Delete(ev.Ctx, kvBucket, user.String(), j.String()); err != nil {
				return next, err
			}
			delete(next.items, j)
			removed = append(removed, j)
		}
		if len(removed) == 0 {
			return nil, nil
		}
		return next, nil
	})
	if err != nil {
		b.h.Log.Error("blocking: unblock", "user", user.String(), "err", err)
	}
	if len(removed) > 0 {
		b.restorePresence(ev.Ctx, user, removed)
	}
	ev.Reply(result(ev.Stanza, err))
	switch {
	case len(removed) == 0:
	case all && err == nil:
		b.push(user, xml.New(NS, "unblock"))
	default:
		// Also after unblock-all failed part way: what was removed.
		b.push(user, itemsElement("unblock", removed))
	}
	return nil
}

func itemsElement(local string, items []jid.JID) *xml.Element {
	el := xml.New(NS, local)
	for _, j := range items {
		el.Append(itemElement(j))
	}
	return el
}

// push sends payload in an IQ set, without 'from' (it comes from the
// account, like a roster push), to every session of user that retrieved
// the blocklist (§3.3, §3.4, §3.5), the requester included.
func (b *Blocking) push(user jid.JID, payload *xml.Element) {
	for _, s := range b.h.Router.Sessions(user) {
		if on, _ := s.Value(interestedKey{}).(bool); !on {
			continue
		}
		s.Send(xml.New("", "iq").SetAttr("type", stanza.TypeSet).SetAttr("id", pushID()).
			SetAttr("to", s.JID().String()).Append(payload))
	}
}

func pushID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "block-" + hex.EncodeToString(b[:])
}

// rosterMatches returns the roster items of user that the given items
// block (a domain item blocks every contact at the domain).
func (b *Blocking) rosterMatches(ctx context.Context, user jid.JID, items []jid.JID) []storage.RosterItem {
	roster, _, err := b.h.Store.Roster().Items(ctx, user.String())
	if err != nil {
		b.h.Log.Warn("blocking: roster", "user", user.String(), "err", err)
		return nil
	}
	set := emptySet()
	for _, j := range items {
		set.items[j] = struct{}{}
	}
	var out []storage.RosterItem
	for _, it := range roster {
		if j, err := jid.Parse(it.JID); err == nil && set.blocks(j) {
			out = append(out, it)
		}
	}
	return out
}

func hasFrom(it storage.RosterItem) bool {
	return it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth
}

func hasTo(it storage.RosterItem) bool {
	return it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth
}

// availableSessions returns user's sessions that have sent available
// presence.
func (b *Blocking) availableSessions(user jid.JID) []module.Session {
	var out []module.Session
	for _, s := range b.h.Router.Sessions(user) {
		if module.Available(s) {
			out = append(out, s)
		}
	}
	return out
}

// withdrawPresence applies a block to presence (§3.3): every newly blocked
// contact allowed to see the user's presence (a subscription from it, RFC
// 6121) gets unavailable presence from each available resource, routed
// past the list that now blocks it; and every newly blocked contact whose
// presence the user has (a subscription to it) is shown to the user's
// sessions as unavailable, since its presence will not reach them any more.
// Subscriptions stay as they are ("polite blocking", §4). Entities that
// got only directed presence are not known here and are not told.
func (b *Blocking) withdrawPresence(ctx context.Context, user jid.JID, added []jid.JID) {
	sessions := b.availableSessions(user)
	if len(sessions) == 0 {
		return
	}
	bypass := context.WithValue(ctx, bypassKey{}, true)
	for _, it := range b.rosterMatches(ctx, user, added) {
		if hasFrom(it) {
			for _, s := range sessions {
				b.h.Router.Route(bypass, xml.New("", "presence").SetAttr("type", "unavailable").
					SetAttr("from", s.JID().String()).SetAttr("to", it.JID))
			}
		}
		if hasTo(it) {
			for _, s := range sessions {
				s.Send(xml.New("", "presence").SetAttr("type", "unavailable").
					SetAttr("from", it.JID).SetAttr("to", s.JID().String()))
			}
		}
	}
}

// restorePresence undoes withdrawPresence for unblocked contacts (§3.4):
// those with a subscription from the user get the current presence of each
// available resource, and those the user is subscribed to are probed from
// the account's bare JID, so the user's sessions learn their presence
// again. Both are routed normally: a contact still blocked by another item
// (its domain) stays cut off.
func (b *Blocking) restorePresence(ctx context.Context, user jid.JID, removed []jid.JID) {
	sessions := b.availableSessions(user)
	if len(sessions) == 0 {
		return
	}
	for _, it := range b.rosterMatches(ctx, user, removed) {
		if hasFrom(it) {
			for _, s := range sessions {
				if p := s.Presence(); p != nil {
					b.h.Router.Route(ctx, p.WithAttr("from", s.JID().String()).WithAttr("to", it.JID))
				}
			}
		}
		if hasTo(it) {
			b.h.Router.Route(ctx, xml.New("", "presence").SetAttr("type", "probe").
				SetAttr("from", user.String()).SetAttr("to", it.JID))
		}
	}
}
