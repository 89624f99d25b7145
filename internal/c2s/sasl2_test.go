package c2s_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
	"parley/internal/xmppclient"
)

const (
	uaPhone  = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	uaLaptop = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
)

// sasl2Config lets a test fail logins often without the brute-force
// limiter stepping in.
const sasl2Config = "[auth.brute_force]\ndelay_after = 1000\npause_after = 2000\n[limits]\nmax_auth_failures = 100\n"

func sasl2Dial(t *testing.T, ts *testserver.TS, from string) *xmppclient.Client {
	t.Helper()
	c, err := xmppclient.Dial(context.Background(), xmppclient.Options{
		Domain: "localhost", Address: ts.StartTLSAddr(), Insecure: true, RequireTLS: true, From: from,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Conn().Close() })
	return c
}

func login2(t *testing.T, ts *testserver.TS, l xmppclient.SASL2Login) (*xmppclient.Client, *xmppclient.SASL2Result) {
	t.Helper()
	c := sasl2Dial(t, ts, l.User+"@localhost")
	res, err := c.LoginSASL2(l)
	if err != nil {
		t.Fatalf("SASL2 login %s with %s: %v", l.User, l.Mechanism, err)
	}
	return c, res
}

func failure2(t *testing.T, ts *testserver.TS, l xmppclient.SASL2Login) *xmppclient.SASL2Failure {
	t.Helper()
	c := sasl2Dial(t, ts, "")
	_, err := c.LoginSASL2(l)
	var f *xmppclient.SASL2Failure
	if !errors.As(err, &f) {
		t.Fatalf("login %+v: want a SASL2 failure, got %v", l, err)
	}
	return f
}

func TestSASL2Feature(t *testing.T) {
	ts := testserver.Start(t, "")
	// Not before TLS (XEP-0388 §4).
	raw := testserver.Dial(t, ts.StartTLSAddr())
	raw.Open("localhost")
	if raw.Features.Child(xmppclient.NSSASL2, "authentication") != nil {
		t.Fatalf("SASL2 offered before TLS: %s", raw.Features)
	}
	raw.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGEAYg==</initial-response></authenticate>")
	raw.ExpectStreamError("policy-violation")

	c := sasl2Dial(t, ts, "")
	var legacy []string
	for _, m := range c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms").Elements() {
		legacy = append(legacy, m.Text())
	}
	if got := c.SASL2Mechanisms(); !slices.Equal(got, legacy) || len(got) == 0 {
		t.Fatalf("SASL2 mechanisms %v, RFC 6120 mechanisms %v: must be the same list", got, legacy)
	}
	if !slices.Contains(legacy, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("no -PLUS over TLS: %v", legacy)
	}
	inline := c.Features.Child(xmppclient.NSSASL2, "authentication").Child(xmppclient.NSSASL2, "inline")
	bind := inline.Child(xmppclient.NSBind2, "bind")
	if bind == nil || inline.Child(xmppclient.NSSM, "sm") == nil {
		t.Fatalf("inline features %s", inline)
	}
	var vars []string
	for _, f := range bind.Child(xmppclient.NSBind2, "inline").Elements() {
		vars = append(vars, f.Attr("var"))
	}
	for _, want := range []string{xmppclient.NSSM, xmppclient.NSCarbons, xmppclient.NSCSI} {
		if !slices.Contains(vars, want) {
			t.Errorf("Bind 2 inline features %v lack %s", vars, want)
		}
	}
	if got := c.FASTMechanisms(); !slices.Equal(got, []string{"HT-SHA-256-EXPR", "HT-SHA-256-ENDP", "HT-SHA-256-NONE"}) {
		t.Fatalf("FAST mechanisms %v", got)
	}
	if c.Features.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding") == nil {
		t.Fatal("no XEP-0440 channel-binding list")
	}
}

func TestSASL2Off(t *testing.T) {
	ts := testserver.Start(t, "[auth]\nsasl2 = false\n")
	c := sasl2Dial(t, ts, "")
	if c.Features.Child(xmppclient.NSSASL2, "authentication") != nil {
		t.Fatalf("SASL2 offered with auth.sasl2 = false: %s", c.Features)
	}
}

