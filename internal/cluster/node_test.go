package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/storage"
	"parley/internal/storage/sqlite"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// fakeSession is a bound client as the router sees it; it records what
// reaches it and publishes its presence like c2s sessions do.
type fakeSession struct {
	r        *router.Router
	id       string
	jid      jid.JID
	mu       sync.Mutex
	got      []*xml.Element
	presence *xml.Element
	priority int
	values   map[any]any
	closed   atomic.Value // stanza.StreamCondition
}

func (s *fakeSession) JID() jid.JID { return s.jid }
func (s *fakeSession) ID() string   { return s.id }
func (s *fakeSession) SetJID(j jid.JID) {
	s.jid = j
}
func (s *fakeSession) Send(el *xml.Element) {
	s.mu.Lock()
	s.got = append(s.got, el)
	s.mu.Unlock()
}
func (s *fakeSession) Deliver(el *xml.Element) { s.Send(el) }
func (s *fakeSession) Close(c stanza.StreamCondition, _ string) {
	s.closed.Store(c)
	s.r.Unbind(s, s.jid)
}
func (s *fakeSession) Presence() *xml.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}
func (s *fakeSession) SetPresence(p *xml.Element) {
	s.mu.Lock()
	s.presence = p
	s.priority = 0
	if p != nil {
		fmt.Sscan(p.ChildText("", "priority"), &s.priority)
	}
	s.mu.Unlock()
	s.r.SessionChanged(s, nil)
}
func (s *fakeSession) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}
func (s *fakeSession) Interested() bool   { return false }
func (s *fakeSession) SetInterested(bool) {}
func (s *fakeSession) Value(k any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[k]
}
func (s *fakeSession) SetValue(k, v any) {
	s.mu.Lock()
	if s.values == nil {
		s.values = map[any]any{}
	}
	s.values[k] = v
	s.mu.Unlock()
	s.r.SessionChanged(s, k)
}
func (s *fakeSession) received() []*xml.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*xml.Element(nil), s.got...)
}

// testNode is one node: a router with host example.com on a shared store.
type testNode struct {
	r    *router.Router
	n    *Node
	eng  Engine
	down atomic.Int32
	up   atomic.Int32
	seq  atomic.Int32
}

// engines makes the engines of a cluster of n nodes.
type engines func(t testing.TB, n int) []Engine

func memEngines(t testing.TB, n int) []Engine {
	h := NewHub()
	out := make([]Engine, n)
	for i := range out {
		out[i] = h.Engine()
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startNodes(t testing.TB, mk engines, count, maxSessions int, roomDomains ...string) []*testNode {
	t.Helper()
	return startNodesWith(t, mk, count, maxSessions, nil, roomDomains...)
}

// startNodesWith is startNodes with tune, when not nil, changing node i's
// options (0-based) before it starts.
func startNodesWith(t testing.TB, mk engines, count, maxSessions int, tune func(i int, o *Options), roomDomains ...string) []*testNode {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.Accounts().Create(context.Background(), storage.Account{Host: "example.com", Username: u}); err != nil {
			t.Fatal(err)
		}
	}
	var out []*testNode
	for i, eng := range mk(t, count) {
		tn := &testNode{eng: eng}
		tn.r = router.New(quiet(), metrics.New(), maxSessions)
		h := module.NewHost("example.com")
		h.Store = st
		tn.r.AddHost(h)
		// A 3 s lease: a heartbeat write may take 1.5 s (Lease/2) before
		// the node fences itself, which a loaded CI machine's NATS
		// needs; the tests that wait for a node's death take that long.
		o := Options{
			Name: fmt.Sprintf("node%d", i+1), Heartbeat: 100 * time.Millisecond, Lease: 3 * time.Second,
			Log: quiet(), OnDown: func(string) { tn.down.Add(1) }, OnUp: func() { tn.up.Add(1) },
		}
		if tune != nil {
			tune(i, &o)
		}
		tn.n = New(eng, tn.r, o)
		tn.n.SetRoomDomains(roomDomains)
		tn.r.SetBus(tn.n)
		if err := tn.n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tn.n.Stop(context.Background()) })
		out = append(out, tn)
	}
	return out
}

