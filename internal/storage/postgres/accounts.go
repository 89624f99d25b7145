package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type accounts struct{ s *Store }

func nonNilFields(f map[string]string) map[string]string {
	if f == nil {
		return map[string]string{}
	}
	return f
}

func (a accounts) Create(ctx context.Context, acc storage.Account) error {
	created := acc.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	err := a.s.tx(ctx, func(tx pgx.Tx) error {
		// ON CONFLICT DO NOTHING waits for a concurrent insert of the same
		// key to commit and then reports 0 rows, which is our ErrExists;
		// no unique-violation error (and aborted transaction) to decode.
		tag, err := tx.Exec(ctx, `INSERT INTO accounts (host, username, plain_password, fields, disabled, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, username) DO NOTHING`,
			acc.Host, acc.Username, acc.Creds.Plain, nonNilFields(acc.Fields), acc.Disabled, created.UTC())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrExists
		}
		return insertKeys(ctx, tx, acc.Host, acc.Username, acc.Creds.Keys)
	})
	if err != nil {
		return fmt.Errorf("postgres: create account %s: %w", storeutil.BareJID(acc.Host, acc.Username), err)
	}
	return nil
}

func insertKeys(ctx context.Context, tx pgx.Tx, host, username string, keys map[string]storage.ScramKey) error {
	if len(keys) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for hash, k := range keys {
		b.Queue(`INSERT INTO account_scram_keys (host, username, hash, salt, iterations, stored_key, server_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			host, username, hash, storeutil.NonNil(k.Salt), k.Iterations,
			storeutil.NonNil(k.StoredKey), storeutil.NonNil(k.ServerKey))
	}
	return tx.SendBatch(ctx, b).Close()
}

func (a accounts) Get(ctx context.Context, host, username string) (storage.Account, error) {
	// One statement, so the account and its keys come from one snapshot even
	// while SetCredentials runs concurrently.
	rows, err := a.s.pool.Query(ctx, `SELECT a.plain_password, a.fields, a.disabled, a.created_at,
			k.hash, k.salt, k.iterations, k.stored_key, k.server_key
		FROM accounts a LEFT JOIN account_scram_keys k ON k.host = a.host AND k.username = a.username
		WHERE a.host = $1 AND a.username = $2`, host, username)
	if err != nil {
		return storage.Account{}, fmt.Errorf("postgres: get account: %w", err)
	}
	defer rows.Close()
	acc := storage.Account{Host: host, Username: username, Creds: storage.Credentials{Keys: map[string]storage.ScramKey{}}}
	found := false
	for rows.Next() {
		var (
			fields        map[string]string
			created       time.Time
			hash          *string
			iter          *int
			salt, sk, svk []byte
		)
		if err := rows.Scan(&acc.Creds.Plain, &fields, &acc.Disabled, &created, &hash, &salt, &iter, &sk, &svk); err != nil {
			return storage.Account{}, fmt.Errorf("postgres: get account: %w", err)
		}
		if !found {
			found = true
			acc.Fields = nonNilFields(fields)
			acc.CreatedAt = created.UTC()
		}
		if hash != nil && iter != nil {
			acc.Creds.Keys[*hash] = storage.ScramKey{Salt: salt, Iterations: *iter, StoredKey: sk, ServerKey: svk}
		}
	}
	if err := rows.Err(); err != nil {
		return storage.Account{}, fmt.Errorf("postgres: get account: %w", err)
	}
	if !found {
		return storage.Account{}, fmt.Errorf("postgres: account %s: %w", storeutil.BareJID(host, username), storage.ErrNotFound)
	}
	return acc, nil
}

func (a accounts) SetCredentials(ctx context.Context, host, username string, c storage.Credentials) error {
	err := a.s.tx(ctx, func(tx pgx.Tx) error {
		// The UPDATE also locks the account row, so concurrent
		// SetCredentials calls replace the key set one after the other.
		tag, err := tx.Exec(ctx, `UPDATE accounts SET plain_password = $1 WHERE host = $2 AND username = $3`, c.Plain, host, username)
		if err != nil {
			return err
		}
		if err := affected(tag.RowsAffected()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM account_scram_keys WHERE host = $1 AND username = $2`, host, username); err != nil {
			return err
		}
		// A new password ends every FAST token (XEP-0484): whoever held
		// the old one must not keep logging in with a token.
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE owner = $1`, storeutil.BareJID(host, username)); err != nil {
			return err
		}
		return insertKeys(ctx, tx, host, username, c.Keys)
	})
	if err != nil {
		return fmt.Errorf("postgres: set credentials %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (a accounts) SetFields(ctx context.Context, host, username string, fields map[string]string) error {
	tag, err := a.s.pool.Exec(ctx, `UPDATE accounts SET fields = $1 WHERE host = $2 AND username = $3`,
		nonNilFields(fields), host, username)
	if err == nil {
		err = affected(tag.RowsAffected())
	}
	if err != nil {
		return fmt.Errorf("postgres: set fields %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (a accounts) SetDisabled(ctx context.Context, host, username string, disabled bool) error {
	tag, err := a.s.pool.Exec(ctx, `UPDATE accounts SET disabled = $1 WHERE host = $2 AND username = $3`,
		disabled, host, username)
	if err == nil {
		err = affected(tag.RowsAffected())
	}
	if err != nil {
		return fmt.Errorf("postgres: set disabled %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (a accounts) Delete(ctx context.Context, host, username string) error {
	owner := storeutil.BareJID(host, username)
	err := a.s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE host = $1 AND username = $2`, host, username)
		if err != nil {
			return err
		}
		if err := affected(tag.RowsAffected()); err != nil {
			return err
		}
		// account_scram_keys goes by ON DELETE CASCADE. roster_versions
		// comes before roster_items, and pubsub_nodes before the tables
		// hanging off it (which the node's deletion cascades to anyway),
		// because roster and pubsub writes lock in those orders too; the
		// same order everywhere rules out deadlocks. Every
		// table keyed by owner must be listed here; the conformance
		// suite's cascade test fails if a new one is forgotten.
		for _, table := range []string{"roster_versions", "roster_items", "offline_messages", "vcards", "private_xml",
			"pubsub_nodes", "pubsub_items", "pubsub_affiliations", "pubsub_subscriptions", "kv", "archive_heads", "archive", "fast_tokens"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE owner = $1`, owner); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: delete account %s: %w", owner, err)
	}
	return nil
}

func (a accounts) List(ctx context.Context, host string) ([]string, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT username FROM accounts WHERE host = $1 ORDER BY username COLLATE "C"`, host)
	if err != nil {
		return nil, fmt.Errorf("postgres: list accounts: %w", err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list accounts: %w", err)
	}
	return users, nil
}

// notFound maps pgx.ErrNoRows to storage.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}
