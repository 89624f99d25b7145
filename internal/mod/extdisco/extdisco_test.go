package extdisco_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/mod/extdisco"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const password = "password123"

const cfg = `[[host]]
domain = "localhost"
[[host.external_service]]
type = "stun"
host = "stun.localhost"
port = 3478
transport = "udp"
[[host.external_service]]
type = "turn"
host = "turn.localhost"
port = 3478
transport = "udp"
secret = "sh4red-secret"
ttl = "1h"
[[host.external_service]]
type = "turns"
host = "turn.localhost"
port = 5349
transport = "tcp"
secret = "sh4red-secret"
restricted = true
`

const ns = "urn:xmpp:extdisco:2"

func services(el *xml.Element, local string) []*xml.Element {
	q := el.Child(ns, local)
	if q == nil {
		return nil
	}
	return q.Elements()
}

// verify checks a service's credentials the way a TURN server with the
// shared secret does: HMAC of the username, expiry in the username, user.
func verify(t *testing.T, s *xml.Element, secret, user string, ttl time.Duration) {
	t.Helper()
	u, pw := s.Attr("username"), s.Attr("password")
	exp, who, ok := strings.Cut(u, ":")
	if !ok || who != user {
		t.Fatalf("username %q", u)
	}
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(u))
	if want := base64.StdEncoding.EncodeToString(m.Sum(nil)); pw != want {
		t.Fatalf("password %q, want %q", pw, want)
	}
	ts, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		t.Fatalf("expiry %q: %v", exp, err)
	}
	expires, err := time.Parse(time.RFC3339, s.Attr("expires"))
	if err != nil || expires.Unix() != ts {
		t.Fatalf("expires %q does not match the username's %d", s.Attr("expires"), ts)
	}
	if d := time.Until(expires); d < ttl-time.Minute || d > ttl+time.Minute {
		t.Fatalf("credentials valid for %v, want about %v", d, ttl)
	}
}

func TestServices(t *testing.T) {
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, "alice")
	c := ts.Login(t, "alice", password, "r")

	r := c.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(r.String(), ns) {
		t.Fatalf("host disco#info lacks %s: %s", ns, r)
	}

	r = c.IQ("get", "localhost", "<services xmlns='"+ns+"'/>")
	all := services(r, "services")
	if len(all) != 3 {
		t.Fatalf("services: %s", r)
	}
	if s := all[0]; s.Attr("type") != "stun" || s.Attr("port") != "3478" || s.Attr("transport") != "udp" || s.Attr("username") != "" {
		t.Fatalf("stun: %s", s)
	}
	verify(t, all[1], "sh4red-secret", "alice@localhost", time.Hour)
	if s := all[2]; s.Attr("restricted") != "1" || s.Attr("password") != "" {
		t.Fatalf("restricted turns carries credentials: %s", s)
	}
	if strings.Contains(r.String(), "sh4red-secret") {
		t.Fatalf("secret leaked: %s", r)
	}

	r = c.IQ("get", "localhost", "<services xmlns='"+ns+"' type='turn'/>")
	if got := services(r, "services"); len(got) != 1 || got[0].Attr("type") != "turn" {
		t.Fatalf("type filter: %s", r)
	}

	r = c.IQ("get", "localhost", "<credentials xmlns='"+ns+"'><service type='turns' host='turn.localhost'/></credentials>")
	got := services(r, "credentials")
	if len(got) != 1 {
		t.Fatalf("credentials: %s", r)
	}
	verify(t, got[0], "sh4red-secret", "alice@localhost", 24*time.Hour)

	for _, tc := range []struct{ payload, cond string }{
		{"<credentials xmlns='" + ns + "'><service host='nowhere.localhost'/></credentials>", "item-not-found"},
		{"<credentials xmlns='" + ns + "'/>", "bad-request"},
		{"<other xmlns='" + ns + "'/>", "bad-request"},
	} {
		if r := c.IQ("get", "localhost", tc.payload); testserver.ErrorCondition(r) != tc.cond {
			t.Fatalf("%s: %s, want %s", tc.payload, r, tc.cond)
		}
	}
}

// TestNoServices: a host without services announces nothing.
func TestNoServices(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice")
	c := ts.Login(t, "alice", password, "r")
	r := c.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if strings.Contains(r.String(), ns) {
		t.Fatalf("feature without services: %s", r)
	}
	if r := c.IQ("get", "localhost", "<services xmlns='"+ns+"'/>"); testserver.ErrorCondition(r) != "service-unavailable" {
		t.Fatalf("services: %s", r)
	}
}

// TestCredentials pins the derivation to a known value.
func TestCredentials(t *testing.T) {
	user, _ := jid.Parse("alice@localhost/phone")
	u, p := extdisco.Credentials("secret", user, time.Unix(1700000000, 0))
	if u != "1700000000:alice@localhost" {
		t.Fatalf("username %q", u)
	}
	m := hmac.New(sha1.New, []byte("secret"))
	m.Write([]byte(u))
	if p != base64.StdEncoding.EncodeToString(m.Sum(nil)) || len(p) != 28 {
		t.Fatalf("password %q", p)
	}
}
