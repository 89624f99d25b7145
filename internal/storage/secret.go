package storage

import (
	"context"
	"crypto/rand"
	"errors"
)

// Secret returns the random key of size bytes kept under bucket/owner/key,
// creating it on first use. Every cluster node gets the same key, even
// nodes starting together for the first time (KV.SetIfAbsent): keys that
// sign or derive what other nodes check (upload slots, occupant ids, the
// fake salts of unknown users) must agree. A stored value shorter than
// size (written by an older version) is replaced.
func Secret(ctx context.Context, kv KV, bucket, owner, key string, size int) ([]byte, error) {
	v, err := kv.Get(ctx, bucket, owner, key)
	if err == nil && len(v) >= size {
		return v, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	fresh := make([]byte, size)
	_, _ = rand.Read(fresh)
	if err == nil {
		// Too short: replaced outright (nodes racing here each write
		// theirs; only an upgrade from such an old value meets this).
		return fresh, kv.Set(ctx, bucket, owner, key, fresh)
	}
	v, err = kv.SetIfAbsent(ctx, bucket, owner, key, fresh)
	if err != nil {
		return nil, err
	}
	if len(v) < size {
		return nil, errors.New("storage: secret " + bucket + "/" + key + " stored shorter than asked")
	}
	return v, nil
}
