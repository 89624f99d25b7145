// Package admin is the one implementation of Parley's administrative
// operations on a host: accounts (create, delete, disable, set password,
// list), sessions (list, end), announcements and the message of the day,
// and the reads an administrator may make about an account (roster, last
// login). The XEP-0133 commands (internal/mod/adhoc) and the web console
// (internal/console) are two front ends of this package, so an operation
// behaves the same and leaves the same audit line whichever way it is
// asked for.
//
// Callers check module.Host.IsAdmin first: whether the actor administers
// the host at all. What the package adds is the rule that spans hosts:
// an administrator of some hosts may not reset, disable, delete or end
// the sessions of an account that administers a host the actor does not
// (ErrOutranked), or a delegated administrator could take over a
// server-wide one. And every operation performed through it is logged
// once with the actor, the front end and the target, never with a
// password or message text.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"parley/internal/directory"
	"parley/internal/legacyauth"
	"parley/internal/module"
	"parley/internal/passpolicy"
	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// KV records: the message of the day (owner: the domain) and each
// account's last login (owner: its bare JID, so deleting the account
// deletes it). The bucket keeps the name it had when the adhoc module
// owned them, so stored values survive.
const (
	kvBucket    = "adhoc"
	kvMOTD      = "motd"
	kvLastLogin = "lastlogin"
)

// Errors callers turn into their protocol's answer.
var (
	// ErrDirectory: the host's accounts live in a directory, where a
	// password or flag set in storage would never be consulted.
	ErrDirectory = errors.New("accounts on this server are managed by its directory: add, delete, disable and change passwords there")
	// ErrNotFound: no such account.
	ErrNotFound = storage.ErrNotFound
	// ErrExists: the account exists already.
	ErrExists = storage.ErrExists
)

// OutrankedError refuses an operation on an account that administers a
// host the actor does not administer.
type OutrankedError struct {
	Target jid.JID
	Host   string
}

func (e *OutrankedError) Error() string {
	return e.Target.String() + " administers " + e.Host + ", which you do not administer"
}

// InputError is a request the caller should refuse as malformed (a JID of
// another host, an empty password).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func bad(format string, args ...any) error { return &InputError{Msg: fmt.Sprintf(format, args...)} }

// Actor is who performs an operation and through which front end ("xmpp"
// for ad-hoc commands, "web" for the console, "cli" for the command line
// through the admin socket, which has no JID: whoever can reach the
// socket runs the server).
type Actor struct {
	JID jid.JID
	Via string
}

// Administers returns a host j administers, "" when none. In-band
// registration refuses such names: an account listed in admins before it
// exists would otherwise go to whoever registers it first.
func (o *Ops) Administers(ctx context.Context, j jid.JID) string {
	for _, h := range o.h.Router.Hosts() {
		if mayAdminister(ctx, h, j) {
			return h.Domain
		}
	}
	return ""
}

// mayManage returns an *OutrankedError when target administers a host
// that a does not. An account acting on itself and the command line are
// never refused.
func (o *Ops) mayManage(ctx context.Context, a Actor, target jid.JID) error {
	if a.JID.Local() == "" || a.JID.Bare() == target.Bare() {
		return nil
	}
	for _, h := range o.h.Router.Hosts() {
		if mayAdminister(ctx, h, target) && !h.IsAdmin(ctx, a.JID) {
			return &OutrankedError{Target: target.Bare(), Host: h.Domain}
		}
	}
	return nil
}

// mayAdminister is IsAdmin for the target of an operation, failing the
// other way: IsAdmin counts an admin_groups lookup that failed as "no"
// (rights fail closed), which for a target would let the operation
// through; here a failed lookup counts as "yes", and the operation is
// refused until the groups can be read.
func mayAdminister(ctx context.Context, h *module.Host, j jid.JID) bool {
	if h.IsAdmin(ctx, j) {
		return true
	}
	if h.AdminCheck == nil || j.Domain() != h.Domain {
		return false
	}
	ok, err := h.AdminCheck(ctx, j.Bare())
	return ok || err != nil
}

// Ops are the administrative operations on one host.
type Ops struct{ h *module.Host }

// For returns the operations on h. Ops holds no state of its own, so any
// number of front ends may each call For.
func For(h *module.Host) *Ops { return &Ops{h: h} }

