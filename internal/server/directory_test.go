package server_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"parley/internal/directory/ldaptest"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// directoryConfig is a host with accounts in the ldaptest fixture.
func directoryConfig(addr, extra string) string {
	return fmt.Sprintf(`[[host]]
domain = "example.test"
accounts = "directory"
%s
[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
group_base = %q
room_base = %q
disabled_attribute = "employeeType"
disabled_values = ["disabled"]
dial_timeout = "2s"
retry_delay = "10ms"
poll_interval = "1s"
roster_attribute = "seeAlso"
[[directory.roster_group]]
group = "engineering"
name = "Engineering"
[directory.profile.mobile]
mode = "update"
[directory.profile.org_name]
mode = "static"
value = "Example Corp"
`, extra, addr, ldaptest.ServiceDN, ldaptest.ServicePassword, ldaptest.PeopleBase, ldaptest.GroupBase, ldaptest.RoomBase)
}

// saslAttempt opens a stream with STARTTLS and tries PLAIN, returning the
// <success/> or <failure/> element.
func saslAttempt(t *testing.T, ts *testserver.TS, user, pass string) *xml.Element {
	t.Helper()
	c := testserver.Dial(t, ts.StartTLSAddr())
	defer c.Close()
	c.Open("example.test")
	c.StartTLS("example.test")
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", msg)
	return c.Expect(func(el *xml.Element) bool { return el.Local == "success" || el.Local == "failure" })
}

func failureCond(el *xml.Element) string {
	if el.Local != "failure" {
		return el.Local
	}
	return el.FirstElement().Local
}

func TestDirectoryLogin(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, ""))

	// Only PLAIN is offered (no SCRAM without stored SCRAM secrets), and
	// SCRAM is refused even when asked for.
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("example.test")
	c.StartTLS("example.test")
	feats := c.Features
	var mechs []string
	for _, m := range feats.Child("", "mechanisms").Elements() {
		mechs = append(mechs, m.Text())
	}
	if strings.Join(mechs, ",") != "PLAIN" {
		t.Fatalf("mechanisms %v, want only PLAIN", mechs)
	}
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>%s</auth>", base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdef")))
	if el := c.Expect(func(el *xml.Element) bool { return el.Local == "failure" }); failureCond(el) != "invalid-mechanism" {
		t.Fatalf("SCRAM: %s", el)
	}
	c.Close()

	for _, tc := range []struct{ user, pass, want string }{
		{"alice", "alice-pass", "success"},
		{"alice", "wrong", "not-authorized"},
		{"dave", "dave-pass", "not-authorized"}, // disabled
		{"nobody", "x", "not-authorized"},
		{"*", "alice-pass", "not-authorized"},
	} {
		if got := failureCond(saslAttempt(t, ts, tc.user, tc.pass)); got != tc.want {
			t.Errorf("%s/%s: %s, want %s", tc.user, tc.pass, got, tc.want)
		}
	}

	// Directory users exist for routing: a message to offline bob is
	// stored (not bounced); one to a non-user bounces.
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	alice.Send("<message to='bob@example.test' id='m1' type='chat'><body>hi</body></message>")
	alice.Send("<message to='nobody@example.test' id='m2' type='chat'><body>hi</body></message>")
	if el := alice.ExpectStanza("message", "id=m2"); testserver.ErrorCondition(el) != "service-unavailable" {
		t.Fatalf("message to a non-user: %s", el)
	}
	bob := ts.Login(t, "bob", "bob-pass", "r1")
	bob.Send("<presence/>")
	bob.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "hi" })

	// Outage: new logins get temporary-auth-failure, open sessions go on.
	srv.Stop()
	if got := failureCond(saslAttempt(t, ts, "carol", "carol-pass")); got != "temporary-auth-failure" {
		t.Fatalf("login during outage: %s", got)
	}
	if got := failureCond(saslAttempt(t, ts, "carol", "carol-pass")); got != "temporary-auth-failure" {
		t.Fatalf("second login during outage: %s", got)
	}
	alice.Send("<message to='bob@example.test/r1' id='m3' type='chat'><body>still here</body></message>")
	bob.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "still here" })
}

