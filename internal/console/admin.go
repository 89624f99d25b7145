package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"parley/internal/access"
	"parley/internal/admin"
	"parley/internal/config"
	"parley/internal/directory"
	"parley/internal/mod/muc"
	"parley/internal/mod/vcard"
	"parley/internal/module"
	"parley/internal/passpolicy"
	"parley/internal/s2s"
	"parley/internal/xmpp/jid"
)

func (q *req) actor() admin.Actor { return admin.Actor{JID: q.user, Via: "web"} }

// target parses the form's jid as an account of a host the user
// administers; otherwise it answers (400 or 403) and returns nil.
func (q *req) target(field string) (*admin.Ops, jid.JID) {
	s := strings.TrimSpace(q.r.FormValue(field))
	j, err := jid.Parse(s)
	if err != nil || j.Local() == "" {
		http.Error(q.w, "not an account address", http.StatusBadRequest)
		return nil, jid.JID{}
	}
	for _, h := range q.adminHosts {
		if h.Domain == j.Domain() {
			return admin.For(h), j
		}
	}
	q.w.WriteHeader(http.StatusForbidden)
	q.c.render(q, "forbidden", "Forbidden", nil)
	return nil, jid.JID{}
}

// explain turns an error of the admin layer into a message for the page.
func explain(err error) string {
	var ie *admin.InputError
	var oe *admin.OutrankedError
	switch {
	case errors.As(err, &ie):
		return ie.Msg
	case errors.As(err, &oe):
		return "Refused: " + oe.Error() + "."
	case passpolicy.IsViolation(err):
		return "The password does not meet the policy: " + err.Error() + "."
	case errors.Is(err, admin.ErrDirectory):
		return "This host's accounts are managed by its directory; change them there."
	case errors.Is(err, admin.ErrExists):
		return "That account exists already."
	case errors.Is(err, admin.ErrNotFound):
		return "There is no such account."
	}
	return "The operation failed; the server log has the details."
}

func (c *Console) fail(q *req, what string, err error, to string) {
	if !errors.Is(err, admin.ErrNotFound) && !errors.Is(err, admin.ErrExists) && !errors.Is(err, admin.ErrDirectory) && !passpolicy.IsViolation(err) {
		var ie *admin.InputError
		var oe *admin.OutrankedError
		if !errors.As(err, &ie) && !errors.As(err, &oe) {
			c.d.Log.Error("console: "+what, "admin", q.user.String(), "err", err)
		}
	}
	c.done(q, explain(err), to)
}

// --- dashboard ---

type dashData struct {
	Sessions    float64
	Logins      float64
	Stanzas     float64
	S2S         float64
	StorageMs   float64
	DirectoryUp float64
	HasSample   bool
	Directory   bool
	Hosts       []hostSummary
}

type hostSummary struct {
	Domain   string
	Sessions float64
	Users    int
}

func (c *Console) dashboard(q *req) {
	d := dashData{}
	if s, ok := c.stats.latest(); ok {
		d.HasSample = true
		d.Logins, d.Stanzas, d.S2S, d.StorageMs, d.DirectoryUp = s.LoginsPerSec, s.StanzasPerSec, s.S2S, s.StorageMs, s.DirectoryUp
		d.Directory = s.DirectoryUp >= 0
		for _, h := range q.adminHosts {
			d.Sessions += s.Sessions[h.Domain]
		}
	}
	for _, h := range q.adminHosts {
		hs := hostSummary{Domain: h.Domain}
		if s, ok := c.stats.latest(); ok {
			hs.Sessions = s.Sessions[h.Domain]
		}
		if users, err := h.Store.Accounts().List(q.ctx, h.Domain); err == nil {
			hs.Users = len(users)
		}
		d.Hosts = append(d.Hosts, hs)
	}
	c.render(q, "dashboard", "Dashboard", d)
}

func (c *Console) statsJSON(q *req) {
	hosts := map[string]bool{}
	for _, h := range q.adminHosts {
		hosts[h.Domain] = true
	}
	q.w.Header().Set("Content-Type", "application/json")
	_, _ = q.w.Write(c.stats.view(hosts, q.serverAdmin))
}

// --- users ---

type usersData struct {
	Query      string
	Users      []admin.User
	Total      int
	Page, Last int
	Prev, Next string
	Directory  bool
	MinLength  int
}