func (tn *testNode) bind(t *testing.T, full string) *fakeSession {
	t.Helper()
	s, err := tn.tryBind(full)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (tn *testNode) tryBind(full string) (*fakeSession, error) {
	j := jid.MustParse(full)
	s := &fakeSession{r: tn.r, id: fmt.Sprintf("%s-%d", tn.n.Name(), tn.seq.Add(1))}
	_, replaced, err := tn.r.Bind(s, j.Bare(), j.Resource())
	if err != nil {
		return nil, err
	}
	if replaced != nil {
		replaced.Close("conflict", "replaced")
	}
	return s, nil
}

func available(prio int) *xml.Element {
	return xml.New("", "presence").Append(xml.New("", "priority").AppendText(fmt.Sprint(prio)))
}

func chat(to, body string) *xml.Element {
	return xml.New("", "message").SetAttr("from", "bob@example.com/x").SetAttr("to", to).
		SetAttr("type", "chat").Append(xml.New("", "body").AppendText(body))
}

// eventually polls cond (the registry and the subjects are asynchronous)
// with a deadline that tolerates a loaded machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func bodies(s *fakeSession) []string {
	var out []string
	for _, el := range s.received() {
		out = append(out, el.ChildText("", "body"))
	}
	return out
}

func runSuite(t *testing.T, mk engines) {
	t.Run("RoutingAcrossNodes", func(t *testing.T) { testRouting(t, mk) })
	t.Run("BareJIDSeesEveryNode", func(t *testing.T) { testBare(t, mk) })
	t.Run("ReplaceOnOtherNode", func(t *testing.T) { testReplace(t, mk) })
	t.Run("MaxSessionsClusterWide", func(t *testing.T) { testMax(t, mk) })
	t.Run("SharedValues", func(t *testing.T) { testShared(t, mk) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, mk) })
	t.Run("Leading", func(t *testing.T) { testLeading(t, mk) })
	t.Run("Notices", func(t *testing.T) { testNotices(t, mk) })
	t.Run("RoomHolderLost", func(t *testing.T) { testRoomHolderLost(t, mk) })
	t.Run("RefusedJoinForgotten", func(t *testing.T) { testRefusedJoin(t, mk) })
	t.Run("PeerBeforeTheWatch", func(t *testing.T) { testPeerBeforeWatch(t, mk) })
	t.Run("FanOutOneMessagePerNode", func(t *testing.T) { testFanOut(t, mk) })
}

func TestMemCluster(t *testing.T) { runSuite(t, memEngines) }

// A full JID on another node gets stanzas routed on this one, in order.
func testRouting(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0)
	a := ns[1].bind(t, "alice@example.com/phone")
	eventually(t, "node1 sees alice/phone", func() bool {
		return ns[0].r.Session(jid.MustParse("alice@example.com/phone")) != nil
	})
	const n = 200
	for i := 0; i < n; i++ {
		ns[0].r.Route(context.Background(), chat("alice@example.com/phone", fmt.Sprint(i)))
	}
	eventually(t, "all messages", func() bool { return len(a.received()) == n })
	for i, b := range bodies(a) {
		if b != fmt.Sprint(i) {
			t.Fatalf("message %d has body %q: order lost", i, b)
		}
	}
	// What crossed is Parley's own serialisation, parsed back: same tree.
	if got := a.received()[0]; got.Attr("type") != "chat" || got.Attr("to") != "alice@example.com/phone" {
		t.Fatalf("stanza changed on the way: %s", got)
	}
	// After unbind the other node forgets the session.
	ns[1].r.Unbind(a, a.jid)
	eventually(t, "node1 forgets alice/phone", func() bool {
		return ns[0].r.Session(jid.MustParse("alice@example.com/phone")) == nil
	})
}

// RFC 6121 §8.5.2.1.1 across nodes: highest non-negative priority wins,
// wherever the resource is bound.
func testBare(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 3, 0)
	lo := ns[0].bind(t, "alice@example.com/lo")
	hi := ns[1].bind(t, "alice@example.com/hi")
	neg := ns[2].bind(t, "alice@example.com/neg")
	lo.SetPresence(available(1))
	hi.SetPresence(available(5))
	neg.SetPresence(available(-1))
	alice := jid.MustParse("alice@example.com")
	eventually(t, "every node sees three available resources", func() bool {
		for _, tn := range ns {
			ss := tn.r.Sessions(alice)
			if len(ss) != 3 {
				return false
			}
			for _, s := range ss {
				if !module.Available(s) {
					return false
				}
			}
		}
		return true
	})
	for _, tn := range ns {
		if ts := tn.r.MessageTargets(alice, "chat"); len(ts) != 1 || ts[0].JID().Resource() != "hi" {
			t.Fatalf("%s: targets %v", tn.n.Name(), ts)
		}
	}
	ns[2].r.Route(context.Background(), chat("alice@example.com", "to-bare"))
	eventually(t, "hi gets the bare message", func() bool { return len(hi.received()) == 1 })
	ns[2].r.Route(context.Background(), xml.New("", "message").SetAttr("from", "bob@example.com/x").
		SetAttr("to", "alice@example.com").SetAttr("type", "headline").Append(xml.New("", "body").AppendText("h")))
	eventually(t, "headline to every non-negative resource", func() bool {
		return len(hi.received()) == 2 && len(lo.received()) == 1
	})
	time.Sleep(100 * time.Millisecond)
	if len(neg.received()) != 0 {
		t.Fatalf("negative priority got %d", len(neg.received()))
	}
	// A presence read on another node is the tree the client sent.
	p := ns[0].r.Session(jid.MustParse("alice@example.com/hi")).Presence()
	if p == nil || p.ChildText("", "priority") != "5" {
		t.Fatalf("presence seen on node1: %v", p)
	}
}

