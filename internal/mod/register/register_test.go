package register_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// canLogin reports whether SASL PLAIN succeeds for user/pw.
func canLogin(t *testing.T, ts *testserver.TS, user, pw string) bool {
	t.Helper()
	return ts.CanLogin(t, user+"@"+domain, pw)
}

// TestSeedRegistration replays seed 004's registration exchanges: the
// inquiry, a registration with extra fields, 406 for a missing password and
// 409 for a taken username.
func TestSeedRegistration(t *testing.T) {
	ts := testserver.Start(t, enabled)
	ts.AddUser(t, "dj", password)
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open(domain)
	if hasFeature(c.Features) {
		t.Errorf("registration offered before TLS: %s", c.Features)
	}
	c.StartTLS(domain)
	if !hasFeature(c.Features) {
		t.Errorf("registration not offered after TLS: %s", c.Features)
	}

	// Inquiry: instructions, username and password first, then the
	// configured fields in order, and the same as a data form.
	res := c.IQ("get", "", "<query xmlns='jabber:iq:register'/>")
	if res.Attr("type") != "result" {
		t.Fatalf("inquiry: %s", res)
	}
	q := res.Child(ns, "query")
	if got, want := names(q), []string{"instructions", "username", "password", "email", "name"}; !reflect.DeepEqual(got, want) {
		t.Errorf("inquiry fields %v, want %v", got, want)
	}
	if !strings.Contains(q.ChildText(ns, "instructions"), "Choose a username and password") {
		t.Errorf("instructions: %q", q.ChildText(ns, "instructions"))
	}
	x := q.Child("jabber:x:data", "x")
	if x == nil || x.Attr("type") != "form" {
		t.Fatalf("no data form: %s", q)
	}
	var vars []string
	for _, f := range x.Elements() {
		if f.Local != "field" {
			continue
		}
		vars = append(vars, f.Attr("var"))
		switch f.Attr("var") {
		case "FORM_TYPE":
			if f.Attr("type") != "hidden" || f.ChildText("jabber:x:data", "value") != ns {
				t.Errorf("FORM_TYPE field: %s", f)
			}
		case "password":
			if f.Attr("type") != "text-private" || f.Child("jabber:x:data", "required") == nil {
				t.Errorf("password field: %s", f)
			}
		}
	}
	if want := []string{"FORM_TYPE", "username", "password", "email", "name"}; !reflect.DeepEqual(vars, want) {
		t.Errorf("form fields %v, want %v", vars, want)
	}

	// Registration.
	res = c.IQ("set", "", registerQuery("username", "leslie", "password", "secret123", "email", "lel@plevna.com", "name", "Leslie Hawke"))
	if res.Attr("type") != "result" {
		t.Fatalf("registration: %s", res)
	}
	acct, err := ts.Store().Accounts().Get(context.Background(), domain, "leslie")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Fields["email"] != "lel@plevna.com" || acct.Fields["name"] != "Leslie Hawke" {
		t.Errorf("stored fields %v", acct.Fields)
	}

	// 406: no password; the query comes back as in the seed.
	res = c.IQ("set", "", registerQuery("username", "leslie2", "email", "lel@plevna.com", "name", "Leslie Hawke"))
	if testserver.ErrorCondition(res) != "not-acceptable" || code(res) != "406" {
		t.Errorf("missing password: %s", res)
	}
	if eq := res.Child(ns, "query"); eq == nil || eq.ChildText(ns, "username") != "leslie2" {
		t.Errorf("406 does not echo the query: %s", res)
	}
	// 406: empty password element (XEP-0077 §3.1 note).
	res = c.IQ("set", "", registerQuery("username", "leslie3", "password", "", "email", "a@b", "name", "n"))
	if testserver.ErrorCondition(res) != "not-acceptable" {
		t.Errorf("empty password: %s", res)
	}
	// 406: a configured field missing.
	res = c.IQ("set", "", registerQuery("username", "leslie4", "password", "secret123", "name", "n"))
	if testserver.ErrorCondition(res) != "not-acceptable" {
		t.Errorf("missing email: %s", res)
	}

	// 409: the seed's dj exists. The echo never carries the password.
	res = c.IQ("set", "", registerQuery("username", "dj", "password", "secret123", "email", "dj@yak", "name", "DJ Adams"))
	if testserver.ErrorCondition(res) != "conflict" || code(res) != "409" {
		t.Errorf("existing user: %s", res)
	}
	if eq := res.Child(ns, "query"); eq == nil || eq.ChildText(ns, "username") != "dj" || eq.ChildText(ns, "password") != "" {
		t.Errorf("409 echo: %s", res)
	}
	// 409 after case folding of the localpart.
	res = c.IQ("set", "", registerQuery("username", "LESLIE", "password", "secret123", "email", "x@y", "name", "n"))
	if testserver.ErrorCondition(res) != "conflict" {
		t.Errorf("LESLIE: %s", res)
	}
	if !canLogin(t, ts, "leslie", "secret123") {
		t.Error("cannot log in with the registered account")
	}
}

