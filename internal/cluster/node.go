// Package cluster lets several Parley nodes serve the same domains. It
// implements router.Bus over an Engine (NATS with JetStream in production,
// an in-process Hub in tests):
//
//   - the session registry: one key per account (bare JID) in a key/value
//     bucket holds every bound resource with its node, session ID and
//     routing state; every write is a compare-and-swap on the key's
//     revision, so a full JID has one owner and max_sessions_per_account
//     holds on all nodes at once;
//   - node liveness: each node puts a heartbeat into the nodes bucket; a
//     node whose heartbeat is older than the lease is dead, its registry
//     entries are ignored at once and removed by whichever node notices;
//     a node that cannot write its own heartbeat for half the lease fences
//     itself (closes its client streams, refuses binds) before the others
//     can give its JIDs to anyone else;
//   - routing: a stanza for a session on another node is published on
//     that node's subject as XML serialised from Parley's own tree. One
//     connection publishes everything a node sends, so stanzas between a
//     pair of nodes, and so between a sender and a recipient, keep their
//     order;
//   - leases (rooms.go): one holder at a time for rooms and for the
//     cluster-wide jobs (directory polling, retention purges);
//   - notices (notices.go): a small "look again" from the node running
//     an elected job to all the others.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Bucket names and the subject prefix; a deployment runs one Parley
// cluster per NATS account.
const (
	SessionsBucket = "parley_sessions"
	NodesBucket    = "parley_nodes"
	LeasesBucket   = "parley_leases"
	subjectPrefix  = "parley.node."
	contentNS      = "jabber:client"
)

// Options configure a Node.
type Options struct {
	// Name identifies the node; unique in the cluster.
	Name string
	// Heartbeat is how often the node renews its liveness (default 1s).
	Heartbeat time.Duration
	// Lease is how long a node without a heartbeat counts as alive
	// (default 5s); a node fences itself after Lease/2 without one.
	Lease time.Duration
	// Limits parse stanzas from other nodes (the same as client streams).
	Limits xml.Limits
	Log    *slog.Logger
	// Metrics registers the node's collectors (nil: none).
	Metrics prometheus.Registerer
	// OnDown is called when the node fences itself (reason), OnUp when it
	// has rejoined. The server closes its client streams in OnDown.
	OnDown func(reason string)
	OnUp   func()
	// OnRoomAcquired is called when this node takes a chat room's lease
	// (free, or its holder died), before it serves the room: the MUC
	// reloads the room from storage. An error (storage unreachable) gives
	// the lease up again: the stanza that led here is answered with a
	// temporary error, and the next one retries the takeover, so a room
	// is never served from what this node held before.
	OnRoomAcquired func(ctx context.Context, room jid.JID) error
	// OnHandover prepares the resumable session of bare with resumption
	// id previd for another node where its client resumed (handover.go):
	// it applies the client's h and returns a copy of the session's state
	// and finish, which the node calls once with what the registry tells
	// of the session (router.HandoverOutcome);
	// router.ErrNoHandover when it has no such session,
	// *router.HandoverRefused when h is too high.
	OnHandover func(ctx context.Context, bare jid.JID, previd string, h uint32) (*router.Handover, func(router.HandoverOutcome), error)
	// HandoverWait bounds how long a holder waits for the new node to
	// bind a session it handed over before it keeps it (0: 10 s).
	HandoverWait time.Duration
}

