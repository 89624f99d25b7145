package observed_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/observed"
	"parley/internal/storage/sqlite"
	"parley/internal/storage/storetest"
)

// The decorator must not change behaviour: it passes the conformance suite,
// and it reports each call.
func TestObservedStorePassesConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return observed.Wrap(st, func(string, time.Time) {})
	})
}

func TestObservedStoreReportsOperations(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	seen := map[string]int{}
	o := observed.Wrap(st, func(op string, _ time.Time) { mu.Lock(); seen[op]++; mu.Unlock() })
	ctx := context.Background()
	_ = o.KV().Set(ctx, "b", "o", "k", []byte("v"))
	_, _ = o.KV().Get(ctx, "b", "o", "k")
	_, _, _ = o.Roster().Items(ctx, "a@b")
	for _, op := range []string{"kv.set", "kv.get", "roster.items"} {
		if seen[op] != 1 {
			t.Errorf("%s observed %d times", op, seen[op])
		}
	}
}
