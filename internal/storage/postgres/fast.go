package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

// fastLockClass is the advisory lock class of one account's FAST token
// writes: Issue's delete-insert-trim and Use's promote-and-prune see each
// other whole.
const fastLockClass int32 = 0x66617374 // "fast"

type fast struct{ s *Store }

// FAST returns the XEP-0484 token store.
func (s *Store) FAST() storage.FASTTokens { return fast{s} }

const fastColumns = `id, client_id, software, device, mechanism, hash, current, count, issued_at, expires_at, last_used`

func lockFAST(ctx context.Context, tx pgx.Tx, owner string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, fastLockClass, ownerLockKey(owner))
	return err
}

func (f fast) Issue(ctx context.Context, host, username string, t storage.FASTToken, max int) error {
	owner := storeutil.BareJID(host, username)
	err := f.s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockFAST(ctx, tx, owner); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE owner = $1 AND (expires_at <= now() OR (client_id = $2 AND NOT current))`,
			owner, t.ClientID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fast_tokens (owner, `+fastColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, false, 0, $8, $9, NULL)`,
			owner, t.ID, t.ClientID, t.Software, t.Device, t.Mechanism, t.Hash, t.IssuedAt.UTC(), t.ExpiresAt.UTC()); err != nil {
			return err
		}
		if max > 0 {
			_, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE owner = $1 AND id NOT IN
				(SELECT id FROM fast_tokens WHERE owner = $1 ORDER BY issued_at DESC, id LIMIT $2)`, owner, max)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: issue FAST token for %s: %w", owner, err)
	}
	return nil
}

func (f fast) Client(ctx context.Context, host, username, clientID string) ([]storage.FASTToken, error) {
	owner := storeutil.BareJID(host, username)
	out, err := f.query(ctx, `SELECT `+fastColumns+` FROM fast_tokens WHERE owner = $1 AND client_id = $2 ORDER BY issued_at, id`, owner, clientID)
	if err != nil {
		return nil, fmt.Errorf("postgres: FAST tokens of %s: %w", owner, err)
	}
	return out, nil
}

func (f fast) List(ctx context.Context, host, username string) ([]storage.FASTToken, error) {
	owner := storeutil.BareJID(host, username)
	out, err := f.query(ctx, `SELECT `+fastColumns+` FROM fast_tokens WHERE owner = $1 ORDER BY issued_at, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("postgres: FAST tokens of %s: %w", owner, err)
	}
	return out, nil
}

func (f fast) Use(ctx context.Context, host, username, id string, count int64, now time.Time) error {
	owner := storeutil.BareJID(host, username)
	err := f.s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockFAST(ctx, tx, owner); err != nil {
			return err
		}
		var client string
		var expires time.Time
		err := tx.QueryRow(ctx, `SELECT client_id, expires_at FROM fast_tokens WHERE owner = $1 AND id = $2`, owner, id).Scan(&client, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE fast_tokens SET current = true, last_used = $1, count = GREATEST(count, $2)
			WHERE owner = $3 AND id = $4 AND ($2 = 0 OR count < $2)`, now.UTC(), count, owner, id)
		if err != nil {
			return err
		}
		if err := affected(tag.RowsAffected()); err != nil {
			return err
		}
		// The used token takes the "current" slot: the one it held before
		// goes, and so does anything of the client's that expires earlier.
		_, err = tx.Exec(ctx, `DELETE FROM fast_tokens WHERE owner = $1 AND client_id = $2 AND id <> $3 AND (current OR expires_at < $4)`, owner, client, id, expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: use FAST token of %s: %w", owner, err)
	}
	return nil
}

func (f fast) Revoke(ctx context.Context, host, username, id string) (int, error) {
	owner := storeutil.BareJID(host, username)
	q, args := `DELETE FROM fast_tokens WHERE owner = $1`, []any{owner}
	if id != "" {
		q += ` AND id = $2`
		args = append(args, id)
	}
	tag, err := f.s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke FAST tokens of %s: %w", owner, err)
	}
	return int(tag.RowsAffected()), nil
}

func (f fast) query(ctx context.Context, q string, args ...any) ([]storage.FASTToken, error) {
	rows, err := f.s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.FASTToken
	for rows.Next() {
		var t storage.FASTToken
		var used *time.Time
		if err := rows.Scan(&t.ID, &t.ClientID, &t.Software, &t.Device, &t.Mechanism, &t.Hash, &t.Current, &t.Count, &t.IssuedAt, &t.ExpiresAt, &used); err != nil {
			return nil, err
		}
		t.IssuedAt, t.ExpiresAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC()
		if used != nil {
			t.LastUsed = used.UTC()
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
