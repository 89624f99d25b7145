package c2s_test

import (
	"context"
	"testing"

	"parley/internal/legacyauth"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const legacyConfig = `
[[host]]
domain = "localhost"
[host.legacy_auth]
plaintext = true
digest = true
zero_knowledge = true
zero_knowledge_sequence = 3
`

const nsAuth = "jabber:iq:auth"

func addLegacyUser(t *testing.T, ts *testserver.TS, user, pw string) {
	t.Helper()
	if err := legacyauth.CreateAccount(context.Background(), ts.Store(), ts.Config, storage.Account{Host: "localhost", Username: user}, pw); err != nil {
		t.Fatal(err)
	}
}

// tlsClient opens a 1.0 stream and negotiates TLS.
func tlsClient(t *testing.T, ts *testserver.TS) *testserver.Client {
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	return c
}

func authGet(c *testserver.Client, user string) *xml.Element {
	c.Send("<iq type='get' id='g1'><query xmlns='jabber:iq:auth'><username>%s</username></query></iq>", user)
	return c.ExpectStanza("iq", "id=g1")
}

func authSet(c *testserver.Client, id, inner string) *xml.Element {
	c.Send("<iq type='set' id='%s'><query xmlns='jabber:iq:auth'>%s</query></iq>", id, inner)
	return c.ExpectStanza("iq", "id="+id)
}

func wantError(t *testing.T, el *xml.Element, cond, code string) {
	t.Helper()
	e := el.Child("", "error")
	if el.Attr("type") != "error" || e == nil || e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", cond) == nil || e.Attr("code") != code {
		t.Fatalf("want %s (%s), got %s", cond, code, el)
	}
	if el.Child(nsAuth, "query") != nil {
		t.Fatalf("XEP-0078 errors must not echo the credentials: %s", el)
	}
}

func wantSession(t *testing.T, c *testserver.Client, el *xml.Element, full string) {
	t.Helper()
	if el.Attr("type") != "result" {
		t.Fatalf("login failed: %s", el)
	}
	// The session exists without a separate bind: the server routes to it.
	c.Send("<iq type='get' id='ping1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", full)
	c.ExpectStanza("iq", "id=ping1", "from="+full)
}

func TestLegacyAuthFieldsAndFeature(t *testing.T) {
	ts := testserver.Start(t, legacyConfig)
	addLegacyUser(t, ts, "dj", "secret12")
	c := tlsClient(t, ts)
	if c.Features.Child("http://jabber.org/features/iq-auth", "auth") == nil {
		t.Fatalf("iq-auth stream feature missing: %s", c.Features)
	}
	for _, user := range []string{"dj", "nosuchuser"} {
		q := authGet(c, user).Child(nsAuth, "query")
		if q == nil || q.ChildText(nsAuth, "username") != user {
			t.Fatalf("%s: bad fields %s", user, q)
		}
		for _, f := range []string{"password", "digest", "resource"} {
			if q.Child(nsAuth, f) == nil {
				t.Fatalf("%s: field %s missing: %s", user, f, q)
			}
		}
		if q.ChildText(nsAuth, "sequence") != "2" || len(q.ChildText(nsAuth, "token")) != 8 {
			t.Fatalf("%s: want sequence 2 and a token, got %s", user, q)
		}
	}
}

