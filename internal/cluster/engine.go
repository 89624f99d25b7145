package cluster

import (
	"context"
	"errors"
	"time"
)

// Engine is what the cluster needs from its distributed engine: key/value
// buckets with revision checks (JetStream KV) and subjects (NATS core).
// natsEngine is the real one; Hub hands out in-process engines so the
// registry, routing and failure logic run in unit tests without a NATS
// server, through the same code.
type Engine interface {
	// Bucket opens (creating if needed) a key/value bucket.
	Bucket(ctx context.Context, name string) (Bucket, error)
	// Subscribe calls fn for every message published to subject, one at
	// a time, in publication order per publisher. The subscription is in
	// place when Subscribe returns: a message published after that, by
	// any node, reaches it.
	Subscribe(subject string, fn func(Msg)) (unsubscribe func(), err error)
	// Publish sends m to subject (at most once).
	Publish(subject string, m Msg) error
	// Request sends m and waits for the reply.
	Request(ctx context.Context, subject string, m Msg) (Msg, error)
	// Err is nil while the engine is connected.
	Err() error
	Close()
}

// Msg is one message between nodes: an operation on a session and a
// stanza serialised from Parley's own tree.
type Msg struct {
	Op   string // "send", "deliver", "close", "ok", "notice"
	To   string // full JID (a notice's topic)
	From string // the sending node's name (notices)
	Sid  string // the session's stream ID, so a newer session is never hit
	Cond string // stream error condition of "close"
	Text string
	Body []byte
	// Targets are the sessions of a "fanout": Body goes to each, with its
	// own 'to'.
	Targets []Target
	// Reply answers a Request (nil for published messages).
	Reply func(Msg)
}

// Target is one recipient session of a "fanout" message.
type Target struct {
	To  string // full JID
	Sid string // its stream ID
}

// Entry is one key's value in a bucket.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Deleted  bool
	// Created is when the engine stored this revision (its clock).
	Created time.Time
}

// Bucket is a key/value bucket whose writes can be conditional on the
// revision last read (compare and swap).
type Bucket interface {
	Get(ctx context.Context, key string) (Entry, error)
	// Create writes key only if it does not exist (ErrExists).
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	// Update writes key only if its revision is still rev (ErrRevision).
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
	// Delete removes key if its revision is still rev (0: whatever it is).
	Delete(ctx context.Context, key string, rev uint64) error
	// Watch sends every current value, then an Entry with an empty Key
	// (caught up), then every change, until ctx ends.
	Watch(ctx context.Context) (<-chan Entry, error)
}

// Errors of Bucket.
var (
	ErrNotFound = errors.New("cluster: key not found")
	ErrExists   = errors.New("cluster: key exists")
	ErrRevision = errors.New("cluster: revision changed")
	ErrDown     = errors.New("cluster: engine disconnected")
)
