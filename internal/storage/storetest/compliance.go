package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"parley/internal/storage"
)

func exportIDs(t *testing.T, s storage.Store, f storage.ComplianceFilter) ([]storage.ComplianceRecord, []string) {
	t.Helper()
	var recs []storage.ComplianceRecord
	must(t, s.Compliance().Export(ctx(t), f, func(r storage.ComplianceRecord) error {
		recs = append(recs, r)
		return nil
	}))
	var names []string
	for i, r := range recs {
		names = append(names, string(r.Stanza))
		if i > 0 && r.ID <= recs[i-1].ID {
			t.Fatalf("export not in log order: id %d after %d", r.ID, recs[i-1].ID)
		}
		if i > 0 && r.Stamp.Before(recs[i-1].Stamp) {
			t.Fatalf("stamps go backwards: %v after %v", r.Stamp, recs[i-1].Stamp)
		}
	}
	return recs, names
}

func testCompliance(t *testing.T, s storage.Store) {
	c := ctx(t)
	base := archiveBase()
	rec := func(host, typ, from, to, name string, at time.Duration) storage.ComplianceRecord {
		return storage.ComplianceRecord{Host: host, Type: typ, From: from, To: to, Stamp: base.Add(at), Stanza: []byte(name)}
	}
	must(t, s.Compliance().Append(c,
		rec("example.org", "chat", "juliet@example.org/balcony", "romeo@example.net", "1", 0),
		rec("example.org", "chat", "romeo@example.net/orchard", "juliet@example.org", "2", time.Second),
		rec("example.net", "chat", "romeo@example.net/orchard", "juliet@example.org", "other host", time.Second),
		rec("example.org", "groupchat", "nurse@example.org/x", "room@conference.example.org", "3", 2*time.Second),
		rec("example.org", "chat", "juliet@example.org/a", "juliet@example.org", "4", time.Second+500*time.Millisecond), // clock back: clamped
	))
	must(t, s.Compliance().Append(c)) // nothing to add
	must(t, s.Compliance().Append(c, rec("example.org", "normal", "tybalt@example.org", "juliet@example.org/balcony", "5", 3*time.Second+999999)))

	all, names := exportIDs(t, s, storage.ComplianceFilter{Host: "example.org"})
	if !slices.Equal(names, []string{"1", "2", "3", "4", "5"}) {
		t.Fatalf("export = %v", names)
	}
	r := all[0]
	if r.Host != "example.org" || r.Type != "chat" || r.From != "juliet@example.org/balcony" || r.To != "romeo@example.net" ||
		!r.Stamp.Equal(base) || r.Stamp.Location() != time.UTC {
		t.Fatalf("record = %+v", r)
	}
	if !all[3].Stamp.Equal(all[2].Stamp) || !all[4].Stamp.Equal(base.Add(3*time.Second)) {
		t.Fatalf("stamps %v %v %v: want the clock step clamped and milliseconds", all[2].Stamp, all[3].Stamp, all[4].Stamp)
	}
	for _, tc := range []struct {
		name string
		f    storage.ComplianceFilter
		want []string
	}{
		{"user sent and received, self once", storage.ComplianceFilter{Host: "example.org", User: "juliet@example.org"}, []string{"1", "2", "4", "5"}},
		{"remote user", storage.ComplianceFilter{Host: "example.org", User: "romeo@example.net"}, []string{"1", "2"}},
		{"room", storage.ComplianceFilter{Host: "example.org", User: "room@conference.example.org"}, []string{"3"}},
		{"nobody", storage.ComplianceFilter{Host: "example.org", User: "nobody@example.org"}, nil},
		{"since", storage.ComplianceFilter{Host: "example.org", Since: base.Add(2 * time.Second)}, []string{"3", "4", "5"}},
		{"until", storage.ComplianceFilter{Host: "example.org", Until: base.Add(time.Second)}, []string{"1", "2"}},
		{"since and until and user", storage.ComplianceFilter{Host: "example.org", User: "juliet@example.org",
			Since: base.Add(time.Second), Until: base.Add(2 * time.Second)}, []string{"2", "4"}},
		{"since after the end", storage.ComplianceFilter{Host: "example.org", Since: base.Add(time.Hour)}, nil},
		{"until before the start", storage.ComplianceFilter{Host: "example.org", Until: base.Add(-time.Hour)}, nil},
		{"other host", storage.ComplianceFilter{Host: "example.net"}, []string{"other host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := exportIDs(t, s, tc.f); !slices.Equal(got, tc.want) {
				t.Fatalf("export = %v, want %v", got, tc.want)
			}
		})
	}
	stop := errors.New("stop")
	n := 0
	err := s.Compliance().Export(c, storage.ComplianceFilter{Host: "example.org"}, func(storage.ComplianceRecord) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Export after fn failed: n = %d, err = %v", n, err)
	}

	// Many records: export reads in batches, the user's on both sides.
	var batch []storage.ComplianceRecord
	var wantUser []string
	for i := range 1234 {
		from, to := "a@example.org/r", "b@example.org"
		if i%3 == 1 {
			from, to = "b@example.org/r", "a@example.org"
		}
		if i%3 == 2 {
			from, to = "c@example.org/r", "b@example.org"
		}
		name := fmt.Sprint("m", i)
		batch = append(batch, rec("big.example", "chat", from, to, name, time.Duration(i)*time.Millisecond))
		if i%3 != 2 {
			wantUser = append(wantUser, name)
		}
	}
	must(t, s.Compliance().Append(c, batch...))
	if _, got := exportIDs(t, s, storage.ComplianceFilter{Host: "big.example"}); len(got) != 1234 || got[1233] != "m1233" {
		t.Fatalf("big export: %d records", len(got))
	}
	if _, got := exportIDs(t, s, storage.ComplianceFilter{Host: "big.example", User: "a@example.org"}); !slices.Equal(got, wantUser) {
		t.Fatalf("big export of a user: %d records, want %d", len(got), len(wantUser))
	}

	purged, err := s.Compliance().PurgeBefore(c, "big.example", base.Add(1100*time.Millisecond))
	must(t, err)
	if purged != 1100 {
		t.Fatalf("PurgeBefore = %d, want 1100", purged)
	}
	if _, got := exportIDs(t, s, storage.ComplianceFilter{Host: "big.example"}); len(got) != 134 || got[0] != "m1100" {
		t.Fatalf("after purge: %d records from %v", len(got), got[:1])
	}
	if _, got := exportIDs(t, s, storage.ComplianceFilter{Host: "example.org"}); len(got) != 5 {
		t.Fatalf("purge of another host removed %d of example.org's records", 5-len(got))
	}
}
