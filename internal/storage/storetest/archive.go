package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"parley/internal/storage"
)

// archiveModel is what an archive should hold, kept in Go: every query is
// checked against a straightforward scan of it.
type archiveModel struct {
	owner string
	msgs  []storage.ArchivedMessage // oldest first
}

// archiveBase is the time the test archives start at.
func archiveBase() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

// add appends to the store and the model, applying the store's stamp rules
// (milliseconds, never before the previous message) to the model.
func (m *archiveModel) add(t *testing.T, s storage.Store, id, with, res string, stamp time.Time, keep int) {
	t.Helper()
	want := stamp.UTC().Truncate(time.Millisecond)
	if n := len(m.msgs); n > 0 && want.Before(m.msgs[n-1].Stamp) {
		want = m.msgs[n-1].Stamp
	}
	got, err := s.Archive().Append(ctx(t), keep, storage.ArchiveEntry{
		Owner: m.owner, ID: id, With: with, WithResource: res, Stamp: stamp,
		Stanza: []byte("<message id='" + id + "'><body>" + with + "</body></message>"),
	})
	must(t, err)
	if len(got) != 1 || !got[0].Equal(want) || got[0].Location() != time.UTC {
		t.Fatalf("Append %s stored stamps %v, want [%v] in UTC", id, got, want)
	}
	m.msgs = append(m.msgs, storage.ArchivedMessage{ID: id, With: with, WithResource: res, Stamp: want,
		Stanza: []byte("<message id='" + id + "'><body>" + with + "</body></message>")})
	if keep > 0 && len(m.msgs) > keep {
		m.msgs = slices.Clone(m.msgs[len(m.msgs)-keep:])
	}
}

func (m *archiveModel) index(id string) int {
	return slices.IndexFunc(m.msgs, func(x storage.ArchivedMessage) bool { return x.ID == id })
}

// answer computes the page a query should return, or ErrNotFound.
func (m *archiveModel) answer(q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var p storage.ArchivePage
	pos := func(id string) (int, error) {
		i := m.index(id)
		if i < 0 {
			return 0, storage.ErrNotFound
		}
		return i, nil
	}
	for _, id := range q.IDs {
		if _, err := pos(id); err != nil {
			return p, err
		}
	}
	lo, hi, plo, phi := -1, len(m.msgs), -1, len(m.msgs)
	for _, b := range []struct {
		id  string
		dst *int
	}{{q.AfterID, &lo}, {q.BeforeID, &hi}, {q.PageAfter, &plo}, {q.PageBefore, &phi}} {
		if b.id == "" {
			continue
		}
		i, err := pos(b.id)
		if err != nil {
			return p, err
		}
		*b.dst = i
	}
	var set []int // archive positions in the result set
	for i, x := range m.msgs {
		switch {
		case i <= lo || i >= hi:
		case q.With != "" && x.With != q.With:
		case q.WithResource != "" && x.WithResource != q.WithResource:
		case !q.Start.IsZero() && x.Stamp.Before(q.Start):
		case !q.End.IsZero() && x.Stamp.After(q.End):
		case q.IDs != nil && !slices.Contains(q.IDs, x.ID):
		default:
			set = append(set, i)
		}
	}
	p.Count = len(set)
	var cand []int // indexes into set within the page bounds
	for j, i := range set {
		if i > plo && i < phi {
			cand = append(cand, j)
		}
	}
	p.Complete = len(cand) <= q.Limit
	if !p.Complete {
		if q.Last {
			cand = cand[len(cand)-q.Limit:]
		} else {
			cand = cand[:q.Limit]
		}
	}
	if len(cand) > 0 {
		p.Index = cand[0]
	}
	for _, j := range cand {
		p.Messages = append(p.Messages, m.msgs[set[j]])
	}
	return p, nil
}

func (m *archiveModel) check(t *testing.T, s storage.Store, q storage.ArchiveQuery) {
	t.Helper()
	want, werr := m.answer(q)
	got, err := s.Archive().Query(ctx(t), m.owner, q)
	if werr != nil || err != nil {
		if !errors.Is(err, werr) || werr == nil {
			t.Fatalf("query %+v: err = %v, want %v", q, err, werr)
		}
		return
	}
	ids := func(ms []storage.ArchivedMessage) []string {
		var out []string
		for _, x := range ms {
			out = append(out, x.ID)
		}
		return out
	}
	if got.Count != want.Count || got.Index != want.Index || got.Complete != want.Complete ||
		!slices.Equal(ids(got.Messages), ids(want.Messages)) {
		t.Fatalf("query %+v:\n got count %d index %d complete %v %v\nwant count %d index %d complete %v %v",
			q, got.Count, got.Index, got.Complete, ids(got.Messages), want.Count, want.Index, want.Complete, ids(want.Messages))
	}
	for i, x := range got.Messages {
		w := want.Messages[i]
		if x.With != w.With || x.WithResource != w.WithResource || !x.Stamp.Equal(w.Stamp) ||
			x.Stamp.Location() != time.UTC || string(x.Stanza) != string(w.Stanza) {
			t.Fatalf("message %s = %+v, want %+v", x.ID, x, w)
		}
	}
}

