// Package csi implements XEP-0352 Client State Indication: a client tells
// the server when its user is not looking (<inactive/>) and when they are
// back (<active/>), and while the session is inactive the server holds back
// what can wait (presence updates, chat states, PEP events) and delivers it
// when something urgent arrives, when the client is active again, or when
// the hold buffer is full. Nothing is dropped except stanzas superseded by a
// newer one of the same kind (a contact's older presence, an older chat
// state of the same conversation).
//
// The module works through two seams of the module API: nonza handlers
// (Host.HandleStreamElement) for <active/> and <inactive/>, and the Outbound
// hook, the last point before a client session's output queue, where held
// stanzas are later released with Session.Deliver.
package csi

import (
	"context"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/xml"
)

// NS is the XEP-0352 namespace.
const NS = "urn:xmpp:csi:0"

// PriorityOutbound is the priority of the hold handler on Host.Outbound:
// below handlers that only take note of outbound stanzas and let them go
// on (they must see a stanza when it is sent, not when it is released),
// since a handler that takes the stanza ends the chain.
const PriorityOutbound = -100

// CSI is the module of one host.
type CSI struct {
	h    *module.Host
	lim  limits
	offs []func()
}

var _ module.Module = (*CSI)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	return &CSI{
		h:   h,
		lim: limits{stanzas: h.Config.Limits.CSIQueue, bytes: h.Config.Limits.MaxStanzaBytes},
	}, nil
}

// Name implements module.Module.
func (*CSI) Name() string { return "csi" }

// stateKey is the module.Session value key of a session's *state.
type stateKey struct{}

// Start offers the stream feature to authenticated streams (XEP-0352
// §4.1), handles the two nonzas and installs the hold handler.
func (m *CSI) Start(context.Context) error {
	m.h.AddStreamFeature(func(module.Session) *xml.Element { return xml.New(NS, "csi") })
	m.h.HandleStreamElement(NS, "inactive", m.inactive)
	m.h.HandleStreamElement(NS, "active", m.active)
	m.offs = append(m.offs,
		m.h.Outbound.On(module.EventOutbound, PriorityOutbound, m.outbound),
		m.h.Sessions.On(module.EventSessionUnbound, 0, m.unbound),
		m.h.Sessions.On(module.EventSessionResumed, 0, m.resumed),
		m.h.Sessions.On(module.EventSessionMoving, 0, m.resumed),
	)
	return nil
}

// Stop removes the hooks. The stream feature and nonza handlers live as
// long as the host (the module API cannot unregister them); after Stop no
// session is served anyway.
func (m *CSI) Stop(context.Context) error {
	for _, off := range m.offs {
		off()
	}
	m.offs = nil
	return nil
}

// stateOf returns the session's state, nil if it never went inactive.
func stateOf(s module.Session) *state {
	st, _ := s.Value(stateKey{}).(*state)
	return st
}

// inactive handles <inactive xmlns='urn:xmpp:csi:0'/>. The state is made
// here, on the session's first <inactive/>, so sessions that never use CSI
// carry nothing. Nonza handlers of one session run one at a time on its
// reader, so two states cannot be made for one session. The XEP defines
// the element as empty and no reply to it; content or attributes a client
// adds are ignored rather than ending its stream.
func (m *CSI) inactive(s module.Session, el *xml.Element) {
	m.logExtra(s, el)
	st := stateOf(s)
	if st == nil {
		st = &state{}
		s.SetValue(stateKey{}, st)
	}
	st.setInactive()
}

// active handles <active xmlns='urn:xmpp:csi:0'/>: by the time this
// handler returns, everything held is ahead of anything sent to the
// session later, so before the answer to anything the client sent after
// <active/> (XEP-0352 §5.1).
func (m *CSI) active(s module.Session, el *xml.Element) {
	m.logExtra(s, el)
	if st := stateOf(s); st != nil {
		st.setActive(s)
	}
}

// logExtra notes a CSI element with content or attributes the XEP does not
// define; it is handled like the empty element.
func (m *CSI) logExtra(s module.Session, el *xml.Element) {
	if len(el.Children) > 0 || len(el.Attrs) > 0 {
		m.h.Log.Debug("csi: ignoring the content of a client state element", "jid", s.JID().String(), "element", el.Local)
	}
}

// outbound is the Host.Outbound handler: while the session is inactive it
// holds what can wait and flushes before what cannot.
func (m *CSI) outbound(ev *module.OutboundEvent) bool {
	st := stateOf(ev.Session)
	if st == nil {
		return false
	}
	return st.offer(ev.Session, ev.Stanza, m.lim, time.Now())
}

// resumed makes a resumed session active again: the client state is
// stream state and a resumed stream starts active (XEP-0352 §5.2), so what
// was held while the client was away is delivered after the stanzas
// stream management sends again. On "moving" (the session is handed to
// another node) the same puts what was held into the session's queue,
// which goes with it.
func (m *CSI) resumed(ev *module.SessionEvent) bool {
	if st := stateOf(ev.Session); st != nil {
		st.setActive(ev.Session)
	}
	return false
}

// unbound discards the state of a session that ended. Its values go with
// it anyway; this also stops a sender that still holds a reference from
// parking stanzas in it.
func (m *CSI) unbound(ev *module.SessionEvent) bool {
	if st := stateOf(ev.Session); st != nil {
		st.end()
	}
	return false
}
