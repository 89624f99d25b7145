// Package mam implements XEP-0313 Message Archive Management (urn:xmpp:mam:2
// with #extended) for the accounts of a host and for the rooms of its
// chat-room service, the XEP-0441 archiving preferences, and the XEP-0359
// stanza-ids that tell clients where each message is archived.
//
// Messages are archived on their way through the host's hooks: a message a
// local session sends is archived for the sender (out/message), one that
// arrives for a local account for the recipient (message/bare and
// message/full), before delivery, so the copy delivered or stored offline
// already carries its stanza-id. Room messages are archived by the MUC
// service through the muc.Archive this module offers it. The ids are made
// up on the spot and the messages written by a background writer in
// batches (writer.go); queries wait for it. Archives live in
// storage.Archive; retention (max_age, max_messages) is applied by a
// background purge and by the per-archive cap on every append.
package mam

import (
	"context"
	"time"

	"parley/internal/config"
	"parley/internal/mod/muc"
	"parley/internal/module"
	"parley/internal/storage"
)

// Namespaces the module speaks.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = NS + "#extended"
	NSRSM      = "http://jabber.org/protocol/rsm"
	NSForward  = "urn:xmpp:forward:0"
	NSSID      = "urn:xmpp:sid:0"
	NSData     = "jabber:x:data"
	NSHints    = "urn:xmpp:hints"
	NSMUCUser  = "http://jabber.org/protocol/muc#user"
)

// Priority is where the archive handlers sit on out/message and
// message/bare|full: above the default (0) so that modules copying or
// holding messages (carbons, offline storage at PriorityDeliver+100) see
// the stanza-id, below modules that refuse messages, which must run first
// so that a refused message is not archived (XEP-0313 §6.1).
const Priority = 100

// Module is the archive of one host.
type Module struct {
	h   *module.Host
	cfg config.Archive

	offs []func()
	// w writes archive entries and clog compliance records in the
	// background (writer.go); set by Start, closed (after draining) by
	// Stop.
	w    *writer[storage.ArchiveEntry]
	clog *writer[storage.ComplianceRecord]
	// cancel and done stop the purge goroutine (Stop cancels, then waits).
	cancel context.CancelFunc
	done   chan struct{}
}

// Key is where the module publishes itself on its host, for the few who
// need to wait for the archive to catch up (Flush).
var Key = module.NewServiceKey[*Module]("mam")

var _ module.Module = (*Module)(nil)

// New builds the module for h and, when the host keeps room archives,
// offers the room archive to the host's chat-room service (which looks it
// up in its Start).
func New(h *module.Host) (module.Module, error) {
	m := &Module{h: h}
	if h.HostCfg != nil {
		m.cfg = h.HostCfg.Archive
	}
	module.Provide(h, Key, m)
	if m.on() && m.cfg.RoomsOn() && h.HostCfg.MUC.On() {
		module.Provide[muc.Archive](h, muc.ArchiveKey, rooms{m})
	}
	if m.compliance() && h.HostCfg.MUC.On() {
		module.Provide[muc.Recorder](h, muc.RecorderKey, recorder{m})
	}
	return m, nil
}

// Name implements module.Module.
func (*Module) Name() string { return "mam" }

// on reports whether the host keeps XEP-0313 archives.
func (m *Module) on() bool { return m.h.HostCfg != nil && m.cfg.On() }

// compliance reports whether the host keeps a compliance log.
func (m *Module) compliance() bool { return m.h.HostCfg != nil && m.cfg.Compliance }

// Start registers the archive IQs on accounts (which announces
// urn:xmpp:mam:2 in their disco#info), installs the archiving hooks and
// starts the retention purge.
func (m *Module) Start(context.Context) error {
	if !m.on() && !m.compliance() {
		return nil
	}
	if m.on() {
		// Registered for every bare JID, not only the sender's own, so
		// that a query of someone else's archive gets forbidden (XEP-0313
		// §9.1) rather than the core's service-unavailable.
		m.h.RegisterIQ("get", module.TargetBare, NS, m.iqGet)
		m.h.RegisterIQ("set", module.TargetBare, NS, m.iqSet)
		m.h.AddAccountFeature(NSExtended)
		m.w = newWriter(m.h.Log, storeArchive(m.h.Store.Archive(), m.cfg.Keep(), m.h.Log))
	}
	if m.compliance() {
		m.clog = newWriter(m.h.Log, storeCompliance(m.h.Store.Compliance(), m.h.Log))
	}
	// An XEP-0198 acknowledgement waits for the batches (c2s calls
	// Host.Flush first), so what a client was told is handled is stored.
	m.h.AddFlush(m.Flush)
	m.offs = append(m.offs,
		m.h.Stanzas.On("out/message", Priority, m.onOutbound),
		m.h.Stanzas.On("message/bare", Priority, m.onInbound),
		m.h.Stanzas.On("message/full", Priority, m.onInbound),
		m.h.Accounts.On(module.EventAccountDeleted, 0, m.onDeleted),
	)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go m.purgeLoop(ctx, m.done)
	return nil
}

// Stop removes the hooks and stops the purge, waiting for a purge under
// way to notice (it stops between two batches).
func (m *Module) Stop(context.Context) error {
	for i := len(m.offs) - 1; i >= 0; i-- {
		m.offs[i]()
	}
	m.offs = nil
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel = nil
	}
	if m.w != nil {
		m.w.close()
	}
	if m.clog != nil {
		m.clog.close()
	}
	return nil
}

// Flush waits until every message handed to the archive (and the
// compliance log) so far is stored: they are written in the background
// (writer.go).
func (m *Module) Flush(ctx context.Context) error {
	if m.clog != nil {
		if err := m.clog.flush(ctx); err != nil {
			return err
		}
	}
	if m.w == nil {
		return nil
	}
	return m.w.flush(ctx)
}

// onDeleted removes what the writer may have stored for an account after
// storage deleted it with its archive (messages queued just before).
func (m *Module) onDeleted(ev *module.AccountEvent) bool {
	if m.w == nil {
		return false
	}
	ctx, cancel := storeCtx(ev.Ctx)
	defer cancel()
	err := m.Flush(ctx)
	if err == nil {
		err = m.h.Store.Archive().Delete(ctx, ev.JID.Bare().String())
	}
	if err != nil {
		m.h.Log.Warn("mam: deleting the archive of a deleted account", "account", ev.JID.String(), "err", err)
	}
	return false
}

// purgeLoop applies max_age now and every purge_interval until ctx ends.
func (m *Module) purgeLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(m.cfg.PurgeInterval.Duration)
	defer t.Stop()
	for {
		// In a cluster one node purges (it holds the job's lease).
		if module.Leading(m.h, "archive-retention/"+m.h.Domain) {
			m.purge(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Module) purge(ctx context.Context) {
	r, err := Retention(ctx, m.h.Store, m.h.HostCfg, time.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		m.h.Log.Warn("mam: retention purge", "err", err)
	case err == nil && (r.Archive > 0 || r.Compliance > 0):
		m.h.Log.Info("mam: retention purge", "archived_deleted", r.Archive, "compliance_deleted", r.Compliance)
	}
}

// storeCtx gives archive writes their own deadline: the sender's
// connection may be closing while its last message is archived, and the
// message should still be kept.
func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
