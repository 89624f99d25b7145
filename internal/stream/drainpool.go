package stream

import (
	"sync/atomic"
	"time"
)

// DrainPool runs Writers' drains on goroutines kept from one burst to the
// next.
//
// A Writer has no goroutine while its queue is empty (so that an idle
// session holds none) and needs one for each burst of output. Started with
// `go`, that goroutine gets the runtime's starting stack size, the average
// that goroutines were found using at the last collection: small, since
// most wait with little on their stacks. Encoding a stanza and writing it
// (a TLS record's encryption above all) needs more, and the runtime then
// copies the stack to one twice the size, once per burst. Profiled at
// 64,000 chat messages/s on one core, that copy was 5 % of the server's
// CPU. A pooled goroutine keeps its grown stack (until a collection finds
// it idle and shrinks it): when its drain ends it waits for the next
// Writer to start one, for at most linger, and then ends, so a quiet
// server holds no pooled goroutine. At most maxIdle wait at once; the
// others end at once.
//
// A drain that blocks (a client that does not read, until the write
// timeout) holds its goroutine as before, and the next drain to start
// finds no idle one and starts a new goroutine: the pool never makes a
// drain wait.
type DrainPool struct {
	work    chan *Writer // unbuffered: a send succeeds only if a goroutine waits
	idle    atomic.Int32
	maxIdle int32
	linger  time.Duration
}

// The pool a stream server uses: enough idle goroutines for the bursts of
// a busy core, each waiting for work no longer than a pause in the
// traffic, so that a quiet server holds none.
const (
	DefaultDrainIdle   = 64
	DefaultDrainLinger = 2 * time.Second
)

// NewDrainPool returns a pool keeping at most maxIdle idle goroutines, each
// for at most linger.
func NewDrainPool(maxIdle int, linger time.Duration) *DrainPool {
	return &DrainPool{work: make(chan *Writer), maxIdle: int32(maxIdle), linger: linger}
}

// start runs w's drain on an idle pooled goroutine, or on a new one. A nil
// pool always starts a new goroutine that ends with the drain.
func (p *DrainPool) start(w *Writer) {
	if p == nil {
		go w.run()
		return
	}
	select {
	case p.work <- w:
	default:
		go p.serve(w)
	}
}

// serve runs w's drain, then the drains handed to it, until it has waited
// linger for one or the pool already has maxIdle waiting.
func (p *DrainPool) serve(w *Writer) {
	var t *time.Timer
	for {
		w.run()
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(p.linger)
		} else {
			t.Reset(p.linger) // no stale tick since Go 1.23: the channel is unbuffered
		}
		select {
		case w = <-p.work:
			p.idle.Add(-1)
			t.Stop()
		case <-t.C:
			p.idle.Add(-1)
			return
		}
	}
}
