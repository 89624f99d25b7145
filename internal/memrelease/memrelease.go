// Package memrelease hands the memory a burst of work freed back to the
// operating system once the server has gone quiet.
//
// Why: after a reconnect storm an idle Go server holds far more than its
// live heap for minutes. The runtime collects garbage on a quiet heap only
// every two minutes (the heap grows slowly, so its goal is never reached),
// and then returns the freed pages gradually, paced to a sliver of CPU:
// after 10,000 TLS logins and 150 s of quiet, Parley's RSS was still 30 to
// 50 MB above the heap it was using, more or less depending on where the
// two-minute collection fell. A server that has been quiet for a while can
// afford one collection and one full return at once: it costs one garbage
// collection, once per burst.
//
// Quiet means that the program allocated little (under 1/64 of its heap,
// and under 1 MiB plus that) during each look for the whole quiet period;
// worth it means that the heap holds at least 8 MiB, and an eighth of what
// the last collection found live, beyond that live heap. After a release it
// waits for the next busy spell.
package memrelease

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Releaser watches the heap and releases memory after a quiet period.
type Releaser struct {
	after   time.Duration
	every   time.Duration
	log     *slog.Logger
	release func() // debug.FreeOSMemory, or a test's
	read    func() Sample

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a releaser that releases once the heap has been quiet for
// after (limits.release_memory_after). It does nothing until Start.
func New(after time.Duration, log *slog.Logger) *Releaser {
	return &Releaser{after: after, every: lookEvery(after), log: log, release: debug.FreeOSMemory, read: ReadSample}
}

// lookEvery is how often the releaser samples the heap: six looks per
// quiet period, at least one a second.
func lookEvery(after time.Duration) time.Duration {
	return max(after/6, time.Second)
}

// Start begins watching, on a goroutine of its own; a releaser with a
// period that is not positive never starts.
func (r *Releaser) Start() {
	if r.after <= 0 {
		return
	}
	r.stop = make(chan struct{})
	r.wg.Add(1)
	go r.run()
}

// Stop ends the watch and waits for it.
func (r *Releaser) Stop() {
	if r.stop == nil {
		return
	}
	close(r.stop)
	r.wg.Wait()
	r.stop = nil
}

func (r *Releaser) run() {
	defer r.wg.Done()
	t := time.NewTicker(r.every)
	defer t.Stop()
	w := watch{after: r.after}
	prev := r.read()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			cur := r.read()
			if w.look(now, prev, cur) {
				r.release()
				after := r.read()
				r.log.Debug("memory released after a quiet period",
					"heap_before", cur.Objects+cur.Free, "heap_after", after.Objects+after.Free,
					"released", after.Released-cur.Released)
				cur = after // the release's own allocations are not a busy spell
			}
			prev = cur
		}
	}
}

// Sample is what the releaser reads of the heap, in bytes.
type Sample struct {
	Allocs   uint64 // allocated since the start, cumulative
	Objects  uint64 // in heap objects, live or not yet swept
	Free     uint64 // free heap spans still backed by memory
	Live     uint64 // found live by the last collection
	Released uint64 // free heap spans returned to the system
}

var sampleNames = [...]string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/released:bytes",
}

// ReadSample reads the runtime's figures (runtime/metrics: no stop of the
// world, unlike runtime.ReadMemStats).
func ReadSample() Sample {
	var ms [len(sampleNames)]metrics.Sample
	for i, n := range sampleNames {
		ms[i].Name = n
	}
	metrics.Read(ms[:])
	v := func(i int) uint64 {
		if ms[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return ms[i].Value.Uint64()
	}
	return Sample{Allocs: v(0), Objects: v(1), Free: v(2), Live: v(3), Released: v(4)}
}

// watch is the releaser's decision, apart from the clock and the runtime
// so that it can be tested.
type watch struct {
	after    time.Duration
	quietBy  time.Time // when the current quiet spell began; zero: busy
	released bool      // released since the last busy spell
}

const minWorth = 8 << 20 // bytes beyond the live heap below which a release is not worth a collection

// look takes the sample cur, taken at now, after prev; it reports whether
// to release now.
func (w *watch) look(now time.Time, prev, cur Sample) bool {
	busy := cur.Allocs-prev.Allocs > 1<<20+cur.Objects/64
	if busy {
		w.quietBy, w.released = time.Time{}, false
		return false
	}
	if w.quietBy.IsZero() {
		w.quietBy = now
	}
	if w.released || now.Sub(w.quietBy) < w.after {
		return false
	}
	held := cur.Objects + cur.Free
	beyond := uint64(0)
	if held > cur.Live {
		beyond = held - cur.Live
	}
	if beyond < minWorth || beyond < cur.Live/8 {
		return false
	}
	w.released = true
	return true
}
