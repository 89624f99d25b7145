package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type offline struct{ s *Store }

func (o offline) Push(ctx context.Context, owner string, stanza []byte, quota int) error {
	// The count and the insert share one immediate transaction, which holds
	// SQLite's write lock from BEGIN: no other connection or process can
	// insert between them, so concurrent pushes cannot overshoot the quota.
	err := o.s.write(ctx, func(tx *sql.Tx) error {
		if quota > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offline_messages WHERE owner = ?`, owner).Scan(&n); err != nil {
				return err
			}
			if n >= quota {
				return storage.ErrQuotaExceeded
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO offline_messages (owner, stanza, stored_at) VALUES (?, ?, ?)`,
			owner, storeutil.NonNil(stanza), formatTime(time.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: offline push for %s: %w", owner, err)
	}
	return nil
}

func (o offline) Count(ctx context.Context, owner string) (int, error) {
	var n int
	if err := o.s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM offline_messages WHERE owner = ?`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: offline count: %w", err)
	}
	return n, nil
}

func (o offline) Pop(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	var msgs []storage.OfflineMessage
	// DELETE ... RETURNING hands back exactly the rows it deleted, so two
	// concurrent Pops can never both return a message.
	err := o.s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM offline_messages WHERE owner = ? RETURNING id, stanza, stored_at`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m      storage.OfflineMessage
				stored string
			)
			if err := rows.Scan(&m.ID, &m.Stanza, &stored); err != nil {
				return err
			}
			if m.Stored, err = parseTime(stored); err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: offline pop for %s: %w", owner, err)
	}
	// RETURNING order is unspecified in SQLite; ids are AUTOINCREMENT.
	slices.SortFunc(msgs, func(a, b storage.OfflineMessage) int { return cmp.Compare(a.ID, b.ID) })
	return msgs, nil
}

// getBlob runs a single-row, single-blob query, mapping "no row" to
// storage.ErrNotFound.
func (s *Store) getBlob(ctx context.Context, what, query string, args ...any) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&b)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("sqlite: %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return storeutil.NonNil(b), nil
}

// exec runs one write statement through the write queue.
func (s *Store) exec(ctx context.Context, what, query string, args ...any) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return nil
}

type vcards struct{ s *Store }

func (v vcards) Get(ctx context.Context, owner string) ([]byte, error) {
	return v.s.getBlob(ctx, "vcard of "+owner, `SELECT vcard FROM vcards WHERE owner = ?`, owner)
}

func (v vcards) Set(ctx context.Context, owner string, vcard []byte) error {
	return v.s.exec(ctx, "set vcard of "+owner, `INSERT INTO vcards (owner, vcard) VALUES (?, ?)
		ON CONFLICT (owner) DO UPDATE SET vcard = excluded.vcard`, owner, storeutil.NonNil(vcard))
}

type private struct{ s *Store }

func (p private) Get(ctx context.Context, owner, key string) ([]byte, error) {
	return p.s.getBlob(ctx, "private "+key+" of "+owner,
		`SELECT data FROM private_xml WHERE owner = ? AND ns_key = ?`, owner, key)
}

func (p private) Set(ctx context.Context, owner, key string, data []byte) error {
	return p.s.exec(ctx, "set private "+key+" of "+owner, `INSERT INTO private_xml (owner, ns_key, data) VALUES (?, ?, ?)
		ON CONFLICT (owner, ns_key) DO UPDATE SET data = excluded.data`, owner, key, storeutil.NonNil(data))
}

type kv struct{ s *Store }

func (k kv) Get(ctx context.Context, bucket, owner, key string) ([]byte, error) {
	return k.s.getBlob(ctx, fmt.Sprintf("kv %s/%s/%s", bucket, owner, key),
		`SELECT value FROM kv WHERE bucket = ? AND owner = ? AND key_name = ?`, bucket, owner, key)
}

func (k kv) Set(ctx context.Context, bucket, owner, key string, value []byte) error {
	return k.s.exec(ctx, fmt.Sprintf("kv set %s/%s/%s", bucket, owner, key),
		`INSERT INTO kv (bucket, owner, key_name, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (bucket, owner, key_name) DO UPDATE SET value = excluded.value`,
		bucket, owner, key, storeutil.NonNil(value))
}

// SetIfAbsent inserts unless a row exists; the row read back is the
// first writer's, since nothing but Set and Delete changes it.
func (k kv) SetIfAbsent(ctx context.Context, bucket, owner, key string, value []byte) ([]byte, error) {
	err := k.s.exec(ctx, fmt.Sprintf("kv set-if-absent %s/%s/%s", bucket, owner, key),
		`INSERT INTO kv (bucket, owner, key_name, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (bucket, owner, key_name) DO NOTHING`,
		bucket, owner, key, storeutil.NonNil(value))
	if err != nil {
		return nil, err
	}
	return k.Get(ctx, bucket, owner, key)
}

func (k kv) Delete(ctx context.Context, bucket, owner, key string) error {
	return k.s.exec(ctx, fmt.Sprintf("kv delete %s/%s/%s", bucket, owner, key),
		`DELETE FROM kv WHERE bucket = ? AND owner = ? AND key_name = ?`, bucket, owner, key)
}

func (k kv) List(ctx context.Context, bucket, owner string) (map[string][]byte, error) {
	rows, err := k.s.db.QueryContext(ctx, `SELECT key_name, value FROM kv WHERE bucket = ? AND owner = ? ORDER BY key_name`, bucket, owner)
	if err != nil {
		return nil, fmt.Errorf("sqlite: kv list %s/%s: %w", bucket, owner, err)
	}
	defer rows.Close()
	out, err := storeutil.KVEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: kv list %s/%s: %w", bucket, owner, err)
	}
	return out, nil
}