// Host is the host the operations act on.
func (o *Ops) Host() *module.Host { return o.h }

// Audit logs one administrative action: who, through what, what, on whom.
// Operations of this package call it themselves; front ends call it for
// actions that have no operation here (a read-only page of their own).
func (o *Ops) Audit(a Actor, action string, targets ...string) {
	o.h.Log.Info("admin action", "admin", a.JID.Bare().String(), "via", a.Via, "action", action, "target", strings.Join(targets, " "))
}

// Directory reports whether the host's accounts live in a directory: the
// account-changing operations refuse with ErrDirectory there.
func (o *Ops) Directory() bool { return o.h.AccountSource != nil }

// PasswordsWritable reports whether SetPassword can change this host's
// passwords: always where accounts live in storage; on a directory host
// only with [directory] password_write.
func (o *Ops) PasswordsWritable() bool {
	if !o.Directory() {
		return true
	}
	_, ok := o.h.AccountSource.(*directory.Directory)
	return ok && o.h.Config.Directory.PasswordWrite
}

// Account parses s as the bare JID of an account of this host (a bare
// localpart is taken as one of this host).
func (o *Ops) Account(s string) (jid.JID, error) {
	s = strings.TrimSpace(s)
	if s != "" && !strings.Contains(s, "@") {
		s += "@" + o.h.Domain
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, bad("%q is not a valid JID", s)
	}
	if j.Local() == "" || j.Domain() != o.h.Domain || j.Resource() != "" {
		return jid.JID{}, bad("%q is not an account of %s", s, o.h.Domain)
	}
	return j, nil
}

// AddUser creates the account j with password and registration fields
// (XEP-0077 names: email, first, last, ...), and tells the modules. The
// password must meet the policy (passpolicy.Check: a *passpolicy.Violation
// otherwise) and is remembered for the reuse rule.
func (o *Ops) AddUser(ctx context.Context, a Actor, j jid.JID, password string, fields map[string]string) error {
	if o.Directory() {
		return ErrDirectory
	}
	if password == "" {
		return bad("a password is required")
	}
	// Creating an account is managing it: one named in the admins of a
	// host the actor does not administer would make its creator that
	// host's administrator.
	if err := o.mayManage(ctx, a, j); err != nil {
		return err
	}
	if _, err := o.h.Store.Accounts().Get(ctx, o.h.Domain, j.Local()); err == nil {
		return ErrExists
	}
	if err := passpolicy.Check(o.h.Config, password); err != nil {
		return err
	}
	acct := storage.Account{Host: o.h.Domain, Username: j.Local(), Fields: fields}
	if err := legacyauth.CreateAccount(ctx, o.h.Store, o.h.Config, acct, password); err != nil {
		return err
	}
	o.remember(ctx, j, password)
	o.Audit(a, "add-user", j.String())
	o.h.Accounts.Fire(module.EventAccountCreated, &module.AccountEvent{Ctx: ctx, Host: o.h, JID: j})
	return nil
}

// DeleteUser deletes an account with all its data (one transaction), tells
// modules and ends its sessions. It is not cancelled with ctx half-way:
// the modules must hear of a deletion that happened.
func (o *Ops) DeleteUser(ctx context.Context, a Actor, j jid.JID) error {
	if o.Directory() {
		return ErrDirectory
	}
	if err := o.mayManage(ctx, a, j); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if err := o.h.Store.Accounts().Delete(ctx, o.h.Domain, j.Local()); err != nil {
		return err
	}
	o.Audit(a, "delete-user", j.String())
	o.h.Accounts.Fire(module.EventAccountDeleted, &module.AccountEvent{Ctx: ctx, Host: o.h, JID: j})
	for _, s := range o.h.Router.Sessions(j) {
		s.Close("not-authorized", "account deleted")
	}
	return nil
}

