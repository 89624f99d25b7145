package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/cluster/natstest"
	"parley/internal/storage"
	"parley/internal/testserver"
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
	time.Sleep(300 * time.Millisecond) // the registry carries the flag

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
