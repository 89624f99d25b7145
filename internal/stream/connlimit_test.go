package stream

import (
	"net"
	"testing"
)

func TestConnLimiterPerSource(t *testing.T) {
	l := NewConnLimiter(2)
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	b := &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1}
	// Two addresses in one IPv6 /64 are one source.
	v6a := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}
	v6b := &net.TCPAddr{IP: net.ParseIP("2001:db8::ffff"), Port: 1}

	r1, ok1 := l.Acquire(a)
	r2, ok2 := l.Acquire(a)
	_, ok3 := l.Acquire(a)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("want 2 admitted then refused, got %v %v %v", ok1, ok2, ok3)
	}
	if _, ok := l.Acquire(b); !ok {
		t.Fatal("another address was refused")
	}
	r1()
	r1() // idempotent
	if l.Open(a) != 1 {
		t.Fatalf("open = %d after one release", l.Open(a))
	}
	if _, ok := l.Acquire(a); !ok {
		t.Fatal("refused after a release")
	}
	r2()

	if _, ok := l.Acquire(v6a); !ok {
		t.Fatal("v6 refused")
	}
	if _, ok := l.Acquire(v6b); !ok {
		t.Fatal("v6 second refused")
	}
	if _, ok := l.Acquire(v6a); ok {
		t.Fatal("third connection from one /64 admitted")
	}

	u := NewConnLimiter(0)
	for range 10 {
		if _, ok := u.Acquire(a); !ok {
			t.Fatal("unlimited limiter refused")
		}
	}
}
