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

func (a archive) Append(ctx context.Context, keep int, entries ...storage.ArchiveEntry) ([]time.Time, error) {
	var stored []time.Time
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		// The immediate transaction holds the write lock: the numbers taken
		// here are the next ones and nobody else's.
		at := &archiveTx{tx: tx}
		defer at.close()
		var err error
		stored, err = storeutil.AppendArchive(ctx, at, keep, entries)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: archive append: %w", err)
	}
	return stored, nil
}

// archiveTx is storeutil.ArchiveTx in a write transaction. The insert, run
// once per message, is prepared once per batch.
type archiveTx struct {
	tx     *sql.Tx
	insert *sql.Stmt
}

func (t *archiveTx) close() {
	if t.insert != nil {
		t.insert.Close()
	}
}

func (t *archiveTx) LockOwner(ctx context.Context, owner, _ string) (int64, time.Time, error) {
	var (
		seq   int64
		stamp string
	)
	err := t.tx.QueryRowContext(ctx, `SELECT last_seq, last_stamp FROM archive_heads
		WHERE owner = ? AND with_jid = '' AND with_resource = ''`, owner).Scan(&seq, &stamp)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	ts, err := parseTime(stamp)
	return seq, ts, err
}

func (t *archiveTx) Head(ctx context.Context, owner, with, res string) (int64, error) {
	var seq int64
	err := t.tx.QueryRowContext(ctx, `SELECT last_seq FROM archive_heads WHERE owner = ? AND with_jid = ? AND with_resource = ?`,
		owner, with, res).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

func (t *archiveTx) PutHead(ctx context.Context, owner, with, res, host string, seq int64, stamp time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO archive_heads (owner, with_jid, with_resource, host, last_seq, last_stamp)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, with_jid, with_resource)
		DO UPDATE SET last_seq = excluded.last_seq, last_stamp = excluded.last_stamp`,
		owner, with, res, host, seq, formatTime(stamp))
	return err
}

func (t *archiveTx) Insert(ctx context.Context, e storage.ArchiveEntry, seq, wseq, rseq int64, stamp time.Time) (bool, error) {
	if t.insert == nil {
		var err error
		if t.insert, err = t.tx.PrepareContext(ctx, `INSERT INTO archive
			(owner, seq, with_jid, with_resource, with_seq, res_seq, stanza_id, stamp, stanza) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`); err != nil {
			return false, err
		}
	}
	res, err := t.insert.ExecContext(ctx, e.Owner, seq, e.With, e.WithResource, wseq, rseq, e.ID, formatTime(stamp), storeutil.NonNil(e.Stanza))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *archiveTx) Trim(ctx context.Context, owner string, seq int64) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM archive WHERE owner = ? AND seq <= ?`, owner, seq)
	return err
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

func (a archive) Replace(ctx context.Context, owner, id string, stanza []byte) error {
	var n int64
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE archive SET stanza = ? WHERE owner = ? AND stanza_id = ?`,
			storeutil.NonNil(stanza), owner, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("sqlite: archive replace in %s: %w", owner, err)
	case n == 0:
		return fmt.Errorf("sqlite: archive replace in %s: id %q: %w", owner, id, storage.ErrNotFound)
	}
	return nil
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
