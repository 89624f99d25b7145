package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type fast struct{ s *Store }

// FAST returns the XEP-0484 token store.
func (s *Store) FAST() storage.FASTTokens { return fast{s} }

const fastColumns = `id, client_id, software, device, mechanism, hash, current, count, issued_at, expires_at, last_used`

func (f fast) Issue(ctx context.Context, host, username string, t storage.FASTToken, max int) error {
	owner := storeutil.BareJID(host, username)
	err := f.s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE owner = ? AND (expires_at <= ? OR (client_id = ? AND current = 0))`,
			owner, formatTime(time.Now()), t.ClientID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fast_tokens (owner, `+fastColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, '')`,
			owner, t.ID, t.ClientID, t.Software, t.Device, t.Mechanism, t.Hash, formatTime(t.IssuedAt), formatTime(t.ExpiresAt)); err != nil {
			return err
		}
		if max > 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE owner = ? AND id NOT IN
				(SELECT id FROM fast_tokens WHERE owner = ? ORDER BY issued_at DESC, id LIMIT ?)`, owner, owner, max)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: issue FAST token for %s: %w", owner, err)
	}
	return nil
}

func (f fast) Client(ctx context.Context, host, username, clientID string) ([]storage.FASTToken, error) {
	owner := storeutil.BareJID(host, username)
	out, err := f.query(ctx, `SELECT `+fastColumns+` FROM fast_tokens WHERE owner = ? AND client_id = ? ORDER BY issued_at, id`, owner, clientID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: FAST tokens of %s: %w", owner, err)
	}
	return out, nil
}

func (f fast) List(ctx context.Context, host, username string) ([]storage.FASTToken, error) {
	owner := storeutil.BareJID(host, username)
	out, err := f.query(ctx, `SELECT `+fastColumns+` FROM fast_tokens WHERE owner = ? ORDER BY issued_at, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("sqlite: FAST tokens of %s: %w", owner, err)
	}
	return out, nil
}

func (f fast) Use(ctx context.Context, host, username, id string, count int64, now time.Time) error {
	owner := storeutil.BareJID(host, username)
	err := f.s.write(ctx, func(tx *sql.Tx) error {
		var client, expires string
		err := tx.QueryRowContext(ctx, `SELECT client_id, expires_at FROM fast_tokens WHERE owner = ? AND id = ?`, owner, id).Scan(&client, &expires)
		if err == sql.ErrNoRows {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		q := `UPDATE fast_tokens SET current = 1, last_used = ?, count = MAX(count, ?) WHERE owner = ? AND id = ?`
		args := []any{formatTime(now), count, owner, id}
		if count > 0 {
			q += ` AND count < ?`
			args = append(args, count)
		}
		if err := execChanging(ctx, tx, storage.ErrNotFound, q, args...); err != nil {
			return err
		}
		// The used token takes the "current" slot: the one it held before
		// goes, and so does anything of the client's that expires earlier.
		_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE owner = ? AND client_id = ? AND id <> ? AND (current = 1 OR expires_at < ?)`, owner, client, id, expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: use FAST token of %s: %w", owner, err)
	}
	return nil
}

func (f fast) Revoke(ctx context.Context, host, username, id string) (int, error) {
	owner := storeutil.BareJID(host, username)
	var n int64
	err := f.s.write(ctx, func(tx *sql.Tx) error {
		q, args := `DELETE FROM fast_tokens WHERE owner = ?`, []any{owner}
		if id != "" {
			q += ` AND id = ?`
			args = append(args, id)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke FAST tokens of %s: %w", owner, err)
	}
	return int(n), nil
}

func (f fast) query(ctx context.Context, q string, args ...any) ([]storage.FASTToken, error) {
	rows, err := f.s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.FASTToken
	for rows.Next() {
		var t storage.FASTToken
		var issued, expires, used string
		if err := rows.Scan(&t.ID, &t.ClientID, &t.Software, &t.Device, &t.Mechanism, &t.Hash, &t.Current, &t.Count, &issued, &expires, &used); err != nil {
			return nil, err
		}
		if t.IssuedAt, err = parseTime(issued); err != nil {
			return nil, err
		}
		if t.ExpiresAt, err = parseTime(expires); err != nil {
			return nil, err
		}
		if used != "" {
			if t.LastUsed, err = parseTime(used); err != nil {
				return nil, err
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