// RFC 6120 §7.7.2.2 across nodes: the new bind wins, the old session is
// closed with <conflict/> on its node before Bind returns.
func testReplace(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0)
	old := ns[0].bind(t, "alice@example.com/desk")
	eventually(t, "node2 sees it", func() bool { return ns[1].r.Session(jid.MustParse("alice@example.com/desk")) != nil })
	nw := ns[1].bind(t, "alice@example.com/desk")
	if c, _ := old.closed.Load().(stanza.StreamCondition); c != "conflict" {
		t.Fatalf("old session closed with %q", c)
	}
	if ns[0].r.LocalSession(jid.MustParse("alice@example.com/desk")) != nil {
		t.Fatal("old session still bound on node1")
	}
	eventually(t, "node1 routes to the new one", func() bool {
		s := ns[0].r.Session(jid.MustParse("alice@example.com/desk"))
		return s != nil && s.ID() == nw.id
	})
	ns[0].r.Route(context.Background(), chat("alice@example.com/desk", "x"))
	eventually(t, "new session gets it", func() bool { return len(nw.received()) == 1 })
	if len(old.received()) != 0 {
		t.Fatal("old session got a stanza after replacement")
	}
}

// limits.max_sessions_per_account counts every node, even when binds race.
func testMax(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 3, 2)
	var wg sync.WaitGroup
	var ok, refused atomic.Int32
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := ns[i%3].tryBind(fmt.Sprintf("alice@example.com/r%d", i))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, router.ErrResourceConstraint):
				refused.Add(1)
			default:
				t.Errorf("bind: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if ok.Load() != 2 || refused.Load() != 4 {
		t.Fatalf("%d binds succeeded, %d refused; want 2 and 4", ok.Load(), refused.Load())
	}
}

type flagKey struct{}

func (flagKey) SharedName() string  { return "flag" }
func (flagKey) Encode(v any) string { return v.(string) }
func (flagKey) Decode(s string) any { return s }

// A module.SharedKey value set on one node is read on the others.
func testShared(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0)
	s := ns[0].bind(t, "alice@example.com/a")
	s.SetValue(flagKey{}, "on")
	eventually(t, "node2 reads the flag", func() bool {
		p := ns[1].r.Session(jid.MustParse("alice@example.com/a"))
		return p != nil && p.Value(flagKey{}) == "on"
	})
}

// A node that loses its engine fences itself (OnDown, binds refused), the
// others forget its sessions after the lease, and it rejoins when the
// engine is back.
func testFencing(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0)
	a := ns[0].bind(t, "alice@example.com/a")
	_ = a
	full := jid.MustParse("alice@example.com/a")
	eventually(t, "node2 sees alice/a", func() bool { return ns[1].r.Session(full) != nil })
	cut, ok := ns[0].eng.(interface{ SetDown(bool) })
	if !ok {
		t.Skip("engine cannot be cut off")
	}
	cut.SetDown(true)
	eventually(t, "node1 fences", func() bool { return ns[0].down.Load() == 1 })
	if ns[0].n.Healthy() == nil {
		t.Fatal("fenced node reports healthy")
	}
	if _, err := ns[0].tryBind("alice@example.com/b"); !errors.Is(err, router.ErrUnavailable) {
		t.Fatalf("bind on a fenced node: %v", err)
	}
	eventually(t, "node2 forgets node1's session", func() bool { return ns[1].r.Session(full) == nil })
	// The JID is free for node2 now, without asking node1.
	ns[1].bind(t, "alice@example.com/a")
	cut.SetDown(false)
	eventually(t, "node1 rejoins", func() bool { return ns[0].up.Load() == 1 && ns[0].n.Healthy() == nil })
	ns[0].bind(t, "alice@example.com/c")
}

// A cluster-wide job runs on one node; when that node is cut off another
// takes it over.
func testLeading(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 3, 0)
	leaders := func() []int {
		var out []int
		for i, tn := range ns {
			if tn.n.Leading("purge") {
				out = append(out, i)
			}
		}
		return out
	}
	l := leaders()
	if len(l) != 1 {
		t.Fatalf("leaders %v, want one", l)
	}
	cut, ok := ns[l[0]].eng.(interface{ SetDown(bool) })
	if !ok {
		t.Skip("engine cannot be cut off")
	}
	cut.SetDown(true)
	eventually(t, "another node leads", func() bool {
		l2 := leaders()
		return len(l2) == 1 && l2[0] != l[0]
	})
	cut.SetDown(false)
}