func TestLegacyAuthPlaintextDigestAndErrors(t *testing.T) {
	ts := testserver.Start(t, legacyConfig)
	addLegacyUser(t, ts, "dj", "secret12")

	c := tlsClient(t, ts)
	wantError(t, authSet(c, "a1", "<username>dj</username><digest>03ea09f012493415908d63dcb1f6dbdb9bfc09ba</digest>"), "not-acceptable", "406")
	wantError(t, authSet(c, "a2", "<username>dj</username><password>wrong</password><resource>laptop</resource>"), "not-authorized", "401")
	wantError(t, authSet(c, "a3", "<username>nobody</username><password>secret12</password><resource>laptop</resource>"), "not-authorized", "401")
	wantSession(t, c, authSet(c, "a4", "<username>dj</username><password>secret12</password><resource>laptop</resource>"), "dj@localhost/laptop")

	d := tlsClient(t, ts)
	wantError(t, authSet(d, "d1", "<username>dj</username><digest>"+legacyauth.Digest(d.Header.ID, "wrong")+"</digest><resource>desk</resource>"), "not-authorized", "401")
	wantSession(t, d, authSet(d, "d2", "<username>dj</username><digest>"+legacyauth.Digest(d.Header.ID, "secret12")+"</digest><resource>desk</resource>"), "dj@localhost/desk")

	// Same resource again: the old session is replaced (XEP-0078 §3.1).
	e := tlsClient(t, ts)
	wantSession(t, e, authSet(e, "e1", "<username>dj</username><password>secret12</password><resource>laptop</resource>"), "dj@localhost/laptop")
	c.ExpectStreamError("conflict")
}

func TestLegacyAuthZeroKnowledgeChain(t *testing.T) {
	ts := testserver.Start(t, legacyConfig)
	addLegacyUser(t, ts, "dj", "secret12")
	login := func(pw string) (*testserver.Client, *xml.Element) {
		c := tlsClient(t, ts)
		q := authGet(c, "dj").Child(nsAuth, "query")
		seq, tok := q.ChildText(nsAuth, "sequence"), q.ChildText(nsAuth, "token")
		if seq == "" {
			return c, nil
		}
		n := 0
		for _, r := range seq {
			n = n*10 + int(r-'0')
		}
		h := legacyauth.ZeroKnowledgeHash(pw, tok, n)
		return c, authSet(c, "z", "<username>dj</username><hash>"+h+"</hash><resource>zk</resource>")
	}
	// Sequence 3 at reset: three logins (announced 2, 1, 0), then none.
	for i := 0; i < 3; i++ {
		c, r := login("secret12")
		if r == nil {
			t.Fatalf("login %d: no sequence offered", i)
		}
		wantSession(t, c, r, "dj@localhost/zk")
	}
	c, r := login("secret12")
	if r != nil {
		t.Fatalf("exhausted chain still offered: %s", r)
	}
	// A hash computed anyway is refused.
	wantError(t, authSet(c, "z2", "<username>dj</username><hash>"+legacyauth.ZeroKnowledgeHash("secret12", "X", 0)+"</hash><resource>zk</resource>"), "not-authorized", "401")
	// A password reset starts a new chain (new token, full sequence); the
	// old password no longer works.
	if err := legacyauth.SetPassword(context.Background(), ts.Store(), ts.Config, "localhost", "dj", "newsecret"); err != nil {
		t.Fatal(err)
	}
	_, r = login("secret12")
	wantError(t, r, "not-authorized", "401")
	c, r = login("newsecret")
	wantSession(t, c, r, "dj@localhost/zk")
	q := authGet(tlsClient(t, ts), "dj").Child(nsAuth, "query")
	if q.ChildText(nsAuth, "sequence") != "1" {
		t.Fatalf("sequence did not decrement after the reset: %s", q)
	}
}

