package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Hub is an in-process stand-in for a NATS cluster with JetStream: its
// engines share buckets and subjects. Tests run several nodes in one
// process on one Hub and cut a node off with SetDown.
type Hub struct {
	mu      sync.Mutex
	buckets map[string]*memBucket
	subs    map[string][]*memSub
	rev     uint64
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{buckets: make(map[string]*memBucket), subs: make(map[string][]*memSub)}
}

// Engine returns a new engine connected to the hub.
func (h *Hub) Engine() *MemEngine { return &MemEngine{hub: h} }

// MemEngine is one node's connection to a Hub.
type MemEngine struct {
	hub  *Hub
	down atomic.Bool
}

var _ Engine = (*MemEngine)(nil)

// SetDown cuts the engine off from the hub (true) or reconnects it.
func (e *MemEngine) SetDown(down bool) { e.down.Store(down) }

// Err implements Engine.
func (e *MemEngine) Err() error {
	if e.down.Load() {
		return ErrDown
	}
	return nil
}

// Close implements Engine.
func (e *MemEngine) Close() { e.down.Store(true) }

// Bucket implements Engine.
func (e *MemEngine) Bucket(_ context.Context, name string) (Bucket, error) {
	if err := e.Err(); err != nil {
		return nil, err
	}
	h := e.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.buckets[name]
	if b == nil {
		b = &memBucket{hub: h, data: make(map[string]Entry)}
		h.buckets[name] = b
	}
	return &memBucketConn{b: b, e: e}, nil
}

type memSub struct {
	e *MemEngine
	q *queue[Msg]
}

// Subscribe implements Engine.
func (e *MemEngine) Subscribe(subject string, fn func(Msg)) (func(), error) {
	if err := e.Err(); err != nil {
		return nil, err
	}
	s := &memSub{e: e, q: newQueue(fn)}
	h := e.hub
	h.mu.Lock()
	h.subs[subject] = append(h.subs[subject], s)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		l := h.subs[subject]
		for i, x := range l {
			if x == s {
				h.subs[subject] = append(l[:i:i], l[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
		s.q.close()
	}, nil
}

// Publish implements Engine.
func (e *MemEngine) Publish(subject string, m Msg) error {
	if err := e.Err(); err != nil {
		return err
	}
	h := e.hub
	h.mu.Lock()
	subs := append([]*memSub(nil), h.subs[subject]...)
	h.mu.Unlock()
	for _, s := range subs {
		if s.e.Err() == nil {
			s.q.push(m)
		}
	}
	return nil
}

// Request implements Engine.
func (e *MemEngine) Request(ctx context.Context, subject string, m Msg) (Msg, error) {
	ch := make(chan Msg, 1)
	m.Reply = func(r Msg) {
		select {
		case ch <- r:
		default:
		}
	}
	if err := e.Publish(subject, m); err != nil {
		return Msg{}, err
	}
	select {
	case r := <-ch:
		if err := e.Err(); err != nil {
			return Msg{}, err
		}
		return r, nil
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	}
}

type memBucket struct {
	hub      *Hub
	mu       sync.Mutex
	data     map[string]Entry
	watchers []*queue[Entry]
}

// memBucketConn is one engine's handle on a shared bucket: its operations
// fail while the engine is down.
type memBucketConn struct {
	b *memBucket
	e *MemEngine
}

func (c *memBucketConn) Get(_ context.Context, key string) (Entry, error) {
	if err := c.e.Err(); err != nil {
		return Entry{}, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	en, ok := c.b.data[key]
	if !ok {
		return Entry{}, ErrNotFound
	}
	return en, nil
}

// write stores v (nil: delete) at key if check passes on the current entry.
func (c *memBucketConn) write(key string, v []byte, del bool, check func(cur Entry, ok bool) error) (uint64, error) {
	if err := c.e.Err(); err != nil {
		return 0, err
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.data[key]
	if err := check(cur, ok); err != nil {
		return 0, err
	}
	b.hub.mu.Lock()
	b.hub.rev++
	rev := b.hub.rev
	b.hub.mu.Unlock()
	en := Entry{Key: key, Value: append([]byte(nil), v...), Revision: rev, Deleted: del, Created: time.Now()}
	if del {
		delete(b.data, key)
	} else {
		b.data[key] = en
	}
	for _, w := range b.watchers {
		w.push(en)
	}
	return rev, nil
}

func (c *memBucketConn) Create(_ context.Context, key string, v []byte) (uint64, error) {
	return c.write(key, v, false, func(_ Entry, ok bool) error {
		if ok {
			return ErrExists
		}
		return nil
	})
}

func (c *memBucketConn) Update(_ context.Context, key string, v []byte, rev uint64) (uint64, error) {
	return c.write(key, v, false, func(cur Entry, ok bool) error {
		if !ok || cur.Revision != rev {
			return ErrRevision
		}
		return nil
	})
}

func (c *memBucketConn) Put(_ context.Context, key string, v []byte) (uint64, error) {
	return c.write(key, v, false, func(Entry, bool) error { return nil })
}

func (c *memBucketConn) Delete(_ context.Context, key string, rev uint64) error {
	_, err := c.write(key, nil, true, func(cur Entry, ok bool) error {
		if rev != 0 && (!ok || cur.Revision != rev) {
			return ErrRevision
		}
		return nil
	})
	return err
}

func (c *memBucketConn) Watch(ctx context.Context) (<-chan Entry, error) {
	if err := c.e.Err(); err != nil {
		return nil, err
	}
	out := make(chan Entry)
	q := newQueueDone(func(en Entry) {
		select {
		case out <- en:
		case <-ctx.Done():
		}
	}, func() { close(out) })
	b := c.b
	b.mu.Lock()
	for _, en := range b.data {
		q.push(en)
	}
	q.push(Entry{})
	b.watchers = append(b.watchers, q)
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		for i, w := range b.watchers {
			if w == q {
				b.watchers = append(b.watchers[:i:i], b.watchers[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		q.close()
	}()
	return out, nil
}

// queue calls fn for each pushed value, in order, on its own goroutine;
// push never blocks (the in-process engine must not let one slow node
// stall another, as NATS does not).
type queue[T any] struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []T
	closed bool
}

func newQueue[T any](fn func(T)) *queue[T] { return newQueueDone(fn, func() {}) }

// newQueueDone is newQueue calling done when its goroutine ends.
func newQueueDone[T any](fn func(T), done func()) *queue[T] {
	q := &queue[T]{}
	q.cond = sync.NewCond(&q.mu)
	go func() {
		defer done()
		for {
			q.mu.Lock()
			for len(q.items) == 0 && !q.closed {
				q.cond.Wait()
			}
			if q.closed {
				q.mu.Unlock()
				return
			}
			it := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			q.mu.Unlock()
			fn(it)
		}
	}()
	return q
}

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, v)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}