// TestInvalidInput: bad usernames, short passwords, oversized fields and bad
// forms are refused and create nothing.
func TestInvalidInput(t *testing.T) {
	ts := testserver.Start(t, enabled)
	c := preauth(t, ts)
	cases := []struct {
		name, payload, cond string
	}{
		{"at sign", registerQuery("username", "bad@name", "password", "secret123", "email", "e", "name", "n"), "not-acceptable"},
		{"slash", registerQuery("username", "bad/name", "password", "secret123", "email", "e", "name", "n"), "not-acceptable"},
		{"short password", registerQuery("username", "shorty", "password", "abc", "email", "e", "name", "n"), "not-acceptable"},
		{"huge field", registerQuery("username", "huge", "password", "secret123", "email", strings.Repeat("e", 2000), "name", "n"), "not-acceptable"},
		{"remove before auth", "<query xmlns='jabber:iq:register'><remove/></query>", "unexpected-request"},
		{"wrong form type", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></query>", "bad-request"},
		{"wrong element", "<register xmlns='jabber:iq:register'/>", "bad-request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := c.IQ("set", "", tc.payload)
			if got := testserver.ErrorCondition(res); got != tc.cond {
				t.Errorf("got %q, want %q: %s", got, tc.cond, res)
			}
		})
	}
	users, _ := ts.Store().Accounts().List(context.Background(), domain)
	if len(users) != 0 {
		t.Errorf("accounts created: %v", users)
	}
}

// TestDataForm registers by submitting the XEP-0004 form.
func TestDataForm(t *testing.T) {
	ts := testserver.Start(t, enabled)
	c := preauth(t, ts)
	form := `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
<field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>
<field var='username'><value>juliet</value></field>
<field var='password'><value>R0m30R0m30</value></field>
<field var='email'><value>juliet@capulet.lit</value></field>
<field var='name'><value>Juliet</value></field></x></query>`
	if res := c.IQ("set", "", form); res.Attr("type") != "result" {
		t.Fatalf("form registration: %s", res)
	}
	if !canLogin(t, ts, "juliet", "R0m30R0m30") {
		t.Error("cannot log in")
	}
}

