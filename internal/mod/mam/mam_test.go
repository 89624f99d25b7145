package mam_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/storage"
	"parley/internal/testserver"
)

// TestArchivesBothSides: a message between two local accounts lands in
// both archives once; the recipient's copy carries the stanza-id of its
// archive entry, the sender's outgoing message none (XEP-0313 §3.5).
func TestArchivesBothSides(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	a.Send("<message to='bob@localhost' type='chat' id='m1'><body>hi bob</body></message>")
	got := b.ExpectStanza("message", "id=m1")
	ids := stanzaIDs(got)
	if len(ids) != 1 || len(ids["bob@localhost"]) != 1 {
		t.Fatalf("delivered stanza-ids %v in %s", ids, got)
	}
	sync(t, a)
	if n, m := archived(t, ts, "alice@localhost"), archived(t, ts, "bob@localhost"); n != 1 || m != 1 {
		t.Fatalf("archived alice %d, bob %d; want 1 and 1", n, m)
	}
	ab := mustQuery(t, b, "", "")
	if ab.ids()[0] != ids["bob@localhost"][0] {
		t.Fatalf("bob's archive id %v, delivered stanza-id %v", ab.ids(), ids)
	}
	fwd := ab.forwarded(0)
	if fwd.Attr("from") != a.JID || fwd.Attr("to") != "bob@localhost" || fwd.ChildText("", "body") != "hi bob" {
		t.Fatalf("bob's archived message %s", fwd)
	}
	if r := ab.results[0]; r.Attr("from") != "bob@localhost" || r.Attr("to") != b.JID {
		t.Fatalf("result addressing %s", r)
	}
	aa := mustQuery(t, a, "", form("with", "bob@localhost"))
	if len(aa.results) != 1 || aa.forwarded(0).Attr("to") != "bob@localhost" || aa.forwarded(0).Attr("from") != a.JID {
		t.Fatalf("alice's archive %v", aa.results)
	}
	if aa.ids()[0] == ab.ids()[0] {
		t.Fatal("both archives share an id")
	}
}

// TestOfflineOnce: a message to an account that is offline is archived for
// it once and stored offline once, with the stanza-id; at login it arrives
// once, and the archive holds the same id.
func TestOfflineOnce(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice")
	a.Send("<message to='bob@localhost' type='chat' id='off1'><body>while you were out</body></message>")
	a.Send("<message to='bob@localhost/gone' type='chat' id='off2'><body>to a resource that left</body></message>")
	sync(t, a)
	if n, _ := ts.Store().Offline().Count(context.Background(), "bob@localhost"); n != 2 {
		t.Fatalf("offline store holds %d, want 2", n)
	}
	if n := archived(t, ts, "bob@localhost"); n != 2 {
		t.Fatalf("bob's archive holds %d, want 2 (one per message, also for the re-fired full-JID one)", n)
	}
	b := online(t, ts, "bob")
	var delivered []string
	for _, id := range []string{"off1", "off2"} {
		m := b.ExpectStanza("message", "id="+id)
		sid := stanzaIDs(m)["bob@localhost"]
		if len(sid) != 1 {
			t.Fatalf("offline copy without one stanza-id: %s", m)
		}
		delivered = append(delivered, sid[0])
	}
	for _, el := range b.Drain() {
		if el.Local == "message" {
			t.Fatalf("delivered twice: %s", el)
		}
	}
	if got := mustQuery(t, b, "", "").ids(); !slices.Equal(got, delivered) {
		t.Fatalf("archive ids %v, delivered %v", got, delivered)
	}
}

// TestToSelf: a message to one's own account is archived once (§6.1.1),
// found with 'with' set to the account (§4.1.1).
func TestToSelf(t *testing.T) {
	ts := start(t, "", "alice")
	a := online(t, ts, "alice")
	a.Send("<message to='alice@localhost' type='chat' id='s1'><body>note to self</body></message>")
	a.ExpectStanza("message", "id=s1")
	if n := archived(t, ts, "alice@localhost"); n != 1 {
		t.Fatalf("archived %d, want 1", n)
	}
	if got := mustQuery(t, a, "", form("with", "alice@localhost")); len(got.results) != 1 {
		t.Fatalf("with self: %d results", len(got.results))
	}
}