func TestDirectoryAccessGroups(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, `allowed_groups = ["engineering"]`))
	if got := failureCond(saslAttempt(t, ts, "bob", "bob-pass")); got != "success" {
		t.Fatalf("bob (engineering): %s", got)
	}
	if got := failureCond(saslAttempt(t, ts, "carol", "carol-pass")); got != "not-authorized" {
		t.Fatalf("carol (sales only): %s", got)
	}
}

func TestDirectoryVCard(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, ""))
	alice := ts.Login(t, "alice", "alice-pass", "r1")
	bob := ts.Login(t, "bob", "bob-pass", "r1")

	res := alice.IQ("get", "", "<vCard xmlns='vcard-temp'/>")
	v := res.Child("vcard-temp", "vCard")
	if v == nil || v.ChildText("", "FN") != "Alice Liddell" || v.Child("", "ORG").ChildText("", "ORGNAME") != "Example Corp" ||
		v.Child("", "PHOTO") == nil {
		t.Fatalf("vCard: %s", res)
	}
	// readonly: refused with not-allowed.
	res = alice.IQ("set", "", "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>")
	if testserver.ErrorCondition(res) != "not-allowed" {
		t.Fatalf("readonly edit: %s", res)
	}
	// update: written to the directory; local: kept by Parley.
	res = alice.IQ("set", "", "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><TEL><CELL/><NUMBER>+44 7700 900123</NUMBER></TEL><NICKNAME>ally</NICKNAME></vCard>")
	if res.Attr("type") != "result" {
		t.Fatalf("update edit: %s", res)
	}
	if out := srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "mobile"); !strings.Contains(out, "mobile: +44 7700 900123") {
		t.Fatalf("directory after update:\n%s", out)
	}
	res = bob.IQ("get", "alice@example.test", "<vCard xmlns='vcard-temp'/>")
	if s := res.String(); !strings.Contains(s, "+44 7700 900123") || !strings.Contains(s, "<NICKNAME>ally</NICKNAME>") || !strings.Contains(s, "Alice Liddell") {
		t.Fatalf("bob reads: %s", s)
	}
	// Somebody else's vCard cannot be set.
	if res := bob.IQ("set", "alice@example.test", "<vCard xmlns='vcard-temp'><NICKNAME>x</NICKNAME></vCard>"); testserver.ErrorCondition(res) != "forbidden" {
		t.Fatalf("bob sets alice's: %s", res)
	}
}

// rosterItems returns the user's roster as jid → "subscription groups...".
func rosterItems(c *testserver.Client) map[string]string {
	res := c.IQ("get", "", "<query xmlns='jabber:iq:roster'/>")
	out := map[string]string{}
	for _, it := range res.Child("jabber:iq:roster", "query").Elements() {
		var gs []string
		for _, g := range it.Elements() {
			gs = append(gs, g.Text())
		}
		out[it.Attr("jid")] = it.Attr("subscription") + " " + strings.Join(gs, ",") + " " + it.Attr("name")
	}
	return out
}

