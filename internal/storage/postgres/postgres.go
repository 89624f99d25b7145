// Package postgres is the clustered storage backend: several Parley nodes
// share one PostgreSQL database through a pgx connection pool.
//
// Correctness under concurrency comes from the database, never from
// in-process locks, because the competing writer is usually another node:
// migrations run under a transaction-scoped advisory lock, Offline.Push
// counts and inserts under a per-owner advisory lock, roster writes lock the
// owner's version row, and Pop is a single DELETE ... RETURNING.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parley/internal/storage"
	"parley/internal/storage/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Advisory lock keys. The migration lock uses the single-bigint key space
// and per-owner locks the two-int4 space; PostgreSQL keeps the two spaces
// apart, so they cannot collide. The lock is database-wide, not per schema:
// deployments sharing a database in different schemas merely take turns
// migrating.
const (
	migrationLockKey int64 = 0x7061726c6579 // "parley"
	offlineLockClass int32 = 0x6f66666c     // "offl"
	pubsubLockClass  int32 = 0x70756273     // "pubs": node creation per service
)

// Store is an opened PostgreSQL backend. It implements storage.Store and is
// safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database named by dsn (a libpq URL or key=value
// string, as accepted by pgxpool.ParseConfig, including pool_* settings and
// run-time parameters such as search_path) and brings its schema up to date.
// Several processes may call Open on one database at once.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The error from ParseConfig redacts the password.
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	_, err = migrate.Run(ctx, func(ctx context.Context) (migrate.Tx, error) {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return nil, err
		}
		// Held until commit/rollback: nodes starting together apply each
		// migration exactly once, the others then see it recorded.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
			return nil, errors.Join(err, tx.Rollback(context.WithoutCancel(ctx)))
		}
		return migTx{tx}, nil
	}, ms)
	return err
}

type migTx struct{ tx pgx.Tx }

// Exec uses the simple protocol (no arguments), which permits the several
// statements a migration file holds.
func (m migTx) Exec(ctx context.Context, q string) error {
	_, err := m.tx.Exec(ctx, q)
	return err
}

func (m migTx) QueryInt64(ctx context.Context, q string) (int64, error) {
	var n int64
	err := m.tx.QueryRow(ctx, q).Scan(&n)
	return n, err
}

func (m migTx) Commit(ctx context.Context) error   { return m.tx.Commit(ctx) }
func (m migTx) Rollback(ctx context.Context) error { return m.tx.Rollback(ctx) }

// Close closes all connections of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

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

// tx runs fn in a READ COMMITTED transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// ownerLockKey maps an owner to the second half of a per-owner advisory
// lock. Collisions only make two owners wait for each other, never break
// correctness.
func ownerLockKey(owner string) int32 {
	h := fnv.New32a()
	h.Write([]byte(owner))
	return int32(h.Sum32())
}

// affected turns "0 rows affected" into storage.ErrNotFound.
func affected(n int64) error {
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}
