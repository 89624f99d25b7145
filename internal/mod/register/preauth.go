package register

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"parley/internal/admin"
	"parley/internal/legacyauth"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// errorReply builds an IQ error; echoQ, when not nil, is put before the
// <error/> (seed 004 and XEP-0077 §3.1 echo the submitted query). typ ""
// means the condition's default type.
func errorReply(iq, echoQ *xml.Element, cond stanza.Condition, typ, text string) *xml.Element {
	r := stanza.IQResult(iq, nil)
	if r == nil {
		return nil
	}
	r.SetAttr("type", stanza.TypeError)
	if echoQ != nil {
		r.Append(echoQ)
	}
	return r.Append(stanza.ErrorElementTyped(cond, typ, text, nil))
}

// preAuth answers jabber:iq:register IQs before authentication (XEP-0077
// §3.1: inquiry and registration with a server).
func (r *Register) preAuth(c *module.PreAuthConn, iq, q *xml.Element) *xml.Element {
	if q.Local != "query" {
		return errorReply(iq, nil, stanza.BadRequest, "", "")
	}
	// §3.1: a host that does not support registration MUST answer
	// service-unavailable (legacy code 503; seed 004's jabberd 1.4 said 501).
	// A host whose accounts a directory owns never supports it (config
	// refuses enabling it there; this holds even if it were enabled), and
	// the text says where accounts come from instead.
	if r.directoryOwned() {
		return errorReply(iq, nil, stanza.ServiceUnavailable, "", directoryText)
	}
	if !r.enabled() {
		return errorReply(iq, nil, stanza.ServiceUnavailable, "", "in-band registration is disabled on this server")
	}
	// §10: registration sends the password in clear, so only over TLS
	// unless the admin allows otherwise. §3.3 gives not-authorized for "the
	// channel is not safe enough"; type modify: start TLS and retry.
	if !c.Encrypted && !r.cfg.AllowWithoutTLS {
		return errorReply(iq, nil, stanza.NotAuthorized, stanza.ErrorTypeModify, "registration requires an encrypted stream: negotiate STARTTLS first")
	}
	if iq.Attr("type") == stanza.TypeGet {
		return stanza.IQResult(iq, r.inquiry(nil))
	}
	return r.registerAccount(c, iq, q)
}