func (c *Console) users(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	ops := admin.For(h)
	query := q.r.FormValue("q")
	pg, _ := strconv.Atoi(q.r.FormValue("page"))
	pg = max(pg, 1)
	size := c.cfg.PageSize
	users, total, err := ops.Users(q.ctx, q.actor(), query, (pg-1)*size, size)
	if err != nil {
		c.d.Log.Error("console: list users", "err", err)
		http.Error(q.w, "storage error", http.StatusInternalServerError)
		return
	}
	d := usersData{Query: query, Users: users, Total: total, Page: pg, Last: max(1, (total+size-1)/size),
		Directory: ops.Directory(), MinLength: c.d.Config.Auth.MinPasswordLength}
	link := func(p int) string {
		v := url.Values{"host": {h.Domain}, "page": {strconv.Itoa(p)}}
		if query != "" {
			v.Set("q", query)
		}
		return "/admin/users?" + v.Encode()
	}
	if pg > 1 {
		d.Prev = link(pg - 1)
	}
	if pg < d.Last {
		d.Next = link(pg + 1)
	}
	c.render(q, "users", "Users of "+h.Domain, d)
}

func usersURL(h string) string { return "/admin/users?host=" + url.QueryEscape(h) }
func userURL(j jid.JID) string { return "/admin/user?jid=" + url.QueryEscape(j.Bare().String()) }

// newPassword checks what the console adds to the policy (which the admin
// layer applies): the password typed twice.
func (c *Console) newPassword(pw, again string) error {
	if pw != again {
		return &passpolicy.Violation{Msg: "the two passwords differ"}
	}
	return nil
}

func (c *Console) userCreate(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	ops := admin.For(h)
	back := usersURL(h.Domain)
	j, err := ops.Account(q.r.PostForm.Get("username"))
	if err != nil {
		c.fail(q, "add user", err, back)
		return
	}
	pw := q.r.PostForm.Get("password")
	if err := c.newPassword(pw, q.r.PostForm.Get("password2")); err != nil {
		c.fail(q, "add user", err, back)
		return
	}
	fields := map[string]string{}
	for _, f := range []string{"name", "email"} {
		if v := strings.TrimSpace(q.r.PostForm.Get(f)); v != "" {
			fields[f] = v
		}
	}
	if err := ops.AddUser(q.ctx, q.actor(), j, pw, fields); err != nil {
		c.fail(q, "add user", err, back)
		return
	}
	c.done(q, "Created "+j.String()+".", userURL(j))
}

type userData struct {
	JID        jid.JID
	Exists     bool
	Stored     bool
	Disabled   bool
	Created    string
	Fields     map[string]string
	Profile    []profileField
	HasProfile bool // some profile field has a value
	Sessions   []admin.Session
	LastLogin  string
	Contacts   int
	Directory  bool
	// PasswordWritable: the reset form is shown, also on a directory
	// host with [directory] password_write.
	PasswordWritable bool
	Groups           []string
}

func (c *Console) user(q *req) {
	ops, j := q.target("jid")
	if ops == nil {
		return
	}
	h := ops.Host()
	d := userData{JID: j, Directory: ops.Directory(), PasswordWritable: ops.PasswordsWritable()}
	ok, err := ops.Exists(q.ctx, j)
	if err != nil {
		c.d.Log.Error("console: user", "err", err)
	}
	d.Exists = ok
	if acct, err := ops.Get(q.ctx, j); err == nil {
		d.Stored, d.Disabled, d.Created, d.Fields = true, acct.Disabled, acct.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), acct.Fields
	}
	if !d.Exists && !d.Stored {
		http.NotFound(q.w, q.r)
		return
	}
	d.Sessions = ops.Sessions(j)
	d.LastLogin, _ = ops.LastLogin(q.ctx, q.actor(), j)
	if items, err := ops.Roster(q.ctx, q.actor(), j); err == nil {
		d.Contacts = len(items)
	}
	d.Profile, _, _ = c.profile(q, h, j)
	for _, f := range d.Profile {
		d.HasProfile = d.HasProfile || f.Value != ""
	}
	if c.d.Groups != nil {
		d.Groups, _ = c.d.Groups.Groups(q.ctx, h.Domain, j.Local())
	}
	c.render(q, "user", j.String(), d)
}

func (c *Console) userPassword(q *req) {
	ops, j := q.target("jid")
	if ops == nil {
		return
	}
	pw := q.r.PostForm.Get("password")
	if err := c.newPassword(pw, q.r.PostForm.Get("password2")); err != nil {
		c.fail(q, "reset password", err, userURL(j))
		return
	}
	if err := ops.SetPassword(q.ctx, q.actor(), j, pw); err != nil {
		c.fail(q, "reset password", err, userURL(j))
		return
	}
	c.sessions.endUser(j, "")
	c.done(q, "The password of "+j.String()+" is changed.", userURL(j))
}

