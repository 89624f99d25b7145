package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// pageNames are the templates under templates/, each rendered inside
// base.html.
var pageNames = []string{"login", "forbidden", "dashboard", "users", "user", "groups", "rooms", "room",
	"announce", "federation", "log", "config", "account"}

func (c *Console) parseTemplates() error {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join": strings.Join,
		"add":  func(a, b int) int { return a + b },
	}
	c.pages = make(map[string]*template.Template, len(pageNames))
	for _, n := range pageNames {
		t, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/"+n+".html")
		if err != nil {
			return fmt.Errorf("console: template %s: %w", n, err)
		}
		c.pages[n] = t
	}
	return nil
}

type navItem struct {
	Href, Label string
	Current     bool
}

// page is what base.html renders around a page.
type page struct {
	Title  string
	Area   string
	User   string
	CSRF   string
	Flash  string
	Error  string
	Nav    []navItem
	Hosts  []string // hosts the user administers
	Host   string   // the host the page is about
	Server bool
	Data   any
}

func (c *Console) nav(q *req) []navItem {
	var items []navItem
	if q.area == "admin" && len(q.adminHosts) > 0 {
		items = []navItem{{"/admin/", "Dashboard", false}, {"/admin/users", "Users", false}, {"/admin/groups", "Groups", false},
			{"/admin/rooms", "Rooms", false}, {"/admin/announce", "Announce", false}}
		if q.serverAdmin {
			items = append(items, navItem{"/admin/federation", "Federation", false}, navItem{"/admin/log", "Log", false}, navItem{"/admin/config", "Configuration", false})
		}
		if c.cfg.Account && q.userHost != nil {
			items = append(items, navItem{"/account/", "My account", false})
		}
	} else if q.area == "account" && q.sess != nil {
		items = []navItem{{"/account/", "My account", false}}
		if c.cfg.Admin && len(q.adminHosts) > 0 {
			items = append(items, navItem{"/admin/", "Administration", false})
		}
	}
	for i := range items {
		items[i].Current = items[i].Href == q.path || (items[i].Href != "/admin/" && items[i].Href != "/account/" && strings.HasPrefix(q.path, strings.TrimSuffix(items[i].Href, "s")))
	}
	return items
}

// render writes page name with data; the status is whatever was set
// before (200 by default).
func (c *Console) render(q *req, name, title string, data any) {
	p := page{Title: title, Area: q.area, Nav: c.nav(q), Server: q.serverAdmin, Data: data}
	if q.sess != nil {
		p.User = q.user.String()
		p.CSRF = q.sess.csrf
		p.Flash = c.sessions.takeFlash(q.sess)
	}
	for _, h := range q.adminHosts {
		p.Hosts = append(p.Hosts, h.Domain)
	}
	if hv := q.r.FormValue("host"); hv != "" {
		p.Host = hv
	} else if len(p.Hosts) > 0 {
		p.Host = p.Hosts[0]
	}
	c.renderPage(q, name, p)
}

func (c *Console) renderPage(q *req, name string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.d.Log.Error("console: render", "page", name, "err", err)
		http.Error(q.w, "internal error", http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = q.w.Write(buf.Bytes())
}

// done leaves msg for the next page and sends the browser there (POST,
// redirect, GET: a reload does not repeat the action).
func (c *Console) done(q *req, msg, to string) {
	if q.sess != nil && msg != "" {
		c.sessions.setFlash(q.sess, msg)
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
}