// registerAccount handles the IQ set that creates an account.
func (r *Register) registerAccount(c *module.PreAuthConn, iq, q *xml.Element) *xml.Element {
	sub, err := r.parse(q)
	if err != nil {
		return errorReply(iq, nil, stanza.BadRequest, "", err.Error())
	}
	if sub.remove {
		// §3.2: cancelling needs an authenticated sender.
		return errorReply(iq, nil, stanza.UnexpectedRequest, "", "authenticate before cancelling a registration")
	}
	fail := func(cond stanza.Condition, text string) *xml.Element {
		var e *xml.Element
		if !sub.form {
			e = echo(q)
		}
		return errorReply(iq, e, cond, "", text)
	}
	// §3.1: every requested field, and a non-empty password, or
	// not-acceptable (406, as seed 004 shows).
	for _, f := range r.fields() {
		if sub.values[f] == "" {
			return fail(stanza.NotAcceptable, "missing field: "+f)
		}
	}
	if text := r.checkFields(sub.values); text != "" {
		return fail(stanza.NotAcceptable, text)
	}
	// The username becomes a JID localpart (RFC 7622 §3.3): an invalid one
	// is not acceptable (seed 004: "supplying an invalid username").
	j, err := jid.New(sub.values["username"], r.h.Domain, "")
	if err != nil || j.Local() == "" {
		return fail(stanza.NotAcceptable, "the username is not a valid JID localpart")
	}
	if text := r.checkPassword(sub.values["password"]); text != "" {
		return fail(stanza.NotAcceptable, text)
	}
	ctx := c.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	// Checking first spares the key derivation for names that are taken;
	// Create below still decides races.
	if exists, err := r.h.AccountExists(ctx, j.Local()); err != nil {
		r.h.Log.Error("register: look up account", "user", j.String(), "err", err)
		return fail(stanza.InternalServerError, "")
	} else if exists {
		return fail(stanza.Conflict, "the username is not available")
	}
	// A name some host's admins (or admin groups) list is the operator's
	// to create (parley user add): registered by whoever came first, it
	// would make them an administrator. Answered as a taken name, so
	// registration does not tell who the administrators are.
	if host := admin.For(r.h).Administers(ctx, j); host != "" {
		r.h.Log.Warn("register: refused an administrator's name", "user", j.String(), "administers", host, "remote", addrKey(c.RemoteAddr))
		return fail(stanza.Conflict, "the username is not available")
	}
	key := addrKey(c.RemoteAddr)
	release, ok := r.lim.reserve(key)
	if !ok {
		r.h.Log.Info("register: rate limit", "remote", key, "host", r.h.Domain)
		return fail(stanza.PolicyViolation, fmt.Sprintf("too many new accounts from your address; try again within %s", r.cfg.Window.Duration))
	}
	extra := make(map[string]string)
	for _, f := range r.cfg.Fields {
		extra[f] = sub.values[f]
	}
	// legacyauth owns password setting: SCRAM keys, plus the cleartext copy
	// or zero-knowledge chain when the host enables those XEP-0078 methods.
	err = legacyauth.CreateAccount(ctx, r.h.Store, r.h.Config, storage.Account{
		Host: r.h.Domain, Username: j.Local(), Fields: extra, CreatedAt: time.Now().UTC(),
	}, sub.values["password"])
	switch {
	case errors.Is(err, storage.ErrExists):
		release()
		return fail(stanza.Conflict, "the username is not available")
	case err != nil:
		release()
		r.h.Log.Error("register: create account", "user", j.String(), "err", err)
		return fail(stanza.InternalServerError, "")
	}
	r.h.Log.Info("register: account created", "user", j.String(), "remote", key)
	r.h.Accounts.Fire(module.EventAccountCreated, &module.AccountEvent{Ctx: ctx, Host: r.h, JID: j})
	if r.cfg.NotifyAdmins {
		r.notifyAdmins(ctx, j, key)
	}
	return stanza.IQResult(iq, nil)
}

// checkFields enforces max_field_bytes on every value.
func (r *Register) checkFields(values map[string]string) string {
	for f, v := range values {
		if f != "password" && len(v) > r.cfg.MaxFieldBytes {
			return fmt.Sprintf("field %s is longer than %d bytes", f, r.cfg.MaxFieldBytes)
		}
	}
	return ""
}

// checkPassword applies auth.min_password_length, as the CLI does.
func (r *Register) checkPassword(pw string) string {
	if n, min := utf8.RuneCountInString(pw), r.h.Config.Auth.MinPasswordLength; n < min {
		return fmt.Sprintf("the password is too short: at least %d characters are required", min)
	}
	if len(pw) > 1024 {
		return "the password is longer than 1024 bytes"
	}
	return ""
}

// notifyAdmins tells the host's admins about a new account (seed 004's
// <register notify="yes"/>). Messages go through the router like any
// other, so offline admins find them in offline storage.
func (r *Register) notifyAdmins(ctx context.Context, account jid.JID, remote string) {
	for _, a := range r.h.HostCfg.Admins {
		to, err := jid.Parse(a)
		if err != nil {
			continue
		}
		msg := xml.New("", "message").
			SetAttr("from", r.h.Domain).SetAttr("to", to.String()).SetAttr("type", "normal").
			SetAttr("id", "register-"+account.Local())
		msg.Append(xml.New("", "subject").AppendText("New account on " + r.h.Domain))
		msg.Append(xml.New("", "body").AppendText(fmt.Sprintf("New account %s registered in-band from %s.", account, remote)))
		r.h.Router.Route(ctx, msg)
	}
}
