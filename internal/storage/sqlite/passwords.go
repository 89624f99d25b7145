package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type passwords struct{ s *Store }

func (p passwords) Add(ctx context.Context, host, username string, hash []byte, keep int) error {
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE host = ? AND username = ?`, host, username).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return storage.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO password_history (host, username, seq, hash, created_at)
			VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM password_history WHERE host = ? AND username = ?), ?, ?)`,
			host, username, host, username, storeutil.NonNil(hash), formatTime(time.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM password_history WHERE host = ? AND username = ? AND seq NOT IN
			(SELECT seq FROM password_history WHERE host = ? AND username = ? ORDER BY seq DESC LIMIT ?)`,
			host, username, host, username, max(keep, 0))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: password history %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (p passwords) List(ctx context.Context, host, username string) ([][]byte, error) {
	rows, err := p.s.db.QueryContext(ctx, `SELECT hash FROM password_history WHERE host = ? AND username = ? ORDER BY seq DESC`, host, username)
	if err != nil {
		return nil, fmt.Errorf("sqlite: password history: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
