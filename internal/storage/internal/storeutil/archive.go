package storeutil

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"parley/internal/storage"
)

// The archive tables (both backends, migration 0010) keep one invariant
// that every count below relies on: an owner's messages are numbered
// without gaps in three ways, seq over the whole archive, with_seq among
// the messages exchanged with one bare JID, res_seq among those with one
// full JID. Appends take the next numbers under the owner's head rows;
// deletions only ever remove a prefix of an archive (retention, the
// per-owner cap) or all of it, which leaves each numbering gap-free.
// Counting the messages of a filter between two positions is then a
// subtraction of two index lookups instead of a scan, which is what keeps a
// page of a million-message archive cheap. Stamps never decrease in seq
// order either, so a time range is a seq range.

// ArchiveDB is the read access the shared archive queries need from a
// backend. Queries are written with '?' placeholders (PostgreSQL adapters
// rebind them with Rebind); Row.Scan returns storage.ErrNotFound when there
// is no row.
type ArchiveDB interface {
	QueryRow(ctx context.Context, query string, args ...any) Row
	Query(ctx context.Context, query string, args ...any) (Cursor, error)
	// Time converts a stamp to the backend's query argument.
	Time(t time.Time) any
	// IndexHint returns what goes after the table name in a query that
	// must use index (archive_owner_with, compliance_log_from, ...):
	// SQLite's planner, without statistics, prefers the (owner, seq) or
	// (host, id) index there and then walks every row of the range looking
	// for the party's ("INDEXED BY ..."); PostgreSQL's has statistics and
	// needs no hint.
	IndexHint(index string) string
}

// Row is one result row.
type Row interface{ Scan(dest ...any) error }

// Cursor is a multi-row result the caller closes.
type Cursor interface {
	Rows
	Close()
}

// Rebind turns '?' placeholders into PostgreSQL's $1, $2, ... The archive
// queries contain no '?' inside literals.
func Rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// StampPrecision is what archive stamps are kept to: XEP-0082 stamps in
// results carry milliseconds, so a client that filters with a stamp it was
// shown finds exactly that message again.
const StampPrecision = time.Millisecond

// ParseStamp converts a scanned stamp (SQLite text, PostgreSQL time) to UTC.
func ParseStamp(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad stored stamp %q: %w", v, err)
		}
		return t.UTC(), nil
	case []byte:
		return ParseStamp(string(v))
	}
	return time.Time{}, fmt.Errorf("bad stored stamp of type %T", v)
}

// archiveKey is where one message sits in its archive: seq, and num, its
// number under the query's filter (seq, with_seq or res_seq).
type archiveKey struct {
	seq, num  int64
	with, res string
}

const archiveRowCols = "stanza_id, with_jid, with_resource, stamp, stanza"

func scanArchiveRow(r Row) (archiveKey, storage.ArchivedMessage, error) {
	var (
		k     archiveKey
		m     storage.ArchivedMessage
		stamp any
	)
	if err := r.Scan(&k.seq, &k.num, &m.ID, &m.With, &m.WithResource, &stamp, &m.Stanza); err != nil {
		return k, m, err
	}
	k.with, k.res = m.With, m.WithResource
	var err error
	m.Stamp, err = ParseStamp(stamp)
	m.Stanza = NonNil(m.Stanza)
	return k, m, err
}

// lookupArchiveID finds the message with id in owner's archive.
func lookupArchiveID(ctx context.Context, db ArchiveDB, owner, id string) (archiveKey, error) {
	var k archiveKey
	err := db.QueryRow(ctx, `SELECT seq, seq, with_jid, with_resource FROM archive WHERE owner = ? AND stanza_id = ?`,
		owner, id).Scan(&k.seq, &k.num, &k.with, &k.res)
	if errors.Is(err, storage.ErrNotFound) {
		return k, fmt.Errorf("archive id %q: %w", id, storage.ErrNotFound)
	}
	return k, err
}

// filter is the "with" part of a query as SQL: the table with the index
// that serves it, the condition, and the column numbering its messages.
type filter struct {
	from, sql, num string
	args           []any
}

func withFilter(db ArchiveDB, q storage.ArchiveQuery) filter {
	switch {
	case q.With == "":
		return filter{from: "archive", num: "seq"}
	case q.WithResource == "":
		return filter{"archive " + db.IndexHint("archive_owner_with"), " AND with_jid = ?", "with_seq", []any{q.With}}
	}
	return filter{"archive " + db.IndexHint("archive_owner_res"), " AND with_jid = ? AND with_resource = ?", "res_seq",
		[]any{q.With, q.WithResource}}
}

