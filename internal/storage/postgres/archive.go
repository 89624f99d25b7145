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

// purgeBatch bounds the messages one retention transaction deletes, so a
// purge of a large archive never holds its locks for long.
const purgeBatch = 1000

type archive struct{ s *Store }

func (a archive) Append(ctx context.Context, keep int, entries ...storage.ArchiveEntry) ([]time.Time, error) {
	var stored []time.Time
	err := a.s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		stored, err = storeutil.AppendArchive(ctx, archiveTx{tx}, keep, entries)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: archive append: %w", err)
	}
	return stored, nil
}

// archiveTx is storeutil.ArchiveTx in a transaction.
type archiveTx struct{ tx pgx.Tx }

// LockOwner creates the owner's head row if needed and locks it until
// commit: appends to one archive run one after the other, so numbers are
// taken and become visible in order, without gaps. Accounts.Delete and
// Delete take the head rows first too.
func (t archiveTx) LockOwner(ctx context.Context, owner, host string) (int64, time.Time, error) {
	if _, err := t.tx.Exec(ctx, `INSERT INTO archive_heads (owner, with_jid, with_resource, host, last_seq, last_stamp)
		VALUES ($1, '', '', $2, 0, 'epoch') ON CONFLICT DO NOTHING`, owner, host); err != nil {
		return 0, time.Time{}, err
	}
	var (
		seq   int64
		stamp time.Time
	)
	err := t.tx.QueryRow(ctx, `SELECT last_seq, last_stamp FROM archive_heads
		WHERE owner = $1 AND with_jid = '' AND with_resource = '' FOR UPDATE`, owner).Scan(&seq, &stamp)
	if err != nil || seq == 0 {
		return 0, time.Time{}, err
	}
	return seq, stamp.UTC(), nil
}

func (t archiveTx) Head(ctx context.Context, owner, with, res string) (int64, error) {
	var seq int64
	err := t.tx.QueryRow(ctx, `SELECT last_seq FROM archive_heads WHERE owner = $1 AND with_jid = $2 AND with_resource = $3`,
		owner, with, res).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

func (t archiveTx) PutHead(ctx context.Context, owner, with, res, host string, seq int64, stamp time.Time) error {
	if stamp.IsZero() {
		stamp = time.Unix(0, 0)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO archive_heads (owner, with_jid, with_resource, host, last_seq, last_stamp)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner, with_jid, with_resource)
		DO UPDATE SET last_seq = EXCLUDED.last_seq, last_stamp = EXCLUDED.last_stamp`,
		owner, with, res, host, seq, stamp)
	return err
}

func (t archiveTx) Insert(ctx context.Context, e storage.ArchiveEntry, seq, wseq, rseq int64, stamp time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `INSERT INTO archive (owner, seq, with_jid, with_resource, with_seq, res_seq, stanza_id, stamp, stanza)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		e.Owner, seq, e.With, e.WithResource, wseq, rseq, e.ID, stamp, storeutil.NonNil(e.Stanza))
	return tag.RowsAffected() == 1, err
}

func (t archiveTx) Trim(ctx context.Context, owner string, seq int64) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM archive WHERE owner = $1 AND seq <= $2`, owner, seq)
	return err
}

func (a archive) Query(ctx context.Context, owner string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	p, err := storeutil.QueryArchive(ctx, archiveDB(a), owner, q)
	if err != nil {
		return p, fmt.Errorf("postgres: archive query of %s: %w", owner, err)
	}
	return p, nil
}

func (a archive) Ends(ctx context.Context, owner string) (first, last storage.ArchivedMessage, err error) {
	first, last, err = storeutil.ArchiveEnds(ctx, archiveDB(a), owner)
	if err != nil {
		err = fmt.Errorf("postgres: archive ends of %s: %w", owner, err)
	}
	return first, last, err
}

func (a archive) Replace(ctx context.Context, owner, id string, stanza []byte) error {
	// One row, by the (owner, stanza_id) index; the head rows are not
	// touched, since neither the numbering nor the stamps change.
	tag, err := a.s.pool.Exec(ctx, `UPDATE archive SET stanza = $1 WHERE owner = $2 AND stanza_id = $3`,
		storeutil.NonNil(stanza), owner, id)
	switch {
	case err != nil:
		return fmt.Errorf("postgres: archive replace in %s: %w", owner, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("postgres: archive replace in %s: id %q: %w", owner, id, storage.ErrNotFound)
	}
	return nil
}

func (a archive) Delete(ctx context.Context, owner string) error {
	err := a.s.tx(ctx, func(tx pgx.Tx) error {
		// Heads first, in the order appends lock.
		if _, err := tx.Exec(ctx, `DELETE FROM archive_heads WHERE owner = $1`, owner); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM archive WHERE owner = $1`, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: archive delete of %s: %w", owner, err)
	}
	return nil
}

func (a archive) PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT owner FROM archive_heads WHERE host = $1 AND with_jid = ''`, host)
	if err != nil {
		return 0, fmt.Errorf("postgres: archive purge of %s: %w", host, err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("postgres: archive purge of %s: %w", host, err)
	}
	var total int64
	for _, owner := range owners {
		n, err := a.purgeOwner(ctx, owner, t)
		total += n
		if err != nil {
			return total, fmt.Errorf("postgres: archive purge of %s: %w", owner, err)
		}
	}
	return total, nil
}

// purgeOwner deletes owner's messages stamped before t in batches, each a
// prefix of the archive, so the archive has no gap between transactions.
func (a archive) purgeOwner(ctx context.Context, owner string, t time.Time) (int64, error) {
	var cut int64
	err := a.s.pool.QueryRow(ctx, `SELECT seq FROM archive WHERE owner = $1 AND stamp < $2 ORDER BY stamp DESC, seq DESC LIMIT 1`,
		owner, t.UTC()).Scan(&cut)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		tag, err := a.s.pool.Exec(ctx, `DELETE FROM archive WHERE owner = $1 AND seq <= $2
			AND seq < (SELECT MIN(seq) FROM archive WHERE owner = $1) + $3`, owner, cut, purgeBatch)
		if err != nil {
			return total, err
		}
		n := tag.RowsAffected()
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}

// archiveDB adapts the pool to the shared archive queries.
type archiveDB struct{ s *Store }

func (d archiveDB) QueryRow(ctx context.Context, q string, args ...any) storeutil.Row {
	return pgRow{d.s.pool.QueryRow(ctx, storeutil.Rebind(q), args...)}
}

func (d archiveDB) Query(ctx context.Context, q string, args ...any) (storeutil.Cursor, error) {
	rows, err := d.s.pool.Query(ctx, storeutil.Rebind(q), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// IndexHint implements storeutil.ArchiveDB.
func (archiveDB) IndexHint(string) string { return "" }

func (archiveDB) Time(t time.Time) any { return t }

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error { return notFound(r.r.Scan(dest...)) }

type pgRows struct{ rows pgx.Rows }

func (r pgRows) Next() bool             { return r.rows.Next() }
func (r pgRows) Scan(dest ...any) error { return r.rows.Scan(dest...) }
func (r pgRows) Err() error             { return r.rows.Err() }
func (r pgRows) Close()                 { r.rows.Close() }
