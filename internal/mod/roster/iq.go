package roster

import (
	"errors"
	"slices"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// handleGet answers a roster get (RFC 6121 §2.2). With a 'ver' attribute
// (RFC 6121 §2.6) that equals the current version the answer is an empty
// result; any other version, including the empty one a client bootstraps
// with, gets the whole roster and its version: the simplest behaviour
// §2.6.3 allows, and pushes keep the client current after that. Storage
// gives every roster a version, even one that was never changed, so a new
// account's empty roster is cacheable like any other.
//
// The requesting resource becomes interested (and so receives pushes)
// before the roster is read, and the result is queued under the owner's
// lock, the lock every change holds while it pushes (Store.Save). So
// results and pushes reach the client in the order of the versions they
// carry: a push that arrives before the result is already reflected in it.
// Otherwise a change racing the get (directory pre-population runs right
// at login) could be pushed and then overwritten by an older result, and
// the client would show a roster without it until its next login.
func (r *Roster) handleGet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if q.Local != "query" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "")
	}
	if ev.Origin == nil {
		return r.rosterResult(ev, q)
	}
	// RFC 6121 §2.2: a resource that requested the roster is "interested"
	// and receives roster pushes from now on.
	ev.Origin.SetInterested(true)
	unlock := r.store.Lock(ev.From)
	defer unlock()
	res := r.rosterResult(ev, q)
	if res == nil || res.Attr("to") != ev.Origin.JID().String() {
		// Not for the session's own stream (a session's stanzas are
		// stamped with its full JID, so this does not happen): the router
		// delivers it, after the lock is released.
		return res
	}
	ev.Origin.Send(res)
	return nil
}

