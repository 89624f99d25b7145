package mam

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"parley/internal/storage"
)

// Archiving must not cost every message a database commit on the routing
// path: on SQLite a commit is a file sync, and one message archived for
// both sides took two of them (about 3 ms; a conversation was capped at a
// few hundred messages a second, and every other write of the server
// queued behind them). The id a message is delivered with is made up in
// memory, so the write can come after: the writer takes what the hooks
// queue and appends it in batches, one transaction each, in queue order.
// Under light load a batch is one message written at once; under heavy
// load batches grow and the commits stay few.
//
// What this trades: a message is delivered a few milliseconds before it is
// durable in the archive, so a crash in between loses it from the archive
// (not from delivery or offline storage). Readers never see the gap:
// queries, metadata and deletions flush first, waiting until everything
// queued before them is written.
const (
	// maxBatch bounds one transaction.
	maxBatch = 256
	// maxQueue bounds the memory of messages waiting to be written; past
	// it, routing waits for the writer (back-pressure, not loss).
	maxQueue = 8192
	// writeTimeout bounds one batch.
	writeTimeout = 30 * time.Second
)

// writer appends archive entries in the background (see above).
type writer struct {
	st   storage.Archive
	keep int
	log  *slog.Logger

	mu      sync.Mutex
	queue   []storage.ArchiveEntry
	queued  uint64        // entries ever queued
	written uint64        // entries ever handled (stored or given up on)
	changed chan struct{} // closed, and replaced, when written grows
	closed  bool

	wake chan struct{} // capacity 1: there is work
	done chan struct{} // closed when the loop has drained and exited
}

func newWriter(st storage.Archive, keep int, log *slog.Logger) *writer {
	w := &writer{st: st, keep: keep, log: log, changed: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// add queues e. It waits only when maxQueue entries are already waiting
// (until ctx ends: then e is dropped and logged). After close it writes e
// itself.
func (w *writer) add(ctx context.Context, e storage.ArchiveEntry) {
	w.mu.Lock()
	for len(w.queue) >= maxQueue && !w.closed {
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			w.log.Warn("mam: archive writer is behind; message not archived", "owner", e.Owner, "id", e.ID)
			return
		}
		w.mu.Lock()
	}
	if w.closed {
		w.mu.Unlock()
		w.write([]storage.ArchiveEntry{e})
		return
	}
	w.queue = append(w.queue, e)
	w.queued++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// flush waits until everything queued before the call is written.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	for w.written < target {
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

// close writes what is queued and stops the loop.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	for range w.wake {
		for {
			w.mu.Lock()
			n := min(len(w.queue), maxBatch)
			batch := w.queue[:n:n]
			w.queue = w.queue[n:]
			closed := w.closed
			w.mu.Unlock()
			if n == 0 {
				if closed {
					return
				}
				break
			}
			w.write(batch)
			w.mu.Lock()
			w.written += uint64(n)
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}
}

// write appends batch in one transaction. A used id (a random UUID met
// twice: practically never) fails the whole batch; the rest is then
// written one by one so that only that message is lost.
func (w *writer) write(batch []storage.ArchiveEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	_, err := w.st.Append(ctx, w.keep, batch...)
	if errors.Is(err, storage.ErrExists) && len(batch) > 1 {
		for _, e := range batch {
			w.write([]storage.ArchiveEntry{e})
		}
		return
	}
	if err != nil {
		w.log.Error("mam: messages not archived", "count", len(batch), "owner", batch[0].Owner, "err", err)
	}
}