func TestDirectoryRosterPrePopulation(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, ""))
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	// Pre-population runs in the background (at login and on each poll):
	// wait for it instead of assuming it is done.
	waitRoster := func(c *testserver.Client, n int) map[string]string {
		var items map[string]string
		deadline := time.Now().Add(10 * time.Second)
		for {
			items = rosterItems(c)
			if len(items) >= n || time.Now().After(deadline) {
				return items
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	items := waitRoster(alice, 2)
	if items["bob@example.test"] != "both Engineering Bob Builder" || items["carol@example.test"] != "both Directory Carol Seller" || len(items) != 2 {
		t.Fatalf("alice's roster: %v", items)
	}
	// Presence is shared: bob comes online, alice sees it.
	bob := ts.Online(t, "bob", "bob-pass", "r1")
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), "bob@example.test/")
	})
	if items := waitRoster(bob, 1); items["alice@example.test"] != "both Engineering Alice Liddell" {
		t.Fatalf("bob's roster: %v", items)
	}

	// A membership change in the directory reaches online users as a
	// roster push, without a restart.
	srv.Modify(t, "dn: cn=engineering,"+ldaptest.GroupBase+"\nchangetype: modify\nadd: member\nmember: uid=erin,"+ldaptest.PeopleBase+"\n")
	push := alice.Expect(func(el *xml.Element) bool {
		q := el.Child("jabber:iq:roster", "query")
		return el.Local == "iq" && el.Attr("type") == "set" && q != nil && q.FirstElement() != nil && q.FirstElement().Attr("jid") == "erin@example.test"
	})
	if it := push.Child("jabber:iq:roster", "query").FirstElement(); it.Attr("subscription") != "both" || it.ChildText("", "group") != "Engineering" {
		t.Fatalf("push: %s", push)
	}
	// And removal: bob leaves the group; alice's item for him goes.
	srv.Modify(t, "dn: cn=engineering,"+ldaptest.GroupBase+"\nchangetype: modify\ndelete: member\nmember: uid=bob,"+ldaptest.PeopleBase+"\n")
	alice.Expect(func(el *xml.Element) bool {
		q := el.Child("jabber:iq:roster", "query")
		return el.Local == "iq" && q != nil && q.FirstElement() != nil && q.FirstElement().Attr("jid") == "bob@example.test" && q.FirstElement().Attr("subscription") == "remove"
	})
}

func TestDirectoryRooms(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, ""))
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	alice.Send("<presence to='lobby@conference.example.test/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	self := alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "lobby@conference.example.test/Alice"
	})
	if self.Attr("type") == "error" {
		t.Fatalf("alice (member) could not join: %s", self)
	}
	res := alice.IQ("get", "lobby@conference.example.test", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if s := res.String(); !strings.Contains(s, "muc_persistent") || !strings.Contains(s, "muc_membersonly") {
		t.Fatalf("room info: %s", s)
	}
	carol := ts.Online(t, "carol", "carol-pass", "r1")
	carol.Send("<presence to='lobby@conference.example.test/Carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	el := carol.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "lobby@conference.example.test/Carol"
	})
	if testserver.ErrorCondition(el) != "registration-required" {
		t.Fatalf("carol (not a member) joined: %s", el)
	}
}

// versionedRoster asks for the roster with ver (RFC 6121 §2.6) and returns
// the result's <query/>, nil for the empty result that means "your cached
// roster is current".
func versionedRoster(t *testing.T, c *testserver.Client, ver string) *xml.Element {
	t.Helper()
	res := c.IQ("get", "", "<query xmlns='jabber:iq:roster' ver='"+ver+"'/>")
	if res.Attr("type") != "result" {
		t.Fatalf("roster get: %s", res)
	}
	return res.Child("jabber:iq:roster", "query")
}

// expectRosterPush waits for the roster push about contact, acknowledges it
// and returns its 'ver'.
func expectRosterPush(t *testing.T, c *testserver.Client, contact string) string {
	t.Helper()
	push := c.Expect(func(el *xml.Element) bool {
		q := el.Child("jabber:iq:roster", "query")
		return el.Local == "iq" && el.Attr("type") == "set" && q != nil && q.FirstElement() != nil && q.FirstElement().Attr("jid") == contact
	})
	c.Send("<iq type='result' id='%s'/>", push.Attr("id"))
	return push.Child("jabber:iq:roster", "query").Attr("ver")
}

