package directory

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/storage"
)

// This file reads and writes RFC 5803 SCRAM secrets: the authPassword
// attribute (RFC 3112) with the schemes SCRAM-SHA-1 and SCRAM-SHA-256,
//
//	authPassword: SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
//
// so users of directory hosts can log in with SCRAM, which never shows the
// server their password, instead of PLAIN checked by an LDAP bind.

// AuthPasswordAttribute is the attribute RFC 5803 stores SCRAM secrets in.
const AuthPasswordAttribute = "authPassword"

// scramSchemes maps RFC 5803 scheme names to the hash family names of
// storage.Credentials.Keys.
var scramSchemes = map[string]string{"SCRAM-SHA-1": "SHA-1", "SCRAM-SHA-256": "SHA-256"}

// keySizes are the StoredKey/ServerKey lengths per family.
var keySizes = map[string]int{"SHA-1": 20, "SHA-256": 32}

// ErrNotSCRAM marks an authPassword value of another scheme (e.g. MD5),
// which is not an error in the entry, just not ours.
var ErrNotSCRAM = errors.New("directory: authPassword scheme is not SCRAM-SHA-1 or SCRAM-SHA-256")

// ParseAuthPassword parses one RFC 5803 authPassword value. The error
// never contains the value itself (it is a secret's verifier).
func ParseAuthPassword(v string) (family string, key storage.ScramKey, err error) {
	// RFC 3112 §4.1: scheme "$" authInfo "$" authValue, with optional
	// spaces around the separators.
	parts := strings.Split(v, "$")
	if len(parts) != 3 {
		return "", key, errors.New("not scheme$authInfo$authValue")
	}
	scheme := strings.ToUpper(strings.TrimSpace(parts[0]))
	family, ok := scramSchemes[scheme]
	if !ok {
		return "", key, ErrNotSCRAM
	}
	iter, salt, ok := strings.Cut(strings.TrimSpace(parts[1]), ":")
	if !ok {
		return "", key, fmt.Errorf("%s: authInfo is not iterations:salt", scheme)
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || n > 10_000_000 {
		return "", key, fmt.Errorf("%s: iteration count is not a number between 1 and 10000000", scheme)
	}
	stored, server, ok := strings.Cut(strings.TrimSpace(parts[2]), ":")
	if !ok {
		return "", key, fmt.Errorf("%s: authValue is not StoredKey:ServerKey", scheme)
	}
	key.Iterations = n
	if key.Salt, err = base64.StdEncoding.DecodeString(salt); err != nil || len(key.Salt) == 0 {
		return "", storage.ScramKey{}, fmt.Errorf("%s: salt is not base64", scheme)
	}
	if key.StoredKey, err = base64.StdEncoding.DecodeString(stored); err != nil || len(key.StoredKey) != keySizes[family] {
		return "", storage.ScramKey{}, fmt.Errorf("%s: StoredKey is not %d bytes of base64", scheme, keySizes[family])
	}
	if key.ServerKey, err = base64.StdEncoding.DecodeString(server); err != nil || len(key.ServerKey) != keySizes[family] {
		return "", storage.ScramKey{}, fmt.Errorf("%s: ServerKey is not %d bytes of base64", scheme, keySizes[family])
	}
	return family, key, nil
}

// FormatAuthPassword writes key as an RFC 5803 value; ok is false for a
// family RFC 5803 has no scheme for.
func FormatAuthPassword(family string, key storage.ScramKey) (string, bool) {
	for scheme, f := range scramSchemes {
		if f == family {
			b := base64.StdEncoding.EncodeToString
			return fmt.Sprintf("%s$%d:%s$%s:%s", scheme, key.Iterations, b(key.Salt), b(key.StoredKey), b(key.ServerKey)), true
		}
	}
	return "", false
}

// SCRAMCredentials returns the SCRAM keys the user's entry holds, one per
// family with a well-formed value (the first one of a family wins).
// Malformed values are logged, naming the entry and the reason but never
// the value, and skipped: the user then fails SCRAM like someone without
// secrets, and PLAIN still works. ErrNoSuchUser and ErrDisabled as for
// LookupUser.
func (d *Directory) SCRAMCredentials(ctx context.Context, username string) (storage.Credentials, error) {
	u, err := d.lookup(ctx, d.cfg.LocalpartAttribute, username, Filter(d.cfg.UserFilter, username), AuthPasswordAttribute)
	if err != nil {
		return storage.Credentials{}, err
	}
	if u.Disabled {
		return storage.Credentials{}, ErrDisabled
	}
	creds := storage.Credentials{Keys: map[string]storage.ScramKey{}}
	for _, v := range u.Values(AuthPasswordAttribute) {
		fam, key, err := ParseAuthPassword(v)
		switch {
		case errors.Is(err, ErrNotSCRAM):
			continue
		case err != nil:
			d.log.Warn("directory: malformed authPassword value ignored", "dn", u.DN, "reason", err.Error())
			continue
		}
		if _, dup := creds.Keys[fam]; !dup {
			creds.Keys[fam] = key
		}
	}
	return creds, nil
}

// scramProbe caches whether any user entry holds an authPassword, which
// decides whether directory hosts offer SCRAM before anyone is known.
type scramProbe struct {
	mu       sync.Mutex
	known    bool
	any      bool
	checked  time.Time
	checking bool
}

// scramProbeTTL is how long a probe result is used before it is checked
// again (in the background: a stream never waits for it once known).
const scramProbeTTL = time.Minute

// SCRAMOffered reports whether some user entry (within user_list_filter)
// has an authPassword, so that SCRAM can succeed for someone. The first
// call asks the directory (bounded by request_timeout); later calls answer
// from a cache refreshed in the background once a minute. A directory
// that cannot be asked keeps the last answer ("no" before the first one)
// until it answers.
func (d *Directory) SCRAMOffered(ctx context.Context) bool {
	p := &d.scram
	p.mu.Lock()
	if p.known {
		if time.Since(p.checked) > scramProbeTTL && !p.checking {
			p.checking = true
			go d.probeSCRAM(context.WithoutCancel(ctx))
		}
		v := p.any
		p.mu.Unlock()
		return v
	}
	p.mu.Unlock()
	return d.probeSCRAM(ctx)
}

func (d *Directory) probeSCRAM(ctx context.Context) bool {
	filter := "(&" + d.cfg.UserListFilter + "(" + AuthPasswordAttribute + "=*))"
	found := false
	err := d.pool.do(ctx, func(c *ldap.Conn) error {
		res, err := c.Search(ldap.NewSearchRequest(d.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			1, int(d.cfg.RequestTimeout.Seconds()), false, filter, []string{"1.1"}, nil))
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			found = true
			return nil
		}
		if err != nil {
			return err
		}
		found = len(res.Entries) > 0
		return nil
	})
	p := &d.scram
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checking = false
	switch {
	case err == nil:
		p.known, p.any, p.checked = true, found, time.Now()
	case ldap.IsErrorWithCode(err, ldap.LDAPResultUndefinedAttributeType), ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		// A schema without authPassword: nobody has SCRAM secrets.
		p.known, p.any, p.checked = true, false, time.Now()
	default:
		// Keep the last answer ("no" before any) and try again after the
		// TTL, in the background: during an outage streams must not wait
		// for the directory to offer their mechanisms.
		d.log.Info("directory: could not check for SCRAM secrets", "err", err)
		p.known, p.checked = true, time.Now()
	}
	return p.any
}