func testArchiveAppendQuery(t *testing.T, s storage.Store) {
	m := &archiveModel{owner: "juliet@example.org"}
	stamps := []time.Duration{0, time.Second, time.Second, 1500 * time.Millisecond, 500 * time.Millisecond, // a step back: clamped
		3*time.Second + 999999, 4 * time.Second}
	withs := []string{"romeo@example.net", "nurse@example.org", "romeo@example.net", "juliet@example.org",
		"romeo@example.net", "romeo@example.net", "nurse@example.org"}
	for i, d := range stamps {
		res := ""
		if i%2 == 0 {
			res = "orchard"
		}
		m.add(t, s, fmt.Sprintf("id-%d", i), withs[i], res, archiveBase().Add(d), 0)
	}
	// Another archive with the same ids and contacts must not interfere.
	other := &archiveModel{owner: "romeo@example.net"}
	for i := range 3 {
		other.add(t, s, fmt.Sprintf("id-%d", i), "juliet@example.org", "", archiveBase().Add(time.Duration(i)*time.Hour), 0)
	}
	for _, q := range []storage.ArchiveQuery{
		{Limit: 100},
		{Limit: 3},
		{Limit: 3, Last: true},
		{Limit: 0},
		{Limit: 2, PageAfter: "id-1"},
		{Limit: 2, Last: true, PageBefore: "id-5"},
		{Limit: 10, With: "romeo@example.net"},
		{Limit: 1, With: "romeo@example.net", PageAfter: "id-2"},
		{Limit: 1, With: "romeo@example.net", Last: true},
		{Limit: 10, With: "romeo@example.net", WithResource: "orchard"},
		{Limit: 1, With: "romeo@example.net", WithResource: "orchard", PageAfter: "id-0"},
		{Limit: 10, With: "juliet@example.org"}, // messages to oneself
		{Limit: 10, With: "nobody@example.org"},
		{Limit: 10, Start: archiveBase().Add(time.Second)},
		{Limit: 10, End: archiveBase().Add(time.Second)},
		{Limit: 10, Start: archiveBase().Add(1500 * time.Millisecond), End: archiveBase().Add(1500 * time.Millisecond)},
		{Limit: 10, Start: archiveBase().Add(3 * time.Second)}, // the stored stamp is truncated to 3.000s
		{Limit: 10, Start: archiveBase().Add(time.Hour)},
		{Limit: 10, End: archiveBase().Add(-time.Hour)},
		{Limit: 10, Start: archiveBase().Add(3 * time.Second), End: archiveBase()},
		{Limit: 10, AfterID: "id-1", BeforeID: "id-5"},
		{Limit: 1, AfterID: "id-1", BeforeID: "id-5", PageAfter: "id-2"},
		{Limit: 10, AfterID: "id-5", BeforeID: "id-1"},
		{Limit: 10, IDs: []string{"id-4", "id-1", "id-4"}},
		{Limit: 1, IDs: []string{"id-4", "id-1", "id-6"}, Last: true},
		{Limit: 1, IDs: []string{"id-4", "id-1", "id-6"}, PageAfter: "id-1"},
		{Limit: 10, IDs: []string{"id-1", "id-2"}, With: "nurse@example.org"},
		{Limit: 10, IDs: []string{}},
		{Limit: 10, IDs: []string{"id-1", "gone"}},
		{Limit: 10, AfterID: "gone"},
		{Limit: 10, BeforeID: "gone"},
		{Limit: 10, PageAfter: "gone"},
		{Limit: 10, PageBefore: "gone"},
	} {
		m.check(t, s, q)
	}
	p, err := s.Archive().Query(ctx(t), "nobody@example.org", storage.ArchiveQuery{Limit: 10})
	must(t, err)
	if p.Count != 0 || len(p.Messages) != 0 || !p.Complete {
		t.Fatalf("empty archive: %+v", p)
	}
	first, last, err := s.Archive().Ends(ctx(t), m.owner)
	must(t, err)
	if first.ID != "id-0" || last.ID != "id-6" || !last.Stamp.Equal(m.msgs[6].Stamp) || last.With != "nurse@example.org" {
		t.Fatalf("Ends = %+v, %+v", first, last)
	}
	_, _, err = s.Archive().Ends(ctx(t), "nobody@example.org")
	wantErr(t, "Ends of an empty archive", err, storage.ErrNotFound)
	_, err = s.Archive().Append(ctx(t), 0, storage.ArchiveEntry{Owner: m.owner, ID: "id-3", With: "x@y", Stamp: archiveBase()})
	wantErr(t, "Append with a used id", err, storage.ErrExists)
	// A batch with one used id stores none of its messages.
	_, err = s.Archive().Append(ctx(t), 0,
		storage.ArchiveEntry{Owner: m.owner, ID: "fresh", With: "x@y", Stamp: archiveBase()},
		storage.ArchiveEntry{Owner: other.owner, ID: "fresh", With: "x@y", Stamp: archiveBase()},
		storage.ArchiveEntry{Owner: m.owner, ID: "id-4", With: "x@y", Stamp: archiveBase()})
	wantErr(t, "batch with a used id", err, storage.ErrExists)
	other.check(t, s, storage.ArchiveQuery{Limit: 100})
	m.check(t, s, storage.ArchiveQuery{Limit: 100})  // the failed append changed nothing
	m.add(t, s, "id-7", "x@y", "", archiveBase(), 0) // and numbering goes on
	m.check(t, s, storage.ArchiveQuery{Limit: 100, With: "x@y"})
	m.check(t, s, storage.ArchiveQuery{Limit: 3, Last: true})
}

