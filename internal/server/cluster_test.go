package server_test

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/cluster"
	"parley/internal/cluster/natstest"
	"parley/internal/component"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// clusterDSN returns a PostgreSQL DSN whose connections use a fresh
// schema (dropped at the end), or skips without PARLEY_TEST_POSTGRES.
func clusterDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("PARLEY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PARLEY_TEST_POSTGRES is not set: the cluster tests need PostgreSQL")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "parley_cluster_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// startCluster boots n Parley nodes (127.0.0.151...) on one PostgreSQL
// schema and a NATS server (127.0.0.150).
func startCluster(t *testing.T, n int, extra string) []*testserver.TS {
	t.Helper()
	dsn := clusterDSN(t)
	nats := natstest.Start(t, "127.0.0.150")
	var out []*testserver.TS
	for i := 0; i < n; i++ {
		cfg := fmt.Sprintf(`storage = "postgres"
postgres_dsn = %q
[[host]]
domain = "example.com"
[c2s]
listen = ["127.0.0.%d:0"]
direct_tls_listen = []
[cluster]
node = "node%d"
nats_urls = [%q]
heartbeat = "200ms"
lease = "2s"
%s`, dsn, 151+i, i+1, nats.URL(), extra)
		out = append(out, testserver.Start(t, cfg))
	}
	return out
}

func subscribeBoth(t *testing.T, ts *testserver.TS, a, b string) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		_, err := ts.Store().Roster().Put(context.Background(), p[0]+"@example.com",
			storage.RosterItem{JID: p[1] + "@example.com", Subscription: storage.SubBoth})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func body(el *xml.Element) string { return el.ChildText("", "body") }

// sharedValue reads a module.SharedKey value, by its shared name, as the
// string the registry carries: tests see another node's view of a session
// without the owning module's key type.
type sharedValue string

func (k sharedValue) SharedName() string { return string(k) }
func (sharedValue) Encode(v any) string  { s, _ := v.(string); return s }
func (sharedValue) Decode(s string) any  { return s }

