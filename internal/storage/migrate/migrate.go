// Package migrate applies versioned SQL migrations for the storage backends.
//
// The runner is shared by every SQL backend so the rules (file naming,
// ordering, one transaction per migration, bookkeeping in schema_migrations)
// exist once; each backend only supplies its SQL files and a way to begin a
// transaction that excludes concurrent migrators (BEGIN IMMEDIATE in SQLite,
// pg_advisory_xact_lock in PostgreSQL).
package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

// Migration is one versioned schema change read from a file named
// NNNN_description.sql.
type Migration struct {
	Version int64
	Name    string // file name, for error messages
	SQL     string
}

// Tx is the part of a database transaction the runner needs. Backends adapt
// their driver's transaction type to it.
type Tx interface {
	// Exec runs sql, which may contain several statements and no parameters.
	Exec(ctx context.Context, sql string) error
	// QueryInt64 runs sql, which must return exactly one integer.
	QueryInt64(ctx context.Context, sql string) (int64, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// BeginFunc begins a transaction during which no other migrator of the same
// database runs. The lock must be held until Commit or Rollback; that is what
// makes several processes (cluster nodes, the server and the CLI) opening the
// same database at once safe.
type BeginFunc func(ctx context.Context) (Tx, error)

// createTable is valid in both SQLite and PostgreSQL. It runs inside the
// locked transaction, because concurrent CREATE TABLE IF NOT EXISTS can still
// fail in PostgreSQL when two sessions race on the catalog.
const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY)`

var fileName = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_.-]+\.sql$`)

// Load reads the migrations in dir of fsys, sorted by version. Files that do
// not end in .sql are ignored; .sql files not named NNNN_description.sql, a
// version of 0 and duplicate versions are errors, because silently skipping
// a misnamed migration would leave the schema behind.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrate: %s: name must be NNNN_description.sql", e.Name())
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migrate: %s: invalid version %q", e.Name(), m[1])
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrate: %s and %s share version %d", ms[i-1].Name, ms[i].Name, ms[i].Version)
		}
	}
	return ms, nil
}

// Run applies every migration not yet recorded in schema_migrations, in
// version order, each in its own transaction begun by begin (so a failing
// migration leaves the schema at the previous version, never half-applied).
// It returns the versions it applied; re-running on an up-to-date database
// applies nothing.
//
// Versions recorded in the database but unknown to this binary are tolerated
// rather than rejected: during a rolling upgrade an older node may start
// after a newer one migrated, and migrations are written to be additive.
func Run(ctx context.Context, begin BeginFunc, ms []Migration) ([]int64, error) {
	var applied []int64
	for _, m := range ms {
		did, err := apply(ctx, begin, m)
		if err != nil {
			return applied, err
		}
		if did {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

func apply(ctx context.Context, begin BeginFunc, m Migration) (done bool, err error) {
	tx, err := begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate: begin %s: %w", m.Name, err)
	}
	committed := false
	defer func() {
		if !committed {
			// The caller's ctx may be the reason we are here; rolling back
			// must still happen so the connection and the lock are released.
			if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil && err != nil {
				err = errors.Join(err, fmt.Errorf("migrate: rollback: %w", rerr))
			}
		}
	}()
	if err := tx.Exec(ctx, createTable); err != nil {
		return false, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	// The version is an int64 we parsed ourselves, so formatting it into
	// the statement is safe and spares us the two dialects' placeholders.
	n, err := tx.QueryInt64(ctx, fmt.Sprintf("SELECT COUNT(*) FROM schema_migrations WHERE version = %d", m.Version))
	if err != nil {
		return false, fmt.Errorf("migrate: check %s: %w", m.Name, err)
	}
	if n > 0 {
		return false, nil // rollback via defer: nothing to do
	}
	if err := tx.Exec(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
	}
	if err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO schema_migrations (version) VALUES (%d)", m.Version)); err != nil {
		return false, fmt.Errorf("migrate: record %s: %w", m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migrate: commit %s: %w", m.Name, err)
	}
	committed = true
	return true, nil
}