func (f filter) matches(k archiveKey, q storage.ArchiveQuery) bool {
	return q.With == "" || (k.with == q.With && (q.WithResource == "" || k.res == q.WithResource))
}

// edge returns the first (or, desc, the last) key of owner's archive in
// [lo, hi] matching f; ok is false when there is none.
func edge(ctx context.Context, db ArchiveDB, owner string, f filter, lo, hi int64, desc bool) (k archiveKey, ok bool, err error) {
	order := "ASC"
	if desc {
		order = "DESC"
	}
	args := append(append([]any{owner}, f.args...), lo, hi)
	err = db.QueryRow(ctx, `SELECT seq, `+f.num+`, with_jid, with_resource FROM `+f.from+` WHERE owner = ?`+f.sql+
		` AND seq >= ? AND seq <= ? ORDER BY seq `+order+` LIMIT 1`, args...).Scan(&k.seq, &k.num, &k.with, &k.res)
	if errors.Is(err, storage.ErrNotFound) {
		return k, false, nil
	}
	return k, err == nil, err
}

// stampBound returns the first seq stamped at or after t, or (last) the
// last seq stamped at or before t.
func stampBound(ctx context.Context, db ArchiveDB, owner string, t time.Time, last bool) (int64, bool, error) {
	q := `SELECT seq FROM archive WHERE owner = ? AND stamp >= ? ORDER BY stamp ASC, seq ASC LIMIT 1`
	if last {
		q = `SELECT seq FROM archive WHERE owner = ? AND stamp <= ? ORDER BY stamp DESC, seq DESC LIMIT 1`
	}
	var seq int64
	err := db.QueryRow(ctx, q, owner, db.Time(t.UTC())).Scan(&seq)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, false, nil
	}
	return seq, err == nil, err
}

func fetch(ctx context.Context, db ArchiveDB, query string, args ...any) ([]archiveKey, []storage.ArchivedMessage, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		keys []archiveKey
		msgs []storage.ArchivedMessage
	)
	for rows.Next() {
		k, m, err := scanArchiveRow(rows)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		msgs = append(msgs, m)
	}
	return keys, msgs, rows.Err()
}

