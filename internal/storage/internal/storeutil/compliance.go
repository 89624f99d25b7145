package storeutil

import (
	"context"
	"errors"
	"math"
	"strings"

	"parley/internal/storage"
)

// exportBatch is how many compliance records one read fetches.
const exportBatch = 500

// complianceCols are read by ExportCompliance, in scanComplianceRow's order.
const complianceCols = "id, host, stamp, type, from_jid, to_jid, stanza"

// BareOf returns the bare part of a JID string (the compliance log indexes
// senders and recipients by it).
func BareOf(j string) string {
	b, _, _ := strings.Cut(j, "/")
	return b
}

func scanComplianceRow(r Row) (storage.ComplianceRecord, error) {
	var (
		rec   storage.ComplianceRecord
		stamp any
	)
	if err := r.Scan(&rec.ID, &rec.Host, &stamp, &rec.Type, &rec.From, &rec.To, &rec.Stanza); err != nil {
		return rec, err
	}
	var err error
	rec.Stamp, err = ParseStamp(stamp)
	rec.Stanza = NonNil(rec.Stanza)
	return rec, err
}

// ExportCompliance answers Compliance.Export for both backends. Stamps
// never decrease in id order within a host (appends clamp them), so the
// time bounds become an id range found with two index lookups; a user's
// records are the merge of two ordered index scans (as sender, as
// recipient), each bounded by the batch size.
func ExportCompliance(ctx context.Context, db ArchiveDB, f storage.ComplianceFilter, fn func(storage.ComplianceRecord) error) error {
	lo, hi := int64(0), int64(math.MaxInt64)
	if !f.Since.IsZero() {
		var id int64
		err := db.QueryRow(ctx, `SELECT id FROM compliance_log WHERE host = ? AND stamp >= ? ORDER BY stamp ASC, id ASC LIMIT 1`,
			f.Host, db.Time(f.Since.UTC())).Scan(&id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		lo = id - 1
	}
	if !f.Until.IsZero() {
		err := db.QueryRow(ctx, `SELECT id FROM compliance_log WHERE host = ? AND stamp <= ? ORDER BY stamp DESC, id DESC LIMIT 1`,
			f.Host, db.Time(f.Until.UTC())).Scan(&hi)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	for lo < hi {
		var (
			q    string
			args []any
		)
		if f.User == "" {
			q = `SELECT ` + complianceCols + ` FROM compliance_log WHERE host = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?`
			args = []any{f.Host, lo, hi, exportBatch}
		} else {
			q = `SELECT * FROM (SELECT ` + complianceCols + ` FROM compliance_log ` + db.IndexHint("compliance_log_from") +
				` WHERE host = ? AND from_bare = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?) s
				UNION SELECT * FROM (SELECT ` + complianceCols + ` FROM compliance_log ` + db.IndexHint("compliance_log_to") +
				` WHERE host = ? AND to_bare = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?) r
				ORDER BY id LIMIT ?`
			args = []any{f.Host, f.User, lo, hi, exportBatch, f.Host, f.User, lo, hi, exportBatch, exportBatch}
		}
		recs, err := readCompliance(ctx, db, q, args...)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(recs) < exportBatch {
			return nil
		}
		lo = recs[len(recs)-1].ID
	}
	return nil
}

func readCompliance(ctx context.Context, db ArchiveDB, q string, args ...any) ([]storage.ComplianceRecord, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.ComplianceRecord
	for rows.Next() {
		rec, err := scanComplianceRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