// noticeLog records the notices one node heard, by topic.
type noticeLog struct {
	mu  sync.Mutex
	got map[string][]string
}

func (l *noticeLog) listen(n *Node, topic string) func() {
	return n.OnNotice(topic, func(p []byte) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.got == nil {
			l.got = map[string][]string{}
		}
		l.got[topic] = append(l.got[topic], string(p))
	})
}

func (l *noticeLog) of(topic string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got[topic]...)
}

// A notice reaches every other node once, on its topic only, and not the
// node that sent it nor a handler that was cancelled.
func testNotices(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 3, 0)
	logs := make([]*noticeLog, len(ns))
	cancels := make([]func(), len(ns))
	for i, tn := range ns {
		logs[i] = &noticeLog{}
		cancels[i] = logs[i].listen(tn.n, "directory-poll/ou=people,dc=example")
		logs[i].listen(tn.n, "marker")
	}
	if err := ns[0].n.Notify("directory-poll/ou=people,dc=example", []byte("changed")); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		eventually(t, fmt.Sprintf("node%d hears the notice", i+1), func() bool {
			return len(logs[i].of("directory-poll/ou=people,dc=example")) == 1
		})
	}
	// node2 answers on another topic once it heard node1: by then node1
	// has been handed its own notice, and must have dropped it.
	if err := ns[1].n.Notify("marker", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node1 hears node2", func() bool { return len(logs[0].of("marker")) == 1 })
	if got := logs[0].of("directory-poll/ou=people,dc=example"); len(got) != 0 {
		t.Fatalf("node1 heard its own notice: %v", got)
	}
	if got := logs[1].of("directory-poll/ou=people,dc=example"); got[0] != "changed" {
		t.Fatalf("payload %q", got)
	}
	// node3 stops listening; node1's next notice reaches node2 only, and
	// node3 hears the marker that follows it (same sender, in order).
	cancels[2]()
	_ = ns[0].n.Notify("directory-poll/ou=people,dc=example", []byte("again"))
	_ = ns[0].n.Notify("marker", nil)
	eventually(t, "node3 hears the marker", func() bool { return len(logs[2].of("marker")) == 2 })
	eventually(t, "node2 hears the second notice", func() bool {
		return len(logs[1].of("directory-poll/ou=people,dc=example")) == 2
	})
	if got := logs[2].of("directory-poll/ou=people,dc=example"); len(got) != 1 {
		t.Fatalf("node3 heard %v after cancelling", got)
	}
	eventually(t, "node2 hears node1's marker", func() bool { return len(logs[1].of("marker")) >= 1 })
	if got := logs[1].of("marker"); len(got) != 1 {
		t.Fatalf("node2 heard its own marker: %v", got)
	}
}

// Standalone is the lone node's side of the same interface: it leads
// every job and its notices go nowhere.
func TestStandalone(t *testing.T) {
	var s Standalone
	if !s.Leading("anything") {
		t.Fatal("a lone node must lead")
	}
	if err := s.Notify("t", nil); err != nil {
		t.Fatal(err)
	}
	s.OnNotice("t", func([]byte) { t.Fatal("a lone node heard a notice") })()
}

type nopComponent struct{}

func (nopComponent) Deliver(context.Context, *xml.Element, jid.JID, jid.JID) {}

// When the node serving a room dies, an occupant on another node gets an
// unavailable presence from its room nick with status 332 whose <x/>,
// <item/> and <status/> are all in the muc#user namespace: a client
// (slixmpp, for one) looks for {muc#user}status, so a status element in
// the stream's namespace would be no status at all.
func testRoomHolderLost(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0, "conference.example.com")
	for _, tn := range ns {
		tn.r.AddComponent("conference.example.com", nopComponent{}) // the room service; what it does is not tested here
	}
	room := "lounge@conference.example.com"
	join := func(tn *testNode, from, nick string) {
		tn.r.Route(context.Background(), xml.New("", "presence").SetAttr("from", from).SetAttr("to", room+"/"+nick).
			Append(xml.New("http://jabber.org/protocol/muc", "x")))
	}
	alice := ns[0].bind(t, "alice@example.com/a")
	_ = alice
	join(ns[0], "alice@example.com/a", "alice") // node1 routes to the room first: it serves it
	bob := ns[1].bind(t, "bob@example.com/b")
	join(ns[1], "bob@example.com/b", "bob") // node2 forwards to node1 and notes bob as an occupant
	cut, ok := ns[0].eng.(interface{ SetDown(bool) })
	if !ok {
		t.Skip("engine cannot be cut off")
	}
	cut.SetDown(true)
	var got *xml.Element
	eventually(t, "bob is told the room went away", func() bool {
		for _, el := range bob.received() {
			if el.Local == "presence" && el.Attr("type") == "unavailable" && el.Attr("from") == room+"/bob" {
				got = el
				return true
			}
		}
		return false
	})
	cut.SetDown(false)
	x := got.Child(nsMUCUser, "x")
	if x == nil || x.Child(nsMUCUser, "item") == nil {
		t.Fatalf("no muc#user <x/> with a muc#user <item/>: %s", got)
	}
	codes := map[string]bool{}
	for _, s := range x.Elements() {
		if s.Local == "status" && s.Space == nsMUCUser {
			codes[s.Attr("code")] = true
		}
	}
	if !codes["332"] || !codes["110"] {
		t.Fatalf("statuses 332 and 110 not in the muc#user namespace: %s", got)
	}
	if wire := string(got.AppendToNS(nil, "jabber:client")); strings.Contains(wire, "xmlns='jabber:client'") {
		t.Fatalf("children in the stream's namespace on the wire: %s", wire)
	}
}