// QueryArchive answers Archive.Query for both backends (see the invariant
// at the top of this file). It reads with a handful of single-row index
// lookups and one range read of at most Limit+1 rows.
func QueryArchive(ctx context.Context, db ArchiveDB, owner string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	resolve := func(id string) (archiveKey, error) { return lookupArchiveID(ctx, db, owner, id) }
	// Every ID the query names must exist (XEP-0313 §4.1.3, §4.3.2), even
	// when the bounds would make the answer empty anyway.
	var named []archiveKey
	for _, id := range q.IDs {
		k, err := resolve(id)
		if err != nil {
			return page, err
		}
		named = append(named, k)
	}
	bound := func(id string, after bool, lo, hi *int64) error {
		if id == "" {
			return nil
		}
		k, err := resolve(id)
		if err != nil {
			return err
		}
		if after {
			*lo = max(*lo, k.seq+1)
		} else {
			*hi = min(*hi, k.seq-1)
		}
		return nil
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if err := bound(q.AfterID, true, &lo, &hi); err != nil {
		return page, err
	}
	if err := bound(q.BeforeID, false, &lo, &hi); err != nil {
		return page, err
	}
	pLo, pHi := int64(math.MinInt64), int64(math.MaxInt64)
	if err := bound(q.PageAfter, true, &pLo, &pHi); err != nil {
		return page, err
	}
	if err := bound(q.PageBefore, false, &pLo, &pHi); err != nil {
		return page, err
	}
	if !q.Start.IsZero() {
		s, ok, err := stampBound(ctx, db, owner, q.Start, false)
		if err != nil {
			return page, err
		}
		if !ok {
			s = math.MaxInt64
		}
		lo = max(lo, s)
	}
	if !q.End.IsZero() {
		s, ok, err := stampBound(ctx, db, owner, q.End, true)
		if err != nil {
			return page, err
		}
		if !ok {
			s = math.MinInt64
		}
		hi = min(hi, s)
	}
	f := withFilter(db, q)
	if q.IDs != nil {
		return pageOfIDs(ctx, db, owner, q, f, named, lo, hi, pLo, pHi)
	}
	if lo > hi {
		page.Complete = true
		return page, nil
	}
	// The first and last message of the set: their numbers under the
	// filter give the count, and pin the answer to the messages that
	// existed when the query began.
	first, ok, err := edge(ctx, db, owner, f, lo, hi, false)
	if err != nil || !ok {
		page.Complete = true
		return page, err
	}
	last, _, err := edge(ctx, db, owner, f, lo, hi, true)
	if err != nil {
		return page, err
	}
	page.Count = int(last.num - first.num + 1)

	a, b := max(first.seq, pLo), min(last.seq, pHi)
	if a > b {
		page.Complete = true
		return page, nil
	}
	order := "ASC"
	if q.Last {
		order = "DESC"
	}
	args := append(append([]any{owner}, f.args...), a, b, max(q.Limit, 0)+1)
	keys, msgs, err := fetch(ctx, db, `SELECT seq, `+f.num+`, `+archiveRowCols+` FROM `+f.from+` WHERE owner = ?`+f.sql+
		` AND seq >= ? AND seq <= ? ORDER BY seq `+order+` LIMIT ?`, args...)
	if err != nil {
		return page, err
	}
	page.Complete = len(msgs) <= q.Limit
	if !page.Complete {
		keys, msgs = keys[:q.Limit], msgs[:q.Limit]
	}
	if q.Last {
		slices.Reverse(keys)
		slices.Reverse(msgs)
	}
	if len(msgs) > 0 {
		page.Messages = msgs
		page.Index = int(keys[0].num - first.num)
	}
	return page, nil
}

// pageOfIDs answers a query for named messages (XEP-0313 'ids'): the set is
// those of them within the bounds and filter, in archive order.
func pageOfIDs(ctx context.Context, db ArchiveDB, owner string, q storage.ArchiveQuery, f filter, named []archiveKey, lo, hi, pLo, pHi int64) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	slices.SortFunc(named, func(a, b archiveKey) int { return cmp.Compare(a.seq, b.seq) })
	named = slices.CompactFunc(named, func(a, b archiveKey) bool { return a.seq == b.seq })
	var set []archiveKey
	for _, k := range named {
		if k.seq >= lo && k.seq <= hi && f.matches(k, q) {
			set = append(set, k)
		}
	}
	page.Count = len(set)
	start, end := len(set), 0 // the part of set within the page bounds: set[start:end]
	for i, k := range set {
		if k.seq >= pLo && k.seq <= pHi {
			start, end = min(start, i), i+1
		}
	}
	if start >= end {
		page.Complete = true
		return page, nil
	}
	limit := max(q.Limit, 0)
	page.Complete = end-start <= limit
	if !page.Complete {
		if q.Last {
			start = end - limit
		} else {
			end = start + limit
		}
	}
	if start >= end {
		return page, nil
	}
	page.Index = start
	marks := make([]string, 0, end-start)
	args := []any{owner}
	for _, k := range set[start:end] {
		marks = append(marks, "?")
		args = append(args, k.seq)
	}
	_, msgs, err := fetch(ctx, db, `SELECT seq, seq, `+archiveRowCols+` FROM archive WHERE owner = ? AND seq IN (`+
		strings.Join(marks, ", ")+`) ORDER BY seq ASC`, args...)
	page.Messages = msgs
	return page, err
}

// ArchiveEnds answers Archive.Ends for both backends.
func ArchiveEnds(ctx context.Context, db ArchiveDB, owner string) (first, last storage.ArchivedMessage, err error) {
	get := func(order string) (storage.ArchivedMessage, error) {
		var (
			m     storage.ArchivedMessage
			stamp any
		)
		err := db.QueryRow(ctx, `SELECT stanza_id, with_jid, with_resource, stamp FROM archive WHERE owner = ? ORDER BY seq `+order+` LIMIT 1`,
			owner).Scan(&m.ID, &m.With, &m.WithResource, &stamp)
		if err != nil {
			return m, err
		}
		m.Stamp, err = ParseStamp(stamp)
		return m, err
	}
	if first, err = get("ASC"); err != nil {
		return first, last, err
	}
	last, err = get("DESC")
	return first, last, err
}