// SetDisabled disables (and ends the sessions of) or re-enables an
// account; a disabled account keeps its data and cannot log in.
func (o *Ops) SetDisabled(ctx context.Context, a Actor, j jid.JID, disabled bool) error {
	if o.Directory() {
		return ErrDirectory
	}
	if err := o.mayManage(ctx, a, j); err != nil {
		return err
	}
	if err := o.h.Store.Accounts().SetDisabled(ctx, o.h.Domain, j.Local(), disabled); err != nil {
		return err
	}
	if disabled {
		o.Audit(a, "disable-user", j.String())
		for _, s := range o.h.Router.Sessions(j) {
			s.Close("not-authorized", "account disabled")
		}
	} else {
		o.Audit(a, "reenable-user", j.String())
	}
	return nil
}

// SetPassword replaces an account's password (an administrator's reset,
// or a user's own change with Via "web-self"). The password must meet the
// policy and is remembered for the reuse rule; whether it was used before
// is the caller's question (History.CheckReuse), since an administrator's
// reset is not bound by it.
//
// On a directory host with [directory] password_write the password is set
// in the directory instead (setDirectoryPassword), under the same policy.
func (o *Ops) SetPassword(ctx context.Context, a Actor, j jid.JID, password string) error {
	if err := o.mayManage(ctx, a, j); err != nil {
		return err
	}
	if o.Directory() {
		return o.setDirectoryPassword(ctx, a, j, password)
	}
	if password == "" {
		return bad("a password is required")
	}
	if _, err := o.h.Store.Accounts().Get(ctx, o.h.Domain, j.Local()); err != nil {
		return err
	}
	if err := passpolicy.Check(o.h.Config, password); err != nil {
		return err
	}
	if err := legacyauth.SetPassword(ctx, o.h.Store, o.h.Config, o.h.Domain, j.Local(), password); err != nil {
		return err
	}
	o.remember(ctx, j, password)
	o.Audit(a, "change-user-password", j.String())
	return nil
}

// setDirectoryPassword changes a directory user's password: the
// directory's Password Modify operation plus fresh RFC 5803 SCRAM secrets
// (directory.SetPassword), after Parley's own password policy. The reuse
// history is not kept: the directory's own password policy owns that.
func (o *Ops) setDirectoryPassword(ctx context.Context, a Actor, j jid.JID, password string) error {
	d, ok := o.h.AccountSource.(*directory.Directory)
	if !ok || !o.PasswordsWritable() {
		return ErrDirectory
	}
	if password == "" {
		return bad("a password is required")
	}
	if err := passpolicy.Check(o.h.Config, password); err != nil {
		return err
	}
	creds, err := sasl.DeriveCredentials(password, o.h.Config.Auth.ScramIterations)
	if err != nil {
		return err
	}
	switch err := d.SetPassword(ctx, j.Local(), password, creds); {
	case errors.Is(err, directory.ErrNoSuchUser), errors.Is(err, directory.ErrDisabled):
		return ErrNotFound
	case err != nil:
		return err
	}
	o.Audit(a, "change-user-password", j.String())
	return nil
}

// History is the host's password history (auth.password.history).
func (o *Ops) History() passpolicy.History {
	c := o.h.Config
	return passpolicy.History{Store: o.h.Store.Passwords(), Keep: c.Auth.Password.History, Iterations: c.Auth.ScramIterations}
}

// remember records a password just set; a failure is logged, not fatal:
// the password is set.
func (o *Ops) remember(ctx context.Context, j jid.JID, password string) {
	if err := o.History().Remember(ctx, o.h.Domain, j.Local(), password); err != nil {
		o.h.Log.Warn("admin: password history", "user", j.String(), "err", err)
	}
}

// Exists reports whether the account exists (in the directory on
// directory hosts).
func (o *Ops) Exists(ctx context.Context, j jid.JID) (bool, error) {
	return o.h.AccountExists(ctx, j.Local())
}

// User is one account as an administrator sees it.
type User struct {
	JID      jid.JID
	Disabled bool
	Created  time.Time
	Fields   map[string]string
	Sessions int
}