// Node is this server's membership of a cluster.
type Node struct {
	opts     Options
	eng      Engine
	router   *router.Router
	log      *slog.Logger
	sessions Bucket
	nodes    Bucket
	leases   Bucket

	inc     atomic.Value // string: this incarnation (new after each rejoin)
	healthy atomic.Bool
	reason  atomic.Value // string: why not healthy

	mu      sync.RWMutex
	records map[string]record              // registry key → record, the whole cluster
	proxies map[jid.JID]map[string]*remote // bare JID → resource → other nodes' sessions
	members map[string]member              // node name → last heartbeat seen
	// inflight holds the session IDs claimed recently: the router binds
	// them after Claim returns, and until then their entries are not
	// stale although no local session has them yet.
	inflight map[string]time.Time
	// rereadAt notes when Peer last read an account's record because the
	// watched copy lacked the full JID asked for (reread).
	rereadAt map[jid.JID]time.Time
	shared   map[string]module.SharedKey
	// roomDomains are the chat services (rooms.go); rooms caches room
	// leases, occupants the local sessions in rooms held elsewhere.
	roomDomains map[string]bool
	rooms       map[string]roomLease // lease key → holder
	occupants   map[jid.JID]map[jid.JID]occupant
	// acquiring marks the rooms this node is taking over (rooms.go):
	// closed when the room has been reloaded and its lease cached.
	acquiring map[string]chan struct{}
	// reloadFailed notes when a takeover's reload last failed, per room
	// lease key: the next attempt waits roomRetryAfter.
	reloadFailed map[string]time.Time
	// compDomains are the XEP-0114 component domains (components.go).
	compDomains   map[string]bool
	compConnected func(string) bool
	compCache     map[string]compHolder
	compQueue     *queue[string]

	// notices are the OnNotice handlers (notices.go); nunsub ends the
	// subscription to noticeSubject.
	notices noticeHandlers
	nunsub  func()

	unsub   func()
	cancel  context.CancelFunc // the heartbeat loop
	wg      sync.WaitGroup
	wcancel context.CancelFunc // the watchers (restarted on rejoin)
	wwg     sync.WaitGroup

	m nodeMetrics
}

type member struct {
	Inc      string `json:"i"`
	Sessions int    `json:"s"`
	Started  int64  `json:"st"`
	seen     time.Time
}

// record is an account's bound resources on every node.
type record struct {
	R   map[string]entry `json:"r"`
	rev uint64
}

// entry is one bound resource.
type entry struct {
	Node       string            `json:"n"`
	Inc        string            `json:"i"`
	Sid        string            `json:"s"`
	Presence   string            `json:"p,omitempty"`
	Priority   int               `json:"pr,omitempty"`
	Interested bool              `json:"in,omitempty"`
	Shared     map[string]string `json:"v,omitempty"`
	// Prev is the ID of the session on another node this one continues
	// (a XEP-0198 handover, router.Continuing): that node's settle tells
	// the handover's bind from another bind of the same resource.
	Prev string `json:"c,omitempty"`
}

type nodeMetrics struct {
	up          prometheus.Gauge
	members     prometheus.Gauge
	sent        prometheus.Counter
	received    prometheus.Counter
	undelivered prometheus.Counter
	fenced      prometheus.Counter
}

var _ router.Bus = (*Node)(nil)

// New returns a node that is not started.
func New(eng Engine, r *router.Router, opts Options) *Node {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	n := &Node{
		opts: opts, eng: eng, router: r, log: opts.Log.With("node", opts.Name),
		records: make(map[string]record), proxies: make(map[jid.JID]map[string]*remote),
		members: make(map[string]member), shared: make(map[string]module.SharedKey),
		inflight: make(map[string]time.Time), rereadAt: make(map[jid.JID]time.Time),
		compCache: make(map[string]compHolder),
		rooms:     make(map[string]roomLease), occupants: make(map[jid.JID]map[jid.JID]occupant),
		acquiring:    make(map[string]chan struct{}),
		reloadFailed: make(map[string]time.Time),
	}
	n.compQueue = newQueue(n.componentChanged)
	n.inc.Store(newIncarnation())
	n.reason.Store("starting")
	n.m = nodeMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_cluster_up",
			Help: "1 while this node is a member of its cluster (NATS reachable, heartbeat current)."}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_cluster_nodes",
			Help: "Live nodes of the cluster, this one included."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_cluster_stanzas_sent_total",
			Help: "Stanzas sent to sessions on other nodes."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_cluster_stanzas_received_total",
			Help: "Stanzas received from other nodes for local sessions."}),
		undelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_cluster_stanzas_undelivered_total",
			Help: "Stanzas from other nodes whose session had ended here (the routing node archived them)."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_cluster_fenced_total",
			Help: "Times this node lost its cluster and closed its client streams."}),
	}
	if opts.Metrics != nil {
		for _, c := range []prometheus.Collector{n.m.up, n.m.members, n.m.sent, n.m.received, n.m.undelivered, n.m.fenced} {
			opts.Metrics.MustRegister(c)
		}
	}
	return n
}

func newIncarnation() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Engine returns the node's engine (tests cut it to play a lost link).
func (n *Node) Engine() Engine { return n.eng }

// Name is the node's name.
func (n *Node) Name() string { return n.opts.Name }

func (n *Node) incarnation() string { return n.inc.Load().(string) }