// ArchiveHost is the domain retention purges an archive under: the
// owner's domain.
func ArchiveHost(owner string) string {
	if _, d, ok := strings.Cut(owner, "@"); ok {
		return d
	}
	return owner
}

// ArchiveTx is the write access AppendArchive needs inside one backend
// transaction.
type ArchiveTx interface {
	// LockOwner makes sure owner's head row (with_jid and with_resource
	// '') exists, holds it until the transaction ends (PostgreSQL: the row
	// lock every writer of this archive takes first; SQLite's write
	// transaction excludes everyone anyway), and returns its last seq and
	// stamp (0 and the zero time for a new archive).
	LockOwner(ctx context.Context, owner, host string) (seq int64, stamp time.Time, err error)
	// Head returns the last number of a party's messages in owner's
	// archive (res "" for the bare JID's), 0 if there is none yet.
	Head(ctx context.Context, owner, with, res string) (int64, error)
	// PutHead stores a head row.
	PutHead(ctx context.Context, owner, with, res, host string, seq int64, stamp time.Time) error
	// Insert stores one message; false when owner already has its ID.
	Insert(ctx context.Context, e storage.ArchiveEntry, seq, wseq, rseq int64, stamp time.Time) (bool, error)
	// Trim deletes owner's messages numbered up to seq.
	Trim(ctx context.Context, owner string, seq int64) error
}

type headKey struct{ owner, with, res string }

// AppendArchive answers Archive.Append for both backends inside tx: it
// numbers the entries per owner, party and full JID, keeps stamps from
// going backwards, and writes each head row and each trim once per batch,
// so a batch costs one insert per message plus a few statements per owner.
func AppendArchive(ctx context.Context, tx ArchiveTx, keep int, entries []storage.ArchiveEntry) ([]time.Time, error) {
	type head struct {
		seq   int64
		stamp time.Time
		host  string
	}
	heads := map[headKey]*head{}
	var order []headKey // heads in the order first touched, for PutHead
	var owners []string
	for _, e := range entries {
		if e.Owner == "" || e.With == "" || e.ID == "" {
			return nil, errors.New("archive append: owner, with and id are required")
		}
		if !slices.Contains(owners, e.Owner) {
			owners = append(owners, e.Owner)
		}
	}
	// Owners are locked in one order by everyone, so two batches sharing
	// owners cannot deadlock.
	slices.Sort(owners)
	for _, o := range owners {
		seq, stamp, err := tx.LockOwner(ctx, o, ArchiveHost(o))
		if err != nil {
			return nil, err
		}
		k := headKey{o, "", ""}
		heads[k] = &head{seq, stamp, ArchiveHost(o)}
		order = append(order, k)
	}
	next := func(k headKey, stamp time.Time) (int64, error) {
		h := heads[k]
		if h == nil {
			n, err := tx.Head(ctx, k.owner, k.with, k.res)
			if err != nil {
				return 0, err
			}
			h = &head{seq: n, host: ArchiveHost(k.owner)}
			heads[k] = h
			order = append(order, k)
		}
		h.seq++
		h.stamp = stamp
		return h.seq, nil
	}
	stored := make([]time.Time, len(entries))
	for i, e := range entries {
		own := heads[headKey{e.Owner, "", ""}]
		stamp := e.Stamp.UTC().Truncate(StampPrecision)
		if stamp.Before(own.stamp) {
			stamp = own.stamp
		}
		own.seq++
		own.stamp = stamp
		wseq, err := next(headKey{e.Owner, e.With, ""}, stamp)
		if err != nil {
			return nil, err
		}
		var rseq int64
		if e.WithResource != "" {
			if rseq, err = next(headKey{e.Owner, e.With, e.WithResource}, stamp); err != nil {
				return nil, err
			}
		}
		ok, err := tx.Insert(ctx, e, own.seq, wseq, rseq, stamp)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("archive id %q of %s: %w", e.ID, e.Owner, storage.ErrExists)
		}
		stored[i] = stamp
	}
	for _, k := range order {
		h := heads[k]
		if err := tx.PutHead(ctx, k.owner, k.with, k.res, h.host, h.seq, h.stamp); err != nil {
			return nil, err
		}
	}
	if keep > 0 {
		for _, o := range owners {
			if last := heads[headKey{o, "", ""}].seq; last > int64(keep) {
				if err := tx.Trim(ctx, o, last-int64(keep)); err != nil {
					return nil, err
				}
			}
		}
	}
	return stored, nil
}