// testArchiveRandom compares a few hundred random queries with the model,
// while the archive is trimmed by the per-owner cap and by retention, which
// is where gap-free numbering would break first.
func testArchiveRandom(t *testing.T, s storage.Store) {
	rng := rand.New(rand.NewPCG(7, 9))
	m := &archiveModel{owner: "juliet@example.org"}
	withs := []string{"a@example.net", "b@example.net", "c@example.org", "juliet@example.org"}
	stamp := archiveBase()
	n := 0
	grow := func(k, keep int) {
		for range k {
			stamp = stamp.Add(time.Duration(rng.IntN(3)) * time.Second)
			if rng.IntN(10) == 0 {
				stamp = stamp.Add(-2 * time.Second)
			}
			m.add(t, s, fmt.Sprintf("m%03d", n), withs[rng.IntN(len(withs))], []string{"", "r1", "r2"}[rng.IntN(3)], stamp, keep)
			n++
		}
	}
	randomID := func() string {
		if rng.IntN(12) == 0 {
			return "missing"
		}
		return fmt.Sprintf("m%03d", rng.IntN(n))
	}
	query := func() storage.ArchiveQuery {
		q := storage.ArchiveQuery{Limit: rng.IntN(8)}
		if rng.IntN(3) == 0 {
			q.With = withs[rng.IntN(len(withs))]
			if rng.IntN(3) == 0 {
				q.WithResource = "r1"
			}
		}
		if rng.IntN(3) == 0 {
			q.Start = archiveBase().Add(time.Duration(rng.IntN(n+1)) * time.Second)
		}
		if rng.IntN(3) == 0 {
			q.End = archiveBase().Add(time.Duration(rng.IntN(n+1)) * time.Second)
		}
		if rng.IntN(4) == 0 {
			q.AfterID = randomID()
		}
		if rng.IntN(4) == 0 {
			q.BeforeID = randomID()
		}
		if rng.IntN(6) == 0 {
			q.IDs = []string{randomID(), randomID(), randomID()}
		}
		switch rng.IntN(4) {
		case 0:
			q.PageAfter = randomID()
		case 1:
			q.PageBefore = randomID()
			q.Last = true
		case 2:
			q.Last = true
		}
		return q
	}
	grow(60, 0)
	for range 150 {
		m.check(t, s, query())
	}
	grow(20, 50) // the cap trims the oldest
	if len(m.msgs) != 50 {
		t.Fatalf("model holds %d", len(m.msgs))
	}
	for range 100 {
		m.check(t, s, query())
	}
	cut := m.msgs[10].Stamp
	purged, err := s.Archive().PurgeBefore(ctx(t), "example.org", cut)
	must(t, err)
	var kept []storage.ArchivedMessage
	for _, x := range m.msgs {
		if !x.Stamp.Before(cut) {
			kept = append(kept, x)
		}
	}
	if int(purged) != len(m.msgs)-len(kept) {
		t.Fatalf("PurgeBefore removed %d, want %d", purged, len(m.msgs)-len(kept))
	}
	m.msgs = kept
	grow(10, 0)
	for range 100 {
		m.check(t, s, query())
	}
}

