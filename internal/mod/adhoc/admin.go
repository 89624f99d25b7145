package adhoc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"parley/internal/legacyauth"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// KV records of the module: the message of the day (owner: the domain)
// and each account's last login (owner: its bare JID, so deleting the
// account deletes it).
const (
	kvBucket    = "adhoc"
	kvMOTD      = "motd"
	kvLastLogin = "lastlogin"
)

// directoryText explains why account-changing commands are refused on a
// host whose accounts live in a directory (as the register module does):
// a password or flag set in storage would never be consulted at login.
const directoryText = "accounts on this server are managed by its directory: add, delete, disable and change passwords there"

// maxListed bounds the online users listed by get-online-users-list when
// the administrator asks for no maximum: the answer is one stanza.
const maxListed = 1000

// adminCmd is one XEP-0133 command: with a form, the first stage sends it
// and the second (the submitted form) acts; without, executing acts.
type adminCmd struct {
	node, name string
	// changes marks commands that change accounts: refused on directory
	// hosts.
	changes bool
	form    func(ctx context.Context) *xml.Element
	do      func(req *Request) Response
}

// addAdminCommands registers the XEP-0133 set, each under its node name
// http://jabber.org/protocol/admin#<name>, for the host's admins only.
func (a *Adhoc) addAdminCommands() {
	jidsForm := func(title string) func(context.Context) *xml.Element {
		return func(context.Context) *xml.Element {
			return form("form", title, "", field{Var: "accountjids", Type: "jid-multi", Label: "The Jabber ID(s)", Required: true})
		}
	}
	jidForm := func(title string) func(context.Context) *xml.Element {
		return func(context.Context) *xml.Element {
			return form("form", title, "", field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID", Required: true})
		}
	}
	cmds := []adminCmd{
		{node: "add-user", name: "Add User", changes: true, do: a.addUser, form: func(context.Context) *xml.Element {
			return form("form", "Adding a User", "Fill out this form to add a user.",
				field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID for the account to be added", Required: true},
				field{Var: "password", Type: "text-private", Label: "The password for this account", Required: true},
				field{Var: "password-verify", Type: "text-private", Label: "Retype password"},
				field{Var: "email", Type: "text-single", Label: "Email address"},
				field{Var: "given_name", Type: "text-single", Label: "Given name"},
				field{Var: "surname", Type: "text-single", Label: "Family name"})
		}},
		{node: "delete-user", name: "Delete User", changes: true, do: a.deleteUsers, form: jidsForm("Deleting users")},
		{node: "disable-user", name: "Disable User", changes: true, do: a.disableUsers(true), form: jidsForm("Disabling users")},
		{node: "reenable-user", name: "Re-Enable User", changes: true, do: a.disableUsers(false), form: jidsForm("Re-enabling users")},
		{node: "change-user-password", name: "Change User Password", changes: true, do: a.changePassword, form: func(context.Context) *xml.Element {
			return form("form", "Changing a User Password", "",
				field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID", Required: true},
				field{Var: "password", Type: "text-private", Label: "The new password", Required: true})
		}},
		{node: "get-registered-users-num", name: "Get Number of Registered Users", do: a.registeredNum},
		{node: "get-online-users-num", name: "Get Number of Online Users", do: a.onlineNum},
		{node: "get-online-users-list", name: "Get List of Online Users", do: a.onlineList, form: func(context.Context) *xml.Element {
			return form("form", "Getting the list of online users", "",
				field{Var: "max_items", Type: "list-single", Label: "Maximum number of items to report"})
		}},
		{node: "end-user-session", name: "End User Session", do: a.endSessions, form: jidsForm("Ending user sessions")},
		{node: "announce", name: "Send Announcement to Online Users", do: a.announce, form: func(context.Context) *xml.Element {
			return form("form", "Making an Announcement", "",
				field{Var: "subject", Type: "text-single", Label: "Subject"},
				field{Var: "announcement", Type: "text-multi", Label: "Announcement", Required: true})
		}},
		{node: "set-motd", name: "Set Message of the Day", do: a.setMOTD, form: func(context.Context) *xml.Element {
			return form("form", "Setting the Message of the Day", "",
				field{Var: "motd", Type: "text-multi", Label: "Message of the Day", Required: true})
		}},
		{node: "edit-motd", name: "Edit Message of the Day", do: a.setMOTD, form: func(ctx context.Context) *xml.Element {
			cur, _ := a.motd(ctx)
			return form("form", "Editing the Message of the Day", "",
				field{Var: "motd", Type: "text-multi", Label: "Message of the Day", Required: true, Values: lines(cur)})
		}},
		{node: "delete-motd", name: "Delete Message of the Day", do: a.deleteMOTD},
		{node: "get-user-roster", name: "Get User Roster", do: a.userRoster, form: jidForm("Getting a User's Roster")},
		{node: "get-user-lastlogin", name: "Get User Last Login Time", do: a.lastLogin, form: jidForm("Getting a User's Last Login Time")},
	}
	for _, c := range cmds {
		a.Add(Command{
			Node:    NSAdmin + "#" + c.node,
			Name:    c.name,
			Allowed: a.h.IsAdmin,
			Run:     a.adminRun(c),
		})
	}
}

// adminRun turns an adminCmd into a Command's Run.
func (a *Adhoc) adminRun(c adminCmd) func(*Request) Response {
	return func(req *Request) Response {
		if c.changes && a.h.AccountSource != nil {
			return Response{Err: &stanza.Error{Condition: stanza.NotAllowed, Text: directoryText}}
		}
		if req.Form == nil && c.form != nil {
			return Response{Status: StatusExecuting, Form: c.form(req.Ctx)}
		}
		if ft := req.Form.Value("FORM_TYPE"); req.Form != nil && ft != "" && ft != NSAdmin {
			return badRequest("FORM_TYPE must be " + NSAdmin)
		}
		return c.do(req)
	}
}

func badRequest(text string) Response {
	return Response{Err: &stanza.Error{Condition: stanza.BadRequest, Text: text}}
}

func internalError() Response {
	return Response{Err: &stanza.Error{Condition: stanza.InternalServerError}}
}

func done(note string) Response { return Response{Status: StatusCompleted, Note: note} }

// audit logs one administrative action: who, what, on whom. Never a
// password or message text.
func (a *Adhoc) audit(req *Request, what string, targets ...string) {
	a.h.Log.Info("adhoc: admin action", "admin", req.From.Bare().String(), "command", what, "target", strings.Join(targets, " "))
}

// account parses s as the bare JID of an account of this host.
func (a *Adhoc) account(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%q is not a valid JID", s)
	}
	if j.Local() == "" || j.Domain() != a.h.Domain || j.Resource() != "" {
		return jid.JID{}, fmt.Errorf("%q is not an account of %s", s, a.h.Domain)
	}
	return j, nil
}

