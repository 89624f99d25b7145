package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type accounts struct{ s *Store }

func (a accounts) Create(ctx context.Context, acc storage.Account) error {
	fields, err := json.Marshal(nonNilFields(acc.Fields))
	if err != nil {
		return fmt.Errorf("sqlite: create account: %w", err)
	}
	created := acc.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	err = a.s.write(ctx, func(tx *sql.Tx) error {
		// ON CONFLICT DO NOTHING + RowsAffected detects "taken" without
		// parsing driver-specific constraint errors.
		if err := execChanging(ctx, tx, storage.ErrExists, `INSERT INTO accounts (host, username, plain_password, fields, disabled, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, username) DO NOTHING`,
			acc.Host, acc.Username, acc.Creds.Plain, string(fields), acc.Disabled, formatTime(created)); err != nil {
			return err
		}
		return insertKeys(ctx, tx, acc.Host, acc.Username, acc.Creds.Keys)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create account %s: %w", storeutil.BareJID(acc.Host, acc.Username), err)
	}
	return nil
}

func insertKeys(ctx context.Context, tx *sql.Tx, host, username string, keys map[string]storage.ScramKey) error {
	for hash, k := range keys {
		_, err := tx.ExecContext(ctx, `INSERT INTO account_scram_keys
			(host, username, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			host, username, hash, storeutil.NonNil(k.Salt), k.Iterations,
			storeutil.NonNil(k.StoredKey), storeutil.NonNil(k.ServerKey))
		if err != nil {
			return err
		}
	}
	return nil
}

func nonNilFields(f map[string]string) map[string]string {
	if f == nil {
		return map[string]string{}
	}
	return f
}

func (a accounts) Get(ctx context.Context, host, username string) (storage.Account, error) {
	// One statement, so the account and its keys come from one snapshot even
	// while SetCredentials runs concurrently.
	rows, err := a.s.db.QueryContext(ctx, `SELECT a.plain_password, a.fields, a.disabled, a.created_at,
			k.hash, k.salt, k.iterations, k.stored_key, k.server_key
		FROM accounts a LEFT JOIN account_scram_keys k ON k.host = a.host AND k.username = a.username
		WHERE a.host = ? AND a.username = ?`, host, username)
	if err != nil {
		return storage.Account{}, fmt.Errorf("sqlite: get account: %w", err)
	}
	defer rows.Close()
	acc := storage.Account{Host: host, Username: username, Creds: storage.Credentials{Keys: map[string]storage.ScramKey{}}}
	found := false
	for rows.Next() {
		var (
			fields, created string
			hash            sql.NullString
			salt, sk, svk   []byte
			iter            sql.NullInt64
		)
		if err := rows.Scan(&acc.Creds.Plain, &fields, &acc.Disabled, &created, &hash, &salt, &iter, &sk, &svk); err != nil {
			return storage.Account{}, fmt.Errorf("sqlite: get account: %w", err)
		}
		if !found {
			found = true
			if err := json.Unmarshal([]byte(fields), &acc.Fields); err != nil {
				return storage.Account{}, fmt.Errorf("sqlite: get account: fields: %w", err)
			}
			if acc.Fields == nil {
				acc.Fields = map[string]string{}
			}
			if acc.CreatedAt, err = parseTime(created); err != nil {
				return storage.Account{}, fmt.Errorf("sqlite: get account: %w", err)
			}
		}
		if hash.Valid {
			acc.Creds.Keys[hash.String] = storage.ScramKey{Salt: salt, Iterations: int(iter.Int64), StoredKey: sk, ServerKey: svk}
		}
	}
	if err := rows.Err(); err != nil {
		return storage.Account{}, fmt.Errorf("sqlite: get account: %w", err)
	}
	if !found {
		return storage.Account{}, fmt.Errorf("sqlite: account %s: %w", storeutil.BareJID(host, username), storage.ErrNotFound)
	}
	return acc, nil
}

func (a accounts) SetCredentials(ctx context.Context, host, username string, c storage.Credentials) error {
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		if err := execChanging(ctx, tx, storage.ErrNotFound, `UPDATE accounts SET plain_password = ? WHERE host = ? AND username = ?`, c.Plain, host, username); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_scram_keys WHERE host = ? AND username = ?`, host, username); err != nil {
			return err
		}
		// A new password ends every FAST token (XEP-0484): whoever held
		// the old one must not keep logging in with a token.
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE owner = ?`, storeutil.BareJID(host, username)); err != nil {
			return err
		}
		return insertKeys(ctx, tx, host, username, c.Keys)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set credentials %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (a accounts) SetFields(ctx context.Context, host, username string, fields map[string]string) error {
	js, err := json.Marshal(nonNilFields(fields))
	if err != nil {
		return fmt.Errorf("sqlite: set fields: %w", err)
	}
	err = a.s.write(ctx, func(tx *sql.Tx) error {
		return execChanging(ctx, tx, storage.ErrNotFound, `UPDATE accounts SET fields = ? WHERE host = ? AND username = ?`, string(js), host, username)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set fields %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (a accounts) SetDisabled(ctx context.Context, host, username string, disabled bool) error {
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		return execChanging(ctx, tx, storage.ErrNotFound, `UPDATE accounts SET disabled = ? WHERE host = ? AND username = ?`, disabled, host, username)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set disabled %s: %w", storeutil.BareJID(host, username), err)
	}
	return nil
}

func (a accounts) Delete(ctx context.Context, host, username string) error {
	owner := storeutil.BareJID(host, username)
	err := a.s.write(ctx, func(tx *sql.Tx) error {
		if err := execChanging(ctx, tx, storage.ErrNotFound, `DELETE FROM accounts WHERE host = ? AND username = ?`, host, username); err != nil {
			return err
		}
		// account_scram_keys goes by ON DELETE CASCADE. Every table keyed
		// by owner must be listed here; the conformance suite's cascade
		// test fails if a new one is forgotten.
		for _, table := range []string{"roster_versions", "roster_items", "offline_messages", "vcards", "private_xml",
			"pubsub_items", "pubsub_affiliations", "pubsub_subscriptions", "pubsub_nodes", "kv", "archive_heads", "archive", "fast_tokens"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE owner = ?`, owner); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete account %s: %w", owner, err)
	}
	return nil
}

func (a accounts) List(ctx context.Context, host string) ([]string, error) {
	rows, err := a.s.db.QueryContext(ctx, `SELECT username FROM accounts WHERE host = ? ORDER BY username`, host)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("sqlite: list accounts: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	return out, nil
}
