// Package directory connects Parley to an LDAP directory (RFC 4510-4519)
// that owns a host's users, as seeds 000 (Open Directory) and 001 (M-Link)
// describe: user lookup and password checks by binding as the user,
// disabled accounts, group membership for roster pre-population and access
// control, vCard (XEP-0054) / XEP-0154 profiles mapped to attributes with
// per-field modes, and persistent room definitions.
//
// One Directory serves every host with accounts = "directory"; the JID
// localpart is the user's localpart attribute. All operations go through a
// bounded pool of connections bound as the service account; when no server
// answers, operations fail with ErrUnavailable (logins then fail with
// temporary-auth-failure) and the pool logs the outage once.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/config"
	"parley/internal/metrics"
	"parley/internal/xmpp/jid"
)

// Errors callers tell apart.
var (
	// ErrUnavailable: no directory server could be reached (or one failed
	// mid-request twice). Not the user's fault: SASL answers
	// temporary-auth-failure.
	ErrUnavailable = errors.New("directory: unavailable")
	// ErrNoSuchUser: the filter matched no entry (or more than one).
	ErrNoSuchUser = errors.New("directory: no such user")
	// ErrInvalidCredentials: the user's bind was refused, or the password
	// was empty (never sent: RFC 4513 §5.1.2 unauthenticated bind).
	ErrInvalidCredentials = errors.New("directory: invalid credentials")
	// ErrDisabled: the entry is marked disabled/locked.
	ErrDisabled = errors.New("directory: account disabled")
)

// Directory is the LDAP directory of one server.
type Directory struct {
	cfg  config.Directory
	log  *slog.Logger
	pool *pool

	// attrs are the user attributes every lookup fetches.
	attrs []string

	// scram caches whether any entry holds SCRAM secrets (scram.go).
	scram scramProbe

	mu       sync.Mutex
	snap     *Snapshot // latest group/user enumeration, nil before the first
	watchers []func(old, new *Snapshot)
	// photoWatchers hear of changed photos (WatchPhotos); while there are
	// any, enumerations read the photo attribute too.
	photoWatchers []func(old, new *Snapshot)
	// resync wakes Run for an extra read (poller.go), nil while Run is
	// not running.
	resync func()
}

// New prepares a directory client; it connects lazily, so a directory that
// is down at startup does not stop the server (its hosts' logins fail
// until it is back). m may be nil.
func New(cfg config.Directory, log *slog.Logger, m *metrics.Metrics) (*Directory, error) {
	if !cfg.Enabled() {
		return nil, errors.New("directory: no servers configured")
	}
	if log == nil {
		log = slog.Default()
	}
	p, err := newPool(cfg, log, m)
	if err != nil {
		return nil, err
	}
	d := &Directory{cfg: cfg, log: log, pool: p}
	d.attrs = d.userAttributes()
	return d, nil
}

// Close drops the pooled connections.
func (d *Directory) Close() { d.pool.close() }

// Up reports whether the last attempt to reach the directory succeeded.
func (d *Directory) Up() bool { return d.pool.up() }

// Config returns the directory's configuration.
func (d *Directory) Config() config.Directory { return d.cfg }

// User is one directory entry that is a user.
type User struct {
	DN       string
	Username string // JID localpart (prepared)
	Disabled bool
	// PhotoHash is the SHA-1 (hex) of the first value of the photo_data
	// attribute, "" when the entry has none. Only snapshots taken while
	// someone watches photos (WatchPhotos) fill it in.
	PhotoHash string
	entry     *ldap.Entry
}

// Attr returns the first value of an attribute of the user's entry.
func (u *User) Attr(name string) string { return u.entry.GetEqualFoldAttributeValue(name) }

// Values returns all values of an attribute.
func (u *User) Values(name string) []string { return u.entry.GetEqualFoldAttributeValues(name) }

// RawValues returns all values of an attribute as bytes (jpegPhoto).
func (u *User) RawValues(name string) [][]byte { return u.entry.GetEqualFoldRawAttributeValues(name) }

