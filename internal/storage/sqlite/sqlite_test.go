package sqlite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"parley/internal/storage"
	"parley/internal/storage/migrate"
	"parley/internal/storage/storetest"
)

func openFile(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		return openFile(t, filepath.Join(t.TempDir(), "parley.db"))
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		return openFile(t, ":memory:")
	})
}

// TestConformanceTwoOpeners runs the suite where every operation alternates
// between two independently opened *Store on one file, the way the server
// and the "parley user" CLI share a database. Quota and Pop races then span
// two connection pools, which only SQLite's own locking can arbitrate.
func TestConformanceTwoOpeners(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		path := filepath.Join(t.TempDir(), "parley.db")
		return storetest.Alternating(openFile(t, path), openFile(t, path))
	})
}

func TestReopenIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	s1 := openFile(t, path)
	if err := s1.Accounts().Create(t.Context(), storage.Account{Host: "h", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openFile(t, path)
	if _, err := s2.Accounts().Get(t.Context(), "h", "u"); err != nil {
		t.Fatalf("data lost across reopen: %v", err)
	}
	var n int
	if err := s2.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != migrationCount(t) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d (one per migration file)", n, err, migrationCount(t))
	}
	var mode string
	if err := s2.db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s2.db.QueryRowContext(t.Context(), `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

// TestConcurrentOpen opens one new file from several goroutines at once,
// as several processes starting together would: migrations must serialise.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), path)
			if err == nil {
				err = s.Accounts().Create(t.Context(), storage.Account{Host: "h", Username: fmt.Sprint(i)})
				err = errors.Join(err, s.Close())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	users, err := openFile(t, path).Accounts().List(t.Context(), "h")
	if err != nil || len(users) != n {
		t.Fatalf("List = %v, %v; want %d users", users, err, n)
	}
}

// childEnv makes the test binary act as one of TestMultiProcess's writers.
const childEnv = "PARLEY_SQLITE_TEST_CHILD_DB"

// TestMultiProcess proves cross-process locking with real processes (two
// *Store in one process share SQLite's in-process lock table, separate
// processes rely on file locks): several copies of the test binary push
// against one quota on one file at the same time.
func TestMultiProcess(t *testing.T) {
	const procs, pushes, quota = 4, 15, 25
	if path := os.Getenv(childEnv); path != "" {
		s := openFile(t, path)
		ok := 0
		for i := range pushes {
			err := s.Offline().Push(t.Context(), "juliet@example.org", fmt.Appendf(nil, "%d-%d", os.Getpid(), i), quota)
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrQuotaExceeded):
				t.Fatal(err)
			}
		}
		fmt.Printf("pushed=%d\n", ok)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "parley.db")
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for i := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMultiProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+path)
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	total := 0
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
		}
		var n int
		for line := range strings.Lines(string(outs[i])) {
			if _, err := fmt.Sscanf(line, "pushed=%d", &n); err == nil {
				break
			}
		}
		total += n
	}
	n, err := openFile(t, path).Offline().Count(t.Context(), "juliet@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if total != quota || n != quota {
		t.Fatalf("%d processes x %d pushes, quota %d: %d reported, %d stored; want %d", procs, pushes, quota, total, n, quota)
	}
}

// migrationCount is the number of embedded migrations, each of which a
// fresh database records once.
func migrationCount(t *testing.T) int {
	t.Helper()
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}