func TestLegacyAuthMethodsDisabledAndTLS(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		ts := testserver.Start(t, "")
		ts.AddUser(t, "dj", "secret12")
		c := tlsClient(t, ts)
		if c.Features.Child("http://jabber.org/features/iq-auth", "auth") != nil {
			t.Fatalf("iq-auth advertised while disabled: %s", c.Features)
		}
		el := authGet(c, "dj")
		if el.Attr("type") != "error" || el.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "service-unavailable") == nil {
			t.Fatalf("want service-unavailable, got %s", el)
		}
	})
	t.Run("digest only", func(t *testing.T) {
		ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\n[host.legacy_auth]\ndigest = true\n")
		addLegacyUser(t, ts, "dj", "secret12")
		c := tlsClient(t, ts)
		q := authGet(c, "dj").Child(nsAuth, "query")
		if q.Child(nsAuth, "password") != nil || q.Child(nsAuth, "sequence") != nil || q.Child(nsAuth, "digest") == nil {
			t.Fatalf("want digest only: %s", q)
		}
		wantError(t, authSet(c, "p", "<username>dj</username><password>secret12</password><resource>r</resource>"), "not-acceptable", "406")
	})
	t.Run("digest needs a password set while enabled", func(t *testing.T) {
		ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\n[host.legacy_auth]\ndigest = true\n")
		ts.AddUser(t, "old", "secret12") // SCRAM keys only
		c := tlsClient(t, ts)
		wantError(t, authSet(c, "d", "<username>old</username><digest>"+legacyauth.Digest(c.Header.ID, "secret12")+"</digest><resource>r</resource>"), "not-authorized", "401")
		acct, _ := ts.Store().Accounts().Get(context.Background(), "localhost", "old")
		if acct.Creds.Plain != "" {
			t.Fatal("cleartext stored without digest")
		}
	})
	t.Run("pre-1.0 stream without TLS: no plaintext", func(t *testing.T) {
		ts := testserver.Start(t, "[c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls_listen = [\"127.0.0.1:0\"]\nrequire_tls = false\n"+legacyConfig)
		addLegacyUser(t, ts, "dj", "secret12")
		c := testserver.Dial(t, ts.StartTLSAddr())
		c.ReadHeaderOnly("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>")
		if c.Header.Version != "" || c.Header.ID == "" {
			t.Fatalf("0.9 answer must have an id and no version: %+v", c.Header)
		}
		q := authGet(c, "dj").Child(nsAuth, "query")
		if q.Child(nsAuth, "password") != nil || q.Child(nsAuth, "digest") == nil {
			t.Fatalf("plaintext offered without TLS: %s", q)
		}
		wantError(t, authSet(c, "p", "<username>dj</username><password>secret12</password><resource>r</resource>"), "not-acceptable", "406")
		wantSession(t, c, authSet(c, "d", "<username>dj</username><digest>"+legacyauth.Digest(c.Header.ID, "secret12")+"</digest><resource>old</resource>"), "dj@localhost/old")
	})
	t.Run("pre-1.0 stream refused when legacy auth is off", func(t *testing.T) {
		ts := testserver.Start(t, "")
		c := testserver.Dial(t, ts.StartTLSAddr())
		c.ReadHeaderOnly("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>")
		c.ExpectStreamError("unsupported-version")
	})
	t.Run("after a failed SASL attempt", func(t *testing.T) {
		ts := testserver.Start(t, legacyConfig)
		addLegacyUser(t, ts, "dj", "secret12")
		c := tlsClient(t, ts)
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGRqAHdyb25n</auth>")
		c.ExpectStanza("failure")
		c.Send("<iq type='set' id='x'><query xmlns='jabber:iq:auth'><username>dj</username><password>secret12</password><resource>r</resource></query></iq>")
		c.ExpectStreamError("policy-violation")
	})
}

func TestSetPasswordMaintainsLegacyState(t *testing.T) {
	ts := testserver.Start(t, legacyConfig)
	addLegacyUser(t, ts, "dj", "secret12")
	a, err := ts.Store().Accounts().Get(context.Background(), "localhost", "dj")
	if err != nil || a.Creds.Plain != "secret12" || len(a.Creds.Keys) != 3 {
		t.Fatalf("digest host must keep SCRAM keys and the cleartext: %+v %v", a.Creds.Plain, err)
	}
	// The seed's 0k example: ./0k -p secret -t ABCDE -s 400.
	if h := legacyauth.ZeroKnowledgeHash("secret", "ABCDE", 400); len(h) != 40 {
		t.Fatalf("hash %q", h)
	}
}
