package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"parley/internal/xmpp/jid"
)

// Cookie names. The __Host- prefix makes browsers refuse the cookie unless
// it is Secure, has Path=/ and no Domain: no subdomain and no plain-HTTP
// page can plant or overwrite it.
const (
	sessionCookie = "__Host-parley-console"
	// loginCookie carries the login form's CSRF token before there is a
	// session (double submit): a foreign page cannot log a victim into
	// the attacker's account.
	loginCookie = "__Host-parley-login"
)

// session is one logged-in browser. Only the hash of its token is kept,
// so the table never holds a usable cookie.
type session struct {
	user jid.JID // bare
	// stamp is the account's accountStamp at login: a session stands only
	// while the account still matches it (not deleted, re-created under
	// the same name, disabled or given a new password, whichever way).
	stamp string
	// admin: the account administered a host at login. A full table
	// ends other sessions before administrators' (sessions.create).
	admin    bool
	csrf     string
	created  time.Time
	lastSeen time.Time
	flash    string // a message for the next page (guarded by sessions.mu)
}

// sessions is the server-side session table: idle and absolute expiry,
// bounded in size per account (the account's oldest is ended) and in all
// (the one unused longest is ended).
type sessions struct {
	idle, maxAge time.Duration
	max, perUser int
	now          func() time.Time

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(idle, maxAge time.Duration, max, perUser int, now func() time.Time) *sessions {
	return &sessions{idle: idle, maxAge: maxAge, max: max, perUser: perUser, now: now, m: make(map[[32]byte]*session)}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenKey(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// create starts a session for user, whose account has stamp (and
// administers a host: admin), and returns its token.
func (s *sessions) create(user jid.JID, stamp string, admin bool) (string, *session) {
	tok := randomToken()
	now := s.now()
	sess := &session{user: user.Bare(), stamp: stamp, admin: admin, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	for s.countLocked(sess.user) >= s.perUser {
		s.evictLocked(func(v *session) (time.Time, bool) { return v.created, v.user == sess.user })
	}
	// Full: the session unused longest ends, an administrator's only when
	// nothing else is left, so logins of many ordinary accounts (open
	// registration) cannot log the administrators out.
	for len(s.m) >= s.max {
		if !s.evictLocked(func(v *session) (time.Time, bool) { return v.lastSeen, !v.admin }) {
			s.evictLocked(func(v *session) (time.Time, bool) { return v.lastSeen, true })
		}
	}
	s.m[tokenKey(tok)] = sess
	return tok, sess
}

func (s *sessions) countLocked(user jid.JID) int {
	n := 0
	for _, v := range s.m {
		if v.user == user {
			n++
		}
	}
	return n
}

// evictLocked ends the session with the earliest time among those pick
// accepts; false when it accepts none.
func (s *sessions) evictLocked(pick func(*session) (time.Time, bool)) bool {
	var victim [32]byte
	var at time.Time
	found := false
	for k, v := range s.m {
		if t, ok := pick(v); ok && (!found || t.Before(at)) {
			victim, at, found = k, t, true
		}
	}
	if found {
		delete(s.m, victim)
	}
	return found
}

// get returns the live session of tok and marks it used.
func (s *sessions) get(tok string) *session {
	if tok == "" {
		return nil
	}
	now := s.now()
	k := tokenKey(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[k]
	if sess == nil {
		return nil
	}
	if now.Sub(sess.lastSeen) > s.idle || now.Sub(sess.created) > s.maxAge {
		delete(s.m, k)
		return nil
	}
	sess.lastSeen = now
	return sess
}

// end ends the session of tok, if any.
func (s *sessions) end(tok string) {
	s.mu.Lock()
	delete(s.m, tokenKey(tok))
	s.mu.Unlock()
}

// endUser ends every session of user (after a password change elsewhere,
// a deletion, a disable).
func (s *sessions) endUser(user jid.JID, except string) {
	keep := tokenKey(except)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if v.user == user.Bare() && (except == "" || k != keep) {
			delete(s.m, k)
		}
	}
}

// restamp records the account's new stamp in sess (after its own
// password change, which keeps the session that made it).
func (s *sessions) restamp(sess *session, stamp string) {
	s.mu.Lock()
	sess.stamp = stamp
	s.mu.Unlock()
}

// stampOf reads sess's stamp.
func (s *sessions) stampOf(sess *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sess.stamp
}

func (s *sessions) expireLocked(now time.Time) {
	for k, v := range s.m {
		if now.Sub(v.lastSeen) > s.idle || now.Sub(v.created) > s.maxAge {
			delete(s.m, k)
		}
	}
}

// setCookie sets a session-scoped, HttpOnly, Secure, SameSite=Strict
// cookie (MaxAge -1 deletes it).
func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// sameToken compares two tokens in constant time; empty never matches.
func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// setFlash leaves msg for the next page the session renders.
func (s *sessions) setFlash(sess *session, msg string) {
	s.mu.Lock()
	sess.flash = msg
	s.mu.Unlock()
}

// takeFlash returns and clears the session's message.
func (s *sessions) takeFlash(sess *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := sess.flash
	sess.flash = ""
	return m
}