// TestSASL2BindAndFASTReconnect is the mobile client's day: a password
// login that binds with every inline feature and asks for a token, then
// a reconnect with the token in one round trip.
func TestSASL2BindAndFASTReconnect(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	for _, mech := range []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			c, res := login2(t, ts, xmppclient.SASL2Login{
				User: "alice", Password: "password1", Mechanism: mech,
				UserAgentID: uaPhone, Software: "TestApp", Device: "Phone",
				Bind:         &xmppclient.Bind2{Tag: "TestApp", EnableSM: true, Carbons: true},
				RequestToken: "HT-SHA-256-NONE",
			})
			if !strings.HasPrefix(res.AuthzID, "alice@localhost/TestApp/") {
				t.Fatalf("authorization identifier %q: want a full JID with the tag", res.AuthzID)
			}
			if res.SMID == "" || res.Token == "" || time.Until(res.Expiry) < 20*24*time.Hour {
				t.Fatalf("sm id %q token %q expiry %v", res.SMID, res.Token, res.Expiry)
			}
			if res.Features.Child(xmppclient.NSCSI, "csi") == nil || res.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") != nil {
				t.Fatalf("features after a bound success: %s", res.Features)
			}
			if strings.HasPrefix(mech, "SCRAM") && (res.RoundTrips != 2 || !res.SSDPChecked) {
				t.Fatalf("SCRAM took %d round trips; XEP-0474 hash checked: %v", res.RoundTrips, res.SSDPChecked)
			}
			// The session works: a ping to the server.
			_ = c.Send(xml.New("", "iq").SetAttr("type", "get").SetAttr("id", "p1").Append(xml.New("urn:xmpp:ping", "ping")))
			if _, err := c.Expect(func(el *xml.Element) bool { return el.Local == "iq" && el.Attr("id") == "p1" }); err != nil {
				t.Fatal(err)
			}
			_ = c.Conn().Close()

			// The same client, its token, one round trip; the same
			// resource (stable per client and tag).
			c2, res2 := login2(t, ts, xmppclient.SASL2Login{
				User: "alice", Token: res.Token, Mechanism: "HT-SHA-256-NONE", UserAgentID: uaPhone,
				Bind: &xmppclient.Bind2{Tag: "TestApp"},
			})
			if res2.RoundTrips != 1 || res2.AuthzID != res.AuthzID {
				t.Fatalf("FAST login: %d round trips, jid %q (first %q)", res2.RoundTrips, res2.AuthzID, res.AuthzID)
			}
			if res2.Token != "" {
				t.Fatal("a fresh token was rotated")
			}
			_ = c2.Conn().Close()
		})
	}
}

func TestFASTChannelBound(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	for _, mech := range []string{"HT-SHA-256-EXPR", "HT-SHA-256-ENDP"} {
		t.Run(mech, func(t *testing.T) {
			_, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
				UserAgentID: uaLaptop, RequestToken: mech})
			// Not usable with another mechanism (XEP-0484 §3.4).
			if f := failure2(t, ts, xmppclient.SASL2Login{User: "alice", Token: res.Token, Mechanism: "HT-SHA-256-NONE", UserAgentID: uaLaptop}); f.Condition != "not-authorized" {
				t.Fatalf("token for %s used with -NONE: %+v", mech, f)
			}
			_, res2 := login2(t, ts, xmppclient.SASL2Login{User: "alice", Token: res.Token, Mechanism: mech, UserAgentID: uaLaptop})
			if res2.RoundTrips != 1 || res2.AuthzID != "alice@localhost" {
				t.Fatalf("%s: %+v", mech, res2)
			}
		})
	}
}

