package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets, HDR style: values
// below 2^subBits nanoseconds get a bucket each, and every power of two
// above that is split into 2^subBits equal buckets, so a recorded value is
// known to within 1/2^subBits (0.8 %) of itself over the whole range
// (1 ns to 2^maxBits ns, about 18 minutes; larger values land in the last
// bucket). Record is a couple of atomic adds, safe from many goroutines; the
// histogram is about 36 KB and never allocates after New.
type Histogram struct {
	counts [buckets]atomic.Uint64
	max    atomic.Int64
	total  atomic.Uint64
	sum    atomic.Int64
}

const (
	subBits = 7
	subSize = 1 << subBits
	maxBits = 40
	buckets = (maxBits - subBits + 1) * subSize
)

// bucketOf maps a value to its bucket index.
func bucketOf(v int64) int {
	if v < subSize {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1 // v>>shift is in [subSize, 2*subSize)
	i := (shift+1)*subSize + int(v>>uint(shift)) - subSize
	if i >= buckets {
		return buckets - 1
	}
	return i
}

// bucketHigh is the largest value that maps to bucket i.
func bucketHigh(i int) int64 {
	if i < subSize {
		return int64(i)
	}
	shift := i/subSize - 1
	sub := int64(i%subSize + subSize)
	return (sub+1)<<uint(shift) - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest observation (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the arithmetic mean (exact).
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the value at quantile q (0..1): the upper bound of the
// bucket holding the q-th observation, never above the exact maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := bucketHigh(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v)
		}
	}
	return h.Max()
}

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}