// A session bound on one node is found by another at once, before that
// node's watch of the registry has brought the claim (the room's
// self-presence to a client that binds and joins at once).
func testPeerBeforeWatch(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0)
	// First, node 1 must know node 2 as live (its heartbeats come by the
	// same kind of watch, and can lag on a loaded machine).
	ns[1].bind(t, "dora@example.com/first")
	eventually(t, "node 1 sees node 2", func() bool { return ns[0].n.Peer(jid.MustParse("dora@example.com/first")) != nil })
	for i := 0; i < 20; i++ {
		full := "dora@example.com/r" + strconv.Itoa(i)
		ns[1].bind(t, full)
		if ns[0].n.Peer(jid.MustParse(full)) == nil {
			t.Fatalf("bind %d: the other node does not find %s", i, full)
		}
	}
}

// testNSOccupantID is XEP-0421's namespace, spelt out here so the test
// checks the wire, not the package's constant.
const testNSOccupantID = "urn:xmpp:occupant-id:0"

// answeringRoom is a room service that answers joins as XEP-0045 does
// in the two ways that matter to the occupant records: nick "refused"
// gets an error presence, any other nick a self-presence (status 110,
// with a XEP-0421 occupant-id).
type answeringRoom struct{ r *router.Router }

func (a answeringRoom) Deliver(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if el.Local != "presence" || el.Attr("type") != "" {
		return
	}
	reply := xml.New("", "presence").SetAttr("from", to.String()).SetAttr("to", from.String())
	if to.Resource() == "refused" {
		reply.SetAttr("type", "error").Append(xml.New("", "error").SetAttr("type", "cancel").
			Append(xml.New("urn:ietf:params:xml:ns:xmpp-stanzas", "conflict")))
	} else {
		reply.Append(xml.New(nsMUCUser, "x").Append(
			xml.New(nsMUCUser, "item").SetAttr("affiliation", "none").SetAttr("role", "participant"),
			xml.New(nsMUCUser, "status").SetAttr("code", "110")),
			xml.New(testNSOccupantID, "occupant-id").SetAttr("id", "id-of-"+from.Bare().String()))
	}
	a.r.Route(ctx, reply)
}

