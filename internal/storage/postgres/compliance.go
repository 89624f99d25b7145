package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

// complianceLockClass is the advisory lock class of appends to one host's
// compliance log: they run one after the other, so ids become visible in
// order and stamps can be kept from going backwards.
const complianceLockClass int32 = 0x636d706c // "cmpl"

type compliance struct{ s *Store }

func (c compliance) Append(ctx context.Context, recs ...storage.ComplianceRecord) error {
	if len(recs) == 0 {
		return nil
	}
	err := c.s.tx(ctx, func(tx pgx.Tx) error {
		last := map[string]time.Time{}
		var hosts []string
		for _, r := range recs {
			if _, ok := last[r.Host]; !ok {
				last[r.Host] = time.Time{}
				hosts = append(hosts, r.Host)
			}
		}
		// Hosts in one order for everyone: no deadlock between batches.
		slices.Sort(hosts)
		for _, h := range hosts {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, complianceLockClass, ownerLockKey(h)); err != nil {
				return err
			}
			var s time.Time
			err := tx.QueryRow(ctx, `SELECT stamp FROM compliance_log WHERE host = $1 ORDER BY id DESC LIMIT 1`, h).Scan(&s)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			last[h] = s.UTC()
		}
		for _, r := range recs {
			stamp := r.Stamp.UTC().Truncate(storeutil.StampPrecision)
			if stamp.Before(last[r.Host]) {
				stamp = last[r.Host]
			}
			last[r.Host] = stamp
			if _, err := tx.Exec(ctx, `INSERT INTO compliance_log (host, stamp, type, from_bare, from_jid, to_bare, to_jid, stanza)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.Host, stamp, r.Type, storeutil.BareOf(r.From), r.From,
				storeutil.BareOf(r.To), r.To, storeutil.NonNil(r.Stanza)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: compliance append: %w", err)
	}
	return nil
}

func (c compliance) Export(ctx context.Context, f storage.ComplianceFilter, fn func(storage.ComplianceRecord) error) error {
	if err := storeutil.ExportCompliance(ctx, archiveDB(c), f, fn); err != nil {
		return fmt.Errorf("postgres: compliance export of %s: %w", f.Host, err)
	}
	return nil
}

func (c compliance) PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error) {
	var total int64
	for {
		tag, err := c.s.pool.Exec(ctx, `DELETE FROM compliance_log WHERE id IN
			(SELECT id FROM compliance_log WHERE host = $1 AND stamp < $2 ORDER BY stamp, id LIMIT $3)`, host, t.UTC(), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("postgres: compliance purge of %s: %w", host, err)
		}
		n := tag.RowsAffected()
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}
