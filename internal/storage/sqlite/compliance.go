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

type compliance struct{ s *Store }

func (c compliance) Append(ctx context.Context, recs ...storage.ComplianceRecord) error {
	if len(recs) == 0 {
		return nil
	}
	err := c.s.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO compliance_log (host, stamp, type, from_bare, from_jid, to_bare, to_jid, stanza)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		last := map[string]time.Time{} // per host: the stamp of its newest record
		for _, r := range recs {
			prev, ok := last[r.Host]
			if !ok {
				var s string
				err := tx.QueryRowContext(ctx, `SELECT stamp FROM compliance_log WHERE host = ? ORDER BY id DESC LIMIT 1`, r.Host).Scan(&s)
				switch {
				case errors.Is(err, sql.ErrNoRows):
				case err != nil:
					return err
				default:
					if prev, err = parseTime(s); err != nil {
						return err
					}
				}
			}
			stamp := r.Stamp.UTC().Truncate(storeutil.StampPrecision)
			if stamp.Before(prev) {
				stamp = prev
			}
			last[r.Host] = stamp
			if _, err := ins.ExecContext(ctx, r.Host, formatTime(stamp), r.Type, storeutil.BareOf(r.From), r.From,
				storeutil.BareOf(r.To), r.To, storeutil.NonNil(r.Stanza)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: compliance append: %w", err)
	}
	return nil
}

func (c compliance) Export(ctx context.Context, f storage.ComplianceFilter, fn func(storage.ComplianceRecord) error) error {
	if err := storeutil.ExportCompliance(ctx, archiveDB{c.s.db}, f, fn); err != nil {
		return fmt.Errorf("sqlite: compliance export of %s: %w", f.Host, err)
	}
	return nil
}

func (c compliance) PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := c.s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM compliance_log WHERE id IN
				(SELECT id FROM compliance_log WHERE host = ? AND stamp < ? ORDER BY stamp, id LIMIT ?)`, host, formatTime(t.UTC()), purgeBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("sqlite: compliance purge of %s: %w", host, err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}
