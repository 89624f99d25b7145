// Package register implements XEP-0077 In-Band Registration
// (jabber:iq:register) for client accounts: before authentication a client
// may ask for the registration fields and create an account; once
// authenticated it may read its registration, change its password and other
// fields, and cancel the registration with <remove/>, which deletes the
// account and all its data at once and ends its sessions.
//
// Creating accounts is off unless [host.registration] enabled = true, only
// allowed on encrypted streams unless allow_without_tls = true, and limited
// per client address (max_per_ip per window). The exchanges and error codes
// follow seed 004 (Programming Jabber, ch. 7) where XEP-0077 agrees; where
// they differ, XEP-0077 wins (see README.md).
package register

import (
	"context"
	"time"

	"parley/internal/admin"
	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces.
const (
	// NS is the registration namespace (XEP-0077 §3).
	NS = "jabber:iq:register"
	// NSFeature is the stream feature announcing registration (XEP-0077 §8).
	NSFeature = "http://jabber.org/features/iq-register"
	// NSData is XEP-0004 data forms.
	NSData = "jabber:x:data"
)

// Register is the module of one host.
type Register struct {
	h    *module.Host
	cfg  config.Registration
	lim  *limiter
	offs []func()
}

var _ module.Module = (*Register)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	var cfg config.Registration
	if h.HostCfg != nil {
		cfg = h.HostCfg.Registration
	}
	return &Register{
		h:   h,
		cfg: cfg,
		lim: newLimiter(cfg.MaxPerIP, cfg.Window.Duration, cfg.MaxTrackedIPs, time.Now),
	}, nil
}

// Name implements module.Module.
func (*Register) Name() string { return "register" }

// Start registers the pre-authentication handler and stream feature, and the
// in-session handlers. The pre-authentication handler is installed even when
// registration is disabled so that an inquiry is answered with the
// service-unavailable error XEP-0077 §3.1 requires rather than the core's
// not-authorized stream error. The in-session handlers (password change,
// cancellation) work whether or not new accounts may be created: they only
// ever touch the sender's own account.
//
// On a host whose accounts live outside storage (a directory) the in-session
// handlers refuse everything with not-allowed and are not announced in
// disco#info (see directoryOwned), except a password change with
// [directory] password_write (directoryPasswordSet).
func (r *Register) Start(context.Context) error {
	r.h.RegisterPreAuthIQ(NS, r.preAuth)
	r.h.AddPreAuthStreamFeature(r.streamFeature)
	for _, t := range []module.Target{module.TargetHost, module.TargetSelf} {
		if r.directoryOwned() {
			r.h.RegisterRefusingIQ(stanza.TypeGet, t, NS, r.refuseDirectory)
			if admin.For(r.h).PasswordsWritable() {
				r.h.RegisterIQ(stanza.TypeSet, t, NS, r.directoryPasswordSet)
			} else {
				r.h.RegisterRefusingIQ(stanza.TypeSet, t, NS, r.refuseDirectory)
			}
			continue
		}
		r.h.RegisterIQ(stanza.TypeGet, t, NS, r.sessionGet)
		r.h.RegisterIQ(stanza.TypeSet, t, NS, r.sessionSet)
	}
	return nil
}

// directoryText explains every refusal on a host whose accounts a
// directory owns.
const directoryText = "accounts on this server are managed by its directory: register, change passwords and cancel accounts there"

// directoryOwned reports whether the host's accounts live outside storage
// (accounts = "directory": module.Host.AccountSource). Parley then creates,
// changes and deletes none of them: a password set in storage would never
// be checked (logins bind to the directory), and cancelling would delete
// the user's local data and subscriptions while the directory account goes
// on logging in, with directory-managed roster items that the directory
// roster module believes are still there.
func (r *Register) directoryOwned() bool { return r.h.AccountSource != nil }

// refuseDirectory answers every in-session request on a directory host:
// XEP-0077 §3.2 and §3.3 give not-allowed for a server that lets nobody
// cancel registrations or change passwords in-band.
func (r *Register) refuseDirectory(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
	return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, directoryText)
}

// Stop removes the hooks. IQ handlers and stream features live as long as
// the host; the module API has no way to unregister them.
func (r *Register) Stop(context.Context) error {
	for i := len(r.offs) - 1; i >= 0; i-- {
		r.offs[i]()
	}
	r.offs = nil
	return nil
}

// streamFeature offers <register/> only where an inquiry would succeed.
func (r *Register) streamFeature(c *module.PreAuthConn) *xml.Element {
	if r.directoryOwned() || !r.enabled() || (!c.Encrypted && !r.cfg.AllowWithoutTLS) {
		return nil
	}
	return xml.New(NSFeature, "register")
}

// enabled is registration.enabled, or the value the directory's host
// policy sets (config_base) when it has one.
func (r *Register) enabled() bool {
	if r.h.Access != nil {
		return r.h.Access.Effective().Registration
	}
	return r.cfg.Enabled
}
