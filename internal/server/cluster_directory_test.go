package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"parley/internal/cluster/natstest"
	"parley/internal/directory/ldaptest"
	"parley/internal/testserver"
)

// refreshes reads parley_directory_refreshes_total{reason} of a node.
func refreshes(ts *testserver.TS, reason string) float64 {
	var m dto.Metric
	if err := ts.Metrics().DirectoryRefreshes.WithLabelValues(reason).Write(&m); err != nil {
		panic(err)
	}
	return m.Counter.GetValue()
}

// hasUser reports whether a node's directory snapshot lists username.
func hasUser(ts *testserver.TS, username string) bool {
	s := ts.Directory().Current()
	return s != nil && s.Users[username] != nil
}

// waitFor polls cond with a deadline generous enough for a loaded
// machine (the directory is polled every second).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pollers returns the live nodes whose poll counter moved while the
// leader polled `rounds` times. The leader is the first live node whose
// counter moves after the call.
func pollers(t *testing.T, nodes []*testserver.TS, live []int, rounds float64) []int {
	t.Helper()
	before := make(map[int]float64)
	for _, i := range live {
		before[i] = refreshes(nodes[i], "poll")
	}
	leader := -1
	waitFor(t, "a node polls", func() bool {
		for _, i := range live {
			if refreshes(nodes[i], "poll") > before[i] {
				leader = i
				return true
			}
		}
		return false
	})
	waitFor(t, "the leader polls again", func() bool { return refreshes(nodes[leader], "poll") >= before[leader]+rounds })
	var out []int
	for _, i := range live {
		if refreshes(nodes[i], "poll") > before[i] {
			out = append(out, i)
		}
	}
	return out
}

// The directory poller runs on one elected node: the others read the
// directory once at start and then only when the poller tells them of a
// change; when the poller's node stops another takes over.
func TestClusterDirectoryPolling(t *testing.T) {
	dsn := clusterDSN(t)
	srv := ldaptest.Start(t, "")
	nats := natstest.Start(t, "127.0.0.200")
	var nodes []*testserver.TS
	for i := 0; i < 3; i++ {
		cfg := fmt.Sprintf("storage = \"postgres\"\npostgres_dsn = %q\n", dsn) + directoryConfig(srv.Addr, "") + fmt.Sprintf(`[c2s]
listen = ["127.0.0.%d:0"]
direct_tls_listen = []
[cluster]
node = "node%d"
nats_urls = [%q]
heartbeat = "200ms"
lease = "2s"
`, 201+i, i+1, nats.URL())
		nodes = append(nodes, testserver.Start(t, cfg))
	}
	for i, ts := range nodes {
		waitFor(t, fmt.Sprintf("node%d's start read", i+1), func() bool { return refreshes(ts, "start") == 1 && hasUser(ts, "alice") })
	}

	// One node polls, over three rounds.
	all := []int{0, 1, 2}
	p := pollers(t, nodes, all, 3)
	if len(p) != 1 {
		t.Fatalf("nodes %v polled, want one", p)
	}
	leader := p[0]
	var followers []int
	for _, i := range all {
		if i != leader {
			followers = append(followers, i)
		}
	}
	t.Logf("node%d polls", leader+1)

	// A user added in the directory reaches every follower's snapshot
	// through the leader's notice (followers do not poll).
	notices := map[int]float64{}
	for _, i := range followers {
		notices[i] = refreshes(nodes[i], "notice")
	}
	srv.Modify(t, "dn: uid=frank,"+ldaptest.PeopleBase+"\nchangetype: add\nobjectClass: inetOrgPerson\nuid: frank\ncn: Frank Field\nsn: Field\n")
	for _, i := range followers {
		waitFor(t, fmt.Sprintf("node%d sees frank", i+1), func() bool { return hasUser(nodes[i], "frank") })
		if refreshes(nodes[i], "notice") <= notices[i] {
			t.Fatalf("node%d saw frank without a notice", i+1)
		}
		if n := refreshes(nodes[i], "poll"); n != 0 {
			t.Fatalf("follower node%d polled %v times", i+1, n)
		}
	}

	// The leader stops; one of the others takes the lease and polls.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	nodes[leader].Shutdown(ctx)
	cancel()
	p = pollers(t, nodes, followers, 3)
	if len(p) != 1 {
		t.Fatalf("after node%d stopped, nodes %v polled, want one", leader+1, p)
	}
	t.Logf("node%d took over", p[0]+1)
	var other int
	for _, i := range followers {
		if i != p[0] {
			other = i
		}
	}
	// ...and tells the remaining follower of the next change.
	srv.Modify(t, "dn: uid=frank,"+ldaptest.PeopleBase+"\nchangetype: delete\n")
	waitFor(t, fmt.Sprintf("node%d forgets frank", other+1), func() bool { return !hasUser(nodes[other], "frank") })
	if n := refreshes(nodes[other], "poll"); n != 0 {
		t.Fatalf("follower node%d polled %v times", other+1, n)
	}
}
