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
	user     jid.JID // bare
	csrf     string
	created  time.Time
	lastSeen time.Time
	flash    string // a message for the next page (guarded by sessions.mu)
}

// sessions is the server-side session table: idle and absolute expiry,
// bounded in size (the oldest is ended when full).
type sessions struct {
	idle, maxAge time.Duration
	max          int
	now          func() time.Time

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(idle, maxAge time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{idle: idle, maxAge: maxAge, max: max, now: now, m: make(map[[32]byte]*session)}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenKey(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// create starts a session for user and returns its token.
func (s *sessions) create(user jid.JID) (string, *session) {
	tok := randomToken()
	now := s.now()
	sess := &session{user: user.Bare(), csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	for len(s.m) >= s.max {
		var oldest [32]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.created.Before(at) {
				oldest, at = k, v.created
			}
		}
		delete(s.m, oldest)
	}
	s.m[tokenKey(tok)] = sess
	return tok, sess
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