// TestFASTAttacks: every misuse of a token fails cleanly, like a wrong
// password, and unknown users look like known ones.
func TestFASTAttacks(t *testing.T) {
	ts := testserver.Start(t, sasl2Config)
	ts.AddUsers(t, "password1", "alice", "bob")
	_, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, RequestToken: "HT-SHA-256-NONE"})
	tok := res.Token
	forged, _ := sasl.NewFASTToken()
	ht := func(user, token, ua string) xmppclient.SASL2Login {
		return xmppclient.SASL2Login{User: user, Token: token, Mechanism: "HT-SHA-256-NONE", UserAgentID: ua}
	}
	cases := []struct {
		name string
		l    xmppclient.SASL2Login
		cond string
	}{
		{"forged token", ht("alice", forged, uaPhone), "not-authorized"},
		{"token of another client", ht("alice", tok, uaLaptop), "not-authorized"},
		{"token for another user", ht("bob", tok, uaPhone), "not-authorized"},
		{"unknown user", ht("nobody", tok, uaPhone), "not-authorized"},
		{"token truncated", ht("alice", tok[:len(tok)-1], uaPhone), "not-authorized"},
		{"no user-agent id", ht("alice", tok, ""), "malformed-request"},
		{"HT without <fast/>", xmppclient.SASL2Login{User: "alice", Password: "x", Mechanism: "PLAIN", RequestToken: "HT-SHA-1-NONE", UserAgentID: uaPhone}, "malformed-request"},
		{"token request without id", xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "PLAIN", RequestToken: "HT-SHA-256-NONE"}, "malformed-request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := failure2(t, ts, tc.l)
			if f.Condition != tc.cond {
				t.Fatalf("condition %q, want %q", f.Condition, tc.cond)
			}
			if tc.cond == "not-authorized" && f.Text != "" {
				t.Fatalf("text %q says why", f.Text)
			}
		})
	}
	// An HT mechanism outside <fast/> is not a mechanism of SASL2.
	c := sasl2Dial(t, ts, "")
	_ = c.Send(xml.New(xmppclient.NSSASL2, "authenticate").SetAttr("mechanism", "HT-SHA-256-NONE").
		Append(xml.New(xmppclient.NSSASL2, "initial-response").AppendText("YWxpY2UAeA==")))
	if el, err := c.Next(); err != nil || el.Local != "failure" || el.Child("urn:ietf:params:xml:ns:xmpp-sasl", "invalid-mechanism") == nil {
		t.Fatalf("HT without <fast/>: %v %v", el, err)
	}
	// The real token still works after all that.
	login2(t, ts, ht("alice", tok, uaPhone))
}

func TestFASTReplayCountAndInvalidate(t *testing.T) {
	ts := testserver.Start(t, sasl2Config)
	ts.AddUser(t, "alice", "password1")
	_, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, RequestToken: "HT-SHA-256-NONE"})
	l := xmppclient.SASL2Login{User: "alice", Token: res.Token, Mechanism: "HT-SHA-256-NONE", UserAgentID: uaPhone, FASTCount: 5}
	login2(t, ts, l)
	if f := failure2(t, ts, l); f.Condition != "not-authorized" {
		t.Fatalf("replayed count: %+v", f)
	}
	l.FASTCount = 4
	if f := failure2(t, ts, l); f.Condition != "not-authorized" {
		t.Fatalf("lower count: %+v", f)
	}
	l.FASTCount = 6
	l.Invalidate = true
	_, res2 := login2(t, ts, l)
	if res2.Token != "" {
		t.Fatal("a token in the answer to a logout")
	}
	l.FASTCount, l.Invalidate = 7, false
	if f := failure2(t, ts, l); f.Condition != "not-authorized" {
		t.Fatalf("token after invalidation: %+v", f)
	}
}

// TestFASTRevokedByPasswordChangeAndDeletion: the storage paths every
// password change and account deletion take end the tokens.
func TestFASTRevokedByPasswordChangeAndDeletion(t *testing.T) {
	ts := testserver.Start(t, sasl2Config)
	ts.AddUser(t, "alice", "password1")
	get := func() string {
		_, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
			UserAgentID: uaPhone, RequestToken: "HT-SHA-256-NONE"})
		return res.Token
	}
	tok := get()
	creds, err := sasl.DeriveCredentials("password1", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Store().Accounts().SetCredentials(context.Background(), "localhost", "alice", creds); err != nil {
		t.Fatal(err)
	}
	if f := failure2(t, ts, xmppclient.SASL2Login{User: "alice", Token: tok, Mechanism: "HT-SHA-256-NONE", UserAgentID: uaPhone}); f.Condition != "not-authorized" {
		t.Fatalf("token after a password change: %+v", f)
	}
	tok = get()
	if err := ts.Store().Accounts().SetDisabled(context.Background(), "localhost", "alice", true); err != nil {
		t.Fatal(err)
	}
	if f := failure2(t, ts, xmppclient.SASL2Login{User: "alice", Token: tok, Mechanism: "HT-SHA-256-NONE", UserAgentID: uaPhone}); f.Condition != "not-authorized" {
		t.Fatalf("token of a disabled account: %+v", f)
	}
}

