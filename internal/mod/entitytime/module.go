// Package entitytime answers XEP-0202 Entity Time requests addressed to the
// server itself.
package entitytime

import (
	"context"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

// utcLayout is the XEP-0082 DateTime profile in UTC with milliseconds, which
// XEP-0202 §3 allows ("MAY include fractions of a second").
const utcLayout = "2006-01-02T15:04:05.000Z"

// EntityTime is the module of one host.
type EntityTime struct {
	h *module.Host
}

var _ module.Module = (*EntityTime)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &EntityTime{h: h}, nil }

// Name implements module.Module.
func (*EntityTime) Name() string { return "entitytime" }

// Start registers the IQ handler, which also announces urn:xmpp:time in the
// host's disco#info (XEP-0202 §4).
func (t *EntityTime) Start(context.Context) error {
	t.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NS, t.handle)
	return nil
}

// Stop implements module.Module. IQ handlers live as long as the host; the
// module API has no way to unregister them.
func (*EntityTime) Stop(context.Context) error { return nil }

func (*EntityTime) handle(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
	return stanza.IQResult(ev.Stanza, timeElement(time.Now()))
}

// timeElement builds <time xmlns='urn:xmpp:time'><tzo/><utc/></time>. The
// server reports its offset as +00:00 whatever the zone of the machine: the
// clock is what clients need (to correct their own), and the machine's
// zone is configuration detail that tells a remote party nothing useful.
func timeElement(now time.Time) *xml.Element {
	return xml.New(NS, "time").Append(
		xml.New(NS, "tzo").AppendText("+00:00"),
		xml.New(NS, "utc").AppendText(now.UTC().Format(utcLayout)),
	)
}
