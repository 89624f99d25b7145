package bookmarks_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	password    = "password123"
	nsCaps      = "http://jabber.org/protocol/caps"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsNative    = "urn:xmpp:bookmarks:1"
)

// online logs in a resource that advertises urn:xmpp:bookmarks:1+notify
// (or nothing with notify false) and answers the server's caps query.
func online(t *testing.T, ts *testserver.TS, user, resource string, notify bool) *testserver.Client {
	t.Helper()
	c := ts.Login(t, user, password, resource)
	feats := []string{nsCaps, nsDiscoInfo}
	if notify {
		feats = append(feats, nsNative+"+notify")
	}
	slices.Sort(feats)
	sum := sha1.Sum([]byte("client/pc//test<" + strings.Join(feats, "<") + "<"))
	ver := base64.StdEncoding.EncodeToString(sum[:])
	c.Send("<presence><c xmlns='%s' hash='sha-1' node='urn:test' ver='%s'/></presence>", nsCaps, ver)
	for {
		el := c.Expect(func(el *xml.Element) bool {
			return (el.Local == "presence" && el.Attr("from") == c.JID) ||
				(el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsDiscoInfo, "query") != nil)
		})
		if el.Local == "presence" {
			return c
		}
		var b strings.Builder
		for _, f := range feats {
			b.WriteString("<feature var='" + f + "'/>")
		}
		c.Send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'><identity category='client' type='pc' name='test'/>%s</query></iq>",
			el.Attr("id"), el.Attr("from"), nsDiscoInfo, el.Child(nsDiscoInfo, "query").Attr("node"), b.String())
	}
}

func isBookmarkEvent(el *xml.Element) bool {
	ev := el.Child(pubsub.NSEvent, "event")
	return el.Local == "message" && ev != nil && ev.Child(pubsub.NSEvent, "items") != nil &&
		ev.Child(pubsub.NSEvent, "items").Attr("node") == nsNative
}

// expectNoEvent: a ping's answer comes after anything queued before it.
func expectNoEvent(t *testing.T, c *testserver.Client) {
	t.Helper()
	id := "none-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.Send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	if el := c.Expect(func(el *xml.Element) bool { return isBookmarkEvent(el) || el.Attr("id") == id }); el.Local == "message" {
		t.Fatalf("unexpected bookmark event %s", el)
	}
}

func privateSet(t *testing.T, c *testserver.Client, storage string) {
	t.Helper()
	if r := c.IQ("set", "", "<query xmlns='jabber:iq:private'>"+storage+"</query>"); r.Attr("type") != "result" {
		t.Fatalf("private set: %s", r)
	}
}

func privateGet(t *testing.T, c *testserver.Client) *xml.Element {
	t.Helper()
	r := c.IQ("get", "", "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>")
	return r.Child("jabber:iq:private", "query").Child("storage:bookmarks", "storage")
}

func nativeItems(t *testing.T, c *testserver.Client, to string) *xml.Element {
	t.Helper()
	r := c.IQ("get", to, "<pubsub xmlns='"+pubsub.NS+"'><items node='"+nsNative+"'/></pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("items: %s", r)
	}
	return r.Child(pubsub.NS, "pubsub").Child(pubsub.NS, "items")
}

