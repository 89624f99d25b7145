// Package avatarconv implements XEP-0398 User Avatar to vCard-Based
// Avatars Conversion: a XEP-0084 avatar published to the account's PEP
// service becomes the PHOTO of its vcard-temp vCard (so clients that only
// know XEP-0153 see it), a PHOTO set through vcard-temp is published as
// XEP-0084 data and metadata (so PEP clients see it), and the account's
// available presence carries the XEP-0153 hash of the current avatar, which
// clients then need not compute.
package avatarconv

import (
	"context"
	"errors"
	"sync"

	"parley/internal/mod/pep"
	"parley/internal/mod/vcard"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// Namespaces.
const (
	// NS is the disco feature announcing the conversion (XEP-0398 §2).
	NS = "urn:xmpp:pep-vcard-conversion:0"
	// NSData and NSMetadata are XEP-0084's nodes and payload namespaces.
	NSData     = "urn:xmpp:avatar:data"
	NSMetadata = "urn:xmpp:avatar:metadata"
	// NSUpdate is XEP-0153's presence extension.
	NSUpdate = "vcard-temp:x:update"
)

// Priority of the presence handlers: above the presence module's
// out/presence handler (0), which stores and broadcasts what it gets, so it
// stores the stamped presence; and above the blocking filter's egress, so
// that nothing depends on which of the two runs first.
const Priority = 200

// Conv is the module of one host.
type Conv struct {
	h     *module.Host
	pep   *pep.PEP
	vcard *vcard.VCard
	offs  []func()
	// dirAvatars follows the directory's photos on a directory host
	// (directory.go); nil elsewhere.
	dirAvatars *dirAvatars

	// locks serialises the conversions of one owner (both directions), so
	// that two concurrent changes cannot leave PEP and vCard disagreeing.
	locks [lockStripes]sync.Mutex

	mu sync.Mutex
	// hashes caches the current avatar hash of accounts with sessions ("" =
	// no avatar), since every available presence they send needs it; it is
	// kept in step by the conversions and forgotten when the account's
	// last session ends, so it is bounded by the accounts online.
	hashes map[jid.JID]string
	gen    uint64
}

const lockStripes = 64

var _ module.Module = (*Conv)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	return &Conv{h: h, hashes: make(map[jid.JID]string)}, nil
}

// Name implements module.Module.
func (*Conv) Name() string { return "avatarconv" }

// Start connects the two views and the presence stamping. The vcard and
// pep modules must run.
func (c *Conv) Start(context.Context) error {
	c.pep, c.vcard = pep.Of(c.h), vcard.Of(c.h)
	if c.pep == nil || c.vcard == nil {
		return errors.New("avatarconv: the vcard and pep modules must run")
	}
	c.vcard.Watch(c.fromVCard)
	c.pep.Subscribe(c.fromPEP)
	c.h.AddAccountFeature(NS)
	c.offs = append(c.offs,
		c.h.Stanzas.On("out/presence", Priority, c.stampOut),
		c.h.Stanzas.On(module.EventEgressPresence, Priority, c.stampEgress),
		c.h.Sessions.On(module.EventSessionUnbound, 0, c.unbound),
		c.h.Accounts.On(module.EventAccountDeleted, 0, c.deleted),
	)
	c.startDirectory()
	return nil
}

// Stop removes the hooks (the watchers live as long as the host).
func (c *Conv) Stop(context.Context) error {
	for _, off := range c.offs {
		off()
	}
	c.offs = nil
	c.stopDirectory()
	return nil
}