// Start opens the buckets, loads the registry and the members, subscribes
// to the node's subject and starts the heartbeat. The node is healthy
// when Start returns nil.
func (n *Node) Start(ctx context.Context) error {
	if err := n.join(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(1)
	go n.loop(lctx)
	return nil
}

// join opens the buckets (creating them: after a NATS restart they may be
// gone), subscribes, writes the heartbeat and loads the registry and the
// members afresh. Start and every rejoin after fencing use it.
func (n *Node) join(ctx context.Context) error {
	// The buckets are (re)created every time (a NATS restart may have
	// lost them); the handles are kept from the first join, so other
	// goroutines never see them change.
	var bs [3]Bucket
	for i, name := range []string{SessionsBucket, NodesBucket, LeasesBucket} {
		b, err := n.eng.Bucket(ctx, name)
		if err != nil {
			return fmt.Errorf("cluster: bucket %s: %w", name, err)
		}
		bs[i] = b
	}
	if n.sessions == nil {
		n.sessions, n.nodes, n.leases = bs[0], bs[1], bs[2]
	}
	var err error
	if n.unsub == nil {
		if n.unsub, err = n.eng.Subscribe(subjectPrefix+n.opts.Name, n.inbound); err != nil {
			return fmt.Errorf("cluster: subscribe: %w", err)
		}
	}
	if n.nunsub == nil {
		if n.nunsub, err = n.eng.Subscribe(noticeSubject, n.notice); err != nil {
			return fmt.Errorf("cluster: subscribe: %w", err)
		}
	}
	if en, err := n.nodes.Get(ctx, n.opts.Name); err == nil && time.Since(en.Created) < n.opts.Lease {
		if m := (member{}); json.Unmarshal(en.Value, &m) == nil && m.Inc != n.incarnation() {
			n.log.Warn("cluster: another node with this name sent a heartbeat recently (a restart, or two nodes share a name)")
		}
	}
	if err := n.beat(ctx); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	if n.wcancel != nil {
		n.wcancel()
		n.wwg.Wait()
	}
	n.mu.Lock()
	n.records = make(map[string]record)
	n.proxies = make(map[jid.JID]map[string]*remote)
	n.members = make(map[string]member)
	n.mu.Unlock()
	wctx, wcancel := context.WithCancel(context.Background())
	n.wcancel = wcancel
	if err := n.watchAll(ctx, wctx); err != nil {
		wcancel()
		return err
	}
	n.healthy.Store(true)
	n.m.up.Set(1)
	return nil
}

// watchAll starts the watchers of the registry and the members and waits
// until both have caught up.
func (n *Node) watchAll(ctx, wctx context.Context) error {
	for _, w := range []struct {
		b     Bucket
		apply func(Entry)
	}{{n.nodes, n.applyMember}, {n.sessions, n.applyRecord}} {
		ch, err := w.b.Watch(wctx)
		if err != nil {
			return fmt.Errorf("cluster: watch: %w", err)
		}
		ready := make(chan struct{})
		n.wwg.Add(1)
		go func(ch <-chan Entry, apply func(Entry), ready chan struct{}) {
			defer n.wwg.Done()
			for en := range ch {
				if en.Key == "" {
					if ready != nil {
						close(ready)
						ready = nil
					}
					continue
				}
				apply(en)
			}
		}(ch, w.apply, ready)
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Stop leaves the cluster: the heartbeat is deleted so the others forget
// this node at once rather than after the lease.
func (n *Node) Stop(ctx context.Context) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.wg.Wait()
	n.compQueue.close()
	n.unsub()
	n.nunsub()
	n.healthy.Store(false)
	n.reason.Store("stopped")
	_ = n.nodes.Delete(ctx, n.opts.Name, 0)
	if n.wcancel != nil {
		n.wcancel()
		n.wwg.Wait()
	}
	n.m.up.Set(0)
}

// Healthy returns nil while the node is a member of its cluster, else the
// reason (for /healthz).
func (n *Node) Healthy() error {
	if n.healthy.Load() {
		return nil
	}
	return errors.New(n.reason.Load().(string))
}

func (n *Node) beat(ctx context.Context) error {
	me := member{Inc: n.incarnation(), Sessions: len(n.router.AllSessions()), Started: time.Now().Unix()}
	b, _ := json.Marshal(me)
	ctx, cancel := context.WithTimeout(ctx, n.opts.Lease/2)
	defer cancel()
	_, err := n.nodes.Put(ctx, n.opts.Name, b)
	return err
}

// loop renews the heartbeat, fences the node when it cannot, rejoins when
// it can again, and removes dead nodes' registry entries.
func (n *Node) loop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := n.eng.Err()
		if err == nil {
			err = n.beat(ctx)
		}
		switch {
		case err == nil && n.healthy.Load():
			lastOK = time.Now()
			n.sweep(ctx)
			n.orphans()
		case err == nil:
			// Back: a new incarnation, so nothing of the fenced one
			// can be mistaken for current, and the registry read anew.
			n.inc.Store(newIncarnation())
			jctx, cancel := context.WithTimeout(ctx, n.opts.Lease)
			err := n.join(jctx)
			cancel()
			if err != nil {
				n.log.Warn("cluster: rejoin", "err", err)
				break
			}
			lastOK = time.Now()
			n.log.Info("cluster: rejoined")
			if n.opts.OnUp != nil {
				n.opts.OnUp()
			}
		case n.healthy.Load() && time.Since(lastOK) >= n.opts.Lease/2:
			n.fence("NATS unreachable: " + err.Error())
		}
		n.m.members.Set(float64(len(n.liveMembers())))
	}
}