// TestLegacyToNative: a legacy client's private XML bookmarks become
// private PEP items, with notifications only for what changed, and
// removals become retractions (XEP-0402 §5.3).
func TestLegacyToNative(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice", "bob")
	_, err := ts.Store().Roster().Put(context.Background(), "alice@localhost", storage.RosterItem{JID: "bob@localhost", Subscription: storage.SubBoth})
	if err != nil {
		t.Fatal(err)
	}
	legacy := ts.Login(t, "alice", password, "legacy")
	modern := online(t, ts, "alice", "modern", true)
	bob := ts.Login(t, "bob", password, "r")

	privateSet(t, legacy, "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='a@conference.localhost' name='A' autojoin='1'><nick>al</nick></conference>"+
		"<conference jid='b@conference.localhost' name='B'/>"+
		"<url name='site' url='https://example.org/'/></storage>")
	for range 2 {
		modern.Expect(isBookmarkEvent)
	}
	items := nativeItems(t, modern, "")
	got := items.String()
	if len(items.Elements()) != 2 || !strings.Contains(got, "id='a@conference.localhost'") ||
		!strings.Contains(got, "<conference xmlns='urn:xmpp:bookmarks:1' name='A' autojoin='true'><nick>al</nick></conference>") {
		t.Fatalf("native bookmarks %s", got)
	}
	// Private to alice (XEP-0223 whitelist).
	r := bob.IQ("get", "alice@localhost", "<pubsub xmlns='"+pubsub.NS+"'><items node='"+nsNative+"'/></pubsub>")
	if testserver.ErrorCondition(r) != "not-allowed" {
		t.Fatalf("bob reads alice's bookmarks: %s", r)
	}

	// The same list again changes nothing; dropping B retracts it.
	privateSet(t, legacy, "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='a@conference.localhost' name='A' autojoin='true'><nick>al</nick></conference>"+
		"<url name='site' url='https://example.org/'/></storage>")
	ev := modern.Expect(isBookmarkEvent)
	if !strings.Contains(ev.String(), "<retract id='b@conference.localhost'/>") {
		t.Fatalf("expected the retraction of b, got %s", ev)
	}
	expectNoEvent(t, modern)
	if n := len(nativeItems(t, modern, "").Elements()); n != 1 {
		t.Fatalf("%d native bookmarks after removing one", n)
	}
	// The legacy client reads back what it stored, URL included.
	if s := privateGet(t, legacy).String(); !strings.Contains(s, "url='https://example.org/'") {
		t.Fatalf("private XML %s", s)
	}
	// The account announces the unification.
	r = modern.IQ("get", "alice@localhost", "<query xmlns='"+nsDiscoInfo+"'/>")
	if !strings.Contains(r.String(), "var='urn:xmpp:bookmarks:1#compat'") {
		t.Fatalf("no #compat feature: %s", r)
	}
}

// TestNativeToLegacy: bookmarks a PEP client publishes are what a legacy
// client reads, with legacy URL bookmarks kept and extensions kept when a
// legacy client rewrites the list.
func TestNativeToLegacy(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice")
	legacy := ts.Login(t, "alice", password, "legacy")
	modern := online(t, ts, "alice", "modern", true)
	privateSet(t, legacy, "<storage xmlns='storage:bookmarks'><url name='site' url='https://example.org/'/></storage>")

	opts := "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + pubsub.NSPublishOptions +
		"</value></field><field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#max_items'><value>max</value></field></x></publish-options>"
	r := modern.IQ("set", "", "<pubsub xmlns='"+pubsub.NS+"'><publish node='"+nsNative+"'><item id='c@conference.localhost'>"+
		"<conference xmlns='urn:xmpp:bookmarks:1' name='C' autojoin='true'><nick>al</nick><extensions><state xmlns='urn:x:client' minimized='1'/></extensions></conference>"+
		"</item></publish>"+opts+"</pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("publish: %s", r)
	}
	modern.Expect(isBookmarkEvent)
	s := privateGet(t, legacy).String()
	if !strings.Contains(s, "<conference jid='c@conference.localhost' name='C' autojoin='true'><nick>al</nick></conference>") ||
		!strings.Contains(s, "url='https://example.org/'") {
		t.Fatalf("legacy view %s", s)
	}
	// A legacy client renames C: the extensions survive.
	privateSet(t, legacy, "<storage xmlns='storage:bookmarks'><conference jid='c@conference.localhost' name='C2' autojoin='true'><nick>al</nick></conference></storage>")
	modern.Expect(isBookmarkEvent)
	if got := nativeItems(t, modern, "").String(); !strings.Contains(got, "name='C2'") || !strings.Contains(got, "minimized='1'") {
		t.Fatalf("native after a legacy rename: %s", got)
	}
	// Retracting natively removes it from the legacy view.
	r = modern.IQ("set", "", "<pubsub xmlns='"+pubsub.NS+"'><retract node='"+nsNative+"'><item id='c@conference.localhost'/></retract></pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("retract: %s", r)
	}
	if s := privateGet(t, legacy).String(); strings.Contains(s, "conference") {
		t.Fatalf("legacy view after a retraction %s", s)
	}
}