// Users returns the accounts whose username contains query
// (case-insensitive), sorted, the page [offset, offset+limit), and how
// many matched. On a directory host they are the directory's users (its
// last snapshot) and any account in storage.
func (o *Ops) Users(ctx context.Context, a Actor, query string, offset, limit int) ([]User, int, error) {
	names, err := o.h.Store.Accounts().List(ctx, o.h.Domain)
	if err != nil {
		return nil, 0, err
	}
	dirUsers := o.directoryUsers()
	if len(dirUsers) > 0 {
		seen := map[string]bool{}
		for _, n := range names {
			seen[n] = true
		}
		for n := range dirUsers {
			if !seen[n] {
				names = append(names, n)
			}
		}
		sort.Strings(names)
	}
	query = strings.ToLower(strings.TrimSpace(query))
	var match []string
	for _, n := range names {
		if query == "" || strings.Contains(strings.ToLower(n), query) {
			match = append(match, n)
		}
	}
	total := len(match)
	offset = max(0, min(offset, total))
	end := min(total, offset+max(0, limit))
	var out []User
	for _, n := range match[offset:end] {
		j, err := jid.New(n, o.h.Domain, "")
		if err != nil {
			continue
		}
		u := User{JID: j, Sessions: len(o.h.Router.Sessions(j))}
		acct, err := o.h.Store.Accounts().Get(ctx, o.h.Domain, n)
		switch {
		case err == nil:
			u.Disabled, u.Created, u.Fields = acct.Disabled, acct.CreatedAt, acct.Fields
		case !errors.Is(err, storage.ErrNotFound):
			return nil, 0, err
		}
		if du, ok := dirUsers[n]; ok {
			u.Disabled = du.Disabled
		} else if errors.Is(err, storage.ErrNotFound) {
			continue // deleted meanwhile
		}
		out = append(out, u)
	}
	o.Audit(a, "list-users", query)
	return out, total, nil
}

// directoryUsers returns the users of the directory's last snapshot on a
// directory host, nil elsewhere.
func (o *Ops) directoryUsers() map[string]*directory.User {
	d, ok := o.h.AccountSource.(*directory.Directory)
	if !ok {
		return nil
	}
	if snap := d.Current(); snap != nil {
		return snap.Users
	}
	return nil
}

// Get returns one stored account.
func (o *Ops) Get(ctx context.Context, j jid.JID) (storage.Account, error) {
	return o.h.Store.Accounts().Get(ctx, o.h.Domain, j.Local())
}

// RegisteredCount counts the accounts in storage.
func (o *Ops) RegisteredCount(ctx context.Context, a Actor) (int, error) {
	users, err := o.h.Store.Accounts().List(ctx, o.h.Domain)
	if err != nil {
		return 0, err
	}
	o.Audit(a, "get-registered-users-num")
	return len(users), nil
}

