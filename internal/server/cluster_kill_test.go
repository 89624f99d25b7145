package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"parley/internal/cluster/natstest"
	"parley/internal/config"
	"parley/internal/sasl"
	"parley/internal/server"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// childNodeEnv names the config file of a node this test binary runs as a
// child process, so a test can SIGKILL a real node.
const childNodeEnv = "PARLEY_TEST_CLUSTER_NODE"

// runChildNode serves the config at path until killed, after writing the
// client listener's address to path + ".addr".
func runChildNode(path string) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	var logw io.Writer = io.Discard
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		logw = os.Stderr
	}
	srv, err := server.New(ctx, cfg, server.Options{Log: slog.New(slog.NewTextHandler(logw, nil))})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := os.WriteFile(path+".addr", []byte(srv.C2SAddrs()[0].String()), 0o600); err != nil {
		os.Exit(2)
	}
	select {}
}

type childNode struct {
	addr string
	cmd  *exec.Cmd
}

func (n *childNode) login(t *testing.T, user, res string) *testserver.Client {
	t.Helper()
	c := testserver.Dial(t, n.addr)
	c.Open("example.com")
	c.StartTLS("example.com")
	c.AuthPlain("example.com", user, "pw")
	c.Bind(res)
	return c
}

// startChildNode runs this test binary as a Parley node serving the
// config text (data_dir and admin_socket are added), killed when the test
// ends, and waits until it listens.
func startChildNode(t *testing.T, text string) *childNode {
	t.Helper()
	dir := t.TempDir()
	text = fmt.Sprintf("data_dir = %q\nadmin_socket = \"-\"\n", dir) + text
	path := filepath.Join(dir, "parley.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childNodeEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	n := &childNode{cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(path + ".addr")
		if err == nil && len(b) > 0 {
			n.addr = string(b)
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node (%s) did not start", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seedAccounts creates users (password "pw") and the roster items of
// pairs (owner, contact; subscription both) in the database of the config
// text base, before any node starts.
func seedAccounts(t *testing.T, base string, users []string, pairs [][2]string) {
	t.Helper()
	cfg, err := config.Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := sasl.DeriveCredentials("pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := st.Accounts().Create(context.Background(), storage.Account{Host: "example.com", Username: u, Creds: creds, CreatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pairs {
		if _, err := st.Roster().Put(context.Background(), p[0]+"@example.com", storage.RosterItem{JID: p[1] + "@example.com", Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()
}

const nsSM = "urn:xmpp:sm:3"

// The three-node check: three Parley processes on their own
// addresses over a three-server NATS cluster and one PostgreSQL database.
// Clients on different nodes chat, share presence and one room; the node
// holding alice and the room is killed with SIGKILL mid-conversation.
// alice reconnects to another node: every message bob had acknowledged
// reaches her (live, from offline storage or from her archive), none
// twice; the room is back within 10 s.
func TestClusterNodeSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three child server processes")
	}
	dsn := clusterDSN(t)
	nats := natstest.StartCluster(t, []string{"127.0.0.160", "127.0.0.161", "127.0.0.162"})
	var urls []string
	for _, s := range nats {
		urls = append(urls, fmt.Sprintf("%q", s.URL()))
	}
	// Accounts and subscriptions, straight into the shared database.
	base := fmt.Sprintf("storage = \"postgres\"\npostgres_dsn = %q\n[[host]]\ndomain = \"example.com\"\n", dsn)
	seedAccounts(t, base, []string{"alice", "bob", "carol"}, [][2]string{{"alice", "bob"}, {"bob", "alice"}})

	nodes := make([]*childNode, 3)
	for i := range nodes {
		nodes[i] = startChildNode(t, childNodeConfig(base, fmt.Sprintf("127.0.0.%d", 151+i), i+1, strings.Join(urls, ", "))+"replicas = 3\n")
	}

	alice := nodes[0].login(t, "alice", "a")
	alice.Send("<presence/>")
	alice.ExpectStanza("presence", "from=alice@example.com/a")
	bob := nodes[1].login(t, "bob", "b")
	bob.Send("<enable xmlns='%s'/>", nsSM)
	bob.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "enabled" })
	bob.Send("<presence/>")
	alice.ExpectStanza("presence", "from=bob@example.com/b")
	carol := nodes[2].login(t, "carol", "c")
	carol.Send("<presence/>")
	carol.ExpectStanza("presence", "from=carol@example.com/c")

	// One room, created through node 1 (which serves it), joined from all.
	if self := joinRoom(t, alice, "alice"); !hasStatus(self, "201") {
		t.Fatalf("creation: %s", self)
	}
	alice.IQ("set", room, "<query xmlns='"+nsMUC+"#owner'><x xmlns='jabber:x:data' type='submit'/></query>")
	joinRoom(t, bob, "bob")
	joinRoom(t, carol, "carol")
	groupchat(t, carol, "hello room", alice, bob)

	// bob talks to alice; node 1 dies half way; bob goes on.
	const n = 40
	live := map[string]int{}
	for i := 0; i < n; i++ {
		if i == n/2 {
			for len(live) < n/2 {
				m := alice.ExpectStanza("message", "from=bob@example.com/b")
				live[body(m)]++
			}
			if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = nodes[0].cmd.Wait()
		}
		bob.Send("<message to='alice@example.com' type='chat' id='m%d'><body>m%d</body></message>", i, i)
	}
	bob.Send("<r xmlns='%s'/>", nsSM)
	a := bob.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "a" })
	// bob's <a/> counts his stanzas: presence, the room's join, message,
	// IQ... all of them handled, the 40 messages included.
	if a.Attr("h") == "" {
		t.Fatalf("no ack: %s", a)
	}
	killed := time.Now()

	// bob, alice's contact, learns that she is gone (RFC 6121 §4.5.2: the
	// server says so for a client that vanished; here a surviving node
	// does, for the dead one).
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@example.com/a" && el.Attr("type") == "unavailable"
	})
	// The others learn that the room went away, and bring it back.
	for _, c := range []*testserver.Client{bob, carol} {
		c.Expect(func(el *xml.Element) bool {
			return el.Local == "presence" && el.Attr("type") == "unavailable" && hasStatus(el, "332")
		})
	}
	if self := joinRoom(t, bob, "bob"); hasStatus(self, "201") {
		bob.IQ("set", room, "<query xmlns='"+nsMUC+"#owner'><x xmlns='jabber:x:data' type='submit'/></query>")
	}
	joinRoom(t, carol, "carol")
	groupchat(t, carol, "room is back", bob)
	if d := time.Since(killed); d > 10*time.Second {
		t.Fatalf("room back %s after the kill", d)
	}

	// alice comes back on node 3: offline messages arrive after her
	// initial presence, the rest is in her archive.
	alice = nodes[2].login(t, "alice", "a")
	alice.Send("<presence/>")
	// Offline messages are sent during initial presence, before the
	// archive query that follows is read.
	offline, archived := offlineAndArchived(t, alice, "bob@example.com/b")
	for i := 0; i < n; i++ {
		b := fmt.Sprintf("m%d", i)
		if live[b]+offline[b] > 1 {
			t.Errorf("%s delivered %d times", b, live[b]+offline[b])
		}
		if live[b]+offline[b] == 0 && !archived[b] {
			t.Errorf("%s, acknowledged to bob, is nowhere: not delivered, not offline, not archived", b)
		}
	}
	t.Logf("live %d, offline %d, archived %d of %d", len(live), len(offline), len(archived), n)
}

