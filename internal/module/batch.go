package module

import (
	"context"
	"sync"

	"parley/internal/xmpp/xml"
)

// A Batch lets one stanza sent to many sessions at once (a chat room's
// fan-out) travel in fewer pieces where the sessions allow it: a cluster
// sends the copies for the sessions of another node as one message to
// that node, with the stanza once and the list of recipients, instead of
// one message per session. The sender puts a Batch in the context it
// routes with (WithBatch) and calls Flush when it has routed every copy;
// sessions that can join a batch (BatchSender) hold their part until
// then, and every other session is sent to at once, as without a batch.
//
// Holding back reorders nothing for one session: a part keeps what it
// holds in the order it was given, and the batch is flushed before the
// sender goes on. Copies to other kinds of session are not held, so they
// may arrive before the held ones: a batch is for one stanza to many,
// not for a conversation.
type Batch struct {
	mu      sync.Mutex
	keys    []any
	parts   map[any]BatchPart
	flushed bool
}

// BatchPart is what one kind of session holds in a batch (the cluster:
// the copies for one node). Flush sends it.
type BatchPart interface{ Flush() }

// BatchSender is a Session that can hold a copy in ctx's batch. SendIn
// reports false, having done nothing, when ctx carries no batch; the
// caller then uses Send.
type BatchSender interface {
	SendIn(ctx context.Context, el *xml.Element) bool
}

type batchKey struct{}

// WithBatch returns ctx carrying a new batch, and the batch.
func WithBatch(ctx context.Context) (context.Context, *Batch) {
	b := &Batch{}
	return context.WithValue(ctx, batchKey{}, b), b
}

// BatchFrom returns ctx's batch, nil without one.
func BatchFrom(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	return b
}

// Part returns the part under key, made by mk the first time; nil once
// the batch has been flushed, so that a late sender (work the fan-out
// started that outlives it with its context) sends at once rather than
// into a batch nobody will flush.
func (b *Batch) Part(key any, mk func() BatchPart) BatchPart {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.flushed {
		return nil
	}
	if p, ok := b.parts[key]; ok {
		return p
	}
	if b.parts == nil {
		b.parts = make(map[any]BatchPart)
	}
	p := mk()
	b.parts[key] = p
	b.keys = append(b.keys, key)
	return p
}

// Flush sends every part, in the order they were made, and ends the
// batch: what comes after is sent at once.
func (b *Batch) Flush() {
	b.mu.Lock()
	keys, parts := b.keys, b.parts
	b.keys, b.parts, b.flushed = nil, nil, true
	b.mu.Unlock()
	for _, k := range keys {
		parts[k].Flush()
	}
}