// TestWhatIsArchived walks the types, hints and payloads (README table).
func TestWhatIsArchived(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice")
	online(t, ts, "bob")
	for _, tc := range []struct {
		name, msg string
		want      bool
	}{
		{"chat body", "<message to='bob@localhost' type='chat'><body>x</body></message>", true},
		{"normal body", "<message to='bob@localhost'><body>x</body></message>", true},
		{"headline", "<message to='bob@localhost' type='headline'><body>x</body></message>", false},
		{"chat state", "<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false},
		{"receipt", "<message to='bob@localhost' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>", false},
		{"no-store", "<message to='bob@localhost' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>", false},
		{"no-permanent-store", "<message to='bob@localhost' type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", false},
		{"store hint", "<message to='bob@localhost' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>", true},
		{"omemo", "<message to='bob@localhost' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'><payload>x</payload></encrypted></message>", true},
		{"displayed", "<message to='bob@localhost' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>", true},
		{"reaction", "<message to='bob@localhost' type='chat'><reactions xmlns='urn:xmpp:reactions:0' id='x'><reaction>👍</reaction></reactions></message>", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := archived(t, ts, "bob@localhost")
			a.Send("%s", tc.msg)
			sync(t, a)
			n := archived(t, ts, "bob@localhost") - before
			m := archived(t, ts, "alice@localhost")
			if got := n == 1; got != tc.want || n > 1 {
				t.Fatalf("bob's archive grew by %d, want archived=%v", n, tc.want)
			}
			if mm := archived(t, ts, "bob@localhost"); mm != m {
				t.Fatalf("sender archived %d, recipient %d: the two sides disagree", m, mm)
			}
		})
	}
}

// TestPrefs: XEP-0441 preferences decide what is archived; the host
// default applies until the account sets its own.
func TestPrefs(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\ndefault = \"roster\"\n", "alice", "bob", "carol")
	a := online(t, ts, "alice")
	r := a.IQ("get", "", "<prefs xmlns='urn:xmpp:mam:2'/>")
	p := r.Child(nsMAM, "prefs")
	if p == nil || p.Attr("default") != "roster" || p.Child(nsMAM, "always") == nil || p.Child(nsMAM, "never") == nil {
		t.Fatalf("default prefs: %s", r)
	}
	send := func(to, id string) {
		a.Send("<message to='%s' type='chat' id='%s'><body>%s</body></message>", to, id, id)
		sync(t, a)
	}
	// roster: bob is a contact, carol is not.
	a.IQ("set", "", "<query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query>")
	send("bob@localhost", "p1")
	send("carol@localhost", "p2")
	if n := archived(t, ts, "alice@localhost"); n != 1 {
		t.Fatalf("roster default: archived %d, want 1 (bob only)", n)
	}
	r = a.IQ("set", "", "<prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>carol@localhost</jid><jid>bob@localhost/secret</jid></never></prefs>")
	p = r.Child(nsMAM, "prefs")
	if testserver.ErrorCondition(r) != "" || p.Attr("default") != "always" || len(p.Child(nsMAM, "never").Elements()) != 2 {
		t.Fatalf("set prefs: %s", r)
	}
	send("carol@localhost", "p3")      // never
	send("bob@localhost/secret", "p4") // never, by full JID
	send("bob@localhost/other", "p5")  // another resource: archived
	if n := archived(t, ts, "alice@localhost"); n != 2 {
		t.Fatalf("never list: archived %d, want 2", n)
	}
	a.IQ("set", "", "<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>carol@localhost</jid></always><never/></prefs>")
	send("carol@localhost", "p6")
	send("bob@localhost", "p7")
	if n := archived(t, ts, "alice@localhost"); n != 3 {
		t.Fatalf("default never with carol always: archived %d, want 3", n)
	}
	// The recipient's own preferences rule its side: carol has none, the
	// host default (roster) and no roster keep her archive empty.
	if n := archived(t, ts, "carol@localhost"); n != 0 {
		t.Fatalf("carol archived %d, want 0", n)
	}
	for _, bad := range []string{
		"<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>",
		"<prefs xmlns='urn:xmpp:mam:2'/>",
		"<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@@</jid></always></prefs>",
	} {
		if r := a.IQ("set", "", bad); testserver.ErrorCondition(r) != "bad-request" {
			t.Errorf("%s: %s", bad, r)
		}
	}
	b := online(t, ts, "bob")
	if r := b.IQ("get", "alice@localhost", "<prefs xmlns='urn:xmpp:mam:2'/>"); testserver.ErrorCondition(r) != "forbidden" {
		t.Fatalf("bob reads alice's prefs: %s", r)
	}
}

