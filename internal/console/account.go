package console

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"parley/internal/admin"
	"parley/internal/directory"
	"parley/internal/mod/vcard"
	"parley/internal/passpolicy"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

type accountData struct {
	JID         jid.JID
	Profile     []profileField
	Sessions    []admin.Session
	Directory   bool
	Archive     bool // the account has archived messages
	ArchiveFrom string
	MinLength   int
	Classes     int
	History     int
	// PasswordWritable: the password form is shown (always on database
	// hosts; on directory hosts with [directory] password_write).
	PasswordWritable bool
	// Tokens are the account's XEP-0484 FAST tokens: the clients that
	// log in without the password (database hosts only).
	Tokens []storage.FASTToken
}

func (c *Console) account(q *req) {
	h := q.userHost
	d := accountData{JID: q.user, Directory: h.AccountSource != nil, PasswordWritable: admin.For(h).PasswordsWritable(), MinLength: c.d.Config.Auth.MinPasswordLength,
		Classes: c.d.Config.Auth.Password.RequireClasses, History: c.d.Config.Auth.Password.History}
	var err error
	if d.Profile, _, err = c.profile(q, h, q.user); err != nil {
		c.d.Log.Warn("console: profile", "user", q.user.String(), "err", err)
	}
	d.Sessions = admin.For(h).Sessions(q.user)
	if h.AccountSource == nil {
		if d.Tokens, err = c.d.Store.FAST().List(q.ctx, h.Domain, q.user.Local()); err != nil {
			c.d.Log.Warn("console: FAST tokens", "user", q.user.String(), "err", err)
		}
	}
	if first, _, err := c.d.Store.Archive().Ends(q.ctx, q.user.String()); err == nil {
		d.Archive, d.ArchiveFrom = true, first.Stamp.UTC().Format("2006-01-02")
	}
	c.render(q, "account", "My account", d)
}

// accountPassword changes the user's own password: the current one is
// checked like a login (through the brute-force limiter), then the policy
// and the reuse rule apply to the new one.
func (c *Console) accountPassword(q *req) {
	h := q.userHost
	f := q.r.PostForm
	if !admin.For(h).PasswordsWritable() {
		c.done(q, "Your password is managed by the directory; change it there.", "/account/")
		return
	}
	switch c.d.Login(q.ctx, remoteAddr(q.r), h.Domain, q.user.Local(), f.Get("current")) {
	case LoginOK:
	case LoginThrottled:
		c.done(q, "Too many failed attempts from your address. Try again later.", "/account/")
		return
	default:
		c.done(q, "The current password is not right.", "/account/")
		return
	}
	pw := f.Get("password")
	if err := c.newPassword(pw, f.Get("password2")); err != nil {
		c.done(q, "The new password was not accepted: "+err.Error()+".", "/account/")
		return
	}
	ops := admin.For(h)
	hist := ops.History()
	if hist.Keep > 0 && pw == f.Get("current") {
		c.done(q, "The new password was not accepted: "+passpolicy.ErrReused.Error()+".", "/account/")
		return
	}
	if err := hist.CheckReuse(q.ctx, h.Domain, q.user.Local(), pw); err != nil {
		if passpolicy.IsViolation(err) {
			c.done(q, "The new password was not accepted: "+err.Error()+".", "/account/")
		} else {
			c.d.Log.Error("console: password history", "err", err)
			c.done(q, "The password could not be changed; try again later.", "/account/")
		}
		return
	}
	if err := ops.SetPassword(q.ctx, admin.Actor{JID: q.user, Via: "web-self"}, q.user, pw); err != nil {
		if passpolicy.IsViolation(err) {
			c.done(q, "The new password was not accepted: "+err.Error()+".", "/account/")
			return
		}
		c.d.Log.Error("console: change own password", "user", q.user.String(), "err", err)
		c.done(q, "The password could not be changed; try again later.", "/account/")
		return
	}
	// Other browsers logged in with the old password are logged out; this
	// one goes on with the account's new stamp.
	c.sessions.endUser(q.user, q.tok)
	if stamp, err := accountStamp(q.ctx, h, q.user); err == nil {
		c.sessions.restamp(q.sess, stamp)
	}
	c.done(q, "Your password is changed. Your XMPP clients need the new one the next time they log in.", "/account/")
}

