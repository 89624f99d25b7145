package migrate

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int64
		wantErr bool
	}{
		{"sorted", fstest.MapFS{
			"m/0002_b.sql": {Data: []byte("B")},
			"m/0001_a.sql": {Data: []byte("A")},
			"m/README.md":  {Data: []byte("ignored")},
			"m/0010_c.sql": {Data: []byte("C")},
		}, []int64{1, 2, 10}, false},
		{"empty dir", fstest.MapFS{"m/x.txt": {}}, nil, false},
		{"bad name", fstest.MapFS{"m/init.sql": {}}, nil, true},
		{"zero version", fstest.MapFS{"m/0000_a.sql": {}}, nil, true},
		{"duplicate", fstest.MapFS{"m/1_a.sql": {}, "m/0001_b.sql": {}}, nil, true},
		{"missing dir", fstest.MapFS{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load(tt.files, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var got []int64
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("versions = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("versions = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// fakeDB records what the runner does; it stands in for a database whose
// schema_migrations holds the versions in applied.
type fakeDB struct {
	applied  map[int64]bool
	execs    []string
	failOn   string
	commits  int
	rollback int
}

type fakeTx struct {
	db      *fakeDB
	pending []int64
}

func (tx *fakeTx) Exec(_ context.Context, sql string) error {
	if sql == tx.db.failOn {
		return errors.New("boom")
	}
	tx.db.execs = append(tx.db.execs, sql)
	var v int64
	if n, _ := fmt.Sscanf(sql, "INSERT INTO schema_migrations (version) VALUES (%d)", &v); n == 1 {
		tx.pending = append(tx.pending, v)
	}
	return nil
}

func (tx *fakeTx) QueryInt64(_ context.Context, sql string) (int64, error) {
	var v int64
	if n, _ := fmt.Sscanf(sql, "SELECT COUNT(*) FROM schema_migrations WHERE version = %d", &v); n == 1 && tx.db.applied[v] {
		return 1, nil
	}
	return 0, nil
}

func (tx *fakeTx) Commit(context.Context) error {
	tx.db.commits++
	for _, v := range tx.pending {
		tx.db.applied[v] = true
	}
	return nil
}

func (tx *fakeTx) Rollback(context.Context) error { tx.db.rollback++; return nil }

func TestRun(t *testing.T) {
	ms := []Migration{{1, "0001_a.sql", "A"}, {2, "0002_b.sql", "B"}}
	db := &fakeDB{applied: map[int64]bool{}}
	begin := func(context.Context) (Tx, error) { return &fakeTx{db: db}, nil }

	got, err := Run(t.Context(), begin, ms)
	if err != nil || len(got) != 2 {
		t.Fatalf("first run: applied %v, err %v", got, err)
	}
	got, err = Run(t.Context(), begin, ms)
	if err != nil || len(got) != 0 {
		t.Fatalf("second run: applied %v, err %v; want nothing", got, err)
	}
	if db.rollback != 2 {
		t.Errorf("no-op runs should roll back their transaction, got %d rollbacks", db.rollback)
	}

	db2 := &fakeDB{applied: map[int64]bool{}, failOn: "B"}
	begin2 := func(context.Context) (Tx, error) { return &fakeTx{db: db2}, nil }
	got, err = Run(t.Context(), begin2, ms)
	if err == nil || len(got) != 1 || !db2.applied[1] || db2.applied[2] {
		t.Fatalf("failing run: applied %v (db %v), err %v; want 1 applied then error", got, db2.applied, err)
	}
}