func (d *Directory) userAttributes() []string {
	set := map[string]bool{d.cfg.LocalpartAttribute: true}
	add := func(a string) {
		if a != "" {
			set[a] = true
		}
	}
	add(d.cfg.DisabledAttribute)
	add(d.cfg.RosterAttribute)
	add(d.cfg.CertificateAttribute)
	for _, f := range d.profileFields() {
		if f.Mode == config.ProfileReadonly || f.Mode == config.ProfileUpdate {
			add(f.Attribute)
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	return out
}

// Filter expands a filter template: %u becomes value with the RFC 4515
// special characters ( ) * \ NUL and every non-ASCII byte escaped, so a
// username like "*)(uid=*" is matched literally and cannot widen the search.
func Filter(template, value string) string {
	return strings.ReplaceAll(template, "%u", ldap.EscapeFilter(value))
}

// prepLocal normalises a localpart the way JIDs are (RFC 7622), "" when it
// is not a valid localpart.
func prepLocal(s string) string {
	j, err := jid.New(s, "localhost", "")
	if err != nil {
		return ""
	}
	return j.Local()
}

// LookupUser finds a user by JID localpart.
func (d *Directory) LookupUser(ctx context.Context, username string) (*User, error) {
	return d.lookup(ctx, d.cfg.LocalpartAttribute, username, Filter(d.cfg.UserFilter, username))
}

// LookupByAttribute finds the user whose attr equals value (within
// user_list_filter): certificate identities for SASL EXTERNAL.
func (d *Directory) LookupByAttribute(ctx context.Context, attr, value string) (*User, error) {
	if attr == "" || value == "" {
		return nil, ErrNoSuchUser
	}
	f := "(&" + d.cfg.UserListFilter + "(" + ldap.EscapeFilter(attr) + "=" + ldap.EscapeFilter(value) + "))"
	return d.lookup(ctx, "", value, f)
}

// lookup runs one user search expecting exactly one entry. With
// checkAttr set, the entry's value of it must prepare to the same
// localpart as want: a filter that matched on some other attribute does not
// make someone else's entry log in under this name.
//
// extra names attributes to fetch besides the usual ones (authPassword
// only where SCRAM needs it, so secrets are not read for every lookup).
func (d *Directory) lookup(ctx context.Context, checkAttr, want, filter string, extra ...string) (*User, error) {
	if want == "" {
		return nil, ErrNoSuchUser
	}
	var res *ldap.SearchResult
	err := d.pool.do(ctx, func(c *ldap.Conn) error {
		var err error
		res, err = c.Search(ldap.NewSearchRequest(d.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, int(d.cfg.RequestTimeout.Seconds()), false, filter, append(d.attrs[:len(d.attrs):len(d.attrs)], extra...), nil))
		return err
	})
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		d.log.Warn("directory: user filter matched more than one entry; refusing", "filter", filter)
		return nil, ErrNoSuchUser
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, ErrNoSuchUser
	case err != nil:
		return nil, d.wrap("user lookup", err)
	}
	if len(res.Entries) != 1 {
		if len(res.Entries) > 1 {
			d.log.Warn("directory: user filter matched more than one entry; refusing", "filter", filter)
		}
		return nil, ErrNoSuchUser
	}
	u := d.userFromEntry(res.Entries[0])
	if u == nil || (checkAttr != "" && u.Username != prepLocal(want)) {
		return nil, ErrNoSuchUser
	}
	return u, nil
}

func (d *Directory) userFromEntry(e *ldap.Entry) *User {
	local := prepLocal(e.GetEqualFoldAttributeValue(d.cfg.LocalpartAttribute))
	if local == "" {
		return nil
	}
	return &User{DN: e.DN, Username: local, Disabled: d.disabled(e), entry: e}
}

// disabled applies disabled_attribute with disabled_values and/or
// disabled_bitmask (AD userAccountControl: bit 2 = ACCOUNTDISABLE).
func (d *Directory) disabled(e *ldap.Entry) bool {
	if d.cfg.DisabledAttribute == "" {
		return false
	}
	for _, v := range e.GetEqualFoldAttributeValues(d.cfg.DisabledAttribute) {
		for _, dv := range d.cfg.DisabledValues {
			if strings.EqualFold(strings.TrimSpace(v), dv) {
				return true
			}
		}
		if d.cfg.DisabledBitmask != 0 {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n&d.cfg.DisabledBitmask != 0 {
				return true
			}
		}
	}
	return false
}

// Authenticate checks username's password by binding as the user's DN. An
// empty password fails without contacting the directory: RFC 4513 §5.1.2
// makes "DN + empty password" an unauthenticated bind, which many servers
// answer with success. Disabled accounts fail with ErrDisabled after the
// password is checked, so a wrong password never reveals the state.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (*User, error) {
	if password == "" {
		return nil, ErrInvalidCredentials
	}
	u, err := d.LookupUser(ctx, username)
	if errors.Is(err, ErrNoSuchUser) {
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	if u.DN == "" {
		return nil, ErrInvalidCredentials
	}
	err = d.pool.do(ctx, func(c *ldap.Conn) error {
		berr := c.Bind(u.DN, password)
		if isConnError(berr) {
			return berr
		}
		// Return the connection to the pool bound as the service again;
		// if that fails it is closed rather than reused with the user's
		// authority.
		if rerr := d.pool.bindService(c); rerr != nil {
			c.Close()
		}
		return berr
	})
	switch {
	case err == nil:
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials), ldap.IsErrorWithCode(err, ldap.LDAPResultInappropriateAuthentication):
		return nil, ErrInvalidCredentials
	default:
		return nil, d.wrap("user bind", err)
	}
	if u.Disabled {
		return u, ErrDisabled
	}
	return u, nil
}

// AccountExists reports whether username is an enabled directory user.
func (d *Directory) AccountExists(ctx context.Context, username string) (bool, error) {
	u, err := d.LookupUser(ctx, username)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		return false, nil
	case err != nil:
		return false, err
	}
	return !u.Disabled, nil
}

// wrap turns an LDAP error into ErrUnavailable when it is one, and adds
// context otherwise.
func (d *Directory) wrap(op string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	if isConnError(err) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
	}
	return fmt.Errorf("directory: %s: %w", op, err)
}