// A join the room refused leaves no occupant record behind: when the
// room's holder dies, the user whose join was refused is not told it
// left a room it never entered (332), while an occupant whose later nick
// change was refused is still in and is told, with the occupant-id the
// room gave it (XEP-0421: on every presence the room sends).
func testRefusedJoin(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0, "conference.example.com")
	for _, tn := range ns {
		tn.r.AddComponent("conference.example.com", answeringRoom{tn.r})
	}
	room := "lounge@conference.example.com"
	join := func(tn *testNode, from, nick string) {
		tn.r.Route(context.Background(), xml.New("", "presence").SetAttr("from", from).SetAttr("to", room+"/"+nick).
			Append(xml.New("http://jabber.org/protocol/muc", "x")))
	}
	answered := func(s *fakeSession, n int) func() bool {
		return func() bool {
			k := 0
			for _, el := range s.received() {
				if el.Local == "presence" && strings.HasPrefix(el.Attr("from"), room+"/") {
					k++
				}
			}
			return k >= n
		}
	}
	alice := ns[0].bind(t, "alice@example.com/a")
	join(ns[0], "alice@example.com/a", "alice") // node1 serves the room
	eventually(t, "alice is in", answered(alice, 1))
	bob := ns[1].bind(t, "bob@example.com/b")
	carol := ns[1].bind(t, "carol@example.com/c")
	// The room's node must see the other node live to answer there; on
	// a loaded machine the first heartbeats can lag.
	eventually(t, "node 1 reaches bob and carol", func() bool {
		return ns[0].n.Peer(jid.MustParse("bob@example.com/b")) != nil && ns[0].n.Peer(jid.MustParse("carol@example.com/c")) != nil
	})
	// A join is sent again while unanswered (a repeated join changes
	// nothing in a room): what is tested is what the answers do to the
	// records, not that no answer is ever late.
	joinUntil := func(from, nick string, s *fakeSession, n int, what string) {
		t.Helper()
		for i := 0; ; i++ {
			join(ns[1], from, nick)
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) && !answered(s, n)() {
				time.Sleep(10 * time.Millisecond)
			}
			if answered(s, n)() {
				return
			}
			if i == 4 {
				t.Fatalf("timed out waiting: %s", what)
			}
		}
	}
	joinUntil("bob@example.com/b", "refused", bob, 1, "bob's join is refused")
	joinUntil("carol@example.com/c", "carol", carol, 1, "carol is in")
	joinUntil("carol@example.com/c", "refused", carol, 2, "carol's nick change is refused") // refused
	if got := bob.received()[0]; got.Attr("type") != "error" {
		t.Fatalf("bob got %s, want an error", got)
	}

	cut, ok := ns[0].eng.(interface{ SetDown(bool) })
	if !ok {
		t.Skip("engine cannot be cut off")
	}
	cut.SetDown(true)
	defer cut.SetDown(false)
	var gone *xml.Element
	eventually(t, "carol is told the room went away", func() bool {
		for _, el := range carol.received() {
			if el.Attr("type") == "unavailable" && el.Attr("from") == room+"/carol" {
				gone = el
				return true
			}
		}
		return false
	})
	if oid := gone.Child(testNSOccupantID, "occupant-id"); oid == nil || oid.Attr("id") != "id-of-carol@example.com" {
		t.Fatalf("332 presence without the room's occupant-id: %s", gone)
	}
	// The notices go out in one pass over the records: bob's would be
	// there by now.
	for _, el := range bob.received() {
		if el.Attr("type") == "unavailable" {
			t.Fatalf("bob, refused, was told he left: %s", el)
		}
	}
}

// recordingComponent notes, for each stanza delivered to the room
// service, whether the room had been reloaded by then.
type recordingComponent struct {
	reloaded *atomic.Bool
	mu       sync.Mutex
	early    int
	total    int
}

func (c *recordingComponent) Deliver(context.Context, *xml.Element, jid.JID, jid.JID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if !c.reloaded.Load() {
		c.early++
	}
}

