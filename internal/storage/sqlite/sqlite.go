// Package sqlite is the single-node storage backend, built on the pure-Go
// modernc.org/sqlite driver so Parley stays a cgo-free static binary.
//
// The database runs in WAL mode so readers never block the writer, with a
// busy timeout so writers queue instead of failing, and with every
// transaction started as BEGIN IMMEDIATE: a deferred transaction that reads
// and then writes can fail with SQLITE_BUSY without waiting when another
// connection wrote in between, which is exactly the count-then-insert pattern
// Offline.Push needs. Together these let the server and the "parley user"
// CLI use the same file at the same time.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	sqlitedrv "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"parley/internal/storage"
	"parley/internal/storage/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeout is how long a statement waits for another connection or
// process holding the write lock before giving up with SQLITE_BUSY. It is
// generous because the CLI may hold the lock while the server wants it.
const busyTimeout = 10 * time.Second

// timeFormat stores times as fixed-width UTC text, which sorts lexically and
// keeps nanoseconds (SQLite has no native timestamp type).
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// Store is an opened SQLite database. It implements storage.Store and is
// safe for concurrent use.
type Store struct {
	db *sql.DB
	// writeSlot serialises this process's write transactions. SQLite allows
	// one writer at a time anyway; queueing here instead of inside SQLite's
	// busy handler (which polls with sleeps) keeps latency low under load.
	// Other processes are still handled by busy_timeout.
	writeSlot chan struct{}
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and brings its schema
// up to date. path is a file name, a "file:" URI, or ":memory:" (or any URI
// with mode=memory) for a private in-memory database, which is limited to a
// single connection because every SQLite connection to ":memory:" would
// otherwise see its own empty database. A plain file name must not contain
// '?'.
func Open(ctx context.Context, path string) (*Store, error) {
	dsn, memory := dsnFor(path)
	// Connections that keep their prepared statements (stmtcache.go).
	db := sql.OpenDB(cachingConnector{dsn: dsn, drv: &sqlitedrv.Driver{}})
	if memory {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		// Readers run concurrently under WAL; more connections than CPUs
		// buys nothing but file descriptors.
		n := max(4, runtime.GOMAXPROCS(0))
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	}
	s := &Store{db: db, writeSlot: make(chan struct{}, 1)}
	if !memory {
		// WAL is a property of the file, so it is set once here rather
		// than per connection. Switching a new file to WAL needs an
		// exclusive lock and SQLite reports SQLITE_BUSY at once, without
		// consulting the busy handler, when another process is doing the
		// same: hence the retry.
		err := retryBusy(ctx, func() error {
			var mode string
			if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
				return err
			}
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("journal_mode is %q, want wal", mode)
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: open %s: enable WAL: %w", path, err)
		}
	}
	if err := retryBusy(ctx, func() error { return s.migrate(ctx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// dsnFor adds the connection parameters to path. The driver applies them to
// every new connection of the pool, which matters because PRAGMAs such as
// foreign_keys are per connection.
func dsnFor(path string) (dsn string, memory bool) {
	memory = path == "" || path == ":memory:" ||
		strings.HasPrefix(path, "file::memory:") || strings.Contains(path, "mode=memory")
	params := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_txlock=immediate",
	}
	sep := "?"
	if strings.HasPrefix(path, "file:") && strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + strings.Join(params, "&"), memory
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	_, err = migrate.Run(ctx, func(ctx context.Context) (migrate.Tx, error) {
		// BEGIN IMMEDIATE (via _txlock) takes the database write lock, so a
		// second process opening the file waits here instead of racing.
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return migTx{tx}, nil
	}, ms)
	return err
}

type migTx struct{ tx *sql.Tx }

func (m migTx) Exec(ctx context.Context, q string) error {
	_, err := m.tx.ExecContext(ctx, q)
	return err
}

func (m migTx) QueryInt64(ctx context.Context, q string) (int64, error) {
	var n int64
	err := m.tx.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

func (m migTx) Commit(context.Context) error   { return m.tx.Commit() }
func (m migTx) Rollback(context.Context) error { return m.tx.Rollback() }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Accounts returns the account store.
func (s *Store) Accounts() storage.Accounts { return accounts{s} }

// Roster returns the roster store.
func (s *Store) Roster() storage.Roster { return roster{s} }

// Offline returns the offline message store.
func (s *Store) Offline() storage.Offline { return offline{s} }

// VCards returns the vCard store.
func (s *Store) VCards() storage.VCards { return vcards{s} }

// Private returns the private XML store.
func (s *Store) Private() storage.Private { return private{s} }

// PubSub returns the publish-subscribe store.
func (s *Store) PubSub() storage.PubSub { return pubsub{s} }

// KV returns the key/value store.
func (s *Store) KV() storage.KV { return kv{s} }

// Archive returns the message archive store.
func (s *Store) Archive() storage.Archive { return archive{s} }

// Compliance returns the compliance log store.
func (s *Store) Compliance() storage.Compliance { return compliance{s} }

// Passwords implements storage.Store.
func (s *Store) Passwords() storage.PasswordHistory { return passwords{s} }

// write runs fn in an immediate transaction, committing if it returns nil.
// Every write goes through here so that the in-process queue (writeSlot) and
// SQLite's lock agree on who writes next.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writeSlot }()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	return tx.Commit()
}

// execChanging runs a statement in tx and returns ifNone when it changed no
// row: the row to update or delete does not exist (storage.ErrNotFound), or
// the one to insert with ON CONFLICT DO NOTHING already does
// (storage.ErrExists, detected without parsing driver-specific constraint
// errors).
func execChanging(ctx context.Context, tx *sql.Tx, ifNone error, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ifNone
	}
	return nil
}

// retryBusy retries fn while it fails with SQLITE_BUSY, for up to
// busyTimeout. It is only for the few operations SQLite does not queue with
// its busy handler (opening and converting a database another process is
// converting at the same moment); ordinary statements rely on busy_timeout.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(busyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := fn()
		var se *sqlitedrv.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}