// fence takes the node out of the cluster: no binds, every client stream
// closed (by OnDown) so that clients reconnect to another node, before
// the others can count this node dead and give its JIDs away.
func (n *Node) fence(reason string) {
	n.reason.Store(reason)
	n.healthy.Store(false)
	n.m.up.Set(0)
	n.m.fenced.Inc()
	n.log.Error("cluster: fenced: closing client streams", "reason", reason)
	if n.opts.OnDown != nil {
		n.opts.OnDown(reason)
	}
}

// live reports whether node (in incarnation inc) is a current member.
func (n *Node) live(node, inc string) bool {
	if node == n.opts.Name {
		return inc == n.incarnation() && n.healthy.Load()
	}
	n.mu.RLock()
	m, ok := n.members[node]
	n.mu.RUnlock()
	return ok && m.Inc == inc && time.Since(m.seen) < n.opts.Lease
}

// heardOf asks the nodes bucket whether another node's incarnation inc is
// live when this node's view says it is not: a node that has just joined
// (or restarted, with a new incarnation) may have claimed sessions before
// its first heartbeat reached this node's watch, and those must not be
// pruned as a dead node's. What the bucket shows is applied to the view.
//
// Only a node this node has no heartbeat of, or whose known incarnation is
// another, is looked up: a known incarnation whose heartbeats stopped is
// dead. The heartbeat read must be younger than the lease either way (the
// bucket keeps a crashed node's last one, and its clock may be ahead of
// this node's by less than a lease).
func (n *Node) heardOf(ctx context.Context, node, inc string) bool {
	if node == n.opts.Name {
		return false
	}
	n.mu.RLock()
	m, known := n.members[node]
	n.mu.RUnlock()
	if known && m.Inc == inc {
		return false
	}
	en, err := n.nodes.Get(ctx, node)
	if err != nil {
		return false
	}
	var bm member
	if json.Unmarshal(en.Value, &bm) != nil || bm.Inc != inc {
		return false
	}
	if age := time.Since(en.Created); age <= -n.opts.Lease || age >= n.opts.Lease {
		return false
	}
	n.applyMember(en)
	return true
}

func (n *Node) liveMembers() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for name, m := range n.members {
		if time.Since(m.seen) < n.opts.Lease || name == n.opts.Name {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (n *Node) applyMember(en Entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if en.Deleted {
		delete(n.members, en.Key)
		return
	}
	var m member
	if json.Unmarshal(en.Value, &m) != nil {
		return
	}
	// A value older than the lease (read at start) is already stale.
	m.seen = time.Now()
	if age := time.Since(en.Created); age > 0 && age < 24*time.Hour {
		m.seen = m.seen.Add(-age)
	}
	n.members[en.Key] = m
}

// key is the registry key of an account: NATS keys allow few characters,
// JIDs many.
func key(bare jid.JID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(bare.String()))
}

func bareOfKey(k string) (jid.JID, error) {
	b, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return jid.JID{}, err
	}
	return jid.Parse(string(b))
}

