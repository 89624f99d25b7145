package vcard

import (
	"context"
	"errors"

	"parley/internal/directory"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Profiles maps vCards to a directory (seed 001 "Profiles and Directory"):
// on hosts with accounts = "directory" the host's AccountSource implements
// it (internal/directory), and the vCard a user sees is built from the
// directory entry, static values and what Parley stores locally.
type Profiles interface {
	VCard(ctx context.Context, username string, local *xml.Element) (*xml.Element, error)
	UpdateVCard(ctx context.Context, username string, in *xml.Element) (local *xml.Element, err error)
}

func (v *VCard) profiles() Profiles {
	p, _ := v.h.AccountSource.(Profiles)
	return p
}

// storedLocal returns the locally stored part of owner's vCard, nil if none.
func (v *VCard) storedLocal(ev *module.StanzaEvent) (*xml.Element, error) {
	b, err := v.h.Store.VCards().Get(ev.Ctx, ev.To.Bare().String())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return xml.ParseElement(b, v.parseLimits(), stanza.NSClient)
}

// getDirectory answers a vCard get on a directory host.
func (v *VCard) getDirectory(ev *module.StanzaEvent, p Profiles) *xml.Element {
	local, err := v.storedLocal(ev)
	if err != nil {
		v.h.Log.Warn("vcard: local part", "owner", ev.To.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	el, err := p.VCard(ev.Ctx, ev.To.Local(), local)
	if err != nil {
		return v.directoryError(ev, err)
	}
	return v.found(ev, el)
}

// setDirectory applies a vCard set on a directory host: update-mode fields
// go to the directory, readonly/static edits are refused with not-allowed
// (nothing is changed then), the rest is stored locally.
func (v *VCard) setDirectory(ev *module.StanzaEvent, p Profiles, payload *xml.Element) *xml.Element {
	local, err := p.UpdateVCard(ev.Ctx, ev.To.Local(), payload)
	if err != nil {
		return v.directoryError(ev, err)
	}
	if err := v.h.Store.VCards().Set(ev.Ctx, ev.To.Bare().String(), local.Bytes()); err != nil {
		v.h.Log.Warn("vcard: set local part", "owner", ev.To.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	v.notify(ev.Ctx, ev.To.Bare(), payload)
	return stanza.IQResult(ev.Stanza, nil)
}

func (v *VCard) directoryError(ev *module.StanzaEvent, err error) *xml.Element {
	var ro *directory.ReadOnlyError
	switch {
	case errors.As(err, &ro):
		return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, ro.Error())
	case errors.Is(err, directory.ErrProfileRefused):
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, err.Error())
	case errors.Is(err, directory.ErrNoSuchUser):
		// As for an account the core does not know (XEP-0054 §3.3: the
		// same condition whether the user or its vCard is missing).
		return stanza.ErrorReply(ev.Stanza, stanza.ServiceUnavailable, "")
	}
	v.h.Log.Warn("vcard: directory", "owner", ev.To.Bare().String(), "err", err)
	return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "the user directory is unavailable")
}