// TestFASTExpiryAndRotation drives the clock through storage: an expired
// token fails with credentials-expired; one past half its life is
// rotated, and the old one lasts until the new one is used.
func TestFASTExpiryAndRotation(t *testing.T) {
	ts := testserver.Start(t, sasl2Config)
	ts.AddUser(t, "alice", "password1")
	ctx := context.Background()
	put := func(id string, issued, expires time.Time) string {
		tok, hash := sasl.NewFASTToken()
		err := ts.Store().FAST().Issue(ctx, "localhost", "alice", storage.FASTToken{ID: id, ClientID: uaPhone,
			Mechanism: "HT-SHA-256-NONE", Hash: hash, IssuedAt: issued, ExpiresAt: expires}, 20)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	l := func(tok string) xmppclient.SASL2Login {
		return xmppclient.SASL2Login{User: "alice", Token: tok, Mechanism: "HT-SHA-256-NONE", UserAgentID: uaPhone}
	}
	expired := put("old", time.Now().Add(-30*24*time.Hour), time.Now().Add(-time.Minute))
	if f := failure2(t, ts, l(expired)); f.Condition != "credentials-expired" {
		t.Fatalf("expired token: %+v", f)
	}
	aging := put("aging", time.Now().Add(-15*24*time.Hour), time.Now().Add(6*24*time.Hour))
	_, res := login2(t, ts, l(aging))
	if res.Token == "" {
		t.Fatal("no rotation for a token past half its life")
	}
	// The client may not have received the new token: the old one works.
	_, again := login2(t, ts, l(aging))
	if again.Token == "" || again.Token == res.Token {
		t.Fatal("the old token's next use must bring another new token")
	}
	login2(t, ts, l(again.Token))
	if f := failure2(t, ts, l(aging)); f.Condition != "not-authorized" {
		t.Fatalf("old token after the new one was used: %+v", f)
	}
	if f := failure2(t, ts, l(res.Token)); f.Condition != "not-authorized" {
		t.Fatalf("superseded unused token: %+v", f)
	}
	toks, err := ts.Store().FAST().List(ctx, "localhost", "alice")
	if err != nil || len(toks) != 1 || !toks[0].Current {
		t.Fatalf("tokens after rotation: %+v %v", toks, err)
	}
	// What storage holds is a hash, never the token.
	h := sha256.Sum256([]byte(again.Token))
	if string(toks[0].Hash) != string(h[:]) {
		t.Fatal("stored hash is not SHA-256 of the token")
	}
}

// TestSASL2InlineResume: a Bind 2 session with stream management loses
// its connection; the next SASL2 login resumes it inline and gets what
// was sent meanwhile. A failed resumption falls back to a new bind.
func TestSASL2InlineResume(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	a, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, Bind: &xmppclient.Bind2{Tag: "T", EnableSM: true}})
	if res.SMID == "" {
		t.Fatal("no stream management")
	}
	_ = a.Conn().Close() // lost, not closed: the session waits
	bob := ts.Login(t, "bob", "password1", "r")
	bob.Send("<message to='%s' type='chat'><body>while you were away</body></message>", res.AuthzID)
	bob.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")

	c, res2 := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, ResumeID: res.SMID, ResumeH: 0, Bind: &xmppclient.Bind2{Tag: "T"}})
	if res2.Resumed == nil || res2.Resumed.Attr("previd") != res.SMID || res2.AuthzID != res.AuthzID {
		t.Fatalf("inline resumption: %s", res2.Success)
	}
	if res2.Success.Child(xmppclient.NSBind2, "bound") != nil {
		t.Fatal("bound after a successful resumption (XEP-0386: the bind is ignored)")
	}
	msg, err := c.Expect(func(el *xml.Element) bool { return el.Local == "message" })
	if err != nil || msg.ChildText("", "body") != "while you were away" {
		t.Fatalf("queued message: %v %v", msg, err)
	}

	// Unknown previd: <failed/> in the success, and a new session bound.
	_, res3 := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaLaptop, ResumeID: "nonsense", Bind: &xmppclient.Bind2{Tag: "T2"}})
	if res3.ResumeFailed == nil || res3.ResumeFailed.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil ||
		res3.Success.Child(xmppclient.NSBind2, "bound") == nil || !strings.HasPrefix(res3.AuthzID, "alice@localhost/T2/") {
		t.Fatalf("failed resumption with bind: %s", res3.Success)
	}
}