// accounts parses the accountjids field: every value must be an account
// JID of this host, and at least one must be given.
func (a *Adhoc) accounts(f *Form) ([]jid.JID, error) {
	vals := f.Multi("accountjids")
	if len(vals) == 0 {
		vals = f.Multi("accountjid")
	}
	if len(vals) == 0 {
		return nil, errors.New("accountjids is required")
	}
	out := make([]jid.JID, 0, len(vals))
	for _, v := range vals {
		j, err := a.account(v)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// existing parses the accountjid field and checks that the account exists.
func (a *Adhoc) existing(req *Request) (jid.JID, *Response) {
	j, err := a.account(req.Form.Value("accountjid"))
	if err != nil {
		r := badRequest(err.Error())
		return jid.JID{}, &r
	}
	ok, err := a.h.AccountExists(req.Ctx, j.Local())
	if err != nil {
		r := internalError()
		return jid.JID{}, &r
	}
	if !ok {
		return jid.JID{}, &Response{Err: &stanza.Error{Condition: stanza.ItemNotFound, Text: "no account " + j.String()}}
	}
	return j, nil
}

func (a *Adhoc) addUser(req *Request) Response {
	j, err := a.account(req.Form.Value("accountjid"))
	if err != nil {
		return badRequest(err.Error())
	}
	pw := req.Form.Value("password")
	if pw == "" {
		return badRequest("password is required")
	}
	if v, ok := req.Form.Values["password-verify"]; ok && len(v) > 0 && strings.TrimSpace(v[0]) != pw {
		return Response{Err: &stanza.Error{Condition: stanza.NotAcceptable, Text: "the passwords do not match"}}
	}
	fields := map[string]string{}
	for form, reg := range map[string]string{"email": "email", "given_name": "first", "surname": "last"} {
		if v := req.Form.Value(form); v != "" {
			fields[reg] = v
		}
	}
	acct := storage.Account{Host: a.h.Domain, Username: j.Local(), Fields: fields}
	err = legacyauth.CreateAccount(req.Ctx, a.h.Store, a.h.Config, acct, pw)
	if errors.Is(err, storage.ErrExists) {
		return Response{Err: &stanza.Error{Condition: stanza.Conflict, Text: j.String() + " exists already"}}
	}
	if err != nil {
		a.h.Log.Error("adhoc: add user", "user", j.String(), "err", err)
		return internalError()
	}
	a.audit(req, "add-user", j.String())
	a.h.Accounts.Fire(module.EventAccountCreated, &module.AccountEvent{Ctx: req.Ctx, Host: a.h, JID: j})
	return done("Added " + j.String())
}

// deleteUsers deletes accounts with all their data (one transaction each),
// tells modules, and ends the accounts' sessions, as `parley user del`
// does through the admin socket.
func (a *Adhoc) deleteUsers(req *Request) Response {
	js, err := a.accounts(req.Form)
	if err != nil {
		return badRequest(err.Error())
	}
	ctx := context.WithoutCancel(req.Ctx)
	var deleted, missing []string
	for _, j := range js {
		err := a.h.Store.Accounts().Delete(ctx, a.h.Domain, j.Local())
		if errors.Is(err, storage.ErrNotFound) {
			missing = append(missing, j.String())
			continue
		}
		if err != nil {
			a.h.Log.Error("adhoc: delete user", "user", j.String(), "err", err)
			return internalError()
		}
		deleted = append(deleted, j.String())
		a.audit(req, "delete-user", j.String())
		a.h.Accounts.Fire(module.EventAccountDeleted, &module.AccountEvent{Ctx: ctx, Host: a.h, JID: j})
		for _, s := range a.h.Router.Sessions(j) {
			s.Close("not-authorized", "account deleted")
		}
	}
	return done(summary("Deleted", deleted, missing))
}

// disableUsers disables (and ends the sessions of) or re-enables accounts;
// a disabled account keeps its data and cannot log in.
func (a *Adhoc) disableUsers(disable bool) func(*Request) Response {
	verb, what := "Re-enabled", "reenable-user"
	if disable {
		verb, what = "Disabled", "disable-user"
	}
	return func(req *Request) Response {
		js, err := a.accounts(req.Form)
		if err != nil {
			return badRequest(err.Error())
		}
		var changed, missing []string
		for _, j := range js {
			err := a.h.Store.Accounts().SetDisabled(req.Ctx, a.h.Domain, j.Local(), disable)
			if errors.Is(err, storage.ErrNotFound) {
				missing = append(missing, j.String())
				continue
			}
			if err != nil {
				a.h.Log.Error("adhoc: "+what, "user", j.String(), "err", err)
				return internalError()
			}
			changed = append(changed, j.String())
			a.audit(req, what, j.String())
			if disable {
				for _, s := range a.h.Router.Sessions(j) {
					s.Close("not-authorized", "account disabled")
				}
			}
		}
		return done(summary(verb, changed, missing))
	}
}

func summary(verb string, ok, missing []string) string {
	var b strings.Builder
	if len(ok) > 0 {
		b.WriteString(verb + ": " + strings.Join(ok, ", ") + ".")
	}
	if len(missing) > 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("No such account: " + strings.Join(missing, ", ") + ".")
	}
	return b.String()
}

func (a *Adhoc) changePassword(req *Request) Response {
	j, err := a.account(req.Form.Value("accountjid"))
	if err != nil {
		return badRequest(err.Error())
	}
	pw := req.Form.Value("password")
	if pw == "" {
		return badRequest("password is required")
	}
	err = legacyauth.SetPassword(req.Ctx, a.h.Store, a.h.Config, a.h.Domain, j.Local(), pw)
	if errors.Is(err, storage.ErrNotFound) {
		return Response{Err: &stanza.Error{Condition: stanza.ItemNotFound, Text: "no account " + j.String()}}
	}
	if err != nil {
		a.h.Log.Error("adhoc: change password", "user", j.String(), "err", err)
		return internalError()
	}
	a.audit(req, "change-user-password", j.String())
	return done("Changed the password of " + j.String())
}

// registeredNum counts the accounts in storage (on a directory host, the
// accounts that have logged in or were created locally).
func (a *Adhoc) registeredNum(req *Request) Response {
	users, err := a.h.Store.Accounts().List(req.Ctx, a.h.Domain)
	if err != nil {
		return internalError()
	}
	a.audit(req, "get-registered-users-num")
	return Response{Status: StatusCompleted, Form: form("result", "Number of registered users", "",
		field{Var: "registeredusersnum", Label: "The number of registered users", Values: []string{strconv.Itoa(len(users))}})}
}

// online returns the bare JIDs with a bound session on this host, sorted,
// and the sessions by bare JID. The router knows every session; the module
// API's Router only answers per account, so the router is asked through
// the method it has for admin tools.
func (a *Adhoc) online() ([]string, map[string][]module.Session) {
	all, ok := a.h.Router.(interface{ AllSessions() []module.Session })
	if !ok {
		return nil, nil
	}
	by := make(map[string][]module.Session)
	for _, s := range all.AllSessions() {
		if s.JID().Domain() == a.h.Domain {
			b := s.JID().Bare().String()
			by[b] = append(by[b], s)
		}
	}
	users := make([]string, 0, len(by))
	for b := range by {
		users = append(users, b)
	}
	sort.Strings(users)
	return users, by
}

func (a *Adhoc) onlineNum(req *Request) Response {
	users, _ := a.online()
	a.audit(req, "get-online-users-num")
	return Response{Status: StatusCompleted, Form: form("result", "Number of online users", "",
		field{Var: "onlineusersnum", Label: "The number of online users", Values: []string{strconv.Itoa(len(users))}})}
}

func (a *Adhoc) onlineList(req *Request) Response {
	limit := maxListed
	if v := req.Form.Value("max_items"); v != "" && v != "none" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("max_items must be a positive number or none")
		}
		limit = min(n, maxListed)
	}
	users, _ := a.online()
	if len(users) > limit {
		users = users[:limit]
	}
	a.audit(req, "get-online-users-list")
	return Response{Status: StatusCompleted, Form: form("result", "Online users", "",
		field{Var: "onlineuserjids", Type: "jid-multi", Label: "The list of all online users", Values: users})}
}

