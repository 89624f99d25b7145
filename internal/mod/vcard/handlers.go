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
// IQ had no 'to'). When none is stored, the owner gets an empty <vCard/>
// (§3.1 allows it, and clients treat it as "nothing set yet" without error
// handling), while anybody else gets item-not-found (§3.3: the server "MUST
// return a stanza error"). Unknown accounts never get here: the core answers
// service-unavailable for them.
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
		if ev.From.Bare() == owner {
			return stanza.IQResult(ev.Stanza, xml.New(NS, "vCard"))
		}
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	case err != nil:
		v.h.Log.Warn("vcard: get", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	el, err := xml.ParseElement(b, v.parseLimits(), stanza.NSClient)
	if err != nil {
		v.h.Log.Error("vcard: stored vCard does not parse", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	return stanza.IQResult(ev.Stanza, el)
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
