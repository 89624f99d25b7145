// Package fedaccess applies the federation access rule of a host
// ([host.access.federation], seed 000 SACL: "talking to remote domains"):
// a user the rule refuses can neither send stanzas to remote domains nor
// receive stanzas from them, while everything local (other accounts, the
// host's chat rooms, its other services) keeps working.
//
// It sits on the router's events rather than in the S2S code, so the
// rule holds for stanzas modules send on a user's behalf (presence
// broadcasts, probes) as well as what clients send, and for federation
// however it is carried (S2S streams, a future clustering transport):
// egress/<kind> for what the account sends, <kind>/bare and <kind>/full
// for what reaches it. Remote domains are those the router does not serve
// (module.Router.IsLocal), so the host's own components (chat rooms, the
// proxy, upload) are not federation.
package fedaccess

import (
	"context"

	"parley/internal/access"
	"parley/internal/module"
	"parley/internal/xmpp/stanza"
)

// priority runs the filters before every module that would store, archive
// or answer the stanza (offline storage, MAM, carbons, vCard answers),
// next to the blocking module's.
const priority = 1100

// Module is the federation filter of one host.
type Module struct {
	h    *module.Host
	offs []func()
}

var _ module.Module = (*Module)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &Module{h: h}, nil }

// Name implements module.Module.
func (*Module) Name() string { return "fedaccess" }

// Start installs the filters when the host has a federation rule: a host
// without one pays nothing per stanza.
func (m *Module) Start(context.Context) error {
	if m.h.HostCfg == nil || !m.h.HostCfg.Access.Federation.Restricts() {
		return nil
	}
	for _, kind := range []string{stanza.KindMessage, stanza.KindPresence, stanza.KindIQ} {
		m.offs = append(m.offs,
			m.h.Stanzas.On("egress/"+kind, priority, m.egress),
			m.h.Stanzas.On(kind+"/bare", priority, m.inbound),
			m.h.Stanzas.On(kind+"/full", priority, m.inbound),
		)
	}
	return nil
}

// Stop removes the filters.
func (m *Module) Stop(context.Context) error {
	for _, off := range m.offs {
		off()
	}
	m.offs = nil
	return nil
}

// remote reports whether d is a domain this server does not serve.
func (m *Module) remote(d string) bool { return d != "" && !m.h.Router.IsLocal(d) }

// egress refuses what a refused account sends to a remote domain. Its
// client gets the rule's error (forbidden, with a text) for messages,
// IQ requests and subscription requests; presence broadcasts and error
// stanzas are dropped silently.
func (m *Module) egress(ev *module.StanzaEvent) bool {
	if !m.remote(ev.To.Domain()) {
		return false
	}
	err := m.h.CheckAccess(ev.Ctx, access.Federation, ev.From)
	if err == nil {
		return false
	}
	if answerable(ev.Stanza.Local, ev.Stanza.Attr("type")) {
		ev.Reply(stanza.ErrorReplyFor(ev.Stanza, access.ErrorFor(err)))
	}
	return true
}

// inbound holds back what a remote domain sends to a refused account: the
// sender gets service-unavailable (RFC 6121 §8.5: as for an account it
// cannot reach) for messages and IQ requests, so the local policy is not
// disclosed; presence is dropped. Errors pass: they answer the account's
// own stanzas, which egress already refused.
func (m *Module) inbound(ev *module.StanzaEvent) bool {
	typ := ev.Stanza.Attr("type")
	if !m.remote(ev.From.Domain()) || typ == stanza.TypeError {
		return false
	}
	to := ev.To.Bare()
	if to.Local() == "" {
		return false
	}
	if err := m.h.CheckAccess(ev.Ctx, access.Federation, to); err == nil {
		return false
	}
	kind := ev.Stanza.Local
	if kind == stanza.KindMessage || kind == stanza.KindIQ && (typ == stanza.TypeGet || typ == stanza.TypeSet) {
		ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.ServiceUnavailable, ""))
	}
	return true
}

// answerable reports whether a refused stanza of this kind and type gets an
// error back (RFC 6120 §8.3: never to an error; presence only for
// subscription requests, which a client waits on).
func answerable(kind, typ string) bool {
	switch kind {
	case stanza.KindMessage:
		return typ != stanza.TypeError
	case stanza.KindIQ:
		return typ == stanza.TypeGet || typ == stanza.TypeSet
	case stanza.KindPresence:
		return typ == "subscribe"
	}
	return false
}
