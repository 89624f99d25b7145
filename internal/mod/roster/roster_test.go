package roster_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

func TestStreamFeatures(t *testing.T) {
	ts := start(t, "alice")
	c := ts.Login(t, "alice", password, "r1")
	found := map[string]bool{}
	for _, f := range c.Features.Elements() {
		found[f.Space+" "+f.Local] = true
	}
	for _, want := range []string{"urn:xmpp:features:rosterver ver", "urn:xmpp:features:pre-approval sub"} {
		if !found[want] {
			t.Errorf("missing stream feature %s in %s", want, c.Features)
		}
	}
}

func TestGetSetRemoveWithPushes(t *testing.T) {
	ts := start(t, "alice", "bob")
	a1 := ts.Login(t, "alice", password, "r1")
	a2 := ts.Login(t, "alice", password, "r2")
	a3 := ts.Login(t, "alice", password, "r3") // not interested yet: no pushes
	if q := getRoster(t, a1, "-"); q == nil || len(q.Elements()) != 0 {
		t.Fatalf("initial roster: %v", q)
	}
	getRoster(t, a2, "-")

	res := a1.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Work</group><group>Friends</group></item></query>`)
	if res.Attr("type") != "result" {
		t.Fatalf("set: %s", res)
	}
	for _, c := range []*testserver.Client{a1, a2} {
		it := expectPush(t, c, "bob@localhost")
		if it.Attr("name") != "Bob" || it.Attr("subscription") != "none" || it.HasAttr("ask") || groups(it) != "Friends,Work" {
			t.Fatalf("push to %s: %s", c.JID, it)
		}
	}
	q := getRoster(t, a3, "-")
	it := items(q)["bob@localhost"]
	if it == nil || it.Attr("name") != "Bob" || groups(it) != "Friends,Work" {
		t.Fatalf("roster after set: %v", q)
	}

	// Update: new name, one group; all three are interested now.
	a2.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Robert'><group>Work</group></item></query>`)
	for _, c := range []*testserver.Client{a1, a2, a3} {
		if it := expectPush(t, c, "bob@localhost"); it.Attr("name") != "Robert" || groups(it) != "Work" {
			t.Fatalf("update push: %s", it)
		}
	}

	// Remove.
	res = a1.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query>`)
	if res.Attr("type") != "result" {
		t.Fatalf("remove: %s", res)
	}
	for _, c := range []*testserver.Client{a1, a2, a3} {
		if it := expectPush(t, c, "bob@localhost"); it.Attr("subscription") != "remove" {
			t.Fatalf("remove push: %s", it)
		}
	}
	if q := getRoster(t, a1, "-"); len(q.Elements()) != 0 {
		t.Fatalf("roster after remove: %s", q)
	}
	// Removing again: item-not-found (RFC 6121 §2.5.3).
	res = a1.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query>`)
	if testserver.ErrorCondition(res) != "item-not-found" {
		t.Fatalf("second remove: %s", res)
	}
}

func TestVersioning(t *testing.T) {
	ts := start(t, "alice")
	c := ts.Login(t, "alice", password, "r1")
	c.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='carol@example.org'/></query>`)

	// Bootstrapping with ver='' returns the roster and its version.
	q := getRoster(t, c, "")
	ver := q.Attr("ver")
	if q == nil || ver == "" || len(q.Elements()) != 1 {
		t.Fatalf("bootstrap: %v", q)
	}
	// Unchanged: empty result.
	if q := getRoster(t, c, ver); q != nil {
		t.Fatalf("same version returned %s", q)
	}
	// A change carries the new version in the push...
	c.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='dave@example.org'/></query>`)
	push := c.Expect(func(el *xml.Element) bool {
		q := el.Child(nsRoster, "query")
		return el.Local == "iq" && el.Attr("type") == "set" && q != nil && q.Child(nsRoster, "item").Attr("jid") == "dave@example.org"
	})
	newVer := push.Child(nsRoster, "query").Attr("ver")
	if newVer == "" || newVer == ver {
		t.Fatalf("push version %q (old %q)", newVer, ver)
	}
	// ...and the old version gets the whole roster with the new one.
	q = getRoster(t, c, ver)
	if q == nil || q.Attr("ver") != newVer || len(q.Elements()) != 2 {
		t.Fatalf("stale version: %v", q)
	}
	if q := getRoster(t, c, newVer); q != nil {
		t.Fatalf("current version returned %s", q)
	}
	// A client that does not version gets no 'ver'.
	if q := getRoster(t, c, "-"); q.HasAttr("ver") {
		t.Fatalf("unversioned get: %s", q)
	}
}

