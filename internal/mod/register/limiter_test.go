package register

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func TestLimiterWindowAndRelease(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(2, time.Hour, 100, func() time.Time { return now })
	if _, ok := l.reserve("a"); !ok {
		t.Fatal("first")
	}
	rel, ok := l.reserve("a")
	if !ok {
		t.Fatal("second")
	}
	if _, ok := l.reserve("a"); ok {
		t.Fatal("third allowed")
	}
	if _, ok := l.reserve("b"); !ok {
		t.Fatal("other key limited")
	}
	rel() // a failed registration gives its slot back
	if _, ok := l.reserve("a"); !ok {
		t.Fatal("released slot not reusable")
	}
	now = now.Add(time.Hour)
	if _, ok := l.reserve("a"); !ok {
		t.Fatal("window did not slide")
	}
}

func TestLimiterBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(1, time.Hour, 10, func() time.Time { return now })
	for i := range 1000 {
		now = now.Add(time.Second)
		if _, ok := l.reserve(fmt.Sprint("k", i)); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
		if n := l.tracked(); n > 10 {
			t.Fatalf("tracking %d keys", n)
		}
	}
	// The most recent keys are still limited; the oldest were forgotten.
	if _, ok := l.reserve("k999"); ok {
		t.Error("recent key forgotten")
	}
}

func TestAddrKey(t *testing.T) {
	cases := map[string]net.Addr{
		"192.0.2.7":         &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5},
		"2001:db8:1:2::/64": &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 5},
	}
	for want, a := range cases {
		if got := addrKey(a); got != want {
			t.Errorf("addrKey(%v) = %q, want %q", a, got, want)
		}
	}
	if addrKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1")}) != addrKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9")}) {
		t.Error("same /64 gives different keys")
	}
}
