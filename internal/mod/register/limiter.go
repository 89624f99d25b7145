package register

import (
	"net"
	"sync"
	"time"
)

// limiter counts new accounts per client address over a sliding window.
// Its memory is bounded: at most maxKeys addresses are tracked, each with at
// most max timestamps. When the table is full, expired entries are dropped
// first and then the address idle longest is forgotten: forgetting an
// address can only let that address register again sooner, whereas refusing
// unknown addresses would let someone with many addresses shut registration
// off for everybody.
type limiter struct {
	max     int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu sync.Mutex
	m  map[string][]time.Time // key → creation times within the window, oldest first
}

func newLimiter(max int, window time.Duration, maxKeys int, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, maxKeys: maxKeys, now: now, m: make(map[string][]time.Time)}
}

// reserve takes one slot for key. It returns ok false when key used all its
// slots; otherwise release gives the slot back (the registration failed).
func (l *limiter) reserve(key string) (release func(), ok bool) {
	if l.max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	times := l.live(l.m[key], now)
	if len(times) >= l.max {
		l.m[key] = times
		return nil, false
	}
	if _, tracked := l.m[key]; !tracked && len(l.m) >= l.maxKeys {
		l.evict(now)
	}
	l.m[key] = append(times, now)
	return func() { l.release(key, now) }, true
}

// live drops the times that left the window.
func (l *limiter) live(times []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(times) && now.Sub(times[i]) >= l.window {
		i++
	}
	return times[i:]
}

// evict makes room for one more key. Called with mu held.
func (l *limiter) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, times := range l.m {
		times = l.live(times, now)
		if len(times) == 0 {
			delete(l.m, k)
			continue
		}
		l.m[k] = times
		if last := times[len(times)-1]; oldestKey == "" || last.Before(oldest) {
			oldestKey, oldest = k, last
		}
	}
	if len(l.m) >= l.maxKeys && oldestKey != "" {
		delete(l.m, oldestKey)
	}
}

func (l *limiter) release(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.m[key]
	for i, t := range times {
		if t.Equal(at) {
			times = append(times[:i:i], times[i+1:]...)
			break
		}
	}
	if len(times) == 0 {
		delete(l.m, key)
	} else {
		l.m[key] = times
	}
}

// tracked returns how many addresses are tracked (tests).
func (l *limiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// addrKey is the rate-limit key of a client address: the IPv4 address, or
// the /64 prefix of an IPv6 address (one subscriber usually holds a whole
// /64, so per-address counting would not limit anybody).
func addrKey(a net.Addr) string {
	var ip net.IP
	switch v := a.(type) {
	case *net.TCPAddr:
		ip = v.IP
	case nil:
		return ""
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			host = a.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