func (c *Console) userDisable(disable bool) func(*req) {
	return func(q *req) {
		ops, j := q.target("jid")
		if ops == nil {
			return
		}
		if err := ops.SetDisabled(q.ctx, q.actor(), j, disable); err != nil {
			c.fail(q, "disable user", err, userURL(j))
			return
		}
		msg := j.String() + " is enabled again."
		if disable {
			c.sessions.endUser(j, "")
			msg = j.String() + " is disabled; its sessions ended."
		}
		c.done(q, msg, userURL(j))
	}
}

func (c *Console) userDelete(q *req) {
	ops, j := q.target("jid")
	if ops == nil {
		return
	}
	if q.r.PostForm.Get("confirm") != j.Bare().String() {
		c.done(q, "To delete the account, type its address into the confirmation field.", userURL(j))
		return
	}
	if err := ops.DeleteUser(q.ctx, q.actor(), j); err != nil {
		c.fail(q, "delete user", err, userURL(j))
		return
	}
	c.sessions.endUser(j, "")
	c.done(q, "Deleted "+j.String()+" and all its data.", usersURL(j.Domain()))
}

func (c *Console) userEndSession(q *req) {
	ops, j := q.target("jid")
	if ops == nil {
		return
	}
	n, err := ops.EndSessions(q.ctx, q.actor(), j)
	if err != nil {
		c.fail(q, "end session", err, userURL(j))
		return
	}
	c.done(q, fmt.Sprintf("Ended %d session(s).", n), userURL(j))
}

// --- groups ---

type groupsData struct {
	Groups    []groupRow
	Directory bool
}

type groupRow struct {
	Name    string
	Members []string
	Stored  bool // membership kept by Parley (editable)
}

func (c *Console) groups(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	stored, err := access.KVGroups{Store: c.d.Store}.Members(q.ctx, h.Domain)
	if err != nil {
		c.d.Log.Error("console: groups", "err", err)
	}
	var rows []groupRow
	for g, locals := range stored {
		m := make([]string, 0, len(locals))
		for _, l := range locals {
			m = append(m, l+"@"+h.Domain)
		}
		sort.Strings(m)
		rows = append(rows, groupRow{Name: g, Members: m, Stored: true})
	}
	// On a directory host, the directory's groups too (its last snapshot),
	// read-only.
	if d, ok := h.AccountSource.(*directory.Directory); ok {
		if snap := d.Current(); snap != nil {
			for g, locals := range snap.Groups {
				m := make([]string, 0, len(locals))
				for _, l := range locals {
					m = append(m, l+"@"+h.Domain)
				}
				rows = append(rows, groupRow{Name: g, Members: m})
			}
		}
	}
	sort.SliceStable(rows, func(i, k int) bool { return rows[i].Name < rows[k].Name })
	admin.For(h).Audit(q.actor(), "list-groups")
	c.render(q, "groups", "Groups of "+h.Domain, groupsData{Groups: rows, Directory: h.AccountSource != nil})
}

func (c *Console) groupChange(add bool) func(*req) {
	return func(q *req) {
		h := q.host()
		if h == nil {
			return
		}
		back := "/admin/groups?host=" + url.QueryEscape(h.Domain)
		ops := admin.For(h)
		j, err := ops.Account(q.r.PostForm.Get("user"))
		group := strings.TrimSpace(q.r.PostForm.Get("group"))
		if err != nil || group == "" || len(group) > 256 {
			c.done(q, "Name a group and an account of "+h.Domain+".", back)
			return
		}
		g := access.KVGroups{Store: c.d.Store}
		action := "group-remove"
		if add {
			action = "group-add"
			err = g.Add(q.ctx, h.Domain, j.Local(), group)
		} else {
			err = g.Remove(q.ctx, h.Domain, j.Local(), group)
		}
		if err != nil {
			c.fail(q, action, err, back)
			return
		}
		ops.Audit(q.actor(), action, group, j.String())
		c.done(q, "Group "+group+" changed.", back)
	}
}

// --- rooms ---

type roomsData struct {
	Service string
	Rooms   []muc.RoomInfo
}

func mucOf(h *module.Host) *muc.Service {
	m, ok := module.Lookup(h, muc.Key)
	if !ok {
		return nil
	}
	return m.Service()
}

func (c *Console) rooms(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	d := roomsData{}
	if s := mucOf(h); s != nil {
		d.Service = s.Domain()
		d.Rooms = s.Rooms()
	}
	admin.For(h).Audit(q.actor(), "list-rooms")
	c.render(q, "rooms", "Chat rooms of "+h.Domain, d)
}

