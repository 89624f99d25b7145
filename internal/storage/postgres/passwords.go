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

type passwords struct{ s *Store }

func (p passwords) Add(ctx context.Context, host, username string, hash []byte, keep int) error {
	err := p.s.tx(ctx, func(tx pgx.Tx) error {
		// Locks the account row: two changes at once number their rows
		// one after the other.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE host = $1 AND username = $2 FOR UPDATE`, host, username).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO password_history (host, username, seq, hash, created_at)
			VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM password_history WHERE host = $1 AND username = $2), $3, $4)`,
			host, username, storeutil.NonNil(hash), time.Now().UTC()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM password_history WHERE host = $1 AND username = $2 AND seq NOT IN
			(SELECT seq FROM password_history WHERE host = $1 AND username = $2 ORDER BY seq DESC LIMIT $3)`,
			host, username, max(keep, 0))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: password history %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (p passwords) List(ctx context.Context, host, username string) ([][]byte, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT hash FROM password_history WHERE host = $1 AND username = $2 ORDER BY seq DESC`, host, username)
	if err != nil {
		return nil, fmt.Errorf("postgres: password history: %w", err)
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
