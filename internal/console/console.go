// Package console is Parley's web console on the public HTTPS listener:
// the administration pages at /admin/ and the self-service pages at
// /account/. Pages are rendered on the server with html/template; the
// stylesheet and the small scripts (the dashboard chart, confirmations)
// are embedded files, so there is no front-end build and no inline script.
//
// Every request goes through one dispatcher (ServeHTTP): the path is
// refused unless it is already canonical (no encoded bytes, no dot or
// empty segments, no ';', lower case), then looked up in one exact route
// table whose entry names the role the route needs, and the role is
// checked before any handler runs. A path that is not in the table is
// 404 for everyone. Administrative operations go through internal/admin,
// the layer the XEP-0133 commands use too.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"parley/internal/access"
	"parley/internal/config"
	"parley/internal/logring"
	"parley/internal/module"
	"parley/internal/s2s"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps is what the console needs from the server.
type Deps struct {
	Config *config.Config
	Hosts  []*module.Host
	Store  storage.Store
	// Login checks console logins (StreamLogin in the server).
	Login Login
	// Gatherer is the server's metrics registry, the source of the
	// dashboard (the same counters /metrics exposes).
	Gatherer prometheus.Gatherer
	// Logs holds the recent log lines (nil: no log page content).
	Logs *logring.Ring
	// S2S lists live federation streams (nil while federation is off).
	S2S func() []s2s.ConnInfo
	// Groups resolves group membership (stored and directory groups).
	Groups access.GroupResolver
	Log    *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Console serves /admin/ and /account/.
type Console struct {
	d        Deps
	cfg      config.Console
	pages    map[string]*template.Template
	routes   map[string]route
	sessions *sessions
	stats    *sampler
	assets   http.Handler

	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

// role is what a route needs.
type role int

const (
	roleAnyone role = iota // login pages, assets
	roleUser               // any logged-in account of a host
	roleAdmin              // an administrator of at least one host
	roleServer             // an administrator of every host (server-wide pages)
)

type route struct {
	method string
	role   role
	h      func(*req)
}

// New builds the console. It mounts nothing: Mount does.
func New(d Deps) (*Console, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	cfg := d.Config.Console
	c := &Console{
		d: d, cfg: cfg,
		sessions: newSessions(cfg.IdleTimeout.Duration, cfg.MaxAge.Duration, cfg.MaxSessions, cfg.MaxSessionsPerAccount, d.Now),
		stop:     make(chan struct{}), stopped: make(chan struct{}),
	}
	c.stats = newSampler(d.Gatherer, d.Hosts, d.Now)
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	c.assets = http.FileServerFS(sub)
	c.routes = c.routeTable()
	return c, nil
}

// Mount mounts the enabled areas on the HTTPS listener.
func (c *Console) Mount(h module.HTTP) error {
	if c.cfg.Admin {
		if err := h.Mount("/admin/", c); err != nil {
			return err
		}
	}
	if c.cfg.Account {
		if err := h.Mount("/account/", c); err != nil {
			return err
		}
	}
	return nil
}

// Start starts the dashboard's sampler.
func (c *Console) Start() {
	go func() {
		defer close(c.stopped)
		c.stats.run(c.stop)
	}()
}

// Stop stops the sampler.
func (c *Console) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.stopped
}

func (c *Console) routeTable() map[string]route {
	rt := map[string]route{}
	add := func(method, path string, ro role, h func(*req)) { rt[method+" "+path] = route{method, ro, h} }
	if c.cfg.Admin {
		add("GET", "/admin/login", roleAnyone, c.loginPage("admin"))
		add("POST", "/admin/login", roleAnyone, c.loginPost("admin"))
		add("POST", "/admin/logout", roleUser, c.logout("admin"))
		add("GET", "/admin/", roleAdmin, c.dashboard)
		add("GET", "/admin/stats", roleAdmin, c.statsJSON)
		add("GET", "/admin/users", roleAdmin, c.users)
		add("POST", "/admin/users/create", roleAdmin, c.userCreate)
		add("GET", "/admin/user", roleAdmin, c.user)
		add("POST", "/admin/user/password", roleAdmin, c.userPassword)
		add("POST", "/admin/user/disable", roleAdmin, c.userDisable(true))
		add("POST", "/admin/user/enable", roleAdmin, c.userDisable(false))
		add("POST", "/admin/user/delete", roleAdmin, c.userDelete)
		add("POST", "/admin/user/end-session", roleAdmin, c.userEndSession)
		add("GET", "/admin/groups", roleAdmin, c.groups)
		add("POST", "/admin/groups/add", roleAdmin, c.groupChange(true))
		add("POST", "/admin/groups/remove", roleAdmin, c.groupChange(false))
		add("GET", "/admin/rooms", roleAdmin, c.rooms)
		add("GET", "/admin/room", roleAdmin, c.room)
		add("POST", "/admin/rooms/create", roleAdmin, c.roomCreate)
		add("POST", "/admin/room/configure", roleAdmin, c.roomConfigure)
		add("POST", "/admin/room/destroy", roleAdmin, c.roomDestroy)
		add("GET", "/admin/announce", roleAdmin, c.announcePage)
		add("POST", "/admin/announce", roleAdmin, c.announce)
		add("POST", "/admin/motd", roleAdmin, c.motdSet)
		add("POST", "/admin/motd/delete", roleAdmin, c.motdDelete)
		add("GET", "/admin/federation", roleServer, c.federation)
		add("GET", "/admin/log", roleServer, c.logTail)
		add("GET", "/admin/config", roleServer, c.configPage)
	}
	if c.cfg.Account {
		add("GET", "/account/login", roleAnyone, c.loginPage("account"))
		add("POST", "/account/login", roleAnyone, c.loginPost("account"))
		add("POST", "/account/logout", roleUser, c.logout("account"))
		add("GET", "/account/", roleUser, c.account)
		add("POST", "/account/password", roleUser, c.accountPassword)
		add("POST", "/account/profile", roleUser, c.accountProfile)
		add("POST", "/account/end-session", roleUser, c.accountEndSession)
		add("POST", "/account/revoke-token", roleUser, c.accountRevokeToken)
		add("GET", "/account/archive", roleUser, c.accountArchive)
	}
	return rt
}

// Route describes one route for tests that walk them all.
type Route struct {
	Method, Path string
	// Role is "user", "admin" (of some host) or "server" (of every host).
	Role string
}

// Routes returns every route that needs a login, sorted.
func (c *Console) Routes() []Route {
	var out []Route
	for k, r := range c.routes {
		if r.role == roleAnyone {
			continue
		}
		m, p, _ := strings.Cut(k, " ")
		out = append(out, Route{Method: m, Path: p, Role: [...]string{"", "user", "admin", "server"}[r.role]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	return out
}

// securityHeaders are set on every console response.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers send "Origin: null" on form posts
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// canonicalPath returns the request's path if it is in the one form the
// route table uses, and false for anything else: an encoded byte of any
// kind (%2e, %252e, %u002e, %2f), an empty, "." or ".." segment, a
// segment ending in a dot, ';' (the "..;/" of servlet containers), a
// backslash, or an upper-case letter. Nothing is decoded or cleaned
// here: a path that needs it is refused, so what is authorised is
// exactly what is served.
func canonicalPath(r *http.Request) (string, bool) {
	p := r.URL.Path
	if r.URL.EscapedPath() != p || strings.ContainsAny(p, "%;\\\x00") {
		return "", false
	}
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
		return "", false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		if s == "" && !last {
			return "", false
		}
		if s == "." || s == ".." || strings.HasSuffix(s, ".") {
			return "", false
		}
	}
	if strings.ToLower(p) != p {
		return "", false
	}
	return p, true
}

// ServeHTTP is the one entry of every console request: canonical path,
// route, role, CSRF for state changes, then the handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	p, ok := canonicalPath(r)
	if !ok {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(p, "/admin/assets/") || strings.HasPrefix(p, "/account/assets/") {
		c.serveAsset(w, r, p)
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt, ok := c.routes[method+" "+p]
	if !ok {
		if _, other := c.routes[otherMethod(method)+" "+p]; other {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		http.NotFound(w, r)
		return
	}
	q := c.newReq(w, r, p)
	if !c.authorize(q, rt.role) {
		return
	}
	if r.Method == http.MethodPost && !c.checkPost(q, rt.role) {
		return
	}
	rt.h(q)
}

func otherMethod(m string) string {
	if m == http.MethodGet {
		return http.MethodPost
	}
	return http.MethodGet
}

// serveAsset serves an embedded file: names of lower-case letters,
// digits, '-' and '.', one level deep.
func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request, p string) {
	_, name, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/assets/")
	if name == "" || strings.Contains(name, "/") || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + name
	c.assets.ServeHTTP(w, r2)
}

// authorize checks the route's role for the request's session and writes
// the refusal when it fails: anonymous GETs go to the login page, anything
// else anonymous is 401, and a logged-in user without the role gets 403.
func (c *Console) authorize(q *req, ro role) bool {
	if ro == roleAnyone {
		return true
	}
	if q.sess == nil {
		if q.r.Method == http.MethodGet || q.r.Method == http.MethodHead {
			http.Redirect(q.w, q.r, "/"+q.area+"/login", http.StatusSeeOther)
		} else {
			http.Error(q.w, "log in first", http.StatusUnauthorized)
		}
		return false
	}
	var ok bool
	switch ro {
	case roleUser:
		ok = q.userHost != nil
	case roleAdmin:
		ok = len(q.adminHosts) > 0
	case roleServer:
		ok = q.serverAdmin
	}
	if !ok {
		q.w.WriteHeader(http.StatusForbidden)
		c.render(q, "forbidden", "Forbidden", nil)
		return false
	}
	return true
}

// checkPost guards every state change: the request must come from our own
// pages (Origin, when the browser sends it, and Sec-Fetch-Site) and carry
// the session's CSRF token.
func (c *Console) checkPost(q *req, ro role) bool {
	r := q.r
	if o := r.Header.Get("Origin"); o != "" && o != "https://"+r.Host {
		http.Error(q.w, "cross-origin request refused", http.StatusForbidden)
		return false
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		http.Error(q.w, "cross-site request refused", http.StatusForbidden)
		return false
	}
	r.Body = http.MaxBytesReader(q.w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(q.w, "bad form", http.StatusBadRequest)
		return false
	}
	want := ""
	if ro == roleAnyone {
		want = cookieValue(r, loginCookie)
	} else if q.sess != nil {
		want = q.sess.csrf
	}
	if !sameToken(r.PostForm.Get("csrf"), want) {
		http.Error(q.w, "the form expired or did not come from this site; reload the page", http.StatusForbidden)
		return false
	}
	return true
}

// req is one request with what the dispatcher learnt about its sender.
type req struct {
	c    *Console
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	path string
	area string // "admin" or "account"

	tok        string
	sess       *session
	user       jid.JID
	userHost   *module.Host   // the host of the user's account
	adminHosts []*module.Host // hosts the user administers
	// serverAdmin: administers every host, so sees server-wide pages.
	serverAdmin bool
}

func (c *Console) newReq(w http.ResponseWriter, r *http.Request, p string) *req {
	q := &req{c: c, w: w, r: r, ctx: r.Context(), path: p, area: "account"}
	if strings.HasPrefix(p, "/admin/") {
		q.area = "admin"
	}
	q.tok = cookieValue(r, sessionCookie)
	q.sess = c.sessions.get(q.tok)
	if q.sess == nil {
		return q
	}
	q.user = q.sess.user
	q.userHost = c.hostOf(q.user)
	if !c.sessionStands(q) {
		q.sess, q.user, q.userHost = nil, jid.JID{}, nil
		return q
	}
	for _, h := range c.d.Hosts {
		if h.IsAdmin(q.ctx, q.user) {
			q.adminHosts = append(q.adminHosts, h)
		}
	}
	q.serverAdmin = len(q.adminHosts) == len(c.d.Hosts) && len(c.d.Hosts) > 0
	return q
}

// sessionStands checks q's session against its account as it is now
// (accountStamp): a session whose account was deleted, re-created,
// disabled or given a new password since the login ends. When storage
// cannot be asked, the request is served as anonymous (fail closed) and
// the session kept for the next one.
func (c *Console) sessionStands(q *req) bool {
	if q.userHost == nil {
		c.sessions.end(q.tok)
		return false
	}
	stamp, err := accountStamp(q.ctx, q.userHost, q.user)
	switch {
	case errors.Is(err, errAccountGone):
	case err != nil:
		c.d.Log.Error("console: checking the session's account", "user", q.user.String(), "err", err)
		return false
	case stamp == c.sessions.stampOf(q.sess):
		return true
	}
	c.sessions.end(q.tok)
	c.d.Log.Info("console: session ended", "user", q.user.String(), "reason", "account deleted, disabled or its password changed since the login")
	return false
}

// host returns the host the request names (?host= or the form's host)
// when the user administers it; otherwise it answers 403 and returns nil.
// Without a name it is the first host the user administers.
func (q *req) host() *module.Host {
	name := q.r.FormValue("host")
	if name == "" && len(q.adminHosts) > 0 {
		return q.adminHosts[0]
	}
	for _, h := range q.adminHosts {
		if h.Domain == name {
			return h
		}
	}
	q.w.WriteHeader(http.StatusForbidden)
	q.c.render(q, "forbidden", "Forbidden", nil)
	return nil
}