// sendN sends n chat messages from c to to, with bodies 0..n-1, and waits
// until the server has handled them.
func sendN(t *testing.T, c *testserver.Client, to string, n int) {
	t.Helper()
	for i := range n {
		c.Send("<message to='%s' type='chat' id='n%d'><body>%d</body></message>", to, i, i)
	}
	sync(t, c)
}

func bodies(t *testing.T, a answer) []string {
	t.Helper()
	var out []string
	for i := range a.results {
		out = append(out, a.forwarded(i).ChildText("", "body"))
	}
	return out
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

// TestPaging pages forward and backward with counts, indexes and
// completeness (XEP-0059, XEP-0313 §4.3), flips a page, and caps max.
func TestPaging(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\nmax_page_size = 20\n", "alice", "bob")
	a := online(t, ts, "alice")
	sendN(t, a, "bob@localhost", 25)

	check := func(name string, got answer, want []string, index string, complete bool) {
		t.Helper()
		if b := bodies(t, got); !slices.Equal(b, want) || got.count() != "25" || got.index() != index || got.complete() != complete {
			t.Fatalf("%s: bodies %v index %q count %q complete %v; want %v index %q count 25 complete %v\n%s",
				name, b, got.index(), got.count(), got.complete(), want, index, complete, got.iq)
		}
		if len(got.results) > 0 {
			ids := got.ids()
			if got.set().ChildText(nsRSM, "first") != ids[0] || got.set().ChildText(nsRSM, "last") != ids[len(ids)-1] {
				t.Fatalf("%s: first/last do not name the page's ends: %s", name, got.set())
			}
		}
	}
	p1 := mustQuery(t, a, "", rsm("<max>10</max>"))
	check("first page", p1, seq(0, 10), "0", false)
	p2 := mustQuery(t, a, "", rsm("<max>10</max><after>"+p1.ids()[9]+"</after>"))
	check("second page", p2, seq(10, 20), "10", false)
	p3 := mustQuery(t, a, "", rsm("<max>10</max><after>"+p2.ids()[9]+"</after>"))
	check("last page forward", p3, seq(20, 25), "20", true)

	b1 := mustQuery(t, a, "", rsm("<max>10</max><before/>"))
	check("last page", b1, seq(15, 25), "15", false)
	b2 := mustQuery(t, a, "", rsm("<max>10</max><before>"+b1.ids()[0]+"</before>"))
	check("page before", b2, seq(5, 15), "5", false)
	b3 := mustQuery(t, a, "", rsm("<max>10</max><before>"+b2.ids()[0]+"</before>"))
	check("first page backward", b3, seq(0, 5), "0", true)

	flip := mustQuery(t, a, "", rsm("<max>10</max><before/>")+"<flip-page/>")
	want := seq(15, 25)
	slices.Reverse(want)
	if got := bodies(t, flip); !slices.Equal(got, want) {
		t.Fatalf("flipped page: %v, want %v", got, want)
	}
	if flip.set().ChildText(nsRSM, "first") != b1.ids()[0] {
		t.Fatalf("flipping changed <first/>: %s", flip.set())
	}

	huge := mustQuery(t, a, "", rsm("<max>100000</max>"))
	check("max capped", huge, seq(0, 20), "0", false)
	none := mustQuery(t, a, "", "")
	check("no set: the server's page", none, seq(0, 20), "0", false)
	zero := mustQuery(t, a, "", rsm("<max>0</max>"))
	if len(zero.results) != 0 || zero.count() != "25" || zero.set().Child(nsRSM, "first") != nil {
		t.Fatalf("max 0: %d results, %s", len(zero.results), zero.iq)
	}
	empty := mustQuery(t, a, "", form("with", "nobody@localhost"))
	if len(empty.results) != 0 || empty.count() != "0" || !empty.complete() {
		t.Fatalf("empty result: %s", empty.iq)
	}
}

// TestFilters: with (bare, full, self), start and end (inclusive, with the
// stamps the archive shows), after-id, before-id and ids, and unknown ids.
func TestFilters(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	a := online(t, ts, "alice")
	for i := range 8 {
		to := "bob@localhost"
		if i%2 == 1 {
			to = "carol@localhost/desk"
		}
		a.Send("<message to='%s' type='chat'><body>%d</body></message>", to, i)
		sync(t, a)
		time.Sleep(3 * time.Millisecond) // distinct millisecond stamps
	}
	all := mustQuery(t, a, "", "")
	if len(all.results) != 8 {
		t.Fatalf("%d results", len(all.results))
	}
	ids := all.ids()
	for _, tc := range []struct {
		name, form string
		want       []string
	}{
		{"with bare", form("with", "carol@localhost"), []string{"1", "3", "5", "7"}},
		{"with full", form("with", "carol@localhost/desk"), []string{"1", "3", "5", "7"}},
		{"with other resource", form("with", "carol@localhost/phone"), nil},
		{"start", form("start", all.stamp(5)), seq(5, 8)},
		{"end", form("end", all.stamp(2)), seq(0, 3)},
		{"start and end", form("start", all.stamp(2), "end", all.stamp(4)), seq(2, 5)},
		{"start with offset", form("start", "2000-01-01T01:00:00+01:00"), seq(0, 8)},
		{"end in the past", form("end", "2000-01-01T00:00:00Z"), nil},
		{"with and start", form("with", "bob@localhost", "start", all.stamp(3)), []string{"4", "6"}},
		{"after-id", form("after-id", ids[5]), seq(6, 8)},
		{"before-id", form("before-id", ids[2]), seq(0, 2)},
		{"after-id and before-id", form("after-id", ids[1], "before-id", ids[5]), seq(2, 5)},
		{"ids", form("ids", ids[6], "ids", ids[1]), []string{"1", "6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustQuery(t, a, "", tc.form)
			if b := bodies(t, got); !slices.Equal(b, tc.want) || got.count() != fmt.Sprint(len(tc.want)) || !got.complete() {
				t.Fatalf("bodies %v count %s complete %v, want %v", b, got.count(), got.complete(), tc.want)
			}
		})
	}
	for _, inner := range []string{
		form("after-id", "no-such-id"),
		form("before-id", "no-such-id"),
		form("ids", "no-such-id"),
		rsm("<after>no-such-id</after>"),
		rsm("<before>no-such-id</before>"),
	} {
		if got := query(t, a, "", inner); testserver.ErrorCondition(got.iq) != "item-not-found" {
			t.Errorf("%s: %s", inner, got.iq)
		}
	}
}

// TestStanzaIDs: a stanza-id naming the recipient's archive that the
// sender made up is removed before delivery, whether or not the message is
// archived; origin-id and other parties' ids stay (XEP-0359).
func TestStanzaIDs(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	forged := "<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='mine'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='elsewhere.example' id='theirs'/>" +
		"<origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/>"
	a.Send("<message to='bob@localhost' type='chat' id='f1'><body>x</body>%s</message>", forged)
	got := b.ExpectStanza("message", "id=f1")
	ids := stanzaIDs(got)
	if len(ids["bob@localhost"]) != 1 || ids["bob@localhost"][0] == "forged" {
		t.Fatalf("bob's stanza-ids %v", ids["bob@localhost"])
	}
	if !slices.Equal(ids["elsewhere.example"], []string{"theirs"}) || !slices.Equal(ids["alice@localhost"], []string{"mine"}) {
		t.Fatalf("other parties' ids changed: %v", ids)
	}
	if o := got.Child(nsSID, "origin-id"); o == nil || o.Attr("id") != "origin-1" {
		t.Fatalf("origin-id lost: %s", got)
	}
	// In alice's own archive the id claiming her archive is gone too.
	if ids := stanzaIDs(mustQuery(t, a, "", "").forwarded(0)); len(ids["alice@localhost"]) != 0 {
		t.Fatalf("alice's archived copy keeps a forged id: %v", ids)
	}
	// Not archived (bob's preferences): still no forged id.
	b.IQ("set", "", "<prefs xmlns='urn:xmpp:mam:2' default='never'/>")
	a.Send("<message to='bob@localhost' type='chat' id='f2'><body>x</body>%s</message>", forged)
	got = b.ExpectStanza("message", "id=f2")
	if ids := stanzaIDs(got); len(ids["bob@localhost"]) != 0 {
		t.Fatalf("unarchived message carries %v", ids["bob@localhost"])
	}
	// Nor on a groupchat-typed or headline message.
	a.Send("<message to='bob@localhost' type='headline' id='f3'><body>x</body>%s</message>", forged)
	if ids := stanzaIDs(b.ExpectStanza("message", "id=f3")); len(ids["bob@localhost"]) != 0 {
		t.Fatalf("headline carries %v", ids["bob@localhost"])
	}
}

// TestAccess: an archive is its owner's alone (§9.1: forbidden).
func TestAccess(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	sendN(t, a, "bob@localhost", 1)
	if got := query(t, b, "alice@localhost", ""); testserver.ErrorCondition(got.iq) != "forbidden" || len(got.results) != 0 {
		t.Fatalf("bob queries alice's archive: %d results, %s", len(got.results), got.iq)
	}
	for _, p := range []string{"<query xmlns='urn:xmpp:mam:2'/>", "<metadata xmlns='urn:xmpp:mam:2'/>"} {
		if r := b.IQ("get", "alice@localhost", p); testserver.ErrorCondition(r) != "forbidden" {
			t.Fatalf("%s: %s", p, r)
		}
	}
	if r := mustQuery(t, a, "alice@localhost", ""); len(r.results) != 1 {
		t.Fatalf("alice at her bare JID: %d results", len(r.results))
	}
}

// TestMalformed: bad forms and sets are bad-request, unknown fields and
// index paging feature-not-implemented (§4.1.5, XEP-0059 §2.6).
func TestMalformed(t *testing.T) {
	ts := start(t, "", "alice")
	a := online(t, ts, "alice")
	for _, tc := range []struct{ inner, cond string }{
		{"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x>", "bad-request"},
		{"<x xmlns='jabber:x:data' type='form'/>", "bad-request"},
		{form("start", "yesterday"), "bad-request"},
		{form("end", "2020-13-01T00:00:00Z"), "bad-request"},
		{form("with", "a@b@c"), "bad-request"},
		{"<x xmlns='jabber:x:data' type='submit'><field var='start'><value>2020-01-01T00:00:00Z</value></field><field var='start'/></x>", "bad-request"},
		{form("start", "2020-01-01T00:00:00Z", "start", "2021-01-01T00:00:00Z"), "bad-request"},
		{"<x xmlns='jabber:x:data' type='submit'><field var='with'><value>a@b</value><value>c@d</value></field></x>", "bad-request"},
		{form("fulltext", "hello"), "feature-not-implemented"},
		{form("include-groupchat", "true"), "feature-not-implemented"},
		{rsm("<max>ten</max>"), "bad-request"},
		{rsm("<max>-1</max>"), "bad-request"},
		{rsm("<after/>"), "bad-request"},
		{rsm("<after>x</after><before>y</before>"), "bad-request"},
		{rsm("<index>3</index>"), "feature-not-implemented"},
	} {
		if got := query(t, a, "", tc.inner); testserver.ErrorCondition(got.iq) != tc.cond {
			t.Errorf("%s: %s, want %s", tc.inner, got.iq, tc.cond)
		}
	}
	a.Send("<iq type='set' id='node'><query xmlns='urn:xmpp:mam:2' node='urn:xmpp:mucsub:nodes:messages'/></iq>")
	if r := a.ExpectStanza("iq", "id=node"); testserver.ErrorCondition(r) != "item-not-found" {
		t.Errorf("node query: %s", r)
	}
	if r := a.IQ("set", "", "<something xmlns='urn:xmpp:mam:2'/>"); testserver.ErrorCondition(r) != "bad-request" {
		t.Errorf("unknown element: %s", r)
	}
	// 101 ids with the default page size of 100.
	var ids []string
	for i := range 101 {
		ids = append(ids, "ids", fmt.Sprint(i))
	}
	if got := query(t, a, "", form(ids...)); testserver.ErrorCondition(got.iq) != "policy-violation" {
		t.Errorf("too many ids: %s", got.iq)
	}
}

// TestFormMetadataDisco: the form fetch (§4.1.5), archive metadata (§5)
// and the account features (§7), from the registries.
func TestFormMetadataDisco(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice")
	r := a.IQ("get", "", "<query xmlns='urn:xmpp:mam:2'/>")
	x := r.Child(nsMAM, "query").Child(nsData, "x")
	var vars []string
	for _, f := range x.Elements() {
		vars = append(vars, f.Attr("var"))
		if f.Child(nsData, "required") != nil {
			t.Errorf("field %s is required", f.Attr("var"))
		}
	}
	if want := []string{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"}; !slices.Equal(vars, want) {
		t.Fatalf("form fields %v, want %v", vars, want)
	}
	r = a.IQ("get", "", "<metadata xmlns='urn:xmpp:mam:2'/>")
	if md := r.Child(nsMAM, "metadata"); md == nil || len(md.Elements()) != 0 {
		t.Fatalf("empty archive metadata: %s", r)
	}
	sendN(t, a, "bob@localhost", 3)
	all := mustQuery(t, a, "", "")
	r = a.IQ("get", "", "<metadata xmlns='urn:xmpp:mam:2'/>")
	md := r.Child(nsMAM, "metadata")
	if s, e := md.Child(nsMAM, "start"), md.Child(nsMAM, "end"); s.Attr("id") != all.ids()[0] || e.Attr("id") != all.ids()[2] ||
		s.Attr("timestamp") != all.stamp(0) || e.Attr("timestamp") != all.stamp(2) {
		t.Fatalf("metadata %s for %v", md, all.ids())
	}
	r = a.IQ("get", "alice@localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	var feats []string
	for _, f := range r.Child("http://jabber.org/protocol/disco#info", "query").Elements() {
		feats = append(feats, f.Attr("var"))
	}
	for _, f := range []string{nsMAM, nsMAM + "#extended"} {
		if !slices.Contains(feats, f) {
			t.Errorf("account disco lacks %s: %v", f, feats)
		}
	}
}

// TestCapAndRetention: max_messages keeps the newest messages of an
// archive; the purge goroutine applies max_age.
func TestCapAndRetention(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\nmax_messages = 5\nmax_age = \"1h\"\npurge_interval = \"1s\"\n", "alice", "bob")
	a := online(t, ts, "alice")
	sendN(t, a, "bob@localhost", 8)
	got := mustQuery(t, a, "", "")
	if b := bodies(t, got); !slices.Equal(b, seq(3, 8)) || got.count() != "5" {
		t.Fatalf("capped archive %v count %s", b, got.count())
	}
	// Messages from two hours ago, put in by hand (an archive's stamps
	// never decrease, so in an archive of their own), are purged within a
	// purge interval or two; today's stay.
	for i := range 3 {
		_, err := ts.Store().Archive().Append(context.Background(), 0, storage.ArchiveEntry{Owner: "carol@localhost",
			ID: fmt.Sprint("old", i), With: "bob@localhost", Stamp: time.Now().Add(-2 * time.Hour), Stanza: []byte("<message/>")})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for archived(t, ts, "carol@localhost") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("carol's archive holds %d after the purge interval, want 0", archived(t, ts, "carol@localhost"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := archived(t, ts, "bob@localhost"); n != 5 {
		t.Fatalf("bob's archive holds %d, want 5", n)
	}
	if strings.Join(bodies(t, mustQuery(t, a, "", "")), ",") != strings.Join(seq(3, 8), ",") {
		t.Fatal("the purge removed recent messages")
	}
}

// TestAccountRemoval: removing an account (XEP-0077 in-band) deletes its
// archive and preferences, messages still queued for the writer included;
// the other side keeps its archive.
func TestAccountRemoval(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	b.IQ("set", "", "<prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never/></prefs>")
	for i := range 50 {
		a.Send("<message to='bob@localhost' type='chat' id='r%d'><body>%d</body></message>", i, i)
	}
	b.ExpectStanza("message", "id=r49")
	r := b.IQ("set", "", "<query xmlns='jabber:iq:register'><remove/></query>")
	if testserver.ErrorCondition(r) != "" {
		t.Fatalf("remove: %s", r)
	}
	if n := archived(t, ts, "bob@localhost"); n != 0 {
		t.Fatalf("removed account's archive holds %d", n)
	}
	if _, err := ts.Store().KV().Get(context.Background(), "mam.prefs", "bob@localhost", "prefs"); err == nil {
		t.Fatal("removed account's preferences survive")
	}
	if n := archived(t, ts, "alice@localhost"); n != 50 {
		t.Fatalf("alice's archive holds %d, want 50", n)
	}
}
