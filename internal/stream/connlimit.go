package stream

import (
	"net"
	"net/netip"
	"sync"

	"parley/internal/bruteforce"
)

// ConnLimiter bounds the connections open at once from one source address
// (IPv4 address, IPv6 /64, as the brute-force limiter groups them). Without
// it one host can open sockets until the server runs out of file
// descriptors, goroutines and pre-authentication memory, which no per-stream
// limit prevents. Memory is bounded by the open connections themselves: an
// address is forgotten when its last connection closes.
type ConnLimiter struct {
	max int

	mu   sync.Mutex
	open map[netip.Addr]int
}

// NewConnLimiter allows max connections per source (max <= 0: unlimited).
func NewConnLimiter(max int) *ConnLimiter {
	return &ConnLimiter{max: max, open: make(map[netip.Addr]int)}
}

// Acquire counts a new connection from addr. It reports false, counting
// nothing, when the source already has the maximum; otherwise the caller
// must call the returned release exactly once when the connection closes.
func (l *ConnLimiter) Acquire(addr net.Addr) (release func(), ok bool) {
	if l == nil || l.max <= 0 {
		return func() {}, true
	}
	k, valid := bruteforce.Key(addr)
	if !valid {
		// Not an IP transport (tests with pipes): nothing to count by.
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[k] >= l.max {
		return nil, false
	}
	l.open[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[k]--; l.open[k] <= 0 {
				delete(l.open, k)
			}
		})
	}, true
}

// Open returns the connections currently counted for addr's source.
func (l *ConnLimiter) Open(addr net.Addr) int {
	k, valid := bruteforce.Key(addr)
	if !valid {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[k]
}
