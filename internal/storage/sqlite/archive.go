package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

// purgeBatch bounds the messages one retention transaction deletes, so a
// purge of a large archive never holds the write lock for long.
const purgeBatch = 1000

type archive struct{ s *Store }

func (a archive) Append(ctx context.Context, e storage.ArchiveEntry, keep int) (time.Time, error) {
	if e.Owner == "" || e.With == "" || e.ID == "" {
		return time.Time{}, fmt.Errorf("sqlite: archive append: owner, with and id are required")
	}
	stamp := e.Stamp.UTC().Truncate(storeutil.StampPrecision)
	host := storeutil.ArchiveHost(e.Owner)
	var stored time.Time
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		// The immediate transaction holds the write lock, so the numbers
		// taken here are the next ones and nobody else's.
		head := func(with, res, stamp string) (n int64, last string, err error) {
			err = tx.QueryRowContext(ctx, `INSERT INTO archive_heads (owner, with_jid, with_resource, host, last_seq, last_stamp)
				VALUES (?, ?, ?, ?, 1, ?)
				ON CONFLICT (owner, with_jid, with_resource) DO UPDATE SET last_seq = last_seq + 1,
					last_stamp = max(last_stamp, excluded.last_stamp)
				RETURNING last_seq, last_stamp`, e.Owner, with, res, host, stamp).Scan(&n, &last)
			return n, last, err
		}
		seq, last, err := head("", "", formatTime(stamp))
		if err != nil {
			return err
		}
		if stored, err = parseTime(last); err != nil {
			return err
		}
		wseq, _, err := head(e.With, "", last)
		if err != nil {
			return err
		}
		var rseq int64
		if e.WithResource != "" {
			if rseq, _, err = head(e.With, e.WithResource, last); err != nil {
				return err
			}
		}
		if err := execChanging(ctx, tx, storage.ErrExists, `INSERT INTO archive
			(owner, seq, with_jid, with_resource, with_seq, res_seq, stanza_id, stamp, stanza) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
			e.Owner, seq, e.With, e.WithResource, wseq, rseq, e.ID, last, storeutil.NonNil(e.Stanza)); err != nil {
			return err
		}
		if keep > 0 && seq > int64(keep) {
			_, err = tx.ExecContext(ctx, `DELETE FROM archive WHERE owner = ? AND seq <= ?`, e.Owner, seq-int64(keep))
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: archive append for %s: %w", e.Owner, err)
	}
	return stored, nil
}

func (a archive) Query(ctx context.Context, owner string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	p, err := storeutil.QueryArchive(ctx, archiveDB{a.s.db}, owner, q)
	if err != nil {
		return p, fmt.Errorf("sqlite: archive query of %s: %w", owner, err)
	}
	return p, nil
}

func (a archive) Ends(ctx context.Context, owner string) (first, last storage.ArchivedMessage, err error) {
	first, last, err = storeutil.ArchiveEnds(ctx, archiveDB{a.s.db}, owner)
	if err != nil {
		err = fmt.Errorf("sqlite: archive ends of %s: %w", owner, err)
	}
	return first, last, err
}

func (a archive) Delete(ctx context.Context, owner string) error {
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM archive_heads WHERE owner = ?`, owner); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM archive WHERE owner = ?`, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: archive delete of %s: %w", owner, err)
	}
	return nil
}

func (a archive) PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error) {
	rows, err := a.s.db.QueryContext(ctx, `SELECT owner FROM archive_heads WHERE host = ? AND with_jid = ''`, host)
	if err != nil {
		return 0, fmt.Errorf("sqlite: archive purge of %s: %w", host, err)
	}
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: archive purge of %s: %w", host, err)
		}
		owners = append(owners, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: archive purge of %s: %w", host, err)
	}
	var total int64
	for _, owner := range owners {
		n, err := a.purgeOwner(ctx, owner, t)
		total += n
		if err != nil {
			return total, fmt.Errorf("sqlite: archive purge of %s: %w", owner, err)
		}
	}
	return total, nil
}

// purgeOwner deletes owner's messages stamped before t in batches, each a
// prefix of the archive, so the archive has no gap between transactions.
func (a archive) purgeOwner(ctx context.Context, owner string, t time.Time) (int64, error) {
	var cut int64
	err := a.s.db.QueryRowContext(ctx, `SELECT seq FROM archive WHERE owner = ? AND stamp < ? ORDER BY stamp DESC, seq DESC LIMIT 1`,
		owner, formatTime(t.UTC())).Scan(&cut)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		var n int64
		err := a.s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM archive WHERE owner = ? AND seq <= ?
				AND seq < (SELECT MIN(seq) FROM archive WHERE owner = ?) + ?`, owner, cut, owner, purgeBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}

// archiveDB adapts database/sql to the shared archive queries.
type archiveDB struct{ db *sql.DB }

func (d archiveDB) QueryRow(ctx context.Context, q string, args ...any) storeutil.Row {
	return sqlRow{d.db.QueryRowContext(ctx, q, args...)}
}

func (d archiveDB) Query(ctx context.Context, q string, args ...any) (storeutil.Cursor, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// IndexHint implements storeutil.ArchiveDB.
func (archiveDB) IndexHint(index string) string { return "INDEXED BY " + index }

func (archiveDB) Time(t time.Time) any { return formatTime(t) }

type sqlRow struct{ r *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

type sqlRows struct{ rows *sql.Rows }

func (r sqlRows) Next() bool             { return r.rows.Next() }
func (r sqlRows) Scan(dest ...any) error { return r.rows.Scan(dest...) }
func (r sqlRows) Err() error             { return r.rows.Err() }
func (r sqlRows) Close()                 { _ = r.rows.Close() }