// accountProfile saves the editable profile fields; locked ones must come
// back unchanged (the form shows them read-only; a forged form that
// changes them is refused by the directory mapping as well).
func (c *Console) accountProfile(q *req) {
	h := q.userHost
	v := vcard.Of(h)
	if v == nil {
		c.done(q, "Profiles are not available on this server.", "/account/")
		return
	}
	fields, _, err := c.profile(q, h, q.user)
	if err != nil {
		c.d.Log.Error("console: profile", "err", err)
		c.done(q, "The profile could not be read; try again later.", "/account/")
		return
	}
	changes := map[string]string{}
	for _, f := range fields {
		nv, sent := q.r.PostForm[f.Name]
		if !sent {
			continue
		}
		val := strings.TrimSpace(nv[0])
		if len(val) > 1024 {
			c.done(q, f.Label+" is too long.", "/account/")
			return
		}
		if !f.Editable {
			if val != f.Value {
				c.done(q, f.Label+" is managed by the directory and cannot be changed here.", "/account/")
				return
			}
			continue
		}
		if val != f.Value {
			changes[f.Name] = val
		}
	}
	if len(changes) == 0 {
		c.done(q, "Nothing changed.", "/account/")
		return
	}
	card, err := v.Get(q.ctx, q.user)
	if err != nil {
		c.done(q, "The profile could not be read; try again later.", "/account/")
		return
	}
	if err := v.Put(q.ctx, q.user, directory.WithProfileValues(card, changes)); err != nil {
		var ro *directory.ReadOnlyError
		if errors.As(err, &ro) {
			c.done(q, "That field is managed by the directory and cannot be changed here.", "/account/")
			return
		}
		c.d.Log.Error("console: save profile", "user", q.user.String(), "err", err)
		c.done(q, "The profile could not be saved; try again later.", "/account/")
		return
	}
	c.d.Log.Info("console: profile changed", "user", q.user.String())
	c.done(q, "Your profile is saved.", "/account/")
}

func (c *Console) accountEndSession(q *req) {
	full, err := jid.Parse(q.r.PostForm.Get("session"))
	if err != nil || full.Bare() != q.user || full.Resource() == "" {
		http.Error(q.w, "not one of your sessions", http.StatusForbidden)
		return
	}
	s := q.userHost.Router.Session(full)
	if s == nil {
		c.done(q, "That device is not connected any more.", "/account/")
		return
	}
	s.Close("conflict", "ended from the account page")
	c.d.Log.Info("console: session ended by its user", "session", full.String())
	c.done(q, "The device "+full.Resource()+" is disconnected.", "/account/")
}

// accountRevokeToken takes one FAST token (XEP-0484) away from the user's
// account, or all of them with id "all": the client must log in with the
// password again. A session already open stays open (the Devices list
// ends those).
func (c *Console) accountRevokeToken(q *req) {
	id := q.r.PostForm.Get("id")
	if id == "" || len(id) > 128 {
		http.Error(q.w, "no token named", http.StatusBadRequest)
		return
	}
	which := id
	if id == "all" {
		which = ""
	}
	n, err := c.d.Store.FAST().Revoke(q.ctx, q.userHost.Domain, q.user.Local(), which)
	if err != nil {
		c.d.Log.Error("console: revoke FAST token", "user", q.user.String(), "err", err)
		c.done(q, "The token could not be revoked; try again later.", "/account/")
		return
	}
	c.d.Log.Info("console: FAST tokens revoked by their user", "user", q.user.String(), "token", id, "removed", n)
	if n == 0 {
		c.done(q, "That token is gone already.", "/account/")
		return
	}
	c.done(q, "Revoked. That client needs your password the next time it logs in.", "/account/")
}

// accountArchive sends the user's own message archive (XEP-0313, as the
// server stores it) as one XML document, oldest first, bounded by
// console.max_archive_export messages.
func (c *Console) accountArchive(q *req) {
	owner := q.user.String()
	name := fmt.Sprintf("archive-%s-%s.xml", q.user.Local(), time.Now().UTC().Format("20060102"))
	q.w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	q.w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w := bufio.NewWriter(q.w)
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?>\n<archive xmlns='urn:xmpp:mam:2' owner='%s'>\n", xmlAttr(owner))
	after, n := "", 0
	for n < c.cfg.MaxArchiveExport {
		page, err := c.d.Store.Archive().Query(q.ctx, owner, storage.ArchiveQuery{PageAfter: after, Limit: min(500, c.cfg.MaxArchiveExport-n)})
		if err != nil {
			c.d.Log.Error("console: archive export", "user", owner, "err", err)
			break
		}
		for _, m := range page.Messages {
			fwd := xml.New("urn:xmpp:forward:0", "forwarded").Append(
				xml.New("urn:xmpp:delay", "delay").SetAttr("stamp", m.Stamp.UTC().Format("2006-01-02T15:04:05.000Z")))
			if el, err := xml.ParseElement(m.Stanza, xml.Limits{MaxStanzaBytes: len(m.Stanza) + 1024}, stanza.NSClient); err == nil {
				fwd.Append(el)
			}
			res := xml.New("urn:xmpp:mam:2", "result").SetAttr("id", m.ID).Append(fwd)
			_, _ = res.WriteToNS(w, stanza.NSClient)
			_ = w.WriteByte('\n')
			n++
		}
		if len(page.Messages) == 0 || page.Complete {
			break
		}
		after = page.Messages[len(page.Messages)-1].ID
		rc := http.NewResponseController(q.w)
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	}
	fmt.Fprintln(w, "</archive>")
	_ = w.Flush()
	c.d.Log.Info("console: archive downloaded", "user", owner, "messages", n)
}

func xmlAttr(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", "'", "&apos;", `"`, "&quot;")
	return r.Replace(s)
}