// Clients on different nodes share presence and chat, bare and full JID,
// in order; carbons reach a resource on a third node; a bind of a full
// JID held on another node replaces it there.
func TestClusterTwoNodesChat(t *testing.T) {
	nodes := startCluster(t, 3, "")
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.AddUsers(t, "pw", "alice", "bob")
	subscribeBoth(t, a, "alice", "bob")

	alice := a.Online(t, "alice", "pw", "desk")
	bob := b.Login(t, "bob", "pw", "phone")
	bob.Send("<presence/>")
	// Bob's initial presence reaches alice on the other node, and bob
	// learns of alice from the probe answered on hers.
	alice.ExpectStanza("presence", "from=bob@example.com/phone")
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@example.com/desk" && el.Attr("type") == ""
	})

	// A second resource of alice on a third node, with carbons.
	alice2 := c.Online(t, "alice", "pw", "laptop")
	alice2.IQ("set", "", "<enable xmlns='urn:xmpp:carbons:2'/>")
	// The registry carries the flag to bob's node, which makes the copies.
	laptop := jid.MustParse("alice@example.com/laptop")
	waitFor(t, "node 2 sees alice/laptop's carbons on", func() bool {
		s := b.Router().Session(laptop)
		return s != nil && s.Value(sharedValue("carbons")) == "1"
	})

	const n = 50
	for i := 0; i < n; i++ {
		bob.Send("<message to='alice@example.com/desk' type='chat' id='m%d'><body>%d</body></message>", i, i)
	}
	for i := 0; i < n; i++ {
		m := alice.ExpectStanza("message", "from=bob@example.com/phone")
		if body(m) != fmt.Sprint(i) {
			t.Fatalf("message %d arrived as %q: order lost across nodes", i, body(m))
		}
	}
	// The carbon copy of the first one reached the third node.
	cc := alice2.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Child("urn:xmpp:carbons:2", "received") != nil
	})
	if !strings.Contains(cc.String(), ">0<") {
		t.Fatalf("first carbon: %s", cc)
	}
	// Bare JID reply: bob's only resource is on node 2.
	alice.Send("<message to='bob@example.com' type='chat'><body>hello bob</body></message>")
	if m := bob.ExpectStanza("message", "from=alice@example.com/desk"); body(m) != "hello bob" {
		t.Fatalf("bob got %s", m)
	}

	// alice/desk binds again on node 2: the old stream on node 1 ends
	// with <conflict/>.
	again := b.Login(t, "alice", "pw", "desk")
	alice.ExpectStreamError("conflict")
	bob.Send("<message to='alice@example.com/desk' type='chat'><body>new</body></message>")
	if m := again.ExpectStanza("message", "from=bob@example.com/phone"); body(m) != "new" {
		t.Fatalf("replacement got %s", m)
	}

	// parley cluster status reads the same state from NATS: three live
	// nodes; alice/laptop on node 3, bob/phone and alice/desk on node 2.
	eng, err := cluster.DialNATS(cluster.NATSOptions{URLs: a.Config.Cluster.NATSURLs, Name: "status"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	st, err := cluster.ReadStatus(context.Background(), eng, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, n := range st.Nodes {
		if !n.Live {
			t.Errorf("node %s reported dead", n.Name)
		}
		got[n.Name] = n.Sessions
	}
	if want := map[string]int{"node1": 0, "node2": 2, "node3": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sessions per node %v, want %v", got, want)
	}
}

// max_sessions_per_account counts the sessions on every node.
func TestClusterMaxSessions(t *testing.T) {
	nodes := startCluster(t, 2, "[limits]\nmax_sessions_per_account = 2\n")
	nodes[0].AddUser(t, "alice", "pw")
	nodes[0].Login(t, "alice", "pw", "one")
	nodes[1].Login(t, "alice", "pw", "two")
	c := nodes[1].Authenticated(t, "alice", "pw")
	c.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>")
	if el := c.ExpectStanza("iq", "id=b"); testserver.ErrorCondition(el) != "resource-constraint" {
		t.Fatalf("third session on another node: %s", el)
	}
}

const (
	nsMUC     = "http://jabber.org/protocol/muc"
	nsMUCUser = "http://jabber.org/protocol/muc#user"
	room      = "lounge@conference.example.com"
)

func hasStatus(el *xml.Element, code string) bool {
	x := el.Child(nsMUCUser, "x")
	if x == nil {
		return false
	}
	for _, s := range x.Elements() {
		if s.Local == "status" && s.Space == nsMUCUser && s.Attr("code") == code {
			return true
		}
	}
	return false
}

// joinRoom enters the room and waits for the occupant's own presence
// (status 110) and the subject that completes the join.
func joinRoom(t *testing.T, c *testserver.Client, nick string) *xml.Element {
	t.Helper()
	c.Send("<presence to='%s/%s'><x xmlns='%s'/></presence>", room, nick, nsMUC)
	self := c.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == room+"/"+nick && hasStatus(el, "110")
	})
	c.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Child("", "subject") != nil && el.Child("", "body") == nil
	})
	return self
}

func groupchat(t *testing.T, from *testserver.Client, text string, to ...*testserver.Client) {
	t.Helper()
	from.Send("<message to='%s' type='groupchat'><body>%s</body></message>", room, text)
	for _, c := range append(to, from) {
		c.Expect(func(el *xml.Element) bool {
			return el.Local == "message" && el.Attr("type") == "groupchat" && body(el) == text
		})
	}
}