// TestSessionChanges replays seed 004's in-session exchanges: the inquiry
// shows <registered/> and the stored fields, a password change, a field
// change, and the refusals.
func TestSessionChanges(t *testing.T) {
	ts := testserver.Start(t, enabled)
	pre := preauth(t, ts)
	if res := pre.IQ("set", "", registerQuery("username", "dj", "password", "secret123", "email", "dj@yak", "name", "DJ Adams")); res.Attr("type") != "result" {
		t.Fatalf("register: %s", res)
	}
	c := ts.Login(t, "dj", "secret123", "Work")

	res := c.IQ("get", domain, "<query xmlns='jabber:iq:register'/>")
	q := res.Child(ns, "query")
	if q == nil || q.Child(ns, "registered") == nil || q.ChildText(ns, "username") != "dj" ||
		q.ChildText(ns, "email") != "dj@yak" || q.ChildText(ns, "name") != "DJ Adams" || q.ChildText(ns, "password") != "" {
		t.Fatalf("in-session inquiry: %s", res)
	}
	if res.Attr("to") != c.JID || res.Attr("from") != domain {
		t.Errorf("addresses: %s", res)
	}

	// Seed: <iq type='set' id='pass_4' to='yak'><query><password>newsecret</password></query></iq>
	c.Send("<iq type='set' id='pass_4' to='%s'><query xmlns='jabber:iq:register'><password>newsecret</password></query></iq>", domain)
	res = c.ExpectStanza("iq", "id=pass_4")
	if res.Attr("type") != "result" || res.Attr("to") != c.JID {
		t.Fatalf("password change: %s", res)
	}
	// XEP-0077 §3.3 form: with the (matching) username, no 'to'.
	if res := c.IQ("set", "", registerQuery("username", "DJ", "password", "newsecret2", "name", "D. J. Adams")); res.Attr("type") != "result" {
		t.Fatalf("password+name change: %s", res)
	}
	refusals := []struct{ name, payload, cond string }{
		{"other username", registerQuery("username", "leslie", "password", "newsecret3"), "forbidden"},
		{"short password", registerQuery("password", "abc"), "not-acceptable"},
		{"empty password only", registerQuery("password", ""), "bad-request"},
		{"remove with more", "<query xmlns='jabber:iq:register'><remove/><username>dj</username></query>", "bad-request"},
	}
	for _, tc := range refusals {
		if got := testserver.ErrorCondition(c.IQ("set", "", tc.payload)); got != tc.cond {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.cond)
		}
	}
	if canLogin(t, ts, "dj", "secret123") || canLogin(t, ts, "dj", "newsecret") {
		t.Error("an old password still works")
	}
	if !canLogin(t, ts, "dj", "newsecret2") {
		t.Error("the new password does not work")
	}
	res = c.IQ("get", "", "<query xmlns='jabber:iq:register'/>")
	if q := res.Child(ns, "query"); q.ChildText(ns, "name") != "D. J. Adams" || q.ChildText(ns, "email") != "dj@yak" {
		t.Errorf("fields after change: %s", res)
	}
	// Disco announces jabber:iq:register on the host.
	res = c.IQ("get", domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(res.String(), "var=\"jabber:iq:register\"") && !strings.Contains(res.String(), "var='jabber:iq:register'") {
		t.Errorf("disco#info lacks jabber:iq:register: %s", res)
	}
}

// TestRemove: <remove/> deletes the account and its data, answers the
// sender, ends every session with not-authorized, and the username can be
// registered again at once. A subscribed contact gets unavailable presence
// from each resource it saw online (RFC 6121 §3.2.2), not one from the bare
// JID, and none from a resource that never sent presence.
func TestRemove(t *testing.T) {
	ts := testserver.Start(t, enabled)
	ts.AddUser(t, "dj", password)
	ts.AddUser(t, "sabine", password)
	ctx := context.Background()
	// Data in several stores: vCard, a roster with a mutual subscription.
	if err := ts.Store().VCards().Set(ctx, "dj@localhost", []byte("<vCard xmlns='vcard-temp'><FN>DJ</FN></vCard>")); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{"dj@localhost", "sabine@localhost"}, {"sabine@localhost", "dj@localhost"}} {
		if _, err := ts.Store().Roster().Put(ctx, p[0], storage.RosterItem{JID: p[1], Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
	}
	sabine := ts.Online(t, "sabine", password, "home")
	// The answer to sabine's probe: dj is offline so far (RFC 6121 §4.3.2).
	sabine.ExpectStanza("presence", "type=unavailable", "from=dj@localhost")
	work := ts.Online(t, "dj", password, "Work")
	laptop := ts.Online(t, "dj", password, "laptop")
	bot := ts.Login(t, "dj", password, "bot") // connected, never available
	for _, res := range []string{"Work", "laptop"} {
		sabine.ExpectStanza("presence", "from=dj@localhost/"+res)
	}

	work.Send("<iq type='set' id='unreg1'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	if res := work.ExpectStanza("iq", "id=unreg1"); res.Attr("type") != "result" {
		t.Fatalf("remove: %s", res)
	}
	work.ExpectStreamError("not-authorized")
	laptop.ExpectStreamError("not-authorized")
	bot.ExpectStreamError("not-authorized")
	// The contact learns that the subscriptions are gone: each resource
	// it saw goes offline, then the subscription is cancelled.
	for _, res := range []string{"Work", "laptop"} {
		sabine.ExpectStanza("presence", "type=unavailable", "from=dj@localhost/"+res)
	}
	sabine.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "unsubscribed" && strings.HasPrefix(el.Attr("from"), "dj@")
	})
	for _, el := range sabine.Pending() {
		if el.Local == "presence" && el.Attr("type") == "unavailable" {
			t.Fatalf("unavailable presence from a resource the contact never saw: %s", el)
		}
	}

	if _, err := ts.Store().Accounts().Get(ctx, domain, "dj"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("account still there: %v", err)
	}
	// Re-register the same name immediately.
	c := preauth(t, ts)
	if res := c.IQ("set", "", registerQuery("username", "dj", "password", "secret123", "email", "dj@yak", "name", "DJ")); res.Attr("type") != "result" {
		t.Fatalf("re-register: %s", res)
	}
	if _, err := ts.Store().VCards().Get(ctx, "dj@localhost"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("vCard survived removal: %v", err)
	}
	if items, _, _ := ts.Store().Roster().Items(ctx, "dj@localhost"); len(items) != 0 {
		t.Errorf("roster survived removal: %v", items)
	}
	if !canLogin(t, ts, "dj", "secret123") || canLogin(t, ts, "dj", password) {
		t.Error("re-registered account has the wrong password")
	}
}

