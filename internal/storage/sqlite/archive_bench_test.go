package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"parley/internal/storage"
)

// benchArchiveSize is the archive BenchmarkArchiveQuery pages through: a
// million messages, the size a heavy user reaches in a few years.
const benchArchiveSize = 1_000_000

// fillArchive writes n messages of owner straight into the tables in one
// transaction (a million Appends would each pay a commit). It produces
// exactly what Append would: gap-free seq, with_seq and res_seq numbers, a
// stamp per second, the head rows. Contact 0 has 30% of the messages, 199 others
// share the rest.
func fillArchive(b *testing.B, s *Store, owner string, n int) {
	b.Helper()
	ctx := b.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO archive (owner, seq, with_jid, with_resource, with_seq, res_seq, stanza_id, stamp, stanza)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	wseq := map[string]int64{}
	base := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	var last time.Time
	for i := 1; i <= n; i++ {
		c := i % 10
		if c >= 3 {
			c = 1 + i%199
		} else {
			c = 0
		}
		with := fmt.Sprintf("c%d@example.net", c)
		wseq[with]++
		last = base.Add(time.Duration(i) * time.Second)
		stanza := fmt.Sprintf("<message from='%s/phone' to='%s' type='chat' id='m%d'><body>message number %d of the benchmark archive</body><origin-id xmlns='urn:xmpp:sid:0' id='o%d'/></message>",
			with, owner, i, i, i)
		// Every contact writes from one resource: res_seq = with_seq.
		if _, err := ins.ExecContext(ctx, owner, i, with, "phone", wseq[with], wseq[with], benchID(i), formatTime(last), []byte(stanza)); err != nil {
			b.Fatal(err)
		}
	}
	head := func(with, res string, seq int64) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO archive_heads (owner, with_jid, with_resource, host, last_seq, last_stamp)
			VALUES (?, ?, ?, 'example.org', ?, ?)`, owner, with, res, seq, formatTime(last)); err != nil {
			b.Fatal(err)
		}
	}
	for with, seq := range wseq {
		head(with, "", seq)
		head(with, "phone", seq)
	}
	head("", "", int64(n))
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func benchID(i int) string { return fmt.Sprintf("%08x-bench", i*2654435761%(1<<32)) }

// BenchmarkArchiveQuery pages through a 1,000,000-message archive the way
// clients do: first and last page, forward and backward from the middle, a
// time window, one contact, one contact's full JID, single ids, and the
// metadata of the archive. Each page comes with its count, index and
// completeness. The archive is filled once; the sub-benchmarks share it.
func BenchmarkArchiveQuery(b *testing.B) {
	s := openFileB(b, filepath.Join(b.TempDir(), "archive.db"))
	const owner = "alice@example.org"
	start := time.Now()
	fillArchive(b, s, owner, benchArchiveSize)
	b.Logf("filled %d messages in %s", benchArchiveSize, time.Since(start).Round(time.Second))
	base := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	mid := benchID(benchArchiveSize / 2)
	cases := []struct {
		name string
		q    storage.ArchiveQuery
	}{
		{"FirstPage", storage.ArchiveQuery{Limit: 50}},
		{"LastPage", storage.ArchiveQuery{Limit: 50, Last: true}},
		{"AfterMiddle", storage.ArchiveQuery{Limit: 50, PageAfter: mid}},
		{"BeforeMiddle", storage.ArchiveQuery{Limit: 50, Last: true, PageBefore: mid}},
		{"TimeWindow", storage.ArchiveQuery{Limit: 50, Start: base.Add(400_000 * time.Second), End: base.Add(600_000 * time.Second)}},
		{"AfterIDBeforeID", storage.ArchiveQuery{Limit: 50, AfterID: benchID(100_000), BeforeID: benchID(900_000), Last: true}},
		{"WithBusyContact", storage.ArchiveQuery{Limit: 50, With: "c0@example.net", Last: true}},
		{"WithBusyContactMiddle", storage.ArchiveQuery{Limit: 50, With: "c0@example.net", PageAfter: mid}},
		{"WithQuietContact", storage.ArchiveQuery{Limit: 50, With: "c42@example.net", Start: base.Add(200_000 * time.Second)}},
		{"WithBusyContactFullJID", storage.ArchiveQuery{Limit: 50, With: "c0@example.net", WithResource: "phone", Last: true}},
		{"WithQuietContactFullJID", storage.ArchiveQuery{Limit: 50, With: "c42@example.net", WithResource: "phone", Last: true}},
		{"IDs", storage.ArchiveQuery{Limit: 50, IDs: []string{benchID(7), mid, benchID(999_999)}}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				p, err := s.Archive().Query(b.Context(), owner, tc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Messages) == 0 || p.Count == 0 {
					b.Fatalf("empty page: %+v", p)
				}
			}
		})
	}
	b.Run("Ends", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Archive().Ends(b.Context(), owner); err != nil {
				b.Fatal(err)
			}
		}
	})
	i := 0
	entry := func(with string) storage.ArchiveEntry {
		i++
		return storage.ArchiveEntry{Owner: owner, ID: fmt.Sprintf("append-%d", i), With: with, WithResource: "phone",
			Stamp: time.Now(), Stanza: []byte("<message><body>x</body></message>")}
	}
	b.Run("Append", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Archive().Append(b.Context(), 0, entry("c0@example.net")); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the archive module's writer does under load: many messages,
	// several parties, one transaction. ns/op is per batch of 100.
	b.Run("AppendBatch100", func(b *testing.B) {
		for b.Loop() {
			batch := make([]storage.ArchiveEntry, 100)
			for j := range batch {
				batch[j] = entry(fmt.Sprintf("c%d@example.net", j%7))
			}
			if _, err := s.Archive().Append(b.Context(), 0, batch...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func openFileB(b *testing.B, path string) *Store {
	b.Helper()
	s, err := Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