// rosterResult reads owner's roster and builds the answer to the get q.
func (r *Roster) rosterResult(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	items, ver, err := r.store.Items(ev.Ctx, ev.From)
	if err != nil {
		r.h.Log.Error("roster: get", "user", ev.From.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	// ver is never "" (storage.Roster's contract); the checks only keep a
	// backend that broke it from making an empty cached roster look current.
	versioned := q.HasAttr("ver")
	if versioned && ver != "" && q.Attr("ver") == ver {
		return stanza.IQResult(ev.Stanza, nil)
	}
	res := xml.New(NS, "query")
	if versioned && ver != "" {
		res.SetAttr("ver", ver)
	}
	for _, it := range items {
		res.Append(ItemElement(it))
	}
	return stanza.IQResult(ev.Stanza, res)
}

// itemSet is a parsed and validated roster set item.
type itemSet struct {
	contact jid.JID
	remove  bool
	name    string
	groups  []string
}

// parseSet validates a roster set against RFC 6121 §2.3.3 and §2.1.2. The
// 'subscription' attribute is honoured only with the value "remove";
// §2.1.2.5 makes the server ignore every other value, and 'ask' and
// 'approved' are ignored too (§2.1.2.1, §2.1.2.2): subscription state
// changes only through presence stanzas, so a client cannot forge it here.
func parseSet(user jid.JID, q *xml.Element) (itemSet, *stanza.Error) {
	if q.Local != "query" {
		return itemSet{}, &stanza.Error{Condition: stanza.BadRequest}
	}
	els := q.Elements()
	if len(els) != 1 || els[0].Space != NS || els[0].Local != "item" {
		return itemSet{}, &stanza.Error{Condition: stanza.BadRequest, Text: "a roster set carries exactly one item"}
	}
	it := els[0]
	if !it.HasAttr("jid") {
		return itemSet{}, &stanza.Error{Condition: stanza.BadRequest, Text: "item without jid"}
	}
	contact, err := jid.Parse(it.Attr("jid"))
	if err != nil {
		return itemSet{}, &stanza.Error{Condition: stanza.JIDMalformed}
	}
	if contact.Resource() != "" {
		// Subscriptions, and so roster items, are between bare JIDs.
		return itemSet{}, &stanza.Error{Condition: stanza.BadRequest, Text: "roster items are bare JIDs"}
	}
	if contact == user.Bare() {
		// The user's own presence is shared between their resources by
		// the server (RFC 6121 §4.2.2) with no subscription, so a roster
		// item for oneself could only hold contradictory state.
		return itemSet{}, &stanza.Error{Condition: stanza.NotAllowed, Text: "cannot add yourself to your roster"}
	}
	s := itemSet{contact: contact}
	if it.Attr("subscription") == "remove" {
		s.remove = true
		return s, nil
	}
	s.name = it.Attr("name")
	if len(s.name) > MaxNameBytes {
		return itemSet{}, &stanza.Error{Condition: stanza.NotAcceptable, Text: "name too long"}
	}
	for _, g := range it.Elements() {
		if g.Space != NS || g.Local != "group" {
			continue
		}
		name := g.Text()
		switch {
		case name == "":
			return itemSet{}, &stanza.Error{Condition: stanza.NotAcceptable, Text: "empty group name"}
		case len(name) > MaxGroupBytes:
			return itemSet{}, &stanza.Error{Condition: stanza.NotAcceptable, Text: "group name too long"}
		case slices.Contains(s.groups, name):
			return itemSet{}, &stanza.Error{Condition: stanza.BadRequest, Text: "duplicate group"}
		}
		s.groups = append(s.groups, name)
	}
	if len(s.groups) > MaxGroups {
		return itemSet{}, &stanza.Error{Condition: stanza.NotAcceptable, Text: "too many groups"}
	}
	slices.Sort(s.groups)
	return s, nil
}

// handleSet adds, updates or removes an item (RFC 6121 §2.3–2.5).
func (r *Roster) handleSet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	user := ev.From.Bare()
	set, serr := parseSet(user, q)
	if serr != nil {
		return stanza.ErrorReplyFor(ev.Stanza, serr)
	}
	if set.remove {
		return r.remove(ev, set.contact)
	}
	unlock := r.store.Lock(user)
	before, err := r.store.Load(ev.Ctx, user, set.contact)
	if err == nil {
		after := before
		after.InRoster = true
		after.Name = set.name
		after.Groups = set.groups
		err = r.store.Save(ev.Ctx, user, before, after, nil)
	}
	unlock()
	if err != nil {
		return r.storeError(ev, err)
	}
	return stanza.IQResult(ev.Stanza, nil)
}

// remove deletes an item (RFC 6121 §2.5). Removing an item cancels every
// subscription with the contact, so the server tells the contact as §2.5.2
// requires: unsubscribe if the user was subscribed or asking, unsubscribed
// if the contact was subscribed or asking; and, as for any cancelled
// subscription from the contact (§3.2.2), unavailable presence from each of
// the user's available resources.
func (r *Roster) remove(ev *module.StanzaEvent, contact jid.JID) *xml.Element {
	user := ev.From.Bare()
	unlock := r.store.Lock(user)
	before, err := r.store.Load(ev.Ctx, user, contact)
	if err == nil && !before.InRoster && !before.PendingIn {
		unlock()
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	}
	if err == nil {
		err = r.store.Save(ev.Ctx, user, before, Contact{}, nil)
	}
	unlock()
	if err != nil {
		return r.storeError(ev, err)
	}
	// Routed only after unlocking: local delivery runs synchronously.
	send := func(typ string) {
		p := xml.New("", "presence").SetAttr("from", user.String()).SetAttr("to", contact.String()).SetAttr("type", typ)
		r.h.Router.Route(ev.Ctx, p)
	}
	if before.HasTo() || before.AskOut {
		send("unsubscribe")
	}
	if before.HasFrom() || before.PendingIn {
		send("unsubscribed")
	}
	if before.HasFrom() {
		r.h.UnavailableTo(ev.Ctx, user, contact)
	}
	if before.Subscription != storage.SubNone {
		r.h.Subscriptions.Fire(module.EventSubscriptionChanged, &module.SubscriptionEvent{
			Ctx: ev.Ctx, Host: r.h, User: user, Contact: contact.Bare(),
			Before: before.Subscription, After: storage.SubNone,
		})
	}
	return stanza.IQResult(ev.Stanza, nil)
}

func (r *Roster) storeError(ev *module.StanzaEvent, err error) *xml.Element {
	if errors.Is(err, ErrRosterFull) {
		return stanza.ErrorReply(ev.Stanza, stanza.ResourceConstraint, "roster is full")
	}
	r.h.Log.Error("roster: set", "user", ev.From.Bare().String(), "err", err)
	return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
}
