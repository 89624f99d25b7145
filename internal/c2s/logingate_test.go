package c2s_test

import (
	"errors"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"parley/internal/testserver"
)

const gateHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"

// unanswered reports that c's connection receives nothing for a short
// while: its stream header waits at the gate. (A check that something does
// not happen: it can pass wrongly, never fail wrongly.)
func unanswered(t *testing.T, c *testserver.Client) {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.Conn.Read(make([]byte, 64))
	var ne net.Error
	if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a connection over limits.max_concurrent_logins was answered (%d bytes, %v)", n, err)
	}
	_ = c.Conn.SetReadDeadline(time.Time{})
}

// Login storms (issue 15): with every login slot taken, a new connection
// waits at accept, unanswered, until a login ends; then it is served.
func TestLoginsOverTheBoundWaitAtAccept(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_concurrent_logins = 1\nlogin_slot_timeout = \"1m\"\npreauth_timeout = \"2m\"\n")
	ts.AddUser(t, "alice", "alice-secret-1")
	d := ts.Domain()
	first := testserver.Dial(t, ts.StartTLSAddr())
	first.Open(d)
	second := testserver.Dial(t, ts.StartTLSAddr())
	second.Send(gateHeader, d)
	unanswered(t, second)
	first.StartTLS(d)
	unanswered(t, second)
	first.AuthPlain(d, "alice", "alice-secret-1")
	first.Bind("one") // logged in: the slot is free
	second.ReadHeaderOnly("")
	second.ExpectStanza("features")
	// And the first session is a normal one.
	first.Send("<iq type='get' id='p1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", d)
	first.ExpectStanza("iq", "id=p1", "type=result")
}

// A connection that sends nothing keeps its slot only
// limits.login_slot_timeout: it cannot hold logins shut (slowloris on the
// gate), and it is not cut off either.
func TestIdleConnectionGivesUpItsLoginSlot(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_concurrent_logins = 1\nlogin_slot_timeout = \"300ms\"\n")
	ts.AddUser(t, "alice", "alice-secret-1")
	d := ts.Domain()
	idle := testserver.Dial(t, ts.StartTLSAddr())
	second := testserver.Dial(t, ts.StartTLSAddr())
	second.ReadHeaderOnly("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + d + "' version='1.0'>")
	second.ExpectStanza("features")
	// The idle connection still logs in, within limits.preauth_timeout.
	idle.Open(d)
	idle.StartTLS(d)
	idle.AuthPlain(d, "alice", "alice-secret-1")
	idle.Bind("late")
}

// parley_login_seconds times a login from its slot to its bind: a login
// that waited at accept for a slot is timed without the wait, and one that
// held its slot a long time is timed with all of it.
func TestLoginSecondsStartsAtTheSlot(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_concurrent_logins = 1\nlogin_slot_timeout = \"1m\"\npreauth_timeout = \"2m\"\n")
	ts.AddUser(t, "alice", "alice-secret-1")
	d := ts.Domain()
	const held = 1500 * time.Millisecond
	first := testserver.Dial(t, ts.StartTLSAddr())
	first.Open(d)
	second := testserver.Dial(t, ts.StartTLSAddr())
	second.Send(gateHeader, d)
	time.Sleep(held) // first holds the only slot; second waits at accept
	first.StartTLS(d)
	first.AuthPlain(d, "alice", "alice-secret-1")
	first.Bind("one")
	second.ReadHeaderOnly("")
	second.ExpectStanza("features")
	second.StartTLS(d)
	second.AuthPlain(d, "alice", "alice-secret-1")
	second.Bind("two")

	var m dto.Metric
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := ts.Metrics().LoginSeconds.Write(&m); err != nil {
			t.Fatal(err)
		}
		if m.GetHistogram().GetSampleCount() >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h := m.GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Fatalf("%d logins observed, want 2", h.GetSampleCount())
	}
	if h.GetSampleSum() < held.Seconds() {
		t.Fatalf("sum %.3fs: the first login's %v holding its slot is missing", h.GetSampleSum(), held)
	}
	var quick uint64 // logins under a second: the second, its wait excluded
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() < 1 {
			quick = b.GetCumulativeCount()
		}
	}
	if quick != 1 {
		t.Fatalf("%d logins under 1s, want 1 (the one that waited %v at accept): %v", quick, held, h)
	}
}