func testArchivePurgeAndDelete(t *testing.T, s storage.Store) {
	c := ctx(t)
	owners := []*archiveModel{{owner: "juliet@example.org"}, {owner: "room@conference.example.org"}, {owner: "romeo@example.net"}}
	for _, m := range owners {
		for i := range 30 {
			m.add(t, s, fmt.Sprint(i), "x@example.com", "", archiveBase().Add(time.Duration(i)*time.Minute), 0)
		}
	}
	// A purge is per host: only juliet's archive is under example.org.
	cut := archiveBase().Add(10 * time.Minute)
	n, err := s.Archive().PurgeBefore(c, "example.org", cut)
	must(t, err)
	if n != 10 {
		t.Fatalf("PurgeBefore = %d, want 10", n)
	}
	owners[0].msgs = owners[0].msgs[10:]
	for _, m := range owners {
		m.check(t, s, storage.ArchiveQuery{Limit: 5})
		m.check(t, s, storage.ArchiveQuery{Limit: 5, Last: true})
	}
	n, err = s.Archive().PurgeBefore(c, "example.org", cut)
	must(t, err)
	if n != 0 {
		t.Fatalf("second PurgeBefore = %d, want 0", n)
	}
	// Ids of purged messages are gone, not reusable for other messages.
	_, err = s.Archive().Query(c, "juliet@example.org", storage.ArchiveQuery{AfterID: "3"})
	wantErr(t, "query after a purged id", err, storage.ErrNotFound)

	must(t, s.Archive().Delete(c, "room@conference.example.org"))
	owners[1].msgs = nil
	for _, m := range owners {
		m.check(t, s, storage.ArchiveQuery{Limit: 5})
	}
	// A deleted archive starts again cleanly.
	owners[1].add(t, s, "0", "x@example.com", "", archiveBase(), 0)
	owners[1].check(t, s, storage.ArchiveQuery{Limit: 5, With: "x@example.com"})
}

func testArchiveConcurrentAppend(t *testing.T, s storage.Store) {
	c := ctx(t)
	const owner, writers, each = "juliet@example.org", 6, 15
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := s.Archive().Append(c, 0, storage.ArchiveEntry{Owner: owner, ID: fmt.Sprintf("%d-%d", w, i),
					With: fmt.Sprintf("w%d@example.net", w%2), Stamp: time.Now(), Stanza: []byte("x")})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	p, err := s.Archive().Query(c, owner, storage.ArchiveQuery{Limit: 1000})
	must(t, err)
	if p.Count != writers*each || len(p.Messages) != writers*each || !p.Complete {
		t.Fatalf("after %d concurrent appends: count %d, %d messages, complete %v", writers*each, p.Count, len(p.Messages), p.Complete)
	}
	for i := 1; i < len(p.Messages); i++ {
		if p.Messages[i].Stamp.Before(p.Messages[i-1].Stamp) {
			t.Fatalf("stamps decrease at %d: %v after %v", i, p.Messages[i].Stamp, p.Messages[i-1].Stamp)
		}
	}
	for _, with := range []string{"w0@example.net", "w1@example.net"} {
		p, err := s.Archive().Query(c, owner, storage.ArchiveQuery{Limit: 1, With: with, Last: true})
		must(t, err)
		if p.Count != writers*each/2 || p.Index != p.Count-1 {
			t.Fatalf("with %s: count %d index %d, want %d and %d", with, p.Count, p.Index, writers*each/2, writers*each/2-1)
		}
	}
}