// roomTarget finds the room named by the form's room (a room JID) on a
// host the user administers.
func (q *req) roomTarget() (*module.Host, *muc.Service, jid.JID) {
	j, err := jid.Parse(strings.TrimSpace(q.r.FormValue("room")))
	if err == nil && j.Local() != "" && j.Resource() == "" {
		for _, h := range q.adminHosts {
			if s := mucOf(h); s != nil && s.Domain() == j.Domain() {
				return h, s, j
			}
		}
	}
	q.w.WriteHeader(http.StatusForbidden)
	q.c.render(q, "forbidden", "Forbidden", nil)
	return nil, nil, jid.JID{}
}

type roomData struct {
	Room      muc.RoomInfo
	Occupants []muc.OccupantInfo
	Host      string
}

func roomURL(j jid.JID) string { return "/admin/room?room=" + url.QueryEscape(j.String()) }

func (c *Console) room(q *req) {
	h, s, j := q.roomTarget()
	if s == nil {
		return
	}
	var info *muc.RoomInfo
	for _, r := range s.Rooms() {
		if r.JID == j {
			info = &r
		}
	}
	occ, err := s.Occupants(j.Local())
	if info == nil || err != nil {
		http.NotFound(q.w, q.r)
		return
	}
	admin.For(h).Audit(q.actor(), "get-room", j.String())
	c.render(q, "room", j.String(), roomData{Room: *info, Occupants: occ, Host: h.Domain})
}

func (c *Console) roomCreate(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	back := "/admin/rooms?host=" + url.QueryEscape(h.Domain)
	s := mucOf(h)
	if s == nil {
		c.done(q, "This host runs no chat-room service.", back)
		return
	}
	f := q.r.PostForm
	name := strings.ToLower(strings.TrimSpace(f.Get("name")))
	err := s.CreateRoom(q.ctx, name, strings.TrimSpace(f.Get("title")), strings.TrimSpace(f.Get("description")),
		f.Get("public") == "on", f.Get("members_only") == "on", q.user)
	if err != nil {
		c.done(q, "The room was not created: "+strings.TrimPrefix(err.Error(), "muc: ")+".", back)
		return
	}
	admin.For(h).Audit(q.actor(), "create-room", name+"@"+s.Domain())
	c.done(q, "Created the persistent room "+name+"@"+s.Domain()+".", back)
}

func (c *Console) roomConfigure(q *req) {
	h, s, j := q.roomTarget()
	if s == nil {
		return
	}
	f := q.r.PostForm
	if err := s.ConfigureRoom(q.ctx, j.Local(), strings.TrimSpace(f.Get("title")), strings.TrimSpace(f.Get("description")),
		f.Get("public") == "on", f.Get("members_only") == "on"); err != nil {
		c.done(q, "The room was not changed: "+strings.TrimPrefix(err.Error(), "muc: ")+".", roomURL(j))
		return
	}
	admin.For(h).Audit(q.actor(), "configure-room", j.String())
	c.done(q, "Saved the room's configuration.", roomURL(j))
}

func (c *Console) roomDestroy(q *req) {
	h, s, j := q.roomTarget()
	if s == nil {
		return
	}
	back := "/admin/rooms?host=" + url.QueryEscape(h.Domain)
	if err := s.DestroyRoom(q.ctx, j.Local(), strings.TrimSpace(q.r.PostForm.Get("reason"))); err != nil {
		c.done(q, "The room was not destroyed: "+strings.TrimPrefix(err.Error(), "muc: ")+".", back)
		return
	}
	admin.For(h).Audit(q.actor(), "destroy-room", j.String())
	c.done(q, "Destroyed "+j.String()+".", back)
}

// --- announcements ---

type announceData struct {
	MOTD   string
	Online int
}

func (c *Console) announcePage(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	ops := admin.For(h)
	motd, _ := ops.MOTD(q.ctx)
	users, _ := ops.Online()
	c.render(q, "announce", "Announcements on "+h.Domain, announceData{MOTD: motd, Online: len(users)})
}

func (c *Console) announce(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	back := "/admin/announce?host=" + url.QueryEscape(h.Domain)
	n, err := admin.For(h).Announce(q.ctx, q.actor(), q.r.PostForm.Get("subject"), q.r.PostForm.Get("body"))
	if err != nil {
		c.fail(q, "announce", err, back)
		return
	}
	c.done(q, fmt.Sprintf("Sent to %d session(s).", n), back)
}

