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
// queued before them is written. The compliance log is written the same
// way, by a writer of its own.
const (
	// maxBatch bounds one transaction.
	maxBatch = 256
	// maxQueue bounds the memory of messages waiting to be written; past
	// it, routing waits for the writer (back-pressure, not loss).
	maxQueue = 8192
	// writeTimeout bounds one batch.
	writeTimeout = 30 * time.Second
)

// writer writes items (archive entries, compliance records) in the
// background (see above); store writes one batch and reports its own
// failures.
type writer[T any] struct {
	store func(ctx context.Context, batch []T)
	log   *slog.Logger

	mu      sync.Mutex
	queue   []T
	queued  uint64        // items ever queued
	written uint64        // items ever handled (stored or given up on)
	changed chan struct{} // closed, and replaced, when written grows
	closed  bool

	wake chan struct{} // capacity 1: there is work
	done chan struct{} // closed when the loop has drained and exited
}

func newWriter[T any](log *slog.Logger, store func(context.Context, []T)) *writer[T] {
	w := &writer[T]{store: store, log: log, changed: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// add queues it. It waits only when maxQueue items are already waiting
// (until ctx ends: then it is dropped and false returned). After close it
// writes it itself.
func (w *writer[T]) add(ctx context.Context, it T) bool {
	w.mu.Lock()
	for len(w.queue) >= maxQueue && !w.closed {
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		w.mu.Lock()
	}
	if w.closed {
		w.mu.Unlock()
		w.write([]T{it})
		return true
	}
	w.queue = append(w.queue, it)
	w.queued++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// flush waits until everything queued before the call is written.
func (w *writer[T]) flush(ctx context.Context) error {
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
func (w *writer[T]) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *writer[T]) loop() {
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

func (w *writer[T]) write(batch []T) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	w.store(ctx, batch)
}

// storeArchive is the archive writer's store: a batch in one transaction.
// A used id (a random UUID met twice: practically never) fails the whole
// batch; the rest is then written one by one so that only that message is
// lost.
func storeArchive(st storage.Archive, keep int, log *slog.Logger) func(context.Context, []storage.ArchiveEntry) {
	var store func(context.Context, []storage.ArchiveEntry)
	store = func(ctx context.Context, batch []storage.ArchiveEntry) {
		_, err := st.Append(ctx, keep, batch...)
		if errors.Is(err, storage.ErrExists) && len(batch) > 1 {
			for _, e := range batch {
				store(ctx, []storage.ArchiveEntry{e})
			}
			return
		}
		if err != nil {
			log.Error("mam: messages not archived", "count", len(batch), "owner", batch[0].Owner, "err", err)
		}
	}
	return store
}

// storeCompliance is the compliance writer's store.
func storeCompliance(st storage.Compliance, log *slog.Logger) func(context.Context, []storage.ComplianceRecord) {
	return func(ctx context.Context, batch []storage.ComplianceRecord) {
		if err := st.Append(ctx, batch...); err != nil {
			log.Error("mam: messages missing from the compliance log", "count", len(batch), "host", batch[0].Host, "err", err)
		}
	}
}