// TestConversionAtLogin: bookmarks stored by a legacy client before the
// conversion existed are published when the user next logs in.
func TestConversionAtLogin(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice")
	ctx := context.Background()
	stored := "<storage xmlns='storage:bookmarks'><conference jid='old@conference.localhost' name='Old'/></storage>"
	if err := ts.Store().Private().Set(ctx, "alice@localhost", "storage storage:bookmarks", []byte(stored)); err != nil {
		t.Fatal(err)
	}
	c := ts.Login(t, "alice", password, "r")
	if got := nativeItems(t, c, "").String(); !strings.Contains(got, "id='old@conference.localhost'") {
		t.Fatalf("not converted at login: %s", got)
	}
}

// joinFromEvent acts as a XEP-0402 client: it takes the conference of a
// bookmark event and, when autojoin is set, joins the room with the
// bookmark's nick, returning the room's self-presence (status 110).
func joinFromEvent(t *testing.T, c *testserver.Client, ev *xml.Element) *xml.Element {
	t.Helper()
	it := ev.Child(pubsub.NSEvent, "event").Child(pubsub.NSEvent, "items").Child(pubsub.NSEvent, "item")
	conf := it.Child(nsNative, "conference")
	if conf == nil || conf.Attr("autojoin") != "true" {
		t.Fatalf("bookmark event without autojoin: %s", ev)
	}
	room, nick := it.Attr("id"), conf.ChildText(nsNative, "nick")
	c.Send("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room, nick)
	return c.Expect(func(el *xml.Element) bool {
		if el.Local != "presence" || el.Attr("from") != room+"/"+nick {
			return false
		}
		x := el.Child("http://jabber.org/protocol/muc#user", "x")
		return x != nil && strings.Contains(x.String(), "code='110'")
	})
}

// TestAutojoinAcrossResources: XEP-0402 autojoin end to end with two
// resources and the chat-room service. One resource bookmarks a room with
// autojoin (publish-options as §3 asks); the other, which advertised
// urn:xmpp:bookmarks:1+notify, gets the event and joins the room; a
// contact with the same interest gets nothing (the node is private). A
// bookmark a legacy client stores with autojoin (XEP-0048) reaches the
// native resource the same way, and a resource that logs in later finds
// both when it fetches the node, as clients do at login.
func TestAutojoinAcrossResources(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice", "bob")
	for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		if _, err := ts.Store().Roster().Put(context.Background(), pair[0]+"@localhost",
			storage.RosterItem{JID: pair[1] + "@localhost", Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
	}
	phone := online(t, ts, "alice", "phone", false)
	desktop := online(t, ts, "alice", "desktop", true)
	bob := online(t, ts, "bob", "r", true)

	room := "team@conference.localhost"
	r := phone.IQ("set", "", "<pubsub xmlns='"+pubsub.NS+"'><publish node='"+nsNative+"'><item id='"+room+"'>"+
		"<conference xmlns='"+nsNative+"' name='Team' autojoin='true'><nick>alice-desk</nick></conference></item></publish>"+
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>"+pubsub.NSPublishOptions+"</value></field>"+
		"<field var='pubsub#persist_items'><value>true</value></field><field var='pubsub#max_items'><value>max</value></field>"+
		"<field var='pubsub#send_last_published_item'><value>never</value></field><field var='pubsub#access_model'><value>whitelist</value></field>"+
		"</x></publish-options></pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("publish: %s", r)
	}
	self := joinFromEvent(t, desktop, desktop.Expect(isBookmarkEvent))
	if !strings.Contains(self.String(), "code='201'") {
		t.Fatalf("the autojoin created the room: expected 201 in %s", self)
	}
	expectNoEvent(t, bob)
	expectNoEvent(t, phone) // no +notify: no event

	// A legacy client's autojoin bookmark.
	legacy := online(t, ts, "alice", "legacy", false)
	privateSet(t, legacy, "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='"+room+"' name='Team' autojoin='true'><nick>alice-desk</nick></conference>"+
		"<conference jid='old@conference.localhost' name='Old' autojoin='1'><nick>al</nick></conference></storage>")
	ev := desktop.Expect(isBookmarkEvent)
	if id := ev.Child(pubsub.NSEvent, "event").Child(pubsub.NSEvent, "items").Child(pubsub.NSEvent, "item").Attr("id"); id != "old@conference.localhost" {
		t.Fatalf("event for %q, want only the new room (the other did not change): %s", id, ev)
	}
	joinFromEvent(t, desktop, ev)
	expectNoEvent(t, desktop)

	// A resource that logs in later fetches the node and finds both.
	laptop := online(t, ts, "alice", "laptop", true)
	items := nativeItems(t, laptop, "")
	var auto []string
	for _, it := range items.Elements() {
		if c := it.Child(nsNative, "conference"); c != nil && c.Attr("autojoin") == "true" {
			auto = append(auto, it.Attr("id"))
		}
	}
	slices.Sort(auto)
	if !slices.Equal(auto, []string{"old@conference.localhost", room}) {
		t.Fatalf("autojoin rooms read at login: %v (%s)", auto, items)
	}
}

// TestLegacyPEPConversion: XEP-0411. What a XEP-0048 client publishes to
// the storage:bookmarks PEP node is what private XML clients read and what
// native clients get as items; what private XML or native clients change
// is the node's item; the node stays private; the account announces it.
func TestLegacyPEPConversion(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice", "bob")
	pepClient := ts.Login(t, "alice", password, "pep48")
	legacy := ts.Login(t, "alice", password, "legacy")
	bob := ts.Login(t, "bob", password, "r")

	r := pepClient.IQ("get", "alice@localhost", "<query xmlns='"+nsDiscoInfo+"'/>")
	if !strings.Contains(r.String(), "var='urn:xmpp:bookmarks-conversion:0'") {
		t.Fatalf("no XEP-0411 feature: %s", r)
	}
	r = pepClient.IQ("set", "", "<pubsub xmlns='"+pubsub.NS+"'><publish node='storage:bookmarks'><item id='current'>"+
		"<storage xmlns='storage:bookmarks'><conference jid='c@conference.localhost' name='C' autojoin='true'><nick>al</nick></conference>"+
		"<url name='site' url='https://example.org/'/></storage></item></publish>"+
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>"+pubsub.NSPublishOptions+"</value></field>"+
		"<field var='pubsub#persist_items'><value>true</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("publish to storage:bookmarks: %s", r)
	}
	if s := privateGet(t, legacy); s == nil || !strings.Contains(s.String(), "jid='c@conference.localhost'") || !strings.Contains(s.String(), "url='https://example.org/'") {
		t.Fatalf("private XML after a PEP publish: %v", s)
	}
	if got := nativeItems(t, legacy, "").String(); !strings.Contains(got, "id='c@conference.localhost'") || !strings.Contains(got, "autojoin='true'") {
		t.Fatalf("native items after a PEP publish: %s", got)
	}

	// A private XML change is the node's item.
	privateSet(t, legacy, "<storage xmlns='storage:bookmarks'><conference jid='d@conference.localhost' name='D'/></storage>")
	legacyItems := func() string {
		r := pepClient.IQ("get", "", "<pubsub xmlns='"+pubsub.NS+"'><items node='storage:bookmarks'/></pubsub>")
		if r.Attr("type") != "result" {
			t.Fatalf("items of storage:bookmarks: %s", r)
		}
		return r.String()
	}
	if got := legacyItems(); !strings.Contains(got, "jid='d@conference.localhost'") || strings.Contains(got, "c@conference.localhost") {
		t.Fatalf("storage:bookmarks after a private XML set: %s", got)
	}
	// So is a native client's change.
	r = pepClient.IQ("set", "", "<pubsub xmlns='"+pubsub.NS+"'><publish node='"+nsNative+"'><item id='e@conference.localhost'>"+
		"<conference xmlns='"+nsNative+"' name='E'/></item></publish></pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("native publish: %s", r)
	}
	if got := legacyItems(); !strings.Contains(got, "jid='e@conference.localhost'") || !strings.Contains(got, "jid='d@conference.localhost'") {
		t.Fatalf("storage:bookmarks after a native publish: %s", got)
	}
	// Private to alice.
	r = bob.IQ("get", "alice@localhost", "<pubsub xmlns='"+pubsub.NS+"'><items node='storage:bookmarks'/></pubsub>")
	if testserver.ErrorCondition(r) != "not-allowed" {
		t.Fatalf("bob reads alice's storage:bookmarks: %s", r)
	}
}