func (n *Node) applyRecord(en Entry) {
	bare, err := bareOfKey(en.Key)
	if err != nil {
		return
	}
	rec := record{rev: en.Revision}
	if !en.Deleted && json.Unmarshal(en.Value, &rec) != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur, ok := n.records[en.Key]; ok && cur.rev > en.Revision {
		return // our own write already applied a newer one
	}
	n.applyLocked(en.Key, bare, rec)
}

// applyLocked installs rec and keeps the proxies of other nodes' sessions
// in step: one *remote per session, so modules can compare them.
func (n *Node) applyLocked(k string, bare jid.JID, rec record) {
	if len(rec.R) == 0 {
		delete(n.records, k)
	} else {
		n.records[k] = rec
	}
	ps := n.proxies[bare]
	for res, p := range ps {
		e, ok := rec.R[res]
		if !ok || e.Node != p.node || e.Sid != p.sid {
			delete(ps, res)
		}
	}
	for res, e := range rec.R {
		if e.Node == n.opts.Name {
			continue
		}
		full, err := bare.WithResource(res)
		if err != nil {
			continue
		}
		if ps == nil {
			ps = make(map[string]*remote)
			n.proxies[bare] = ps
		}
		p := ps[res]
		if p == nil {
			p = &remote{n: n, full: full, node: e.Node, inc: e.Inc, sid: e.Sid}
			ps[res] = p
		}
		p.set(e, n.opts.Limits)
	}
	if len(ps) == 0 {
		delete(n.proxies, bare)
	}
}

// Peers implements router.Bus.
func (n *Node) Peers(bare jid.JID) []module.Session {
	n.mu.RLock()
	ps := make([]*remote, 0, len(n.proxies[bare]))
	for _, p := range n.proxies[bare] {
		ps = append(ps, p)
	}
	n.mu.RUnlock()
	var out []module.Session
	for _, p := range ps {
		if n.live(p.node, p.inc) {
			out = append(out, p)
		}
	}
	return out
}

// Peer implements router.Bus. A session the watched copy of the
// registry lacks may be newer than the copy: the record is read once more
// (reread) before the answer is no.
func (n *Node) Peer(full jid.JID) module.Session {
	if p := n.peer(full); p != nil {
		return p
	}
	if !n.reread(full) {
		return nil
	}
	return n.peer(full)
}

func (n *Node) peer(full jid.JID) module.Session {
	n.mu.RLock()
	p := n.proxies[full.Bare()][full.Resource()]
	n.mu.RUnlock()
	if p == nil || !n.live(p.node, p.inc) {
		return nil
	}
	return p
}

// Bounds of reread.
const (
	rereadEvery   = 100 * time.Millisecond // per full JID
	rereadTimeout = time.Second
	rereadMax     = 10000 // full JIDs remembered
)

// reread reads the registry record of full's account and applies it,
// reporting whether it did. The watch that keeps this node's copy is asynchronous, and a
// stanza can overtake the claim it follows: a client binds on one node
// and at once joins a room held on this one, whose self-presence to the
// new full JID would otherwise be dropped here. Stanzas to a resource
// that is gone cost a read at most every rereadEvery.
func (n *Node) reread(full jid.JID) bool {
	if !n.healthy.Load() {
		return false // cut off: the read would only wait for its timeout
	}
	now := time.Now()
	n.mu.Lock()
	if t, ok := n.rereadAt[full]; ok && now.Sub(t) < rereadEvery {
		n.mu.Unlock()
		return false
	}
	if len(n.rereadAt) >= rereadMax {
		clear(n.rereadAt)
	}
	n.rereadAt[full] = now
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), rereadTimeout)
	defer cancel()
	en, err := n.sessions.Get(ctx, key(full.Bare()))
	if err != nil {
		return false
	}
	n.applyRecord(en)
	return true
}

