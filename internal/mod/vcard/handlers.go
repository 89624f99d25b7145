package vcard

import (
	"errors"
	"strconv"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// get returns the vCard of the addressed account (the sender's own when the
// IQ had no 'to'). When there is none (nothing stored, or an empty <vCard/>
// left by clearing it), the owner gets an empty <vCard/> (§3.1 allows it
// instead of item-not-found, and clients treat it as "nothing set yet"
// without error handling), while anybody else gets service-unavailable:
// §3.3 (v1.3) requires the same condition for "no vCard" and "no such
// user", so the answer cannot be used to harvest accounts, and the core
// answers unknown accounts service-unavailable (RFC 6121 §8.5.1).
func (v *VCard) get(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	if payload.Local != "vCard" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <vCard xmlns='vcard-temp'/>")
	}
	if p := v.profiles(); p != nil {
		return v.getDirectory(ev, p)
	}
	owner := ev.To.Bare()
	b, err := v.h.Store.VCards().Get(ev.Ctx, owner.String())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return v.none(ev)
	case err != nil:
		v.h.Log.Warn("vcard: get", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	el, err := xml.ParseElement(b, v.parseLimits(), stanza.NSClient)
	if err != nil {
		v.h.Log.Error("vcard: stored vCard does not parse", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	return v.found(ev, el)
}

// found answers a get with card, unless card is empty: an empty <vCard/>
// is what clearing stores, so it is "no vCard" (none).
func (v *VCard) found(ev *module.StanzaEvent, card *xml.Element) *xml.Element {
	if card == nil || len(card.Elements()) == 0 {
		return v.none(ev)
	}
	return stanza.IQResult(ev.Stanza, card)
}

// none answers a get for an account without a vCard: the owner an empty
// <vCard/> (§3.1), anybody else service-unavailable, as for an account
// that does not exist (§3.3).
func (v *VCard) none(ev *module.StanzaEvent) *xml.Element {
	if ev.From.Bare() == ev.To.Bare() {
		return stanza.IQResult(ev.Stanza, xml.New(NS, "vCard"))
	}
	return stanza.ErrorReply(ev.Stanza, stanza.ServiceUnavailable, "")
}

// set replaces the sender's vCard. XEP-0054 has no partial update: the
// element sent is stored whole, and an empty <vCard/> clears it.
func (v *VCard) set(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	owner := ev.To.Bare()
	if ev.From.Bare() != owner {
		// §3.2: SHOULD be forbidden or not-allowed.
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "")
	}
	if payload.Local != "vCard" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <vCard xmlns='vcard-temp'/>")
	}
	b := payload.Bytes()
	if limit := v.h.Config.Limits.MaxVCardBytes; len(b) > limit {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "vCard exceeds "+strconv.Itoa(limit)+" bytes")
	}
	if p := v.profiles(); p != nil {
		return v.setDirectory(ev, p, payload)
	}
	if err := v.h.Store.VCards().Set(ev.Ctx, owner.String(), b); err != nil {
		v.h.Log.Warn("vcard: set", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	v.notify(ev.Ctx, owner, payload)
	return stanza.IQResult(ev.Stanza, nil)
}

// getHost answers a vCard request to the domain itself. The server has no
// vCard of its own (no config for one), so it returns an empty <vCard/>,
// which tells the client "supported, nothing set".
func (v *VCard) getHost(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	if payload.Local != "vCard" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <vCard xmlns='vcard-temp'/>")
	}
	return stanza.IQResult(ev.Stanza, xml.New(NS, "vCard"))
}

// parseLimits are the limits stored vCards are read back with. The data is
// the server's own, so they are generous (twice the larger of the vCard and
// stanza bounds, so that lowering either later does not make stored vCards
// unreadable) and only guard against a corrupted store.
func (v *VCard) parseLimits() xml.Limits {
	l := v.h.Config.Limits
	return xml.Limits{MaxStanzaBytes: 2 * max(l.MaxVCardBytes, l.MaxStanzaBytes), MaxDepth: l.MaxDepth + 1, MaxAttrs: l.MaxAttrs}
}
