package vcard

import (
	"context"
	"errors"
	"fmt"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Service is the key under which the module publishes itself, for modules
// that read or write vCards on a user's behalf (avatar conversion).
var Service = module.NewServiceKey[*VCard]("vcard")

// Of returns the vCard module of h, or nil when it does not run.
func Of(h *module.Host) *VCard {
	v, _ := module.Lookup(h, Service)
	return v
}

// Watcher hears of a vCard a client set, after it was stored. It is told
// only of clients' sets, never of Put, so a module that keeps another view
// in step with vCards (and writes them back with Put) cannot loop.
type Watcher func(ctx context.Context, owner jid.JID, card *xml.Element)

// Watch registers fn. Call it from New or Start.
func (v *VCard) Watch(fn Watcher) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.watchers = append(v.watchers, fn)
}

func (v *VCard) notify(ctx context.Context, owner jid.JID, card *xml.Element) {
	v.mu.Lock()
	ws := v.watchers
	v.mu.Unlock()
	for _, fn := range ws {
		fn(ctx, owner, card)
	}
}

// Get returns owner's vCard as a contact reads it (built from the
// directory on directory hosts), nil when none is set.
func (v *VCard) Get(ctx context.Context, owner jid.JID) (*xml.Element, error) {
	owner = owner.Bare()
	var local *xml.Element
	b, err := v.h.Store.VCards().Get(ctx, owner.String())
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if local, err = xml.ParseElement(b, v.parseLimits(), stanza.NSClient); err != nil {
			return nil, err
		}
	}
	if p := v.profiles(); p != nil {
		return p.VCard(ctx, owner.Local(), local)
	}
	return local, nil
}

// Put replaces owner's vCard as a client's set would, under the same size
// bound and, on directory hosts, the same profile rules: a change to a
// field the directory holds read-only fails with the directory's
// *directory.ReadOnlyError and changes nothing. Watchers are not told
// (see Watcher).
func (v *VCard) Put(ctx context.Context, owner jid.JID, card *xml.Element) error {
	owner = owner.Bare()
	b := card.Bytes()
	if limit := v.h.Config.Limits.MaxVCardBytes; len(b) > limit {
		return fmt.Errorf("vcard: %d bytes exceed limits.max_vcard_bytes (%d)", len(b), limit)
	}
	if p := v.profiles(); p != nil {
		local, err := p.UpdateVCard(ctx, owner.Local(), card)
		if err != nil {
			return err
		}
		b = local.Bytes()
	}
	return v.h.Store.VCards().Set(ctx, owner.String(), b)
}