// SetPassword changes a user's password the way Parley changes directory
// passwords: the RFC 3062 Password Modify extended operation, as the
// service account, sets the new password (the directory hashes it by its
// own policy), and the entry's SCRAM secrets are replaced by creds'
// SHA-1 and SHA-256 keys (RFC 5803). The old secrets are removed first,
// so a failure half-way leaves no SCRAM secret that still accepts the old
// password: at worst the user logs in with PLAIN until the next change.
// The service account needs write access to userPassword and
// authPassword of user entries (see the README).
func (d *Directory) SetPassword(ctx context.Context, username, password string, creds storage.Credentials) error {
	if password == "" {
		return ErrInvalidCredentials
	}
	u, err := d.lookup(ctx, d.cfg.LocalpartAttribute, username, Filter(d.cfg.UserFilter, username), AuthPasswordAttribute)
	if err != nil {
		return err
	}
	var values []string
	for _, fam := range []string{"SHA-1", "SHA-256"} {
		if k, ok := creds.Keys[fam]; ok {
			if v, ok := FormatAuthPassword(fam, k); ok {
				values = append(values, v)
			}
		}
	}
	return d.pool.do(ctx, func(c *ldap.Conn) error {
		if len(u.Values(AuthPasswordAttribute)) > 0 {
			del := ldap.NewModifyRequest(u.DN, nil)
			del.Delete(AuthPasswordAttribute, nil)
			if err := c.Modify(del); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
				return fmt.Errorf("directory: removing the old SCRAM secrets of %s: %w", u.DN, err)
			}
		}
		if _, err := c.PasswordModify(ldap.NewPasswordModifyRequest(u.DN, "", password)); err != nil {
			return fmt.Errorf("directory: password modify for %s: %w", u.DN, err)
		}
		if len(values) == 0 {
			return nil
		}
		add := ldap.NewModifyRequest(u.DN, nil)
		add.Replace(AuthPasswordAttribute, values)
		err := c.Modify(add)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultObjectClassViolation) {
			// The entry's classes do not allow authPassword: add RFC
			// 3112's auxiliary class that does.
			add = ldap.NewModifyRequest(u.DN, nil)
			add.Add("objectClass", []string{"authPasswordObject"})
			add.Replace(AuthPasswordAttribute, values)
			err = c.Modify(add)
		}
		switch {
		case err == nil:
			return nil
		case ldap.IsErrorWithCode(err, ldap.LDAPResultUndefinedAttributeType), ldap.IsErrorWithCode(err, ldap.LDAPResultObjectClassViolation):
			// The password is changed; only SCRAM stays unavailable.
			d.log.Warn("directory: the schema has no authPassword (RFC 3112): password changed, SCRAM secrets not stored", "dn", u.DN, "err", err)
			return nil
		}
		return fmt.Errorf("directory: writing the SCRAM secrets of %s: %w", u.DN, err)
	})
}
