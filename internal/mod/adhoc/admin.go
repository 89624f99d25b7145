package adhoc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"parley/internal/admin"
	"parley/internal/module"
	"parley/internal/passpolicy"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// maxListed bounds the online users listed by get-online-users-list when
// the administrator asks for no maximum: the answer is one stanza.
const maxListed = 1000

// adminCmd is one XEP-0133 command: with a form, the first stage sends it
// and the second (the submitted form) acts; without, executing acts.
type adminCmd struct {
	node, name string
	// changes marks commands that change accounts: refused on directory
	// hosts. password marks the one that changes only a password, which
	// a directory host allows with [directory] password_write.
	changes, password bool
	form              func(ctx context.Context) *xml.Element
	do                func(req *Request) Response
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
		{node: "change-user-password", name: "Change User Password", changes: true, password: true, do: a.changePassword, form: func(context.Context) *xml.Element {
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
			cur, _ := a.ops.MOTD(ctx)
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
		if c.changes && a.ops.Directory() && !(c.password && a.ops.PasswordsWritable()) {
			return Response{Err: &stanza.Error{Condition: stanza.NotAllowed, Text: admin.ErrDirectory.Error()}}
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

// actor is the requester as the shared admin layer logs it.
func actor(req *Request) admin.Actor { return admin.Actor{JID: req.From, Via: "xmpp"} }

// failed turns an error of the admin layer into the command's answer.
func (a *Adhoc) failed(what string, j jid.JID, err error) Response {
	var ie *admin.InputError
	var oe *admin.OutrankedError
	switch {
	case errors.As(err, &ie):
		return badRequest(ie.Msg)
	case errors.As(err, &oe):
		return Response{Err: &stanza.Error{Condition: stanza.Forbidden, Text: oe.Error()}}
	case passpolicy.IsViolation(err):
		return Response{Err: &stanza.Error{Condition: stanza.NotAcceptable, Text: "the password does not meet the policy: " + err.Error()}}
	case errors.Is(err, admin.ErrDirectory):
		return Response{Err: &stanza.Error{Condition: stanza.NotAllowed, Text: err.Error()}}
	case errors.Is(err, admin.ErrExists):
		return Response{Err: &stanza.Error{Condition: stanza.Conflict, Text: j.String() + " exists already"}}
	case errors.Is(err, admin.ErrNotFound):
		return Response{Err: &stanza.Error{Condition: stanza.ItemNotFound, Text: "no account " + j.String()}}
	}
	a.h.Log.Error("adhoc: "+what, "user", j.String(), "err", err)
	return internalError()
}

// account parses s as the bare JID of an account of this host; unlike the
// console, a command must name the whole JID.
func (a *Adhoc) account(s string) (jid.JID, error) {
	if !strings.Contains(s, "@") {
		return jid.JID{}, fmt.Errorf("%q is not an account of %s", s, a.h.Domain)
	}
	return a.ops.Account(s)
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
	ok, err := a.ops.Exists(req.Ctx, j)
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
	if err := a.ops.AddUser(req.Ctx, actor(req), j, pw, fields); err != nil {
		return a.failed("add user", j, err)
	}
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
	var deleted, missing []string
	for _, j := range js {
		err := a.ops.DeleteUser(req.Ctx, actor(req), j)
		if errors.Is(err, admin.ErrNotFound) {
			missing = append(missing, j.String())
			continue
		}
		if err != nil {
			return a.failed("delete user", j, err)
		}
		deleted = append(deleted, j.String())
	}
	return done(summary("Deleted", deleted, missing))
}

// disableUsers disables (and ends the sessions of) or re-enables accounts;
// a disabled account keeps its data and cannot log in.
func (a *Adhoc) disableUsers(disable bool) func(*Request) Response {
	verb := "Re-enabled"
	if disable {
		verb = "Disabled"
	}
	return func(req *Request) Response {
		js, err := a.accounts(req.Form)
		if err != nil {
			return badRequest(err.Error())
		}
		var changed, missing []string
		for _, j := range js {
			err := a.ops.SetDisabled(req.Ctx, actor(req), j, disable)
			if errors.Is(err, admin.ErrNotFound) {
				missing = append(missing, j.String())
				continue
			}
			if err != nil {
				return a.failed(strings.ToLower(verb), j, err)
			}
			changed = append(changed, j.String())
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
	if err := a.ops.SetPassword(req.Ctx, actor(req), j, pw); err != nil {
		return a.failed("change password", j, err)
	}
	return done("Changed the password of " + j.String())
}

// registeredNum counts the accounts in storage (on a directory host, the
// accounts that have logged in or were created locally).
func (a *Adhoc) registeredNum(req *Request) Response {
	n, err := a.ops.RegisteredCount(req.Ctx, actor(req))
	if err != nil {
		return internalError()
	}
	return Response{Status: StatusCompleted, Form: form("result", "Number of registered users", "",
		field{Var: "registeredusersnum", Label: "The number of registered users", Values: []string{strconv.Itoa(n)}})}
}

func (a *Adhoc) onlineNum(req *Request) Response {
	users, _ := a.ops.Online()
	a.ops.Audit(actor(req), "get-online-users-num")
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
	users, _ := a.ops.Online()
	if len(users) > limit {
		users = users[:limit]
	}
	a.ops.Audit(actor(req), "get-online-users-list")
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
		k, err := a.ops.EndSessions(req.Ctx, actor(req), j)
		if err != nil {
			return a.failed("end session", j, err)
		}
		n += k
	}
	return done(fmt.Sprintf("Ended %d session(s).", n))
}

// announce sends a message from the host to every available session of
// the host.
func (a *Adhoc) announce(req *Request) Response {
	body := strings.TrimSpace(req.Form.Text("announcement"))
	if body == "" {
		return badRequest("announcement is required")
	}
	n, err := a.ops.Announce(req.Ctx, actor(req), req.Form.Value("subject"), body)
	if err != nil {
		return a.failed("announce", jid.JID{}, err)
	}
	return done(fmt.Sprintf("Sent to %d session(s).", n))
}

func (a *Adhoc) setMOTD(req *Request) Response {
	text := strings.TrimSpace(req.Form.Text("motd"))
	if text == "" {
		return badRequest("motd is required")
	}
	if err := a.ops.SetMOTD(req.Ctx, actor(req), text); err != nil {
		return a.failed("set motd", jid.JID{}, err)
	}
	return done("The message of the day is set; users get it when they come online.")
}

func (a *Adhoc) deleteMOTD(req *Request) Response {
	if err := a.ops.DeleteMOTD(req.Ctx, actor(req)); err != nil {
		return internalError()
	}
	return done("The message of the day is deleted.")
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
	items, err := a.ops.Roster(req.Ctx, actor(req), j)
	if err != nil {
		return internalError()
	}
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
	last, err := a.ops.LastLogin(req.Ctx, actor(req), j)
	if err != nil {
		return internalError()
	}
	var at []string
	if last != "" {
		at = []string{last}
	}
	f := form("result", "Last login of "+j.String(), "",
		field{Var: "accountjid", Type: "jid-single", Values: []string{j.String()}},
		field{Var: "lastlogin", Type: "text-single", Label: "User last login time", Values: at})
	r := Response{Status: StatusCompleted, Form: f}
	if last == "" {
		r.Note = "No login recorded for " + j.String()
	}
	return r
}

// onBound records the account's last login (XEP-0082 date-time, UTC).
func (a *Adhoc) onBound(ev *module.SessionEvent) bool {
	if ev.Moved {
		return false // a session resumed from another node: no login
	}
	if err := a.ops.RecordLogin(ev.Ctx, ev.Session.JID(), time.Now()); err != nil {
		a.h.Log.Warn("adhoc: record last login", "user", ev.Session.JID().Bare().String(), "err", err)
	}
	return false
}

// onAvailable sends the message of the day to a session coming online.
func (a *Adhoc) onAvailable(ev *module.SessionEvent) bool {
	text, err := a.ops.MOTD(ev.Ctx)
	if err != nil {
		a.h.Log.Warn("adhoc: read motd", "err", err)
		return false
	}
	if text != "" {
		ev.Session.Send(a.ops.Headline(ev.Session.JID(), "Message of the day", text))
	}
	return false
}