// update runs fn on bare's record with compare-and-swap until it sticks
// (or fn says there is nothing to write). fn returns false to write
// nothing.
func (n *Node) update(ctx context.Context, bare jid.JID, fn func(rec *record) (bool, error)) error {
	k := key(bare)
	for attempt := 0; attempt < 20; attempt++ {
		rec := record{R: map[string]entry{}}
		en, err := n.sessions.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(en.Value, &rec); err != nil {
				return err
			}
			if rec.R == nil {
				rec.R = map[string]entry{}
			}
			rec.rev = en.Revision
		}
		write, err := fn(&rec)
		if err != nil || !write {
			return err
		}
		var rev uint64
		switch {
		case len(rec.R) == 0 && rec.rev == 0:
			return nil
		case len(rec.R) == 0:
			err = n.sessions.Delete(ctx, k, rec.rev)
		case rec.rev == 0:
			b, _ := json.Marshal(rec)
			rev, err = n.sessions.Create(ctx, k, b)
		default:
			b, _ := json.Marshal(rec)
			rev, err = n.sessions.Update(ctx, k, b, rec.rev)
		}
		if errors.Is(err, ErrExists) || errors.Is(err, ErrRevision) {
			continue
		}
		if err != nil {
			return err
		}
		if rev != 0 {
			rec.rev = rev
			n.mu.Lock()
			if cur, ok := n.records[k]; !ok || cur.rev < rev {
				n.applyLocked(k, bare, rec)
			}
			n.mu.Unlock()
		}
		return nil
	}
	return errors.New("cluster: registry contended")
}

// prune drops the entries of nodes that are not live, and this node's
// entries whose session is gone.
// It returns the other nodes' entries it dropped: sessions that ended
// with their node, which ended() announces once written.
func (n *Node) prune(ctx context.Context, bare jid.JID, rec *record) map[string]entry {
	var gone map[string]entry
	for res, e := range rec.R {
		stale := !n.live(e.Node, e.Inc) && !n.heardOf(ctx, e.Node, e.Inc)
		if stale && e.Node != n.opts.Name {
			if gone == nil {
				gone = map[string]entry{}
			}
			gone[res] = e
		}
		if !stale && e.Node == n.opts.Name && !n.claiming(e.Sid) {
			full, err := bare.WithResource(res)
			s := n.router.LocalSession(full)
			stale = err != nil || s == nil || s.ID() != e.Sid
		}
		if stale {
			delete(rec.R, res)
		}
	}
	return gone
}

// ended fires the unbound event for sessions whose node died, on the node
// that removed them from the registry (one node: the removal is a
// revision-checked write): the presence module tells their contacts and
// the account's other resources that they are unavailable, as it does for
// a client that vanished (RFC 6121 §4.5.2), and the other modules forget
// them.
func (n *Node) ended(bare jid.JID, gone map[string]entry) {
	h := n.router.Host(bare.Domain())
	if h == nil {
		return
	}
	for res, e := range gone {
		full, err := bare.WithResource(res)
		if err != nil {
			continue
		}
		p := &remote{n: n, full: full, node: e.Node, inc: e.Inc, sid: e.Sid}
		p.set(e, n.opts.Limits)
		h.Sessions.Fire(module.EventSessionUnbound, &module.SessionEvent{
			Ctx: context.Background(), Host: h, Session: p, Reason: "its node " + e.Node + " is gone",
		})
	}
}

func (n *Node) entryOf(s module.Session) entry {
	e := entry{Node: n.opts.Name, Inc: n.incarnation(), Sid: s.ID(), Interested: s.Interested()}
	if c, ok := s.(router.Continuing); ok {
		e.Prev = c.Continues()
	}
	if p := s.Presence(); p != nil {
		e.Presence = string(p.AppendToNS(nil, contentNS))
		e.Priority = s.Priority()
	}
	return e
}

// claimGrace is how long a claimed entry without a local session yet is
// taken for a bind in progress (the router's claim timeout and more).
const claimGrace = 30 * time.Second

func (n *Node) claiming(sid string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	t, ok := n.inflight[sid]
	return ok && time.Since(t) < claimGrace
}

// markClaiming records sid as a claim in flight (claiming) from now, and
// forgets claims long past their grace.
func (n *Node) markClaiming(sid string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	n.inflight[sid] = now
	for id, t := range n.inflight {
		if now.Sub(t) > 2*claimGrace {
			delete(n.inflight, id)
		}
	}
}

