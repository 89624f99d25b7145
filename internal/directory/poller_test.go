package directory

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/internal/directory/ldaptest"
	"parley/internal/metrics"
)

// lone is a server without a cluster (what cluster.Standalone does: this
// package does not import the cluster).
type lone struct{}

func (lone) Leading(string) bool                  { return true }
func (lone) Notify(string, []byte) error          { return nil }
func (lone) OnNotice(string, func([]byte)) func() { return func() {} }

// pretend is an in-process cluster of directory pollers: one leader at
// a time (set by the test), notices delivered to every other member.
type pretend struct {
	leader atomic.Int32
	mu     sync.Mutex
	fns    map[int]map[string]func([]byte)
}

type member struct {
	c  *pretend
	id int
}

func (m member) Leading(string) bool { return int(m.c.leader.Load()) == m.id }

func (m member) Notify(topic string, p []byte) error {
	m.c.mu.Lock()
	var out []func([]byte)
	for id, fns := range m.c.fns {
		if id != m.id && fns[topic] != nil {
			out = append(out, fns[topic])
		}
	}
	m.c.mu.Unlock()
	for _, fn := range out {
		fn(p)
	}
	return nil
}

func (m member) OnNotice(topic string, fn func([]byte)) func() {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	if m.c.fns == nil {
		m.c.fns = map[int]map[string]func([]byte){}
	}
	if m.c.fns[m.id] == nil {
		m.c.fns[m.id] = map[string]func([]byte){}
	}
	m.c.fns[m.id][topic] = fn
	return func() {
		m.c.mu.Lock()
		defer m.c.mu.Unlock()
		delete(m.c.fns[m.id], topic)
	}
}

func refreshes(m *metrics.Metrics, reason string) float64 {
	return value(m.DirectoryRefreshes.WithLabelValues(reason))
}

// Two nodes share one directory: only the leader polls; its change
// reaches the other node as a notice, and when leadership moves the new
// leader polls and tells the old one.
func TestElectedPoller(t *testing.T) {
	srv := ldaptest.Start(t, "")
	c := &pretend{}
	c.leader.Store(1)
	type node struct {
		d *Directory
		m *metrics.Metrics
	}
	var nodes [2]node
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	groups := make([]atomic.Value, 2)
	for i := range nodes {
		d, m := newDir(t, []string{srv.Addr}, `poll_interval = "1s"`)
		nodes[i] = node{d, m}
		g := &groups[i]
		d.Watch(func(_, s *Snapshot) { g.Store(slices.Clone(s.Groups["engineering"])) })
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(ctx, member{c, i + 1}) }()
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	has := func(i int, u string) bool {
		g, _ := groups[i].Load().([]string)
		return slices.Contains(g, u)
	}
	wait("both started", func() bool { return refreshes(nodes[0].m, "start") == 1 && refreshes(nodes[1].m, "start") == 1 })
	wait("the leader polls", func() bool { return refreshes(nodes[0].m, "poll") >= 2 })

	srv.Modify(t, "dn: cn=engineering,"+ldaptest.GroupBase+"\nchangetype: modify\nadd: member\nmember: uid=carol,"+ldaptest.PeopleBase+"\n")
	wait("the follower sees the change", func() bool { return has(1, "carol") })
	if n := refreshes(nodes[1].m, "poll"); n != 0 {
		t.Fatalf("the follower polled %v times", n)
	}
	if refreshes(nodes[1].m, "notice") < 1 {
		t.Fatal("the follower read the directory without a notice")
	}

	// Leadership moves to node 2: it polls, node 1 stops polling.
	c.leader.Store(2)
	wait("the new leader polls", func() bool { return refreshes(nodes[1].m, "poll") >= 2 })
	before := refreshes(nodes[0].m, "poll")
	srv.Modify(t, "dn: cn=engineering,"+ldaptest.GroupBase+"\nchangetype: modify\ndelete: member\nmember: uid=carol,"+ldaptest.PeopleBase+"\n")
	wait("the old leader hears of the change", func() bool { return !has(0, "carol") })
	if after := refreshes(nodes[0].m, "poll"); after > before+1 {
		// One tick may have been on its way when leadership moved.
		t.Fatalf("node 1 polled %v times after losing the lead", after-before)
	}
}