// Online returns the bare JIDs with a bound session on this host, sorted,
// and the sessions by bare JID. The module API's Router answers per
// account, so the router is asked through the method it has for admin
// tools.
func (o *Ops) Online() ([]string, map[string][]module.Session) {
	all, ok := o.h.Router.(interface{ AllSessions() []module.Session })
	if !ok {
		return nil, nil
	}
	by := make(map[string][]module.Session)
	for _, s := range all.AllSessions() {
		if s.JID().Domain() == o.h.Domain {
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

// Session describes one bound session.
type Session struct {
	JID       jid.JID
	Available bool
	Show      string // presence <show/>, "" for plain available
	Status    string
	Priority  int
	// Client is the XEP-0115 node of its presence (the client's URI), ""
	// when it sent none.
	Client string
	// Address is the client's network address when the session tells it,
	// "" otherwise.
	Address string
}

// Sessions describes the bound sessions of account j, sorted by resource.
func (o *Ops) Sessions(j jid.JID) []Session {
	ss := o.h.Router.Sessions(j.Bare())
	out := make([]Session, 0, len(ss))
	for _, s := range ss {
		out = append(out, describe(s))
	}
	sort.Slice(out, func(i, k int) bool { return out[i].JID.Resource() < out[k].JID.Resource() })
	return out
}

// remoteAddresser is implemented by sessions that know their client's
// network address.
type remoteAddresser interface{ RemoteAddr() net.Addr }

func describe(s module.Session) Session {
	d := Session{JID: s.JID(), Priority: s.Priority()}
	if p := s.Presence(); p != nil {
		d.Available = true
		if e := p.Child("", "show"); e != nil {
			d.Show = e.Text()
		}
		if e := p.Child("", "status"); e != nil {
			d.Status = e.Text()
		}
		for _, c := range p.Elements() {
			if c.Local == "c" && c.Space == "http://jabber.org/protocol/caps" {
				d.Client = c.Attr("node")
			}
		}
	}
	if ra, ok := s.(remoteAddresser); ok && ra.RemoteAddr() != nil {
		d.Address = ra.RemoteAddr().String()
	}
	return d
}

// EndSessions ends the sessions named by j: every session of a bare JID,
// the one of a full JID. It returns how many it ended.
func (o *Ops) EndSessions(ctx context.Context, a Actor, j jid.JID) (int, error) {
	if j.Local() == "" || j.Domain() != o.h.Domain {
		return 0, bad("%q is not a JID of an account of %s", j.String(), o.h.Domain)
	}
	if err := o.mayManage(ctx, a, j); err != nil {
		return 0, err
	}
	var ss []module.Session
	if j.Resource() == "" {
		ss = o.h.Router.Sessions(j)
	} else if s := o.h.Router.Session(j); s != nil {
		ss = []module.Session{s}
	}
	for _, s := range ss {
		s.Close("policy-violation", "session ended by an administrator")
	}
	o.Audit(a, "end-user-session", j.String())
	return len(ss), nil
}

// Announce sends a headline from the host to every available session of
// the host and returns how many got it. It goes to sessions directly: an
// announcement is for who is online now, never for offline storage.
func (o *Ops) Announce(ctx context.Context, a Actor, subject, body string) (int, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return 0, bad("the announcement is empty")
	}
	_, by := o.Online()
	n := 0
	for _, ss := range by {
		for _, s := range ss {
			if !module.Available(s) {
				continue
			}
			s.Send(o.Headline(s.JID(), subject, body))
			n++
		}
	}
	o.Audit(a, "announce", fmt.Sprintf("%d sessions", n))
	return n, nil
}

// Headline is a headline message from the host to one session.
func (o *Ops) Headline(to jid.JID, subject, body string) *xml.Element {
	m := xml.New("", "message").SetAttr("from", o.h.Domain).SetAttr("to", to.String()).SetAttr("type", "headline")
	if subject != "" {
		m.Append(xml.New("", "subject").AppendText(subject))
	}
	return m.Append(xml.New("", "body").AppendText(body))
}

// MOTD returns the stored message of the day, "" when there is none.
func (o *Ops) MOTD(ctx context.Context) (string, error) {
	b, err := o.h.Store.KV().Get(ctx, kvBucket, o.h.Domain, kvMOTD)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	return string(b), err
}

// SetMOTD stores the message of the day, which sessions get when they
// come online.
func (o *Ops) SetMOTD(ctx context.Context, a Actor, text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return bad("the message of the day is empty")
	}
	if err := o.h.Store.KV().Set(ctx, kvBucket, o.h.Domain, kvMOTD, []byte(text)); err != nil {
		return err
	}
	o.Audit(a, "set-motd")
	return nil
}

// DeleteMOTD removes the message of the day.
func (o *Ops) DeleteMOTD(ctx context.Context, a Actor) error {
	if err := o.h.Store.KV().Delete(ctx, kvBucket, o.h.Domain, kvMOTD); err != nil {
		return err
	}
	o.Audit(a, "delete-motd")
	return nil
}

// Roster returns an account's roster.
func (o *Ops) Roster(ctx context.Context, a Actor, j jid.JID) ([]storage.RosterItem, error) {
	items, _, err := o.h.Store.Roster().Items(ctx, j.String())
	if err != nil {
		return nil, err
	}
	o.Audit(a, "get-user-roster", j.String())
	return items, nil
}

// LastLogin returns when the account last bound a session (XEP-0082
// date-time), "" when none is recorded.
func (o *Ops) LastLogin(ctx context.Context, a Actor, j jid.JID) (string, error) {
	b, err := o.h.Store.KV().Get(ctx, kvBucket, j.String(), kvLastLogin)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	o.Audit(a, "get-user-lastlogin", j.String())
	return string(b), nil
}

// RecordLogin records now as the account's last login.
func (o *Ops) RecordLogin(ctx context.Context, j jid.JID, now time.Time) error {
	return o.h.Store.KV().Set(ctx, kvBucket, j.Bare().String(), kvLastLogin, []byte(now.UTC().Format(time.RFC3339)))
}