// endSessions ends the sessions named: every session of a bare JID, or
// the one of a full JID.
func (a *Adhoc) endSessions(req *Request) Response {
	vals := req.Form.Multi("accountjids")
	if len(vals) == 0 {
		vals = req.Form.Multi("accountjid")
	}
	if len(vals) == 0 {
		return badRequest("accountjids is required")
	}
	var targets []jid.JID
	for _, v := range vals {
		j, err := jid.Parse(v)
		if err != nil || j.Local() == "" || j.Domain() != a.h.Domain {
			return badRequest(fmt.Sprintf("%q is not a JID of an account of %s", v, a.h.Domain))
		}
		targets = append(targets, j)
	}
	n := 0
	for _, j := range targets {
		var ss []module.Session
		if j.Resource() == "" {
			ss = a.h.Router.Sessions(j)
		} else if s := a.h.Router.Session(j); s != nil {
			ss = []module.Session{s}
		}
		for _, s := range ss {
			s.Close("policy-violation", "session ended by an administrator")
			n++
		}
		a.audit(req, "end-user-session", j.String())
	}
	return done(fmt.Sprintf("Ended %d session(s).", n))
}

// announce sends a message from the host to every available session of
// the host. It goes to sessions directly: an announcement is for who is
// online now, never for offline storage.
func (a *Adhoc) announce(req *Request) Response {
	body := strings.TrimSpace(req.Form.Text("announcement"))
	if body == "" {
		return badRequest("announcement is required")
	}
	subject := req.Form.Value("subject")
	_, by := a.online()
	n := 0
	for _, ss := range by {
		for _, s := range ss {
			if !module.Available(s) {
				continue
			}
			s.Send(a.message(s.JID(), subject, body))
			n++
		}
	}
	a.audit(req, "announce", fmt.Sprintf("%d sessions", n))
	return done(fmt.Sprintf("Sent to %d session(s).", n))
}