func (c *Console) motdSet(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	back := "/admin/announce?host=" + url.QueryEscape(h.Domain)
	if err := admin.For(h).SetMOTD(q.ctx, q.actor(), q.r.PostForm.Get("motd")); err != nil {
		c.fail(q, "set motd", err, back)
		return
	}
	c.done(q, "The message of the day is set; users get it when they come online.", back)
}

func (c *Console) motdDelete(q *req) {
	h := q.host()
	if h == nil {
		return
	}
	back := "/admin/announce?host=" + url.QueryEscape(h.Domain)
	if err := admin.For(h).DeleteMOTD(q.ctx, q.actor()); err != nil {
		c.fail(q, "delete motd", err, back)
		return
	}
	c.done(q, "The message of the day is deleted.", back)
}

// --- server-wide pages ---

type federationData struct {
	Enabled bool
	Streams []s2s.ConnInfo
	Hosts   []hostPolicy
}

type hostPolicy struct {
	Domain  string
	Policy  config.S2SPolicy
	Allowed []string
	Blocked []string
}

func (c *Console) federation(q *req) {
	d := federationData{Enabled: c.d.Config.S2S.Enabled}
	if c.d.S2S != nil {
		d.Streams = c.d.S2S()
	}
	for _, h := range c.d.Hosts {
		p := c.d.Config.S2SPolicyFor(h.Domain)
		d.Hosts = append(d.Hosts, hostPolicy{Domain: h.Domain, Policy: p, Allowed: p.AllowedDomains, Blocked: p.BlockedDomains})
	}
	c.audit(q, "view-federation")
	c.render(q, "federation", "Federation", d)
}

// audit logs a server-wide action (no host's Ops applies).
func (c *Console) audit(q *req, action string, targets ...string) {
	c.d.Log.Info("admin action", "admin", q.user.String(), "via", "web", "action", action, "target", strings.Join(targets, " "))
}

type logData struct {
	Lines []string
	N     int
}

func (c *Console) logTail(q *req) {
	n, _ := strconv.Atoi(q.r.FormValue("n"))
	if n <= 0 || n > c.cfg.LogLines {
		n = min(200, c.cfg.LogLines)
	}
	d := logData{N: n}
	if c.d.Logs != nil {
		d.Lines = c.d.Logs.Lines(n)
	}
	c.audit(q, "view-log")
	c.render(q, "log", "Server log", d)
}

func (c *Console) configPage(q *req) {
	b, err := c.d.Config.Redacted().Encode()
	if err != nil {
		http.Error(q.w, "cannot encode the configuration", http.StatusInternalServerError)
		return
	}
	c.audit(q, "view-config")
	c.render(q, "config", "Effective configuration", string(b))
}

// profile returns the profile fields of j with their modes (the
// directory's mapping on directory hosts, all local otherwise).
func (c *Console) profile(q *req, h *module.Host, j jid.JID) ([]profileField, map[string]string, error) {
	v := vcard.Of(h)
	if v == nil {
		return nil, nil, errors.New("no vcard module")
	}
	card, err := v.Get(q.ctx, j)
	if err != nil {
		return nil, nil, err
	}
	vals := directory.ProfileValues(card)
	fields := directory.LocalProfileFields()
	if d, ok := h.AccountSource.(*directory.Directory); ok {
		fields = d.ProfileFields()
	}
	var out []profileField
	for _, f := range fields {
		label, shown := profileLabels[f.Name]
		if !shown {
			continue
		}
		out = append(out, profileField{Name: f.Name, Label: label, Value: vals[f.Name], Mode: f.Mode,
			Editable: f.Mode == config.ProfileLocal || f.Mode == config.ProfileUpdate})
	}
	sort.SliceStable(out, func(i, k int) bool { return profileOrder[out[i].Name] < profileOrder[out[k].Name] })
	return out, vals, nil
}

type profileField struct {
	Name, Label, Value, Mode string
	Editable                 bool
}

// The fields the self-service page offers, in order.
var profileFieldList = [][2]string{
	{"display_name", "Display name"}, {"given_name", "Given name"}, {"family_name", "Family name"},
	{"nickname", "Nickname"}, {"email", "Email"}, {"mobile", "Mobile phone"}, {"landline", "Phone"},
	{"job_title", "Job title"}, {"org_name", "Organisation"}, {"org_unit", "Department"},
	{"locality", "City"}, {"country", "Country"}, {"homepage", "Web page"}, {"description", "About"},
}

var profileLabels, profileOrder = func() (map[string]string, map[string]int) {
	l, o := map[string]string{}, map[string]int{}
	for i, f := range profileFieldList {
		l[f[0]], o[f[0]] = f[1], i
	}
	return l, o
}()
