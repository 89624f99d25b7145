package console

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

type loginData struct {
	JID string
}

func (c *Console) loginPage(area string) func(*req) {
	return func(q *req) {
		c.showLogin(q, "", "", http.StatusOK)
	}
}

// showLogin renders the login form with a fresh login CSRF token (double
// submit: the cookie and the form field must match).
func (c *Console) showLogin(q *req, user, msg string, status int) {
	tok := randomToken()
	setCookie(q.w, loginCookie, tok, 3600)
	title := "Log in to your account"
	if q.area == "admin" {
		title = "Administration: log in"
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	c.renderPage(q, "login", page{Title: title, Area: q.area, CSRF: tok, Error: msg, Data: loginData{JID: user}})
}

// remoteAddr is the client's address as the HTTPS front door resolved it.
func remoteAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

func (c *Console) loginPost(area string) func(*req) {
	return func(q *req) {
		user := strings.TrimSpace(q.r.PostForm.Get("jid"))
		pw := q.r.PostForm.Get("password")
		j, err := jid.Parse(user)
		var h *module.Host
		if err == nil && j.Local() != "" && j.Resource() == "" {
			h = c.hostOf(j)
		}
		if h == nil || pw == "" {
			c.d.Log.Info("console: login refused", "remote", q.r.RemoteAddr, "reason", "not an account address of this server")
			c.showLogin(q, user, "Wrong address or password.", http.StatusUnauthorized)
			return
		}
		// The account's stamp is read on both sides of the password check:
		// a reset landing in between would otherwise give a login made
		// with the old password the new password's stamp.
		before, beforeErr := accountStamp(q.ctx, h, j)
		switch c.d.Login(q.ctx, remoteAddr(q.r), j.Domain(), j.Local(), pw) {
		case LoginOK:
		case LoginThrottled:
			c.showLogin(q, user, "Too many failed logins from your address. Try again later.", http.StatusTooManyRequests)
			return
		case LoginUnavailable:
			c.showLogin(q, user, "The server cannot check passwords right now. Try again later.", http.StatusServiceUnavailable)
			return
		default:
			c.showLogin(q, user, "Wrong address or password.", http.StatusUnauthorized)
			return
		}
		stamp, err := accountStamp(q.ctx, h, j)
		if err == nil && (beforeErr != nil || stamp != before) {
			err = errors.New("the account changed during the login")
		}
		if err != nil {
			c.d.Log.Warn("console: login refused", "user", j.Bare().String(), "err", err)
			c.showLogin(q, user, "The server cannot check passwords right now. Try again later.", http.StatusServiceUnavailable)
			return
		}
		// Rotation: whatever session the browser had ends; the login gets
		// a new token, so a token planted before the login is worthless.
		if q.tok != "" {
			c.sessions.end(q.tok)
		}
		tok, _ := c.sessions.create(j.Bare(), stamp, c.administersAny(q, j))
		setCookie(q.w, sessionCookie, tok, 0)
		setCookie(q.w, loginCookie, "", -1)
		c.d.Log.Info("console: login", "user", j.Bare().String(), "remote", q.r.RemoteAddr, "area", area)
		http.Redirect(q.w, q.r, "/"+area+"/", http.StatusSeeOther)
	}
}

// administersAny reports whether j administers one of the hosts.
func (c *Console) administersAny(q *req, j jid.JID) bool {
	for _, h := range c.d.Hosts {
		if h.IsAdmin(q.ctx, j) {
			return true
		}
	}
	return false
}

// hostOf returns the host of j's domain, or nil.
func (c *Console) hostOf(j jid.JID) *module.Host {
	for _, h := range c.d.Hosts {
		if h.Domain == j.Domain() {
			return h
		}
	}
	return nil
}

func (c *Console) logout(area string) func(*req) {
	return func(q *req) {
		c.sessions.end(q.tok)
		setCookie(q.w, sessionCookie, "", -1)
		c.d.Log.Info("console: logout", "user", q.user.String())
		http.Redirect(q.w, q.r, "/"+area+"/login", http.StatusSeeOther)
	}
}
