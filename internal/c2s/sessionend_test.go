package c2s_test

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
)

// A bound session ended by a stream error of ours (here invalid-from, RFC
// 6120 §8.1.2.1) must release everything it holds: the writer goroutine,
// the router entry, the per-address connection slot and the gauges. Before
// the fix the writer was never told to stop, the connection's goroutine
// waited for it forever, and after limits.max_connections_per_ip such
// sessions every later login from the address was refused at accept.
func TestStreamErrorAfterBindReleasesEverything(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_connections_per_ip = 20\n")
	ts.AddUser(t, "alice", "password1")
	conns := ts.Metrics().Connections.WithLabelValues("c2s")
	sessions := ts.Metrics().Sessions.WithLabelValues(ts.Domain())

	warm := ts.Login(t, "alice", "password1", "warm")
	warm.Close()
	warm.ExpectClosed()
	waitFor(t, "connections back to 0", func() bool { return gaugeValue(conns) == 0 })
	testserver.WaitNoPooledDrains(t)
	baseGoroutines := runtime.NumGoroutine()

	const rounds = 300 // far more than max_connections_per_ip
	for i := range rounds {
		c := ts.Login(t, "alice", "password1", "r")
		c.Send("<message from='mallory@localhost/x' to='alice@localhost'><body>%d</body></message>", i)
		c.ExpectStreamError("invalid-from")
		_ = c.Conn.Close()
		// The server tears the session down after the client saw the
		// error; on a loaded machine that can lag a few logins behind.
		// A leaked slot never comes back, which this wait reports.
		waitFor(t, "the connection slot back", func() bool { return gaugeValue(conns) == 0 })
	}
	waitFor(t, "connections back to 0", func() bool { return gaugeValue(conns) == 0 })
	waitFor(t, "sessions back to 0", func() bool { return gaugeValue(sessions) == 0 })
	if n := len(ts.Router().AllSessions()); n != 0 {
		t.Fatalf("%d sessions still in the router", n)
	}
	waitFor(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseGoroutines+3 })

	// The address was not locked out.
	ts.Online(t, "alice", "password1", "after")

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.Shutdown(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// waitFor polls cond for up to ten seconds; the server tears sessions down
// asynchronously after the client sees the close.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("timed out waiting for %s; goroutines:\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

// Every way a bound session can end releases the writer, the router entry,
// the connection slot and the gauges exactly once: the gauges return to
// zero (a double release would take them below), the router forgets the
// session and no goroutine is left behind.
func TestEveryWaySessionEndsReleasesOnce(t *testing.T) {
	cfg := `
[limits]
max_connections_per_ip = 50
rate_bytes_per_second = 100000000
rate_burst_bytes = 100000000
`
	big := strings.Repeat("x", 200*1024)
	flood := func(t *testing.T, ts *testserver.TS, to string) {
		// bob writes ~16 MB at a recipient that never reads: more than
		// the loopback socket buffers hold.
		bob := ts.Login(t, "bob", "password1", "flood")
		for range 80 {
			bob.Send("<message to='%s'><body>%s</body></message>", to, big)
		}
		bob.Close()
	}
	cases := []struct {
		name   string
		config string
		end    func(t *testing.T, ts *testserver.TS, c *testserver.Client)
	}{
		{"our stream error", "", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			c.Send("<message from='mallory@localhost'/>")
			c.ExpectStreamError("invalid-from")
		}},
		{"unsupported stanza kind", "", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			c.Send("<bogus/>")
			c.ExpectStreamError("unsupported-stanza-type")
		}},
		{"peer closes the stream", "", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			c.Close()
			c.ExpectClosed()
		}},
		{"TCP reset", "", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			if tc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
				if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
				_ = tc.NetConn().Close()
			}
		}},
		{"replaced by a new bind", "", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			n := ts.Login(t, "alice", "password1", "r")
			c.ExpectStreamError("conflict")
			n.Close()
			n.ExpectClosed()
		}},
		{"account deleted", "", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			if _, err := ts.AccountDeleted(jid.MustParse("alice@localhost")); err != nil {
				t.Fatal(err)
			}
			c.ExpectStreamError("not-authorized")
		}},
		{"output queue overflow", "output_queue = 2\n", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			flood(t, ts, c.JID)
			waitFor(t, "a queue overflow", func() bool { return counterValue(ts.Metrics().QueueDrops) > 0 })
		}},
		{"write timeout", "write_timeout = \"300ms\"\n", func(t *testing.T, ts *testserver.TS, c *testserver.Client) {
			flood(t, ts, c.JID)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := testserver.Start(t, cfg+tc.config)
			ts.AddUsers(t, "password1", "alice", "bob")
			conns := ts.Metrics().Connections.WithLabelValues("c2s")
			sessions := ts.Metrics().Sessions.WithLabelValues(ts.Domain())
			base := runtime.NumGoroutine()
			for range 3 {
				c := ts.Online(t, "alice", "password1", "r")
				tc.end(t, ts, c)
				_ = c.Conn.Close()
				waitFor(t, "connections back to 0", func() bool { return gaugeValue(conns) == 0 })
				waitFor(t, "sessions back to 0", func() bool { return gaugeValue(sessions) == 0 })
				if n := len(ts.Router().AllSessions()); n != 0 {
					t.Fatalf("%d sessions still in the router", n)
				}
			}
			waitFor(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base+3 })
		})
	}
}

// Shutdown ends bound sessions promptly: nothing waits for the shutdown
// deadline.
func TestShutdownWithBoundSessionsIsPrompt(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	a := ts.Online(t, "alice", "password1", "a")
	ts.Online(t, "bob", "password1", "b")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.Shutdown(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	a.ExpectStreamError("system-shutdown")
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