// A node taking a room's lease reloads the room (OnRoomAcquired) before
// anything reaches its room service: a second stanza routed to the room
// meanwhile waits, instead of being served by whatever the service held
// in memory.
func TestRoomTakeoverServesNothingBeforeReload(t *testing.T) {
	eng := NewHub().Engine()
	r := router.New(quiet(), metrics.New(), 0)
	h := module.NewHost("example.com")
	r.AddHost(h)
	var reloaded atomic.Bool
	entered := make(chan struct{})
	release := make(chan struct{})
	n := New(eng, r, Options{
		Name: "node1", Heartbeat: 100 * time.Millisecond, Lease: time.Second, Log: quiet(),
		OnRoomAcquired: func(context.Context, jid.JID) error {
			close(entered)
			<-release // storage is slow
			reloaded.Store(true)
			return nil
		},
	})
	n.SetRoomDomains([]string{"conference.example.com"})
	r.SetBus(n)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	comp := &recordingComponent{reloaded: &reloaded}
	r.AddComponent("conference.example.com", comp)

	msg := func(from string) *xml.Element {
		return xml.New("", "message").SetAttr("from", from).SetAttr("to", "lounge@conference.example.com").
			SetAttr("type", "groupchat").Append(xml.New("", "body").AppendText("hi"))
	}
	// A second node, which will see node 1 as the holder as soon as its
	// lease is written and forward to it.
	r2 := router.New(quiet(), metrics.New(), 0)
	r2.AddHost(module.NewHost("example.com"))
	n2 := New(eng, r2, Options{Name: "node2", Heartbeat: 100 * time.Millisecond, Lease: time.Second, Log: quiet()})
	n2.SetRoomDomains([]string{"conference.example.com"})
	r2.SetBus(n2)
	if err := n2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Stop(context.Background()) })
	comp2 := &recordingComponent{reloaded: &reloaded}
	r2.AddComponent("conference.example.com", comp2)

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); r.Route(context.Background(), msg("alice@example.com/a")) }()
	<-entered
	go func() { defer wg.Done(); r.Route(context.Background(), msg("bob@example.com/b")) }()
	go func() { defer wg.Done(); r2.Route(context.Background(), msg("carol@example.com/c")) }()
	time.Sleep(300 * time.Millisecond) // the other stanzas' chance to overtake the reload
	close(release)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		comp.mu.Lock()
		total, early := comp.total, comp.early
		comp.mu.Unlock()
		if total == 3 || time.Now().After(deadline) {
			if total != 3 || early != 0 {
				t.Fatalf("%d of %d stanzas (one forwarded by node 2) reached the room service before it had reloaded the room", early, total)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	comp2.mu.Lock()
	defer comp2.mu.Unlock()
	if comp2.total != 0 {
		t.Fatalf("node 2 served the room itself (%d stanzas) while node 1 held it", comp2.total)
	}
}

// heardOf, asked before a claim sweeps an entry, says live only for the
// incarnation a node's heartbeat in the bucket shows now: not for another
// incarnation of a live node, nor for a node with no heartbeat.
func TestHeardOf(t *testing.T) {
	ns := startNodes(t, memEngines, 2, 0)
	n, inc2 := ns[0].n, ns[1].n.incarnation()
	ctx := context.Background()
	if !n.heardOf(ctx, "node2", inc2) && !n.live("node2", inc2) {
		t.Fatal("node2's current incarnation is neither known nor found in the bucket")
	}
	if n.heardOf(ctx, "node2", "an-old-incarnation") {
		t.Fatal("an incarnation node2 no longer runs counted as live")
	}
	if n.heardOf(ctx, "node9", "x") {
		t.Fatal("a node without a heartbeat counted as live")
	}
	if n.heardOf(ctx, n.Name(), "x") {
		t.Fatal("this node's own other incarnation counted as live")
	}
}

// A takeover whose reload fails (storage unreachable) serves nothing from
// what the node held: the stanza is answered with a temporary error, the
// lease is given up, and a stanza after roomRetryAfter, from any node,
// takes the room over again, this time reloading it. A stanza another
// node forwarded during the failed takeover is answered the same way, not
// served.
func TestRoomTakeoverReloadFailure(t *testing.T) {
	var calls atomic.Int32
	var reloaded atomic.Bool
	entered := make(chan struct{})
	release := make(chan struct{})
	ns := startNodesWith(t, memEngines, 2, 0, func(i int, o *Options) {
		if i != 0 {
			return
		}
		o.OnRoomAcquired = func(context.Context, jid.JID) error {
			if calls.Add(1) == 1 {
				close(entered)
				<-release
				return errors.New("storage unreachable")
			}
			reloaded.Store(true)
			return nil
		}
	}, "conference.example.com")
	n, n2 := ns[0].n, ns[1].n
	room := &recordingComponent{reloaded: &reloaded}
	ns[0].r.AddComponent("conference.example.com", room)
	ns[1].r.AddComponent("conference.example.com", &recordingComponent{reloaded: &reloaded})
	alice := ns[0].bind(t, "alice@example.com/a")
	bob := ns[1].bind(t, "bob@example.com/b")
	eventually(t, "each node sees the other's session", func() bool {
		return ns[0].r.Session(jid.MustParse("bob@example.com/b")) != nil && ns[1].r.Session(jid.MustParse("alice@example.com/a")) != nil
	})
	lounge := jid.MustParse("lounge@conference.example.com")

	msg := func(from, id string) *xml.Element {
		return xml.New("", "message").SetAttr("from", from).SetAttr("to", lounge.String()).
			SetAttr("id", id).SetAttr("type", "groupchat").Append(xml.New("", "body").AppendText("hi"))
	}
	done := make(chan struct{})
	go func() { ns[0].r.Route(context.Background(), msg("alice@example.com/a", "m1")); close(done) }()
	<-entered
	// Node 2 sees node 1's fresh lease and forwards to it; node 1 holds
	// that stanza until the takeover has ended.
	eventually(t, "node 2 sees node 1's lease", func() bool {
		l, _, err := n2.holder(context.Background(), roomKey(lounge), true)
		return err == nil && l.Node == "node1"
	})
	go ns[1].r.Route(context.Background(), msg("bob@example.com/b", "m2"))
	time.Sleep(200 * time.Millisecond)
	close(release)
	<-done

	for _, c := range []struct {
		s  *fakeSession
		id string
	}{{alice, "m1"}, {bob, "m2"}} {
		var got *xml.Element
		eventually(t, "the answer to "+c.id, func() bool {
			for _, el := range c.s.received() {
				if el.Attr("id") == c.id {
					got = el
					return true
				}
			}
			return false
		})
		e := got.Child("", "error")
		if got.Attr("type") != "error" || e == nil || e.Attr("type") != "wait" || e.Child(stanza.NSStanzas, "internal-server-error") == nil {
			t.Fatalf("%s: want a temporary internal-server-error, got %s", c.id, got)
		}
	}
	// Within roomRetryAfter: answered at once; but only what may be
	// answered with an error (not an IQ result, not a presence of leaving).
	ns[0].r.Route(context.Background(), xml.New("", "presence").SetAttr("from", "alice@example.com/a").
		SetAttr("to", lounge.String()+"/alice").SetAttr("type", "unavailable"))
	ns[0].r.Route(context.Background(), xml.New("", "iq").SetAttr("from", "alice@example.com/a").
		SetAttr("to", lounge.String()+"/bob").SetAttr("type", "result").SetAttr("id", "r1"))
	ns[0].r.Route(context.Background(), msg("alice@example.com/a", "m2b"))
	eventually(t, "the answer to m2b", func() bool {
		got := alice.received()
		return len(got) > 0 && got[len(got)-1].Attr("id") == "m2b"
	})
	for _, el := range alice.received() {
		if el.Local != "message" {
			t.Fatalf("answered with an error: %s", el)
		}
	}
	room.mu.Lock()
	served := room.total
	room.mu.Unlock()
	if served != 0 {
		t.Fatalf("the room service got %d stanzas after a failed reload", served)
	}
	if _, err := n.leases.Get(context.Background(), roomKey(lounge)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lease after a failed reload: %v (want it given up)", err)
	}

	// Storage is back. Node 2 still names node 1 in its cache and
	// forwards there: node 1, which gave the lease up, takes the room
	// over again (after roomRetryAfter), reloads it and serves the
	// stanza rather than answering it with an error.
	time.Sleep(roomRetryAfter + 200*time.Millisecond)
	ns[1].r.Route(context.Background(), msg("bob@example.com/b", "m3"))
	eventually(t, "the reloaded room gets m3 from node 2", func() bool {
		room.mu.Lock()
		defer room.mu.Unlock()
		return room.total == 1 && room.early == 0
	})
	ns[0].r.Route(context.Background(), msg("alice@example.com/a", "m4"))
	eventually(t, "the room gets m4", func() bool {
		room.mu.Lock()
		defer room.mu.Unlock()
		return room.total == 2 && room.early == 0
	})
	if calls.Load() != 2 {
		t.Fatalf("reloads: %d, want 2", calls.Load())
	}
}

// In a fan-out (module.Batch) the copies of one stanza for the sessions
// of another node travel as one message, each session getting its own
// 'to', in order; copies that differ in more than 'to' break the run;
// without a batch each copy is a message of its own.
func testFanOut(t *testing.T, mk engines) {
	ns := startNodes(t, mk, 2, 0)
	var mu sync.Mutex
	var seen []string // op/targets of what reaches node2's subject
	stop, err := ns[0].eng.Subscribe(subjectPrefix+"node2", func(m Msg) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s/%d", m.Op, len(m.Targets)))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	recips := []string{"alice@example.com/phone", "alice@example.com/desk", "bob@example.com/x"}
	var sessions []*fakeSession
	for _, r := range recips {
		sessions = append(sessions, ns[1].bind(t, r))
	}
	eventually(t, "node1 sees the three sessions", func() bool {
		for _, r := range recips {
			if ns[0].r.Session(jid.MustParse(r)) == nil {
				return false
			}
		}
		return true
	})
	groupchat := func(body string) *xml.Element {
		return xml.New("", "message").SetAttr("from", "room@conference.example.com/nick").
			SetAttr("type", "groupchat").Append(xml.New("", "body").AppendText(body))
	}
	fan := func(msg *xml.Element, odd func(i int, el *xml.Element) *xml.Element) {
		ctx, b := module.WithBatch(context.Background())
		for i, r := range recips {
			el := msg.WithAttr("to", r)
			if odd != nil {
				el = odd(i, el)
			}
			ns[0].r.Route(ctx, el)
		}
		b.Flush()
	}
	fan(groupchat("one"), nil)
	fan(groupchat("two"), nil)
	// The middle copy carries an id the others lack: three runs.
	fan(groupchat("three"), func(i int, el *xml.Element) *xml.Element {
		if i == 1 {
			return el.WithAttr("id", "x")
		}
		return el
	})
	for _, r := range recips {
		ns[0].r.Route(context.Background(), groupchat("four").WithAttr("to", r))
	}
	for i, s := range sessions {
		eventually(t, recips[i]+" gets four messages", func() bool { return len(s.received()) == 4 })
		for k, el := range s.received() {
			if el.Attr("to") != recips[i] || el.ChildText("", "body") != []string{"one", "two", "three", "four"}[k] {
				t.Fatalf("%s's message %d: %s", recips[i], k, el)
			}
		}
	}
	want := []string{"fanout/3", "fanout/3", "send/0", "send/0", "send/0", "send/0", "send/0", "send/0"}
	eventually(t, "node 2's messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Fatalf("messages to node 2: %v, want %v", seen, want)
	}
}
