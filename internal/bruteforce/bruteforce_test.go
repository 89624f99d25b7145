package bruteforce

import (
	"fmt"
	"net"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func addr(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 1234} }

func cfg() Config {
	return Config{Window: time.Minute, DelayAfter: 3, Delay: time.Second, PauseAfter: 5, Pause: 10 * time.Minute, MaxSources: 100}
}

func TestDelayThenPauseOneSourceOnly(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	var delayed, refused, paused int
	l := New(cfg(), Observer{Delayed: func() { delayed++ }, Refused: func() { refused++ }, Paused: func() { paused++ }}, c.now)
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	for i := 0; i < 3; i++ {
		if d := l.Check(a); d != (Decision{}) {
			t.Fatalf("attempt %d: %+v before the threshold", i, d)
		}
		l.Fail(a)
	}
	if d := l.Check(a); d.Refuse || d.Delay != time.Second {
		t.Fatalf("after 3 failures want delay, got %+v", d)
	}
	l.Fail(a)
	l.Fail(a)
	if d := l.Check(a); !d.Refuse {
		t.Fatalf("after 5 failures want refusal, got %+v", d)
	}
	if d := l.Check(b); d != (Decision{}) {
		t.Fatalf("other source affected: %+v", d)
	}
	if paused != 1 || refused != 1 || delayed != 1 {
		t.Fatalf("counters delayed=%d refused=%d paused=%d", delayed, refused, paused)
	}
	c.t = c.t.Add(9 * time.Minute)
	if d := l.Check(a); !d.Refuse {
		t.Fatalf("pause ended early: %+v", d)
	}
	c.t = c.t.Add(2 * time.Minute)
	if d := l.Check(a); d != (Decision{}) {
		t.Fatalf("pause did not end: %+v", d)
	}
}

func TestWindowExpires(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	l := New(cfg(), Observer{}, c.now)
	a := addr("192.0.2.1")
	for i := 0; i < 3; i++ {
		l.Fail(a)
	}
	c.t = c.t.Add(2 * time.Minute)
	if d := l.Check(a); d != (Decision{}) {
		t.Fatalf("old failures still count: %+v", d)
	}
	if l.Tracked() != 0 {
		t.Fatalf("expired entry kept")
	}
}

func TestMemoryBound(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	conf := cfg()
	conf.MaxSources = 50
	l := New(conf, Observer{}, c.now)
	for i := 0; i < 1000; i++ {
		l.Fail(addr(fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
		if n := l.Tracked(); n > 50 {
			t.Fatalf("tracking %d sources, bound is 50", n)
		}
	}
	// The most recent sources are the ones kept.
	last := addr("10.0.3.231")
	l.Fail(last)
	l.Fail(last)
	if d := l.Check(last); d.Delay == 0 {
		t.Fatalf("most recent source forgotten: %+v", d)
	}
}

func TestIPv6GroupedBy64(t *testing.T) {
	l := New(cfg(), Observer{}, nil)
	for i := 1; i <= 3; i++ {
		l.Fail(addr(fmt.Sprintf("2001:db8::%d", i)))
	}
	if d := l.Check(addr("2001:db8::ffff")); d.Delay == 0 {
		t.Fatalf("same /64 not grouped: %+v", d)
	}
	if d := l.Check(addr("2001:db8:0:1::1")); d != (Decision{}) {
		t.Fatalf("other /64 affected: %+v", d)
	}
}