// offlineAndArchived queries c's archive after whatever offline messages
// its initial presence brought, and returns how often each body came from
// sender as an ordinary (offline) message, and which bodies the archive
// holds.
func offlineAndArchived(t *testing.T, c *testserver.Client, sender string) (offline map[string]int, archived map[string]bool) {
	t.Helper()
	c.Send("<iq type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
	offline, archived = map[string]int{}, map[string]bool{}
	for {
		el := c.Expect(func(el *xml.Element) bool {
			return (el.Local == "iq" && el.Attr("id") == "mam") || el.Local == "message"
		})
		if el.Local == "iq" {
			if el.Attr("type") != "result" {
				t.Fatalf("archive query: %s", el)
			}
			return offline, archived
		}
		if el.Attr("from") == sender {
			offline[body(el)]++
		}
		if r := el.Child("urn:xmpp:mam:2", "result"); r != nil {
			if fw := r.Child("urn:xmpp:forward:0", "forwarded"); fw != nil {
				if m := fw.Child("", "message"); m != nil {
					archived[body(m)] = true
				}
			}
		}
	}
}

// childNodeConfig is the configuration of cluster node number n on ip
// (clients on a free port, no HTTP), after base (storage, hosts), with
// short heartbeats and leases; natsURLs are the quoted, comma-separated
// NATS URLs. Further [cluster] keys may follow.
func childNodeConfig(base, ip string, n int, natsURLs string) string {
	return base + fmt.Sprintf(`[c2s]
listen = ["%s:0"]
direct_tls_listen = []
[http]
listen = ""
[cluster]
node = "node%d"
nats_urls = [%s]
heartbeat = "250ms"
lease = "2s"
`, ip, n, natsURLs)
}
