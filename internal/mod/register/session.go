package register

import (
	"context"
	"errors"

	"parley/internal/admin"
	"parley/internal/legacyauth"
	"parley/internal/module"
	"parley/internal/passpolicy"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// local reports whether ev comes from an authenticated local account of
// this host (the only senders the in-session protocol serves).
func (r *Register) local(ev *module.StanzaEvent) bool {
	return ev.Origin != nil && ev.From.Domain() == r.h.Domain && ev.From.Local() != ""
}

// sessionGet answers an authenticated inquiry (XEP-0077 §3.1: <registered/>
// and the registration on file; the password element is left empty).
func (r *Register) sessionGet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if !r.local(ev) || q.Local != "query" {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, "")
	}
	acct, err := r.h.Store.Accounts().Get(ev.Ctx, r.h.Domain, ev.From.Local())
	if err != nil {
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	values := map[string]string{"username": acct.Username}
	for k, v := range acct.Fields {
		values[k] = v
	}
	return stanza.IQResult(ev.Stanza, r.inquiry(values))
}

// sessionSet changes the sender's registration or cancels it (§3.2, §3.3).
func (r *Register) sessionSet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if !r.local(ev) || q.Local != "query" {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, "")
	}
	sub, err := r.parse(q)
	if err != nil {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, err.Error())
	}
	if sub.remove {
		// §3.2: <remove/> must be the only child.
		if sub.others > 0 {
			return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "<remove/> must be the only child of <query/>")
		}
		return r.remove(ev)
	}
	user := ev.From.Local()
	if !r.ownUsername(sub, user) {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "you can change only your own registration")
	}
	if text := r.checkFields(sub.values); text != "" {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, text)
	}
	fields := make(map[string]string)
	for _, f := range r.cfg.Fields {
		if v := sub.values[f]; v != "" {
			fields[f] = v
		}
	}
	pw := sub.values["password"]
	if pw == "" && len(fields) == 0 {
		// §3.3: an empty password never clears the existing one.
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "nothing to change: send a non-empty <password/> or registration fields")
	}
	if pw != "" {
		if text := r.checkPassword(pw); text != "" {
			return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, text)
		}
	}
	accts := r.h.Store.Accounts()
	if len(fields) > 0 {
		acct, err := accts.Get(ev.Ctx, r.h.Domain, user)
		if err != nil {
			return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
		}
		merged := make(map[string]string, len(acct.Fields)+len(fields))
		for k, v := range acct.Fields {
			merged[k] = v
		}
		for k, v := range fields {
			merged[k] = v
		}
		if err := accts.SetFields(ev.Ctx, r.h.Domain, user, merged); err != nil {
			r.h.Log.Error("register: set fields", "user", ev.From.Bare().String(), "err", err)
			return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
		}
	}
	if pw != "" {
		if err := legacyauth.SetPassword(ev.Ctx, r.h.Store, r.h.Config, r.h.Domain, user, pw); err != nil {
			r.h.Log.Error("register: change password", "user", ev.From.Bare().String(), "err", err)
			return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
		}
		r.h.Log.Info("register: password changed", "user", ev.From.Bare().String())
	}
	return stanza.IQResult(ev.Stanza, nil)
}

// ownUsername reports whether the submission's username, when given, is
// the sender's own (seed 004 sends none; XEP-0077 §3.3 sends it). §3.3's
// errors are not returned with the original XML, which carries the
// password.
func (r *Register) ownUsername(sub submission, user string) bool {
	u, ok := sub.values["username"]
	if !ok || u == "" {
		return true
	}
	j, err := jid.New(u, r.h.Domain, "")
	return err == nil && j.Local() == user
}

// directoryPasswordSet serves §3.3 on a directory host with [directory]
// password_write: a password change, and nothing else, is written to the
// directory by the same operation as the console's (admin.Ops.SetPassword:
// policy, Password Modify, fresh SCRAM secrets, audit line). Cancelling
// and registration fields stay refused: the directory owns the account.
func (r *Register) directoryPasswordSet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if !r.local(ev) || q.Local != "query" {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, directoryText)
	}
	sub, err := r.parse(q)
	if err != nil {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, err.Error())
	}
	pw := sub.values["password"]
	for f := range sub.values {
		if f != "username" && f != "password" {
			return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, directoryText)
		}
	}
	if sub.remove || pw == "" {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAllowed, directoryText)
	}
	if !r.ownUsername(sub, ev.From.Local()) {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "you can change only your own password")
	}
	if text := r.checkPassword(pw); text != "" {
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, text)
	}
	err = admin.For(r.h).SetPassword(ev.Ctx, admin.Actor{JID: ev.From, Via: "in-band"}, ev.From.Bare(), pw)
	switch {
	case passpolicy.IsViolation(err):
		return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, err.Error())
	case err != nil:
		r.h.Log.Error("register: change directory password", "user", ev.From.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "the directory did not accept the change")
	}
	return stanza.IQResult(ev.Stanza, nil)
}

// remove cancels the sender's registration (§3.2): presence subscriptions
// are cancelled, the account and everything it owns are deleted in one
// transaction (the username is free at once), the result goes to the
// sender and every session of the account ends with a not-authorized stream
// error.
func (r *Register) remove(ev *module.StanzaEvent) *xml.Element {
	bare := ev.From.Bare()
	ctx := context.WithoutCancel(ev.Ctx)
	r.cancelSubscriptions(ctx, bare)
	sessions := r.h.Router.Sessions(bare)
	if err := r.h.Store.Accounts().Delete(ctx, r.h.Domain, bare.Local()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		r.h.Log.Error("register: delete account", "user", bare.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	r.h.Log.Info("register: account removed in-band", "user", bare.String())
	r.h.Accounts.Fire(module.EventAccountDeleted, &module.AccountEvent{Ctx: ctx, Host: r.h, JID: bare})
	ev.Reply(stanza.IQResult(ev.Stanza, nil))
	for _, s := range sessions {
		if s == ev.Origin {
			if dc, ok := s.(interface {
				CloseDrained(stanza.StreamCondition, string)
			}); ok {
				dc.CloseDrained("not-authorized", "account removed")
				continue
			}
		}
		s.Close("not-authorized", "account removed")
	}
	return nil
}

// cancelSubscriptions tells every contact that the account's presence
// subscriptions are gone (§3.2: an IM server SHOULD cancel them): contacts
// subscribed to us get unavailable from each available resource (RFC 6121
// §3.2.2, through the code a roster removal uses: module.Host.UnavailableTo)
// and unsubscribed, contacts we were subscribed to get unsubscribe
// (§3.3). It runs while the account's sessions are still bound, so the
// resources the contacts were shown are there to be named.
func (r *Register) cancelSubscriptions(ctx context.Context, bare jid.JID) {
	items, _, err := r.h.Store.Roster().Items(ctx, bare.String())
	if err != nil {
		return
	}
	send := func(to, typ string) {
		r.h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", bare.String()).SetAttr("to", to).SetAttr("type", typ))
	}
	for _, it := range items {
		if it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth {
			if contact, err := jid.Parse(it.JID); err == nil {
				r.h.UnavailableTo(ctx, bare, contact)
			}
			send(it.JID, "unsubscribed")
		}
		if it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth || it.AskOut {
			send(it.JID, "unsubscribe")
		}
	}
}
