package gssapi

import (
	"container/heap"
	"sync"
	"time"
)

// replayCache remembers accepted authenticators until the clock-skew
// window would refuse them anyway (RFC 4120 §3.2.3), so a captured
// AP-REQ cannot be played again. It is bounded: when it holds max
// unexpired entries it refuses new ones (the caller answers
// temporary-auth-failure) rather than forget one early and reopen the
// window. Only authenticators that decrypted with the service key get
// here, so filling it takes valid tickets, not garbage.
type replayCache struct {
	mu      sync.Mutex
	max     int
	seen    map[string]time.Time
	expires expiryHeap
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[string]time.Time)}
}

type expiry struct {
	key string
	at  time.Time
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// add records key until expires. It reports replay when key is already
// there and full when there is no room.
func (r *replayCache) add(key string, expires, now time.Time) (replay, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.expires) > 0 && !r.expires[0].at.After(now) {
		e := heap.Pop(&r.expires).(expiry)
		if r.seen[e.key].Equal(e.at) {
			delete(r.seen, e.key)
		}
	}
	if _, ok := r.seen[key]; ok {
		return true, false
	}
	if len(r.seen) >= r.max {
		return false, true
	}
	r.seen[key] = expires
	heap.Push(&r.expires, expiry{key, expires})
	return false, false
}
