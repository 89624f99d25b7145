package memrelease

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

const mib = 1 << 20

func TestLook(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// A server after a storm: 100 MiB live, 60 MiB more held.
	held := Sample{Objects: 130 * mib, Free: 30 * mib, Live: 100 * mib}
	step := func(s Sample, alloc uint64) Sample { s.Allocs += alloc; return s }

	w := watch{after: 30 * time.Second}
	prev := held
	busy := step(prev, 50*mib)
	if w.look(at(0), prev, busy) {
		t.Fatal("released while busy")
	}
	prev = busy
	for s := 5; s < 30; s += 5 {
		cur := step(prev, 100<<10) // keepalives, a presence now and then
		if w.look(at(s), prev, cur) {
			t.Fatalf("released after %d s of quiet, before 30 s", s-5)
		}
		prev = cur
	}
	cur := step(prev, 0)
	if !w.look(at(35), prev, cur) {
		t.Fatal("not released after 30 s of quiet")
	}
	if w.look(at(40), cur, cur) || w.look(at(400), cur, cur) {
		t.Fatal("released twice in one quiet spell")
	}
	// A new busy spell arms it again.
	busy = step(cur, 200*mib)
	_ = w.look(at(405), cur, busy)
	if w.look(at(420), busy, busy) || w.look(at(440), busy, busy) {
		t.Fatal("released 20 s into the new quiet spell")
	}
	if !w.look(at(451), busy, busy) {
		t.Fatal("not released after the second quiet spell")
	}
}

func TestLookNotWorthIt(t *testing.T) {
	for name, s := range map[string]Sample{
		"small heap":            {Objects: 3 * mib, Free: 2 * mib, Live: 1 * mib},
		"little beyond live":    {Objects: 400 * mib, Free: 20 * mib, Live: 400 * mib},
		"nothing beyond live":   {Objects: 50 * mib, Live: 50 * mib},
		"live above the sample": {Objects: 50 * mib, Live: 60 * mib},
	} {
		w := watch{after: time.Second}
		t0 := time.Unix(0, 0)
		_ = w.look(t0, s, s)
		if w.look(t0.Add(time.Minute), s, s) {
			t.Errorf("%s: released", name)
		}
	}
}

func TestBusyIsRelativeToTheHeap(t *testing.T) {
	// 10 MiB in a look is busy for a 64 MiB heap, quiet for a 4 GiB one.
	small := Sample{Objects: 64 * mib}
	big := Sample{Objects: 4096 * mib, Free: 1024 * mib, Live: 3000 * mib}
	for _, c := range []struct {
		s        Sample
		quietNow bool
	}{{small, false}, {big, true}} {
		w := watch{after: time.Second}
		next := c.s
		next.Allocs += 10 * mib
		_ = w.look(time.Unix(0, 0), c.s, next)
		if got := !w.quietBy.IsZero(); got != c.quietNow {
			t.Errorf("heap of %d MiB: quiet %v, want %v", c.s.Objects/mib, got, c.quietNow)
		}
	}
}

// TestReleaserRuns drives the goroutine with a fake runtime: it releases
// once after the quiet period, and Stop ends it.
func TestReleaserRuns(t *testing.T) {
	var mu sync.Mutex
	s := Sample{Objects: 300 * mib, Free: 100 * mib, Live: 200 * mib}
	released := make(chan struct{}, 4)
	r := New(50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.every = 10 * time.Millisecond
	r.read = func() Sample { mu.Lock(); defer mu.Unlock(); return s }
	r.release = func() {
		mu.Lock()
		s.Released += s.Free
		s.Objects, s.Free = s.Live, 0
		mu.Unlock()
		released <- struct{}{}
	}
	r.Start()
	<-released
	r.Stop()
	if len(released) != 0 {
		t.Fatal("released more than once in one quiet spell")
	}
	r.Stop() // a second Stop is harmless
}

func TestOffNeverStarts(t *testing.T) {
	r := New(-1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Start()
	if r.stop != nil {
		t.Fatal("a negative period started the watch")
	}
	r.Stop()
}

func TestReadSample(t *testing.T) {
	s := ReadSample()
	if s.Allocs == 0 || s.Objects == 0 {
		t.Fatalf("runtime/metrics gave %+v", s)
	}
}
