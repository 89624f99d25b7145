package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/storage"
	"parley/internal/storage/migrate"
	"parley/internal/storage/storetest"
)

// envDSN names the database the tests use. Each test works in a schema of
// its own, created and dropped around it, so parallel runs against one
// database do not collide.
const envDSN = "PARLEY_TEST_POSTGRES"

func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		t.Skip(envDSN + " is not set; set it to a PostgreSQL DSN, e.g. " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to test the PostgreSQL backend")
	}
	return dsn
}

// newSchema creates an empty, uniquely named schema, drops it when the test
// ends, and returns a DSN whose connections use it as search_path.
func newSchema(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "parley_test_" + hex.EncodeToString(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", envDSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, dsn, schema)
}

// withSearchPath adds a search_path run-time parameter to a URL or
// key=value DSN; pgx sends it in the startup message of every connection.
func withSearchPath(t *testing.T, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", envDSN, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, newSchema(t, dsn))
	})
}

// TestConformanceTwoPools runs the suite with calls spread over two pools on
// one schema, like two cluster nodes, so the quota and Pop races are
// arbitrated by PostgreSQL alone.
func TestConformanceTwoPools(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) storage.Store {
		sdsn := newSchema(t, dsn)
		return storetest.Alternating(openStore(t, sdsn), openStore(t, sdsn))
	})
}

// TestConcurrentOpen starts several "nodes" on one empty schema at once: the
// advisory lock must make exactly one of them apply the migration.
func TestConcurrentOpen(t *testing.T) {
	dsn := newSchema(t, testDSN(t))
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn)
			if err == nil {
				err = s.Accounts().Create(t.Context(), storage.Account{Host: "h", Username: fmt.Sprint(i)})
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dsn) // re-open is a no-op
	users, err := s.Accounts().List(t.Context(), "h")
	if err != nil || len(users) != n {
		t.Fatalf("List = %v, %v; want %d users", users, err, n)
	}
	var versions int
	if err := s.pool.QueryRow(t.Context(), "SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions != migrationCount(t) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d (one per migration file)", versions, err, migrationCount(t))
	}
}

func TestOpenBadDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("Open of an unreachable server succeeded")
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