// Directory users' rosters are versioned like any other: one the
// directory never touched still has a version a client can cache, and
// pre-population and membership changes move it on, with the pushes and
// later results agreeing on it.
func TestDirectoryRosterVersions(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, ""))

	// erin is in no roster group and has no static entries.
	erin := ts.Login(t, "erin", "erin-pass", "r1")
	q := versionedRoster(t, erin, "")
	if q == nil || q.Attr("ver") == "" || len(q.Elements()) != 0 {
		t.Fatalf("erin's untouched roster: %v", q)
	}
	erinVer := q.Attr("ver")
	if q := versionedRoster(t, erin, erinVer); q != nil {
		t.Fatalf("erin's unchanged roster with its version: %s", q)
	}

	// alice's roster is pre-populated in the background: wait for it.
	alice := ts.Login(t, "alice", "alice-pass", "r1")
	deadline := time.Now().Add(10 * time.Second)
	for q = versionedRoster(t, alice, ""); len(q.Elements()) < 2 && time.Now().Before(deadline); q = versionedRoster(t, alice, "") {
		time.Sleep(50 * time.Millisecond)
	}
	aliceVer := q.Attr("ver")
	if len(q.Elements()) != 2 || aliceVer == "" || aliceVer == erinVer {
		t.Fatalf("alice's pre-populated roster: %s", q)
	}
	if q := versionedRoster(t, alice, aliceVer); q != nil {
		t.Fatalf("alice's unchanged roster with its version: %s", q)
	}

	// erin joins engineering: both rosters change, the pushes carry the
	// new versions, and results agree with the pushes.
	srv.Modify(t, "dn: cn=engineering,"+ldaptest.GroupBase+"\nchangetype: modify\nadd: member\nmember: uid=erin,"+ldaptest.PeopleBase+"\n")
	aliceNew := expectRosterPush(t, alice, "erin@example.test")
	if aliceNew == "" || aliceNew == aliceVer {
		t.Fatalf("alice's push version %q (before %q)", aliceNew, aliceVer)
	}
	if q := versionedRoster(t, alice, aliceNew); q != nil {
		t.Fatalf("alice's current version got %s", q)
	}
	if q := versionedRoster(t, alice, aliceVer); q == nil || q.Attr("ver") != aliceNew || len(q.Elements()) != 3 {
		t.Fatalf("alice's stale version: %v", q)
	}
	expectRosterPush(t, erin, "alice@example.test")
	erinNew := expectRosterPush(t, erin, "bob@example.test")
	if erinNew == "" || erinNew == erinVer {
		t.Fatalf("erin's push version %q (before %q)", erinNew, erinVer)
	}
	if q := versionedRoster(t, erin, erinVer); q == nil || q.Attr("ver") != erinNew || len(q.Elements()) != 2 {
		t.Fatalf("erin's stale version: %v", q)
	}
	if q := versionedRoster(t, erin, erinNew); q != nil {
		t.Fatalf("erin's current version got %s", q)
	}
}

// Directory groups count for admin_groups as well as allowed_groups (the
// server gives logins and admin checks the union of the stored groups and
// the directory's): alice, in the directory group xmpp-admins, may create
// a room where only admins may; bob may not.
func TestDirectoryAdminGroups(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryConfig(srv.Addr, "admin_groups = [\"xmpp-admins\"]\n[host.muc]\nroom_creation = \"admins\""))
	join := func(c *testserver.Client, nick string) *xml.Element {
		c.Send("<presence to='newroom@conference.example.test/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>", nick)
		return c.Expect(func(el *xml.Element) bool {
			return el.Local == "presence" && el.Attr("from") == "newroom@conference.example.test/"+nick
		})
	}
	bob := ts.Online(t, "bob", "bob-pass", "r1")
	if el := join(bob, "Bob"); testserver.ErrorCondition(el) != "not-allowed" {
		t.Fatalf("bob (not an admin) created a room: %s", el)
	}
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	if el := join(alice, "Alice"); el.Attr("type") == "error" || !strings.Contains(el.String(), "code='201'") && !strings.Contains(el.String(), `code="201"`) {
		t.Fatalf("alice (xmpp-admins) could not create a room: %s", el)
	}
}