// TestDisabled: registration is off by default: the inquiry is answered
// with service-unavailable (XEP-0077 §3.1; legacy code 503), a set too, and
// no stream feature is offered. Password changes still work.
func TestDisabled(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "dj", password)
	c := preauth(t, ts)
	if hasFeature(c.Features) {
		t.Errorf("feature offered while disabled: %s", c.Features)
	}
	for _, typ := range []string{"get", "set"} {
		payload := "<query xmlns='jabber:iq:register'/>"
		if typ == "set" {
			payload = registerQuery("username", "joseph", "password", "spinach123")
		}
		res := c.IQ(typ, "", payload)
		if testserver.ErrorCondition(res) != "service-unavailable" || code(res) != "503" {
			t.Errorf("%s while disabled: %s", typ, res)
		}
	}
	if ok, _ := ts.Server.Store().Accounts().Get(context.Background(), domain, "joseph"); ok.Username != "" {
		t.Error("account created while disabled")
	}
	s := ts.Login(t, "dj", password, "r")
	if res := s.IQ("set", "", registerQuery("password", "changed123")); res.Attr("type") != "result" {
		t.Errorf("password change while registration disabled: %s", res)
	}
}

// TestTLSRequired: on a stream without TLS registration is refused with
// not-authorized (XEP-0077 §3.3's condition for an unsafe channel) unless
// allow_without_tls is set.
func TestTLSRequired(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint("allow_without_tls=", allow), func(t *testing.T) {
			ts := testserver.Start(t, fmt.Sprintf(`
[c2s]
listen = ["127.0.0.1:0"]
direct_tls_listen = []
require_tls = false
[[host]]
domain = "localhost"
[host.registration]
enabled = true
allow_without_tls = %v
`, allow))
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open(domain)
			if hasFeature(c.Features) != allow {
				t.Errorf("feature offered=%v without TLS: %s", hasFeature(c.Features), c.Features)
			}
			get := c.IQ("get", "", "<query xmlns='jabber:iq:register'/>")
			set := c.IQ("set", "", registerQuery("username", "joseph", "password", "spinach123"))
			if allow {
				if get.Attr("type") != "result" || set.Attr("type") != "result" {
					t.Errorf("allowed without TLS: %s %s", get, set)
				}
				return
			}
			for _, res := range []*xml.Element{get, set} {
				if testserver.ErrorCondition(res) != "not-authorized" || code(res) != "401" {
					t.Errorf("without TLS: %s", res)
				}
			}
			if _, err := ts.Store().Accounts().Get(context.Background(), domain, "joseph"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("account created without TLS: %v", err)
			}
		})
	}
}