// One room, occupants on three nodes, served by one of them. When that
// node loses NATS it closes its client streams (healthz says why), the
// others tell their occupants the room went away (status 332), and a
// rejoin brings the room back on a surviving node, which gives an occupant
// the XEP-0421 occupant-id the first node gave it (the key is in the
// shared storage).
func TestClusterRoomAcrossNodesAndOwnerLoss(t *testing.T) {
	nodes := startCluster(t, 3, "[http]\nlisten = \"127.0.0.1:0\"\n")
	nodes[0].AddUsers(t, "pw", "alice", "bob", "carol")
	alice := nodes[0].Online(t, "alice", "pw", "a")
	bob := nodes[1].Online(t, "bob", "pw", "b")
	carol := nodes[2].Online(t, "carol", "pw", "c")

	// alice creates a persistent room through node 1, which takes its
	// lease; the other nodes started before it existed.
	if self := joinRoom(t, alice, "alice"); !hasStatus(self, "201") {
		t.Fatalf("creation: %s", self)
	}
	if res := alice.IQ("set", room, "<query xmlns='"+nsMUC+"#owner'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE'><value>"+nsMUC+"#roomconfig</value></field>"+
		"<field var='muc#roomconfig_persistentroom'><value>1</value></field>"+
		"<field var='muc#roomconfig_roomname'><value>The Lounge</value></field>"+
		"</x></query>"); res.Attr("type") != "result" {
		t.Fatalf("configuration: %s", res)
	}
	bobID := joinRoom(t, bob, "bob").Child("urn:xmpp:occupant-id:0", "occupant-id")
	joinRoom(t, carol, "carol")
	groupchat(t, bob, "from node 2", alice, carol)
	groupchat(t, carol, "from node 3", alice, bob)

	// Node 1 loses NATS.
	lost := time.Now()
	nodes[0].Cluster().Engine().Close()
	alice.ExpectStreamError("system-shutdown")
	resp, err := httpGet("http://" + nodes[0].HTTPAddr().String() + "/healthz")
	if err != nil || resp.code != 503 || !strings.Contains(resp.body, "cluster") {
		t.Fatalf("healthz of the fenced node: %v %+v", err, resp)
	}
	// The others tell their occupants the room went away...
	for _, c := range []*testserver.Client{bob, carol} {
		c.Expect(func(el *xml.Element) bool {
			return el.Local == "presence" && el.Attr("type") == "unavailable" && hasStatus(el, "332")
		})
	}
	// ...and the room is back on a surviving node when they rejoin: taken
	// over from storage (not created anew: no 201), its name kept, alice
	// still its owner.
	if self := joinRoom(t, bob, "bob"); hasStatus(self, "201") {
		t.Fatalf("the persistent room was created anew after takeover: %s", self)
	} else if id := self.Child("urn:xmpp:occupant-id:0", "occupant-id"); bobID == nil || id == nil || id.Attr("id") != bobID.Attr("id") {
		t.Fatalf("occupant-id after takeover %s, before %v", self, bobID)
	}
	joinRoom(t, carol, "carol")
	info := carol.IQ("get", room, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(info.String(), "The Lounge") {
		t.Fatalf("room name lost in takeover: %s", info)
	}
	groupchat(t, carol, "after takeover", bob)
	if d := time.Since(lost); d > 10*time.Second {
		t.Fatalf("room back after %s", d)
	}
	// alice reconnects to node 2 and joins again, still the owner.
	alice = nodes[1].Online(t, "alice", "pw", "a")
	if self := joinRoom(t, alice, "alice"); !strings.Contains(self.String(), "affiliation='owner'") && !strings.Contains(self.String(), `affiliation="owner"`) {
		t.Fatalf("owner affiliation lost in takeover: %s", self)
	}
	groupchat(t, alice, "alice is back", bob, carol)
}

type httpResp struct {
	code int
	body string
}

func httpGet(u string) (httpResp, error) {
	resp, err := http.Get(u)
	if err != nil {
		return httpResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResp{resp.StatusCode, string(b)}, nil
}

// An XEP-0114 component connected to one node is reached from every node.
func TestClusterComponentOnAnyNode(t *testing.T) {
	var nodes []*testserver.TS
	dsn := clusterDSN(t)
	nats := natstest.Start(t, "127.0.0.150")
	for i := 0; i < 2; i++ {
		nodes = append(nodes, testserver.Start(t, fmt.Sprintf(`storage = "postgres"
postgres_dsn = %q
[[host]]
domain = "example.com"
[c2s]
listen = ["127.0.0.%d:0"]
direct_tls_listen = []
[component]
listen = "127.0.0.%d:0"
[[component.service]]
domain = "gw.example.com"
secret = "s3cret"
[cluster]
node = "node%d"
nats_urls = [%q]
heartbeat = "200ms"
lease = "2s"
`, dsn, 151+i, 151+i, i+1, nats.URL())))
	}
	nodes[0].AddUser(t, "alice", "pw")
	comp := testserver.Dial(t, nodes[0].ComponentAddr().String())
	comp.ReadHeaderOnly("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example.com'>")
	comp.Send("<handshake>%s</handshake>", component.Handshake(comp.Header.ID, "s3cret"))
	comp.ExpectStanza("handshake")

	alice := nodes[1].Online(t, "alice", "pw", "a")
	// The lease is written when the component connects: wait for it.
	eng, err := cluster.DialNATS(cluster.NATSOptions{URLs: []string{nats.URL()}, Name: "status"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := cluster.ReadStatus(context.Background(), eng, 2*time.Second)
		if err == nil && slices.ContainsFunc(st.Leases, func(l cluster.RoomStatus) bool {
			return l.Name == "component gw.example.com" && l.Node == "node1" && l.HolderUp
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no component lease: %+v %v", st, err)
		}
	}
	alice.Send("<message to='bot@gw.example.com'><body>ping</body></message>")
	comp.ExpectStanza("message", "to=bot@gw.example.com")
	comp.Send("<message from='bot@gw.example.com' to='alice@example.com/a'><body>pong</body></message>")
	if m := alice.ExpectStanza("message", "from=bot@gw.example.com"); body(m) != "pong" {
		t.Fatalf("alice got %s", m)
	}
}

// Federation from any node: alice on node 2 writes to a remote server,
// which verifies the dialback key by asking node 1 (its route to a.test);
// node 1 can, because the nodes share s2s.dialback_secret. The answer
// comes in on node 1 and reaches alice on node 2 through the cluster.
func TestClusterFederationFromAnyNode(t *testing.T) {
	dsn := clusterDSN(t)
	nats := natstest.Start(t, "127.0.0.150")
	remote := testserver.Start(t, `admin_socket = "-"
storage = "sqlite"
[[host]]
domain = "b.test"
[s2s]
enabled = true
listen = ["127.0.0.155:5269"]
connect_timeout = "5s"
accept_self_signed = true
[s2s.routes]
"a.test" = "127.0.0.151:5269"
`)
	var nodes []*testserver.TS
	for i := 0; i < 2; i++ {
		nodes = append(nodes, testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
storage = "postgres"
postgres_dsn = %q
[[host]]
domain = "a.test"
[c2s]
listen = ["127.0.0.%d:0"]
direct_tls_listen = []
[s2s]
enabled = true
listen = ["127.0.0.%d:5269"]
connect_timeout = "5s"
accept_self_signed = true
dialback_secret = "the-same-on-every-node-0123456789"
[s2s.routes]
"b.test" = "127.0.0.155:5269"
[cluster]
node = "node%d"
nats_urls = [%q]
heartbeat = "200ms"
lease = "2s"
`, dsn, 151+i, 151+i, i+1, nats.URL())))
	}
	nodes[0].AddUser(t, "alice@a.test", "pw")
	remote.AddUser(t, "bob@b.test", "pw")
	alice := nodes[1].Online(t, "alice@a.test", "pw", "home")
	bob := remote.Online(t, "bob@b.test", "pw", "work")
	alice.Send("<message to='bob@b.test' type='chat' id='m1'><body>hi bob</body></message>")
	if m := bob.ExpectStanza("message", "id=m1"); m.Attr("from") != alice.JID {
		t.Fatalf("bob got %s", m)
	}
	bob.Send("<message to='%s' type='chat' id='m2'><body>hi alice</body></message>", alice.JID)
	if m := alice.ExpectStanza("message", "id=m2"); m.Attr("from") != bob.JID {
		t.Fatalf("alice got %s", m)
	}
}

// Personal eventing across nodes: bob publishes on node 2; alice, his
// contact on node 1 whose client asked for +notify (XEP-0115 caps learnt
// on node 1, shared through the registry), gets the event; a roster push
// for alice's change reaches her other resource on node 2.
func TestClusterPEPAndRosterPush(t *testing.T) {
	nodes := startCluster(t, 2, "")
	nodes[0].AddUsers(t, "pw", "alice", "bob")
	subscribeBoth(t, nodes[0], "alice", "bob")
	const (
		nsCaps  = "http://jabber.org/protocol/caps"
		nsDisco = "http://jabber.org/protocol/disco#info"
		nsTune  = "http://jabber.org/protocol/tune"
	)
	feats := []string{nsDisco, nsCaps, nsTune + "+notify"}
	alice := nodes[0].Login(t, "alice", "pw", "a")
	alice.IQ("get", "", "<query xmlns='jabber:iq:roster'/>") // interested: roster pushes
	alice.Send("<presence><c xmlns='%s' hash='sha-1' node='https://test' ver='%s'/></presence>", nsCaps, capsVer(feats))
	for {
		el := alice.Expect(func(el *xml.Element) bool {
			return (el.Local == "presence" && el.Attr("from") == alice.JID) ||
				(el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsDisco, "query") != nil)
		})
		if el.Local == "presence" {
			break
		}
		var b strings.Builder
		for _, f := range feats {
			b.WriteString("<feature var='" + f + "'/>")
		}
		alice.Send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'><identity category='client' type='pc' name='test'/>%s</query></iq>",
			el.Attr("id"), el.Attr("from"), nsDisco, el.Child(nsDisco, "query").Attr("node"), b.String())
	}
	bob := nodes[1].Online(t, "bob", "pw", "b")
	alice2 := nodes[1].Login(t, "alice", "pw", "phone")
	alice2.IQ("get", "", "<query xmlns='jabber:iq:roster'/>")
	// alice/a's caps, learnt on node 1, reach node 2 with her session,
	// where bob's publication asks for them.
	aliceA := jid.MustParse(alice.JID)
	waitFor(t, "node 2 knows alice/a's caps", func() bool {
		s := nodes[1].Router().Session(aliceA)
		if s == nil {
			return false
		}
		v, _ := s.Value(sharedValue("caps")).(string)
		return strings.Contains(v, nsTune+"+notify")
	})

	res := bob.IQ("set", "", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='"+nsTune+"'><item id='t1'><tune xmlns='"+nsTune+"'><title>Cluster</title></tune></item></publish></pubsub>")
	if res.Attr("type") != "result" {
		t.Fatalf("publish: %s", res)
	}
	ev := alice.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("from") == "bob@example.com" &&
			el.Child("http://jabber.org/protocol/pubsub#event", "event") != nil
	})
	if !strings.Contains(ev.String(), "Cluster") {
		t.Fatalf("event: %s", ev)
	}

	// alice adds carol on node 1; her phone on node 2 gets the push.
	alice.IQ("set", "", "<query xmlns='jabber:iq:roster'><item jid='carol@example.com' name='Carol'/></query>")
	push := alice2.Expect(func(el *xml.Element) bool {
		return el.Local == "iq" && el.Attr("type") == "set" && el.Child("jabber:iq:roster", "query") != nil
	})
	if !strings.Contains(push.String(), "carol@example.com") {
		t.Fatalf("push: %s", push)
	}
}

// capsVer is the XEP-0115 verification string of a client/pc "test"
// with these features.
func capsVer(features []string) string {
	fs := slices.Clone(features)
	slices.Sort(fs)
	sum := sha1.Sum([]byte("client/pc//test<" + strings.Join(fs, "<") + "<"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// A room's message reaches the occupants on another node as one NATS
// message for all of them (module.Batch, the cluster's "fanout"), each
// occupant getting its own copy.
func TestClusterRoomFanoutOneMessagePerNode(t *testing.T) {
	nodes := startCluster(t, 2, "")
	nodes[0].AddUsers(t, "pw", "alice", "bob", "carol", "dave")
	alice := nodes[0].Online(t, "alice", "pw", "a")
	if self := joinRoom(t, alice, "alice"); !hasStatus(self, "201") {
		t.Fatalf("creation: %s", self)
	}
	if res := alice.IQ("set", room, "<query xmlns='"+nsMUC+"#owner'><x xmlns='jabber:x:data' type='submit'/></query>"); res.Attr("type") != "result" {
		t.Fatalf("instant room: %s", res)
	}
	var others []*testserver.Client
	for _, u := range []string{"bob", "carol", "dave"} {
		c := nodes[1].Online(t, u, "pw", "r")
		joinRoom(t, c, u)
		others = append(others, c)
	}
	var mu sync.Mutex
	var fanouts []int // targets of each fanout to node 2
	stop, err := nodes[0].Cluster().Engine().Subscribe("parley.node."+nodes[1].Cluster().Name(), func(m cluster.Msg) {
		if m.Op == "fanout" {
			mu.Lock()
			fanouts = append(fanouts, len(m.Targets))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	groupchat(t, alice, "to all of you", others...)
	waitFor(t, "one fanout message to node 2 for its three occupants", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(fanouts, 3)
	})
}
