package bruteforce

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func addr(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 1234} }

func cfg() Config {
	return Config{Window: time.Minute, DelayAfter: 3, Delay: time.Second, PauseAfter: 5, Pause: 10 * time.Minute, MaxSources: 100}
}

// try makes one attempt through Begin/End, failing it when fail is set,
// and returns Begin's decision.
func try(l *Limiter, a net.Addr, fail bool) Decision {
	at, d := l.Begin(a, time.Now().Add(time.Second))
	if fail {
		at.Fail()
	}
	at.End()
	return d
}

func TestDelayThenPauseOneSourceOnly(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	var delayed, refused, paused int
	l := New(cfg(), Observer{Delayed: func() { delayed++ }, Refused: func() { refused++ }, Paused: func() { paused++ }}, c.now)
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	for i := 0; i < 3; i++ {
		if d := try(l, a, true); d != (Decision{}) {
			t.Fatalf("attempt %d: %+v before the threshold", i, d)
		}
	}
	if d := try(l, a, true); d.Refuse || d.Delay != time.Second {
		t.Fatalf("after 3 failures want delay, got %+v", d)
	}
	l.Fail(a)
	if d := try(l, a, false); !d.Refuse {
		t.Fatalf("after 5 failures want refusal, got %+v", d)
	}
	if d := try(l, b, false); d != (Decision{}) {
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

// Attempts sent at once cannot between them have more passwords checked
// than the pause allows: each takes a slot before its check, a source has
// as many slots as failures left before the pause, and the attempts past
// that wait; when the checks in progress fail, the source is paused and
// the waiting attempts are refused without a check.
func TestConcurrentAttemptsShareTheBudget(t *testing.T) {
	l := New(cfg(), Observer{}, nil) // PauseAfter 5
	a := addr("192.0.2.7")
	var mu sync.Mutex
	checked := 0
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, d := l.Begin(a, time.Now().Add(5*time.Second))
			if d.Refuse {
				return
			}
			mu.Lock()
			checked++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // the check, while others arrive
			at.Fail()
			at.End()
		}()
	}
	wg.Wait()
	if checked != 5 {
		t.Fatalf("%d passwords checked for 40 attempts at once; the policy allows 5", checked)
	}
	if d := l.Check(a); !d.Refuse {
		t.Fatalf("source not paused: %+v", d)
	}
}

// Logins that succeed are never refused for being many at once: past the
// budget they wait for a slot, and all get through.
func TestConcurrentSuccessesWaitNotRefused(t *testing.T) {
	l := New(cfg(), Observer{}, nil)
	a := addr("192.0.2.8")
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, d := l.Begin(a, time.Now().Add(10*time.Second))
			if d.Refuse {
				refused.Add(1)
				return
			}
			time.Sleep(5 * time.Millisecond)
			at.End()
		}()
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d of 40 successful logins refused", n)
	}
}

// A slot that does not come free by the deadline refuses the attempt as
// busy, without a check.
func TestBeginGivesUpAtTheDeadline(t *testing.T) {
	l := New(cfg(), Observer{}, nil)
	a := addr("192.0.2.9")
	var held []*Attempt
	for range 5 {
		at, d := l.Begin(a, time.Now().Add(time.Second))
		if d.Refuse {
			t.Fatalf("refused within the budget: %+v", d)
		}
		held = append(held, at)
	}
	if _, d := l.Begin(a, time.Now().Add(50*time.Millisecond)); !d.Refuse || !d.Busy {
		t.Fatalf("sixth attempt with five in progress: %+v, want a busy refusal", d)
	}
	for _, at := range held {
		at.End()
		at.End() // a second End changes nothing
	}
	if _, d := l.Begin(a, time.Now().Add(50*time.Millisecond)); d.Refuse {
		t.Fatalf("refused after the slots came free: %+v", d)
	}
}