// testArchiveBatch appends several owners' messages in batches (as the
// archive module's writer does) and checks each archive as if they had
// come one by one, the per-owner cap included.
func testArchiveBatch(t *testing.T, s storage.Store) {
	models := map[string]*archiveModel{}
	for _, o := range []string{"juliet@example.org", "romeo@example.net", "room@conference.example.org"} {
		models[o] = &archiveModel{owner: o}
	}
	withs := []string{"a@example.com", "b@example.com"}
	n := 0
	for batch := range 6 {
		var entries []storage.ArchiveEntry
		var want []storage.ArchivedMessage
		var owners []string
		for i := range 7 {
			o := []string{"juliet@example.org", "romeo@example.net", "room@conference.example.org"}[(batch+i)%3]
			e := storage.ArchiveEntry{Owner: o, ID: fmt.Sprint("b", n), With: withs[i%2], WithResource: []string{"", "r"}[i%2],
				Stamp: archiveBase().Add(time.Duration(n) * time.Second), Stanza: []byte(fmt.Sprint(n))}
			n++
			entries = append(entries, e)
			owners = append(owners, o)
			want = append(want, storage.ArchivedMessage{ID: e.ID, With: e.With, WithResource: e.WithResource,
				Stamp: e.Stamp, Stanza: e.Stanza})
		}
		got, err := s.Archive().Append(ctx(t), 10, entries...)
		must(t, err)
		if len(got) != len(entries) {
			t.Fatalf("batch of %d returned %d stamps", len(entries), len(got))
		}
		for i, o := range owners {
			m := models[o]
			m.msgs = append(m.msgs, want[i])
			if len(m.msgs) > 10 {
				m.msgs = m.msgs[len(m.msgs)-10:]
			}
		}
	}
	for _, m := range models {
		m.check(t, s, storage.ArchiveQuery{Limit: 100})
		m.check(t, s, storage.ArchiveQuery{Limit: 3, With: "b@example.com", Last: true})
		m.check(t, s, storage.ArchiveQuery{Limit: 2, With: "b@example.com", WithResource: "r", PageAfter: m.msgs[3].ID})
	}
	if _, err := s.Archive().Append(ctx(t), 0); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

// testArchiveReplace: Replace swaps one message's stanza for another (a
// retracted message's tombstone) and nothing else: the message keeps its
// ID, stamp, party and place, so every query shape, counts and paging
// included, answers as before with the new stanza. Unknown IDs, another
// owner's IDs and messages the cap trimmed are ErrNotFound, and change
// nothing.
func testArchiveReplace(t *testing.T, s storage.Store) {
	m := &archiveModel{owner: "room@conference.example.org"}
	withs := []string{"romeo@example.net", "nurse@example.org", "romeo@example.net", "juliet@example.org", "romeo@example.net"}
	for i, w := range withs {
		m.add(t, s, fmt.Sprintf("id-%d", i), w, "orchard", archiveBase().Add(time.Duration(i)*time.Second), 0)
	}
	other := &archiveModel{owner: "other@conference.example.org"}
	other.add(t, s, "id-2", "romeo@example.net", "", archiveBase(), 0)

	tomb := []byte("<message id='id-2'><retracted xmlns='urn:xmpp:message-retract:1' id='r1'/></message>")
	must(t, s.Archive().Replace(ctx(t), m.owner, "id-2", tomb))
	m.msgs[2].Stanza = tomb
	for _, q := range []storage.ArchiveQuery{
		{Limit: 100},
		{Limit: 10, IDs: []string{"id-2"}},
		{Limit: 10, With: "romeo@example.net"},
		{Limit: 10, With: "romeo@example.net", WithResource: "orchard"},
		{Limit: 1, PageAfter: "id-1"},
		{Limit: 2, Last: true, PageBefore: "id-4"},
		{Limit: 10, Start: archiveBase().Add(2 * time.Second), End: archiveBase().Add(2 * time.Second)},
		{Limit: 10, AfterID: "id-1", BeforeID: "id-3"},
	} {
		m.check(t, s, q)
	}
	// Replacing again (a tombstone rewritten) is as good as the first time.
	tomb2 := []byte("<message id='id-2'/>")
	must(t, s.Archive().Replace(ctx(t), m.owner, "id-2", tomb2))
	m.msgs[2].Stanza = tomb2
	m.check(t, s, storage.ArchiveQuery{Limit: 100})
	// The same ID in another archive is another message.
	other.check(t, s, storage.ArchiveQuery{Limit: 100})

	wantErr(t, "Replace of an unknown id", s.Archive().Replace(ctx(t), m.owner, "gone", tomb), storage.ErrNotFound)
	wantErr(t, "Replace in an empty archive", s.Archive().Replace(ctx(t), "nobody@example.org", "id-2", tomb), storage.ErrNotFound)
	// Trimmed by the cap: gone, not resurrected.
	m.add(t, s, "id-5", "romeo@example.net", "", archiveBase().Add(5*time.Second), 3)
	wantErr(t, "Replace of a trimmed message", s.Archive().Replace(ctx(t), m.owner, "id-0", tomb), storage.ErrNotFound)
	m.check(t, s, storage.ArchiveQuery{Limit: 100})
	// Appending goes on after the replaced message, numbering intact.
	m.add(t, s, "id-6", "nurse@example.org", "", archiveBase().Add(6*time.Second), 0)
	m.check(t, s, storage.ArchiveQuery{Limit: 100, With: "nurse@example.org"})
	m.check(t, s, storage.ArchiveQuery{Limit: 2, Last: true})
}
