package console

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

func TestLoginOutcomes(t *testing.T) {
	fail := func(cond, text string) *xml.Element {
		f := xml.New(nsSASL, "failure").Append(xml.New(nsSASL, cond))
		if text != "" {
			f.Append(xml.New(nsSASL, "text").AppendText(text))
		}
		return f
	}
	for _, tc := range []struct {
		out  *xml.Element
		want LoginResult
	}{
		{nil, LoginUnavailable},
		{xml.New(nsSASL, "success"), LoginOK},
		{fail("not-authorized", ""), LoginFailed},
		{fail("temporary-auth-failure", "too many failed logins from your address; try again later"), LoginThrottled},
		{fail("temporary-auth-failure", "the user directory is unavailable; try again later"), LoginUnavailable},
		{fail("temporary-auth-failure", ""), LoginUnavailable},
	} {
		lt := &loginTransport{outcome: tc.out}
		if got := lt.result(); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.out, got, tc.want)
		}
	}
}

func TestSessionsExpireAndStayBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	s := newSessions(10*time.Minute, time.Hour, 3, 10, clock)
	alice := jid.MustParse("alice@example.com")
	tok, sess := s.create(alice, "", false)
	if s.get(tok) != sess || s.get("nonsense") != nil || s.get("") != nil {
		t.Fatal("lookup")
	}
	// Idle expiry.
	now = now.Add(11 * time.Minute)
	if s.get(tok) != nil {
		t.Fatal("an idle session survived")
	}
	// Absolute expiry even when busy.
	tok, _ = s.create(alice, "", false)
	for range 7 {
		now = now.Add(9 * time.Minute)
		s.get(tok)
	}
	if s.get(tok) != nil {
		t.Fatal("a session outlived max_age")
	}
	// Bounded: the oldest goes.
	var toks []string
	for range 4 {
		now = now.Add(time.Second)
		tk, _ := s.create(alice, "", false)
		toks = append(toks, tk)
	}
	if s.get(toks[0]) != nil || s.get(toks[3]) == nil || len(s.m) != 3 {
		t.Fatalf("table: %d sessions, oldest alive=%v", len(s.m), s.get(toks[0]) != nil)
	}
	// endUser keeps the one named.
	s.endUser(alice, toks[3])
	if s.get(toks[3]) == nil || s.get(toks[2]) != nil {
		t.Fatal("endUser")
	}
	// The table holds hashes, not tokens.
	for k := range s.m {
		if string(k[:]) == toks[3] {
			t.Fatal("a raw token is a key")
		}
	}
}

// One account's logins end its own oldest session, never another
// account's: an ordinary user logging in again and again cannot log the
// administrators out. When the whole table is full, the session unused
// longest goes, not the busy administrator's.
func TestOneAccountCannotLogOthersOut(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	s := newSessions(10*time.Minute, time.Hour, 6, 2, clock)
	admin, carol := jid.MustParse("admin@example.com"), jid.MustParse("carol@example.com")
	adminTok, _ := s.create(admin, "", true)
	var carols []string
	for range 50 {
		now = now.Add(time.Second)
		tk, _ := s.create(carol, "", false)
		carols = append(carols, tk)
	}
	if s.get(adminTok) == nil {
		t.Fatal("another account's logins ended the administrator's session")
	}
	if s.countLocked(carol) != 2 || s.get(carols[49]) == nil || s.get(carols[48]) == nil || s.get(carols[47]) != nil {
		t.Fatalf("carol holds %d sessions, not her 2 newest", s.countLocked(carol))
	}
	now = now.Add(time.Second)
	s.get(carols[49])
	// Full table (6): more accounts with one session each (open
	// registration). The administrator, idle longest, stays; the other
	// sessions unused longest go.
	for i := range 5 {
		now = now.Add(time.Second)
		s.create(jid.MustParse(fmt.Sprintf("u%d@example.com", i)), "", false)
	}
	if len(s.m) != 6 || s.get(adminTok) == nil {
		t.Fatalf("table of %d; administrator's session alive: %v", len(s.m), s.get(adminTok) != nil)
	}
	if s.get(carols[48]) != nil || s.get(carols[49]) != nil {
		t.Error("sessions unused longer than others were kept while the table was full")
	}
}

// canonicalPath on its own, for request targets the HTTP front door and
// ServeMux would otherwise have cleaned or refused first.
func TestCanonicalPath(t *testing.T) {
	for target, ok := range map[string]bool{
		"/admin/":                        true,
		"/admin/users":                   true,
		"/admin/users?host=a.example":    true,
		"/account/":                      true,
		"/admin/assets/console.css":      true,
		"/admin/%2e%2e/users":            false,
		"/admin/%252e%252e/users":        false,
		"/admin/..;/users":               false,
		"/admin/;/users":                 false,
		"/admin/users;x":                 false,
		"/admin//users":                  false,
		"/admin/./users":                 false,
		"/admin/../admin/users":          false,
		"/admin/users.":                  false,
		"/admin./users":                  false,
		"/admin/Users":                   false,
		"/ADMIN/users":                   false,
		"/admin/%75sers":                 false,
		"/admin/users%2f":                false,
		"/admin/a%20b":                   false,
		"/admin/users\\":                 false,
		"/admin/assets/..%2fconsole.css": false,
		"/admin/assets/%2e%2e%2fusers":   false,
	} {
		r := httptest.NewRequest("GET", target, nil)
		if _, got := canonicalPath(r); got != ok {
			t.Errorf("canonicalPath(%q) = %v, want %v", target, got, ok)
		}
	}
}