// TestBind2CarbonsAndCSI: the inline features reach the modules.
func TestBind2CarbonsAndCSI(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	ts.GrantSubscription(t, "alice", "bob")
	a, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, Bind: &xmppclient.Bind2{Tag: "T", Carbons: true, Inactive: true}})
	// Carbons: what another resource of alice sends is copied here.
	other := ts.Login(t, "alice", "password1", "desk")
	other.Send("<message to='bob@localhost' type='chat'><body>hi bob</body></message>")
	sent, err := a.Expect(func(el *xml.Element) bool { return el.Local == "message" })
	if err != nil || sent.Child(xmppclient.NSCarbons, "sent") == nil {
		t.Fatalf("carbon copy: %v %v", sent, err)
	}
	// CSI: while alice is inactive, bob's chat states are held and the
	// newer replaces the older; his message with a body flushes them.
	// An active session would get all three.
	bob := ts.Login(t, "bob", "password1", "r")
	const cs = "http://jabber.org/protocol/chatstates"
	bob.Send("<message to='%s' type='chat'><composing xmlns='%s'/></message>", res.AuthzID, cs)
	bob.Send("<message to='%s' type='chat'><paused xmlns='%s'/></message>", res.AuthzID, cs)
	bob.Send("<message to='%s' type='chat'><body>there?</body></message>", res.AuthzID)
	var got []string
	for len(got) < 2 {
		el, err := a.Expect(func(el *xml.Element) bool { return el.Local == "message" && strings.HasPrefix(el.Attr("from"), "bob@") })
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		switch {
		case el.Child(cs, "composing") != nil:
			got = append(got, "composing")
		case el.Child(cs, "paused") != nil:
			got = append(got, "paused")
		default:
			got = append(got, el.ChildText("", "body"))
		}
	}
	if !slices.Equal(got, []string{"paused", "there?"}) {
		t.Fatalf("an inactive session got %v, want the newest chat state, then the message", got)
	}
}

func TestSASL2WithoutBind(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256"})
	if res.AuthzID != "alice@localhost" || res.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
		t.Fatalf("unbound success %s, features %s", res.Success, res.Features)
	}
	// No restart: RFC 6120 binding on the same stream.
	r, err := c.IQ("set", xml.New("urn:ietf:params:xml:ns:xmpp-bind", "bind").Append(xml.New("urn:ietf:params:xml:ns:xmpp-bind", "resource").AppendText("legacy")))
	if err != nil || r.Attr("type") != "result" {
		t.Fatalf("legacy bind after SASL2: %v %v", r, err)
	}
}

// TestSASL2UnknownInline: unknown inline elements are ignored (XML
// extensibility; the XEPs' schemas allow ##other), unknown SASL2 children
// are malformed.
func TestSASL2UnknownInline(t *testing.T) {
	ts := testserver.Start(t, sasl2Config)
	ts.AddUser(t, "alice", "password1")
	_, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		Extra: []*xml.Element{xml.New("urn:example:megabind", "megabind")},
		Bind:  &xmppclient.Bind2{Extra: []*xml.Element{xml.New("urn:example:feature", "enable")}}})
	if !strings.HasPrefix(res.AuthzID, "alice@localhost/") {
		t.Fatalf("with unknown inline elements: %s", res.Success)
	}
	f := failure2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		Extra: []*xml.Element{xml.New(xmppclient.NSSASL2, "frobnicate")}})
	if f.Condition != "malformed-request" {
		t.Fatalf("unknown SASL2 element: %+v", f)
	}
}