// A roster that was never changed has a version too (RFC 6121 §2.6.3:
// once versioning is in use every roster result carries 'ver'): a fresh
// account bootstrapping with an empty 'ver' gets one it can cache, asking again
// with it gets the empty result, and the first change moves it on.
func TestVersioningFreshAccount(t *testing.T) {
	ts := start(t, "alice")
	c := ts.Login(t, "alice", password, "r1")

	q := getRoster(t, c, "")
	if q == nil || q.Attr("ver") == "" || len(q.Elements()) != 0 {
		t.Fatalf("bootstrap of a never-changed roster: %v", q)
	}
	ver := q.Attr("ver")
	if q := getRoster(t, c, ver); q != nil {
		t.Fatalf("unchanged roster with its version returned %s", q)
	}
	// A second resource caching the same empty roster gets the same
	// version: nothing changed in between.
	c2 := ts.Login(t, "alice", password, "r2")
	if q := getRoster(t, c2, ""); q == nil || q.Attr("ver") != ver {
		t.Fatalf("second bootstrap: %v, want ver %q", q, ver)
	}

	c.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='carol@example.org'/></query>`)
	newVer := expectPushVer(t, c, "carol@example.org")
	if newVer == "" || newVer == ver {
		t.Fatalf("push version %q (before the change %q)", newVer, ver)
	}
	if v := expectPushVer(t, c2, "carol@example.org"); v != newVer {
		t.Fatalf("second resource's push version %q, want %q", v, newVer)
	}
	q = getRoster(t, c, ver)
	if q == nil || q.Attr("ver") != newVer || len(q.Elements()) != 1 {
		t.Fatalf("stale version after the first change: %v", q)
	}
	if q := getRoster(t, c2, newVer); q != nil {
		t.Fatalf("current version returned %s", q)
	}
}

// Pushes and results reach a client in version order: a push that arrives
// before a roster result is already reflected in it. One resource changes
// a few items as fast as it can while another asks for the roster again
// and again; every push the reader got before a result must not be newer
// than what the result shows. (Before results were queued under the
// owner's lock, a result read before a change regularly arrived after the
// change's push and silently undid it on the client.)
func TestPushesNotOvertakenByOlderResult(t *testing.T) {
	ts := start(t, "alice")
	reader := ts.Login(t, "alice", password, "r1")
	writer := ts.Login(t, "alice", password, "r2")
	const contacts, rounds = 4, 1000
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// One change at a time (the writer reads each result, so neither
		// side's buffers fill); the item's name is the change's number.
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = writer.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err := fmt.Fprintf(writer.Conn, "<iq type='set' id='s%d'><query xmlns='jabber:iq:roster'><item jid='c%d@example.org' name='%d'/></query></iq>", i, i%contacts, i)
			for err == nil {
				var el *xml.Element
				if el, err = writer.Next(); err == nil && el.Attr("id") == fmt.Sprintf("s%d", i) {
					break
				}
			}
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
		}
	}()
	defer func() { close(stop); <-wrote }()
	seq := func(it *xml.Element) int {
		n, err := strconv.Atoi(it.Attr("name"))
		if err != nil {
			t.Fatalf("item %s", it)
		}
		return n
	}
	for n := range rounds {
		id := fmt.Sprintf("g%d", n)
		reader.Send("<iq type='get' id='%s'><query xmlns='jabber:iq:roster' ver=''/></iq>", id)
		pushed := map[string]int{} // contact → newest change pushed before the result
		for {
			el, err := reader.Next()
			if err != nil {
				t.Fatal(err)
			}
			if el.Attr("id") == id {
				for jid, p := range pushed {
					if it := items(el.Child(nsRoster, "query"))[jid]; it == nil || seq(it) < p {
						t.Fatalf("round %d: result shows %s as %v after the push of change %d", n, jid, it, p)
					}
				}
				break
			}
			if q := el.Child(nsRoster, "query"); el.Local == "iq" && el.Attr("type") == "set" && q != nil {
				reader.Send("<iq type='result' id='%s'/>", el.Attr("id"))
				it := q.Child(nsRoster, "item")
				pushed[it.Attr("jid")] = max(pushed[it.Attr("jid")], seq(it))
			}
		}
	}
}

func TestInvalidSets(t *testing.T) {
	ts := start(t, "alice")
	c := ts.Login(t, "alice", password, "r1")
	long := strings.Repeat("x", 1025)
	many := ""
	for i := 0; i < 65; i++ {
		many += "<group>g" + string(rune('A'+i/26)) + string(rune('a'+i%26)) + "</group>"
	}
	tests := []struct {
		name, item, cond string
	}{
		{"no item", ``, "bad-request"},
		{"two items", `<item jid='a@example.org'/><item jid='b@example.org'/>`, "bad-request"},
		{"no jid", `<item name='x'/>`, "bad-request"},
		{"malformed jid", `<item jid='a@b@c'/>`, "jid-malformed"},
		{"full jid", `<item jid='a@example.org/res'/>`, "bad-request"},
		{"own jid", `<item jid='alice@localhost'/>`, "not-allowed"},
		{"duplicate group", `<item jid='a@example.org'><group>G</group><group>G</group></item>`, "bad-request"},
		{"empty group", `<item jid='a@example.org'><group></group></item>`, "not-acceptable"},
		{"long name", `<item jid='a@example.org' name='` + long + `'/>`, "not-acceptable"},
		{"long group", `<item jid='a@example.org'><group>` + long + `</group></item>`, "not-acceptable"},
		{"too many groups", `<item jid='a@example.org'>` + many + `</item>`, "not-acceptable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.IQ("set", "", "<query xmlns='jabber:iq:roster'>"+tt.item+"</query>")
			if got := testserver.ErrorCondition(res); got != tt.cond {
				t.Fatalf("got %q, want %q: %s", got, tt.cond, res)
			}
		})
	}
	if items, _, _ := ts.Store().Roster().Items(context.Background(), "alice@localhost"); len(items) != 0 {
		t.Fatalf("invalid sets stored items: %+v", items)
	}
}

// A roster set cannot change subscription state: RFC 6121 §2.1.2.5 makes
// the server ignore 'subscription' other than "remove", and 'ask' and
// 'approved' are the server's to set.
func TestCannotForgeSubscription(t *testing.T) {
	ts := start(t, "alice", "bob")
	c := ts.Login(t, "alice", password, "r1")
	getRoster(t, c, "-")
	res := c.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='both' ask='subscribe' approved='true'/></query>`)
	if res.Attr("type") != "result" {
		t.Fatalf("set: %s", res)
	}
	it := expectPush(t, c, "bob@localhost")
	if it.Attr("subscription") != "none" || it.HasAttr("ask") || it.HasAttr("approved") {
		t.Fatalf("push: %s", it)
	}
	got, err := ts.Store().Roster().Get(context.Background(), "alice@localhost", "bob@localhost")
	if err != nil || got.Subscription != storage.SubNone || got.AskOut || got.PreApproved || got.PendingIn {
		t.Fatalf("stored %+v, %v", got, err)
	}

	// Nor can it take a real subscription away: bob's roster has alice
	// with "from"; a set with subscription='none' keeps it.
	_, err = ts.Store().Roster().Put(context.Background(), "bob@localhost",
		storage.RosterItem{JID: "alice@localhost", Subscription: storage.SubFrom})
	if err != nil {
		t.Fatal(err)
	}
	b := ts.Login(t, "bob", password, "r1")
	b.IQ("set", "", `<query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='none' name='Alice'/></query>`)
	got, _ = ts.Store().Roster().Get(context.Background(), "bob@localhost", "alice@localhost")
	if got.Subscription != storage.SubFrom || got.Name != "Alice" {
		t.Fatalf("stored %+v", got)
	}
}

// Roster requests addressed to another account are not served.
func TestOtherUsersRoster(t *testing.T) {
	ts := start(t, "alice", "bob")
	c := ts.Login(t, "alice", password, "r1")
	c.Send(`<iq type='get' id='x1' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>`)
	if res := c.ExpectStanza("iq", "id=x1"); res.Attr("type") != "error" {
		t.Fatalf("got %s", res)
	}
	c.Send(`<iq type='set' id='x2' to='bob@localhost'><query xmlns='jabber:iq:roster'><item jid='eve@example.org'/></query></iq>`)
	if res := c.ExpectStanza("iq", "id=x2"); res.Attr("type") != "error" {
		t.Fatalf("got %s", res)
	}
	if items, _, _ := ts.Store().Roster().Items(context.Background(), "bob@localhost"); len(items) != 0 {
		t.Fatalf("bob's roster changed: %+v", items)
	}
}

func groups(it *xml.Element) string {
	var gs []string
	for _, g := range it.Elements() {
		gs = append(gs, g.Text())
	}
	return strings.Join(gs, ",")
}