// message is a headline from the host to one session.
func (a *Adhoc) message(to jid.JID, subject, body string) *xml.Element {
	m := xml.New("", "message").SetAttr("from", a.h.Domain).SetAttr("to", to.String()).SetAttr("type", "headline")
	if subject != "" {
		m.Append(xml.New("", "subject").AppendText(subject))
	}
	return m.Append(xml.New("", "body").AppendText(body))
}

func (a *Adhoc) setMOTD(req *Request) Response {
	text := strings.TrimSpace(req.Form.Text("motd"))
	if text == "" {
		return badRequest("motd is required")
	}
	if err := a.h.Store.KV().Set(req.Ctx, kvBucket, a.h.Domain, kvMOTD, []byte(text)); err != nil {
		return internalError()
	}
	a.audit(req, "set-motd")
	return done("The message of the day is set; users get it when they come online.")
}

func (a *Adhoc) deleteMOTD(req *Request) Response {
	if err := a.h.Store.KV().Delete(req.Ctx, kvBucket, a.h.Domain, kvMOTD); err != nil {
		return internalError()
	}
	a.audit(req, "delete-motd")
	return done("The message of the day is deleted.")
}

// motd returns the stored message of the day, "" when there is none.
func (a *Adhoc) motd(ctx context.Context) (string, error) {
	b, err := a.h.Store.KV().Get(ctx, kvBucket, a.h.Domain, kvMOTD)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	return string(b), err
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (a *Adhoc) userRoster(req *Request) Response {
	j, errResp := a.existing(req)
	if errResp != nil {
		return *errResp
	}
	items, _, err := a.h.Store.Roster().Items(req.Ctx, j.String())
	if err != nil {
		return internalError()
	}
	a.audit(req, "get-user-roster", j.String())
	q := xml.New("jabber:iq:roster", "query")
	for _, it := range items {
		item := xml.New("jabber:iq:roster", "item").SetAttr("jid", it.JID).SetAttr("subscription", it.Subscription)
		if it.Name != "" {
			item.SetAttr("name", it.Name)
		}
		for _, g := range it.Groups {
			item.Append(xml.New("jabber:iq:roster", "group").AppendText(g))
		}
		q.Append(item)
	}
	f := form("result", "Roster of "+j.String(), "", field{Var: "accountjid", Type: "jid-single", Values: []string{j.String()}})
	return Response{Status: StatusCompleted, Form: f.Append(q)}
}

func (a *Adhoc) lastLogin(req *Request) Response {
	j, errResp := a.existing(req)
	if errResp != nil {
		return *errResp
	}
	b, err := a.h.Store.KV().Get(req.Ctx, kvBucket, j.String(), kvLastLogin)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return internalError()
	}
	a.audit(req, "get-user-lastlogin", j.String())
	var at []string
	if len(b) > 0 {
		at = []string{string(b)}
	}
	f := form("result", "Last login of "+j.String(), "",
		field{Var: "accountjid", Type: "jid-single", Values: []string{j.String()}},
		field{Var: "lastlogin", Type: "text-single", Label: "User last login time", Values: at})
	r := Response{Status: StatusCompleted, Form: f}
	if len(b) == 0 {
		r.Note = "No login recorded for " + j.String()
	}
	return r
}

// onBound records the account's last login (XEP-0082 date-time, UTC).
func (a *Adhoc) onBound(ev *module.SessionEvent) bool {
	bare := ev.Session.JID().Bare().String()
	now := time.Now().UTC().Format(time.RFC3339)
	if err := a.h.Store.KV().Set(ev.Ctx, kvBucket, bare, kvLastLogin, []byte(now)); err != nil {
		a.h.Log.Warn("adhoc: record last login", "user", bare, "err", err)
	}
	return false
}

// onAvailable sends the message of the day to a session coming online.
func (a *Adhoc) onAvailable(ev *module.SessionEvent) bool {
	text, err := a.motd(ev.Ctx)
	if err != nil {
		a.h.Log.Warn("adhoc: read motd", "err", err)
		return false
	}
	if text != "" {
		ev.Session.Send(a.message(ev.Session.JID(), "Message of the day", text))
	}
	return false
}
