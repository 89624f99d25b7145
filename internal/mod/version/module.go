// Package version answers XEP-0092 Software Version requests addressed to
// the server itself.
package version

import (
	"context"
	"runtime"

	"parley/internal/buildinfo"
	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

// Name is the software name reported in <name/>.
const Name = "Parley"

// Version is the module of one host.
type Version struct {
	h       *module.Host
	version string
	os      string // "" when the OS is hidden
}

var _ module.Module = (*Version)(nil)

// New builds the module for h. The answer is fixed for the life of the
// process, so it is computed once here.
func New(h *module.Host) (module.Module, error) {
	v := &Version{h: h, version: buildinfo.Version()}
	if h.Config != nil && h.Config.Modules.Version.ShowOS {
		v.os = runtime.GOOS + "/" + runtime.GOARCH
	}
	return v, nil
}

// Name implements module.Module.
func (*Version) Name() string { return "version" }

// Start registers the IQ handler, which also announces jabber:iq:version in
// the host's disco#info (XEP-0092 §2).
func (v *Version) Start(context.Context) error {
	v.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NS, v.handle)
	return nil
}

// Stop implements module.Module. IQ handlers live as long as the host; the
// module API has no way to unregister them.
func (*Version) Stop(context.Context) error { return nil }

func (v *Version) handle(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
	q := xml.New(NS, "query").Append(
		xml.New(NS, "name").AppendText(Name),
		xml.New(NS, "version").AppendText(v.version),
	)
	if v.os != "" {
		q.Append(xml.New(NS, "os").AppendText(v.os))
	}
	return stanza.IQResult(ev.Stanza, q)
}