// TestSASL2ProtocolErrors checks the XEP-0388 answers to bad input.
func TestSASL2ProtocolErrors(t *testing.T) {
	ts := testserver.Start(t, sasl2Config)
	ts.AddUser(t, "alice", "password1")
	send := func(c *xmppclient.Client, s string) *xml.Element {
		t.Helper()
		el, err := xml.ParseDocument([]byte(s), xml.DefaultLimits(), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(el); err != nil {
			t.Fatal(err)
		}
		got, err := c.Next()
		if err != nil {
			var se *xmppclient.StreamError
			if errors.As(err, &se) {
				return xml.New("stream", string(se.Condition))
			}
			t.Fatal(err)
		}
		return got
	}
	cond := func(el *xml.Element) string {
		if el.Space == "stream" {
			return "stream:" + el.Local
		}
		for _, ch := range el.Elements() {
			if ch.Space == "urn:ietf:params:xml:ns:xmpp-sasl" {
				return ch.Local
			}
		}
		return el.String()
	}
	plain := "AGFsaWNlAHBhc3N3b3JkMQ==" // \0alice\0password1
	cases := []struct{ name, from, el, want string }{
		{"mechanism not offered", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='DIGEST-MD5'/>`, "invalid-mechanism"},
		{"no mechanism", "", `<authenticate xmlns='urn:xmpp:sasl:2'/>`, "invalid-mechanism"},
		{"upgrade not offered", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN' upgrade='UPGR-SCRAM-SHA-512'><initial-response>` + plain + `</initial-response></authenticate>`, "invalid-mechanism"},
		{"XEP-0480 upgrade not offered", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>` + plain + `</initial-response><upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-256</upgrade></authenticate>`, "invalid-mechanism"},
		{"bad base64", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>!!</initial-response></authenticate>`, "incorrect-encoding"},
		{"user-agent id not a UUID", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>` + plain + `</initial-response><user-agent id='phone'/></authenticate>`, "malformed-request"},
		{"two binds", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>` + plain + `</initial-response><bind xmlns='urn:xmpp:bind:0'/><bind xmlns='urn:xmpp:bind:0'/></authenticate>`, "malformed-request"},
		{"bad count", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>` + plain + `</initial-response><user-agent id='` + uaPhone + `'/><fast xmlns='urn:xmpp:fast:0' count='-1'/></authenticate>`, "malformed-request"},
		// PLAIN authzid alice@localhost and a stream from naming bob.
		{"authzid and stream from differ", "bob@localhost", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>YWxpY2VAbG9jYWxob3N0AGFsaWNlAHBhc3N3b3JkMQ==</initial-response></authenticate>`, "invalid-authzid"},
		{"wrong password", "", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHdyb25n</initial-response></authenticate>`, "not-authorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := sasl2Dial(t, ts, tc.from)
			if got := cond(send(c, tc.el)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("abort", func(t *testing.T) {
		c := sasl2Dial(t, ts, "")
		if got := send(c, `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'/>`); got.Local != "challenge" {
			t.Fatalf("no challenge: %s", got)
		}
		if got := cond(send(c, `<abort xmlns='urn:xmpp:sasl:2'/>`)); got != "aborted" {
			t.Fatalf("abort: %s", got)
		}
	})
	t.Run("stanza during the exchange", func(t *testing.T) {
		c := sasl2Dial(t, ts, "")
		send(c, `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'/>`)
		if got := cond(send(c, `<message xmlns='jabber:client' to='x@localhost'/>`)); got != "stream:policy-violation" {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("authenticate after success", func(t *testing.T) {
		c := sasl2Dial(t, ts, "")
		if got := send(c, `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>`+plain+`</initial-response></authenticate>`); got.Local != "success" {
			t.Fatalf("login: %s", got)
		}
		if f, _ := c.Next(); f == nil || f.Local != "features" {
			t.Fatalf("no features after success: %v", f)
		}
		if got := cond(send(c, `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>`+plain+`</initial-response></authenticate>`)); got != "stream:policy-violation" {
			t.Fatalf("second authenticate: %s", got)
		}
	})
}

// TestBind2ArchiveMetadata: <bound/> tells the client where its archive
// stands at the moment of binding (XEP-0386 §3.2, XEP-0313 §5).
func TestBind2ArchiveMetadata(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	bind := func() *xml.Element {
		_, res := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
			UserAgentID: uaPhone, Bind: &xmppclient.Bind2{Tag: "T"}})
		md := res.Success.Child(xmppclient.NSBind2, "bound").Child("urn:xmpp:mam:2", "metadata")
		if md == nil {
			t.Fatalf("no archive metadata in %s", res.Success)
		}
		return md
	}
	if md := bind(); len(md.Elements()) != 0 {
		t.Fatalf("empty archive: %s", md)
	}
	bob := ts.Login(t, "bob", "password1", "r")
	bob.Send("<message to='alice@localhost' type='chat'><body>archived</body></message>")
	bob.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")
	md := bind()
	if md.Child("urn:xmpp:mam:2", "end") == nil || md.Child("urn:xmpp:mam:2", "end").Attr("id") == "" {
		t.Fatalf("archive metadata after a message: %s", md)
	}
}

// XEP-0386 §3.2: a Bind 2 session's client catches up from the archive,
// so the offline messages the archive holds are cleared, not sent; one
// the archive does not hold (its sender asked that it not be archived)
// still comes from offline storage, and nothing is left for a later login.
func TestBind2ClearsArchivedOfflineMessages(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	bob := ts.Login(t, "bob", "password1", "r")
	bob.Send("<message to='alice@localhost' type='chat' id='m1'><body>in the archive</body></message>")
	bob.Send("<message to='alice@localhost' type='chat' id='m2'><body>not archived</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>")
	bob.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")
	a, _ := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, Bind: &xmppclient.Bind2{Tag: "T"}})
	if err := a.Send(xml.New("", "presence")); err != nil {
		t.Fatal(err)
	}
	// A ping after the presence: its answer comes after whatever the
	// presence brought.
	if err := a.Send(xml.New("", "iq").SetAttr("type", "get").SetAttr("id", "after").Append(xml.New("urn:xmpp:ping", "ping"))); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		el, err := a.Expect(func(el *xml.Element) bool {
			return el.Local == "message" || el.Local == "iq" && el.Attr("id") == "after"
		})
		if err != nil {
			t.Fatal(err)
		}
		if el.Local == "iq" {
			break
		}
		got = append(got, el.Attr("id"))
	}
	if !slices.Equal(got, []string{"m2"}) {
		t.Fatalf("a Bind 2 session was sent %v from offline storage, want only the message the archive lacks", got)
	}
	later := ts.Login(t, "alice", "password1", "later")
	later.Send("<presence/>")
	later.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")
	for _, el := range later.Pending() {
		if el.Local == "message" {
			t.Fatalf("offline storage kept %s", el)
		}
	}
}

// A message whose archived copy is gone (retention, the archive's cap, a
// purge) still comes from offline storage to a Bind 2 session: only what
// the archive holds now is cleared.
func TestBind2KeepsOfflineMessagesTheArchiveLost(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	bob := ts.Login(t, "bob", "password1", "r")
	bob.Send("<message to='alice@localhost' type='chat' id='m1'><body>purged from the archive</body></message>")
	bob.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")
	if err := ts.Hosts()[0].Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store().Archive().Delete(t.Context(), "alice@localhost"); err != nil {
		t.Fatal(err)
	}
	a, _ := login2(t, ts, xmppclient.SASL2Login{User: "alice", Password: "password1", Mechanism: "SCRAM-SHA-256",
		UserAgentID: uaPhone, Bind: &xmppclient.Bind2{Tag: "T"}})
	if err := a.Send(xml.New("", "presence")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.Attr("id") == "m1" }); err != nil {
		t.Fatalf("the message the archive lost was not delivered: %v", err)
	}
}