// TestRateLimit: max_per_ip new accounts per window, then policy-violation;
// failed attempts do not use up the allowance.
func TestRateLimit(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "localhost"
[host.registration]
enabled = true
max_per_ip = 2
window = "1h"
`)
	ts.AddUser(t, "taken", password)
	c := preauth(t, ts)
	if res := c.IQ("set", "", registerQuery("username", "taken", "password", "secret123")); testserver.ErrorCondition(res) != "conflict" {
		t.Fatalf("conflict: %s", res)
	}
	for _, u := range []string{"one", "two"} {
		if res := c.IQ("set", "", registerQuery("username", u, "password", "secret123")); res.Attr("type") != "result" {
			t.Fatalf("%s: %s", u, res)
		}
	}
	// A new connection from the same address is limited too.
	c2 := preauth(t, ts)
	res := c2.IQ("set", "", registerQuery("username", "three", "password", "secret123"))
	if testserver.ErrorCondition(res) != "policy-violation" || !strings.Contains(res.String(), "too many new accounts") {
		t.Errorf("over the limit: %s", res)
	}
	if _, err := ts.Store().Accounts().Get(context.Background(), domain, "three"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("account created over the limit: %v", err)
	}
}

// TestNotifyAdmins: an online admin gets a message for each registration.
func TestNotifyAdmins(t *testing.T) {
	ts := testserver.Start(t, enabled)
	ts.AddUser(t, "admin", password)
	admin := ts.Online(t, "admin", password, "desk")
	c := preauth(t, ts)
	if res := c.IQ("set", "", registerQuery("username", "joseph", "password", "spinach123", "email", "joseph@yak", "name", "Joseph Adams")); res.Attr("type") != "result" {
		t.Fatalf("register: %s", res)
	}
	msg := admin.ExpectStanza("message", "from="+domain)
	if body := msg.ChildText("", "body"); !strings.Contains(body, "joseph@localhost") {
		t.Errorf("notification body %q", body)
	}
}

// TestAdministratorsNamesReserved: a name a host's admins list, while no
// account holds it, cannot be registered in-band (whoever came first would
// administer the host), and the refusal reads as a taken name.
func TestAdministratorsNamesReserved(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "localhost"
admins = ["boss@localhost"]
[host.registration]
enabled = true
`)
	c := preauth(t, ts)
	res := c.IQ("set", "", registerQuery("username", "boss", "password", "spinach123", "email", "b@yak", "name", "Boss"))
	if testserver.ErrorCondition(res) != "conflict" {
		t.Fatalf("registering an administrator's name: %s", res)
	}
	if canLogin(t, ts, "boss", "spinach123") {
		t.Fatal("the administrator's account was created")
	}
	if res := c.IQ("set", "", registerQuery("username", "worker", "password", "spinach123", "email", "w@yak", "name", "Worker")); res.Attr("type") != "result" {
		t.Fatalf("an ordinary name: %s", res)
	}
}

// TestConcurrentSameName: many connections register one name at once;
// exactly one wins, the others get conflict.
func TestConcurrentSameName(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "localhost"
[host.registration]
enabled = true
max_per_ip = 100
`)
	const n = 8
	clients := make([]*testserver.Client, n)
	for i := range clients {
		clients[i] = preauth(t, ts)
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Conn.Write([]byte(fmt.Sprintf("<iq type='set' id='c%d'>%s</iq>", i, registerQuery("username", "popular", "password", fmt.Sprintf("secret-%d", i)))))
		}()
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for i, c := range clients {
		res := c.ExpectStanza("iq", fmt.Sprintf("id=c%d", i))
		switch testserver.ErrorCondition(res) {
		case "":
			wins++
		case "conflict":
			conflicts++
		default:
			t.Errorf("unexpected reply %s", res)
		}
	}
	if wins != 1 || conflicts != n-1 {
		t.Errorf("wins=%d conflicts=%d", wins, conflicts)
	}
}
