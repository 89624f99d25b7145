package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type offline struct{ s *Store }

func (o offline) Push(ctx context.Context, owner string, stanza []byte, quota int) error {
	err := o.s.tx(ctx, func(tx pgx.Tx) error {
		if quota > 0 {
			// A per-owner advisory lock rather than SELECT ... FOR UPDATE on
			// the account row: owners are opaque bare JIDs here, and a
			// message may be stored for an owner with no local account row.
			// Under READ COMMITTED the COUNT that follows sees every push
			// that released the lock before us, so count+insert is atomic.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, offlineLockClass, ownerLockKey(owner)); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM offline_messages WHERE owner = $1`, owner).Scan(&n); err != nil {
				return err
			}
			if n >= quota {
				return storage.ErrQuotaExceeded
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO offline_messages (owner, stanza) VALUES ($1, $2)`, owner, storeutil.NonNil(stanza))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: offline push for %s: %w", owner, err)
	}
	return nil
}

func (o offline) Count(ctx context.Context, owner string) (int, error) {
	var n int
	if err := o.s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM offline_messages WHERE owner = $1`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: offline count: %w", err)
	}
	return n, nil
}

func (o offline) Pop(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	// One DELETE ... RETURNING: a concurrent Pop blocks on the same rows and,
	// once we commit, finds them gone and skips them, so no message is
	// returned twice.
	rows, err := o.s.pool.Query(ctx, `DELETE FROM offline_messages WHERE owner = $1 RETURNING id, stanza, stored_at`, owner)
	if err != nil {
		return nil, fmt.Errorf("postgres: offline pop for %s: %w", owner, err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.OfflineMessage, error) {
		var m storage.OfflineMessage
		err := row.Scan(&m.ID, &m.Stanza, &m.Stored)
		m.Stored = m.Stored.UTC()
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: offline pop for %s: %w", owner, err)
	}
	// RETURNING order is unspecified; ids grow with insertion order.
	slices.SortFunc(msgs, func(a, b storage.OfflineMessage) int { return cmp.Compare(a.ID, b.ID) })
	return msgs, nil
}

// getBlob runs a single-row, single-blob query, mapping "no row" to
// storage.ErrNotFound.
func (s *Store) getBlob(ctx context.Context, what, query string, args ...any) ([]byte, error) {
	var b []byte
	if err := s.pool.QueryRow(ctx, query, args...).Scan(&b); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, notFound(err))
	}
	return storeutil.NonNil(b), nil
}

func (s *Store) exec(ctx context.Context, what, query string, args ...any) error {
	if _, err := s.pool.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

type vcards struct{ s *Store }

func (v vcards) Get(ctx context.Context, owner string) ([]byte, error) {
	return v.s.getBlob(ctx, "vcard of "+owner, `SELECT vcard FROM vcards WHERE owner = $1`, owner)
}

func (v vcards) Set(ctx context.Context, owner string, vcard []byte) error {
	return v.s.exec(ctx, "set vcard of "+owner, `INSERT INTO vcards (owner, vcard) VALUES ($1, $2)
		ON CONFLICT (owner) DO UPDATE SET vcard = EXCLUDED.vcard`, owner, storeutil.NonNil(vcard))
}

type private struct{ s *Store }

func (p private) Get(ctx context.Context, owner, key string) ([]byte, error) {
	return p.s.getBlob(ctx, "private "+key+" of "+owner,
		`SELECT data FROM private_xml WHERE owner = $1 AND ns_key = $2`, owner, key)
}

func (p private) Set(ctx context.Context, owner, key string, data []byte) error {
	return p.s.exec(ctx, "set private "+key+" of "+owner, `INSERT INTO private_xml (owner, ns_key, data) VALUES ($1, $2, $3)
		ON CONFLICT (owner, ns_key) DO UPDATE SET data = EXCLUDED.data`, owner, key, storeutil.NonNil(data))
}

type kv struct{ s *Store }

func (k kv) Get(ctx context.Context, bucket, owner, key string) ([]byte, error) {
	return k.s.getBlob(ctx, fmt.Sprintf("kv %s/%s/%s", bucket, owner, key),
		`SELECT value FROM kv WHERE bucket = $1 AND owner = $2 AND key_name = $3`, bucket, owner, key)
}

func (k kv) Set(ctx context.Context, bucket, owner, key string, value []byte) error {
	return k.s.exec(ctx, fmt.Sprintf("kv set %s/%s/%s", bucket, owner, key),
		`INSERT INTO kv (bucket, owner, key_name, value) VALUES ($1, $2, $3, $4)
		ON CONFLICT (bucket, owner, key_name) DO UPDATE SET value = EXCLUDED.value`,
		bucket, owner, key, storeutil.NonNil(value))
}

// SetIfAbsent inserts unless a row exists; the row read back is the
// first writer's, since nothing but Set and Delete changes it.
func (k kv) SetIfAbsent(ctx context.Context, bucket, owner, key string, value []byte) ([]byte, error) {
	err := k.s.exec(ctx, fmt.Sprintf("kv set-if-absent %s/%s/%s", bucket, owner, key),
		`INSERT INTO kv (bucket, owner, key_name, value) VALUES ($1, $2, $3, $4)
		ON CONFLICT (bucket, owner, key_name) DO NOTHING`,
		bucket, owner, key, storeutil.NonNil(value))
	if err != nil {
		return nil, err
	}
	return k.Get(ctx, bucket, owner, key)
}

func (k kv) Delete(ctx context.Context, bucket, owner, key string) error {
	return k.s.exec(ctx, fmt.Sprintf("kv delete %s/%s/%s", bucket, owner, key),
		`DELETE FROM kv WHERE bucket = $1 AND owner = $2 AND key_name = $3`, bucket, owner, key)
}

func (k kv) List(ctx context.Context, bucket, owner string) (map[string][]byte, error) {
	rows, err := k.s.pool.Query(ctx, `SELECT key_name, value FROM kv WHERE bucket = $1 AND owner = $2
		ORDER BY key_name COLLATE "C"`, bucket, owner)
	if err != nil {
		return nil, fmt.Errorf("postgres: kv list %s/%s: %w", bucket, owner, err)
	}
	defer rows.Close()
	out, err := storeutil.KVEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: kv list %s/%s: %w", bucket, owner, err)
	}
	return out, nil
}