// Claim implements router.Bus.
func (n *Node) Claim(ctx context.Context, full jid.JID, s module.Session, max int) (module.Session, error) {
	if !n.healthy.Load() {
		return nil, router.ErrUnavailable
	}
	// In flight before the write, not after: a concurrent claim on this
	// node for the same account prunes this node's entries whose session
	// is not bound here yet, and would otherwise prune this one between
	// the write and the bind, letting more sessions than max in.
	n.markClaiming(s.ID())
	var prev entry
	var had bool
	var gone map[string]entry
	err := n.update(ctx, full.Bare(), func(rec *record) (bool, error) {
		gone = n.prune(ctx, full.Bare(), rec)
		prev, had = rec.R[full.Resource()]
		others := len(rec.R)
		if had {
			others--
		}
		if max > 0 && others >= max {
			return false, router.ErrResourceConstraint
		}
		e := n.entryOf(s)
		e.Presence, e.Priority, e.Interested = "", 0, false // a new session has none yet
		rec.R[full.Resource()] = e
		return true, nil
	})
	if err != nil {
		n.mu.Lock()
		delete(n.inflight, s.ID())
		n.mu.Unlock()
		if errors.Is(err, router.ErrResourceConstraint) {
			return nil, err
		}
		n.log.Warn("cluster: claim", "jid", full.String(), "err", err)
		return nil, router.ErrUnavailable
	}
	go n.ended(full.Bare(), gone)
	n.markClaiming(s.ID()) // the grace runs from the claim's write
	if had && prev.Node != n.opts.Name {
		return &remote{n: n, full: full, node: prev.Node, inc: prev.Inc, sid: prev.Sid}, nil
	}
	return nil, nil
}

// Release implements router.Bus.
func (n *Node) Release(full jid.JID, s module.Session) {
	if !n.healthy.Load() {
		return // fenced: the others prune this incarnation's entries
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	err := n.update(ctx, full.Bare(), func(rec *record) (bool, error) {
		e, ok := rec.R[full.Resource()]
		if !ok || e.Node != n.opts.Name || e.Sid != s.ID() {
			return false, nil
		}
		delete(rec.R, full.Resource())
		return true, nil
	})
	if err != nil {
		n.log.Warn("cluster: release", "jid", full.String(), "err", err)
	}
}

// Changed implements router.Bus.
func (n *Node) Changed(s module.Session, k module.SharedKey) {
	if !n.healthy.Load() {
		return
	}
	if k != nil {
		n.mu.Lock()
		n.shared[k.SharedName()] = k
		n.mu.Unlock()
	}
	full := s.JID()
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	err := n.update(ctx, full.Bare(), func(rec *record) (bool, error) {
		e, ok := rec.R[full.Resource()]
		if !ok || e.Node != n.opts.Name || e.Sid != s.ID() {
			return false, nil
		}
		ne := n.entryOf(s)
		ne.Shared = n.sharedValues(s)
		rec.R[full.Resource()] = ne
		return true, nil
	})
	if err != nil {
		n.log.Warn("cluster: publish session state", "jid", full.String(), "err", err)
	}
}

// sharedValues reads the module.SharedKey values a session has. A
// session cannot list its values, so the keys are those set on any
// session of this node so far (Changed learns them).
func (n *Node) sharedValues(s module.Session) map[string]string {
	n.mu.RLock()
	keys := make([]module.SharedKey, 0, len(n.shared))
	for _, k := range n.shared {
		keys = append(keys, k)
	}
	n.mu.RUnlock()
	var out map[string]string
	for _, k := range keys {
		if v := s.Value(k); v != nil {
			if out == nil {
				out = map[string]string{}
			}
			out[k.SharedName()] = k.Encode(v)
		}
	}
	return out
}

// sweep removes dead nodes' entries from the registry (any live node may;
// the revision check makes the race harmless).
func (n *Node) sweep(ctx context.Context) {
	n.mu.RLock()
	var dead []string
	for k, rec := range n.records {
		for _, e := range rec.R {
			if e.Node != n.opts.Name && !n.liveLocked(e.Node, e.Inc) {
				dead = append(dead, k)
				break
			}
		}
	}
	n.mu.RUnlock()
	for _, k := range dead {
		bare, err := bareOfKey(k)
		if err != nil {
			continue
		}
		var gone map[string]entry
		err = n.update(ctx, bare, func(rec *record) (bool, error) {
			gone = nil
			for res, e := range rec.R {
				if e.Node != n.opts.Name && !n.live(e.Node, e.Inc) {
					if gone == nil {
						gone = map[string]entry{}
					}
					gone[res] = e
					delete(rec.R, res)
				}
			}
			return gone != nil, nil
		})
		if err == nil {
			go n.ended(bare, gone) // off the heartbeat loop: many sessions may have gone
		}
	}
}

func (n *Node) liveLocked(node, inc string) bool {
	m, ok := n.members[node]
	return ok && m.Inc == inc && time.Since(m.seen) < n.opts.Lease
}

// send publishes a stanza for a session on another node.
func (n *Node) send(p *remote, op string, el *xml.Element) {
	n.publish(p.node, Msg{Op: op, To: p.full.String(), Sid: p.sid, Body: el.AppendToNS(nil, contentNS)})
}

// publish sends m to node's subject.
func (n *Node) publish(node string, m Msg) {
	if err := n.eng.Publish(subjectPrefix+node, m); err != nil {
		n.log.Warn("cluster: send", "to", m.To, "targets", len(m.Targets), "node", node, "err", err)
		return
	}
	n.m.sent.Add(float64(max(1, len(m.Targets)))) // stanzas, not messages
}

// closeRemote ends a session on another node and waits until it has
// ended there (its unavailable presence sent), as a local replacement
// waits for the old session.
func (n *Node) closeRemote(p *remote, cond stanza.StreamCondition, text string) {
	if !n.live(p.node, p.inc) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	_, err := n.eng.Request(ctx, subjectPrefix+p.node, Msg{Op: "close", To: p.full.String(), Sid: p.sid, Cond: string(cond), Text: text})
	if err != nil {
		n.log.Warn("cluster: close remote session", "jid", p.full.String(), "node", p.node, "err", err)
	}
}

// passOn handles a stanza another node sent to a session of this one that
// is not here (any more): if the registry now names a session of that
// full JID on a third node (a XEP-0198 session handed over, whose sender
// routed with an older copy of the registry), the stanza goes there as it
// came; otherwise it is dropped and counted, as a stanza to a session
// that just ended is. Only to another node: Peer never returns this
// node's own sessions, so a stanza cannot come back here by this path.
func (n *Node) passOn(op string, el *xml.Element, full jid.JID) {
	p, ok := n.Peer(full).(*remote)
	if !ok {
		n.m.undelivered.Inc()
		return
	}
	n.send(p, op, el)
}

// inbound handles what other nodes send to this one.
func (n *Node) inbound(m Msg) {
	switch m.Op {
	case "fanout":
		n.fanoutIn(m)
		return
	case "handover":
		go n.handoverIn(m)
		return
	}
	full, err := jid.Parse(m.To)
	if err != nil {
		return
	}
	s := n.router.LocalSession(full)
	if s != nil && s.ID() != m.Sid {
		s = nil
	}
	switch m.Op {
	case "send", "deliver":
		el, err := xml.ParseElement(m.Body, n.opts.Limits, contentNS)
		if err != nil {
			n.log.Warn("cluster: unparsable stanza from another node", "err", err)
			return
		}
		if s == nil {
			n.passOn(m.Op, el, full)
			return
		}
		n.m.received.Inc()
		n.roomAnswered(el, full)
		if m.Op == "send" {
			s.Send(el)
		} else {
			s.Deliver(el)
		}
	case "component":
		el, err := xml.ParseElement(m.Body, n.opts.Limits, contentNS)
		if err != nil {
			n.log.Warn("cluster: unparsable stanza from another node", "err", err)
			return
		}
		from, err := jid.Parse(el.Attr("from"))
		if err != nil {
			return
		}
		if n.roomDomains[full.Domain()] && full.Local() != "" && !n.awaitRoomLoad(full.Bare()) {
			// Not served here (a takeover that failed, or the sender's
			// view of the lease is older than this node's incarnation):
			// find the owner afresh, taking the room over if it is free,
			// rather than answer every stanza the sender forwards from
			// its cache with an error.
			ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
			l, err := n.roomOwner(ctx, full.Bare())
			cancel()
			switch {
			case err != nil:
				n.bounce(context.Background(), el, "the room could not be loaded; try again")
				return
			case !n.mine(l):
				n.forward(l.Node, el, from, full)
				return
			}
		}
		n.m.received.Inc()
		n.router.DeliverComponent(context.Background(), el, from, full)
	case "close":
		if s != nil {
			s.Close(stanza.StreamCondition(m.Cond), m.Text)
			// Wait (bounded) until it is gone, so the new session's
			// presence cannot overtake the old one's goodbye.
			for i := 0; i < 200 && n.router.LocalSession(full) == s; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if m.Reply != nil {
			m.Reply(Msg{Op: "ok"})
		}
	}
}
