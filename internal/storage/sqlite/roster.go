package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type roster struct{ s *Store }

func (r roster) Items(ctx context.Context, owner string) ([]storage.RosterItem, string, error) {
	// A single statement reads the version and the items from one snapshot,
	// so the version always describes exactly the items returned. The outer
	// LEFT JOINs yield one all-NULL item row for an empty roster. An owner
	// without a version row has never had a roster change: its version is
	// 0, which the version counter never hands out (it starts at 1), and
	// which only ever describes the empty roster.
	rows, err := r.s.db.QueryContext(ctx, `SELECT COALESCE(v.version, 0), i.contact, i.name, i.subscription,
			i.ask_out, i.pending_in, i.pre_approved, i.groups_json
		FROM (SELECT ? AS owner) o
		LEFT JOIN roster_versions v ON v.owner = o.owner
		LEFT JOIN roster_items i ON i.owner = o.owner
		ORDER BY i.contact`, owner)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: roster items: %w", err)
	}
	defer rows.Close()
	var (
		items   []storage.RosterItem
		version string
	)
	for rows.Next() {
		var (
			ver                   int64
			contact, name, sub, g sql.NullString
			ask, pend, pre        sql.NullBool
		)
		if err := rows.Scan(&ver, &contact, &name, &sub, &ask, &pend, &pre, &g); err != nil {
			return nil, "", fmt.Errorf("sqlite: roster items: %w", err)
		}
		version = strconv.FormatInt(ver, 10)
		if !contact.Valid {
			continue
		}
		it := storage.RosterItem{JID: contact.String, Name: name.String, Subscription: sub.String,
			AskOut: ask.Bool, PendingIn: pend.Bool, PreApproved: pre.Bool}
		if it.Groups, err = decodeGroups(g.String); err != nil {
			return nil, "", fmt.Errorf("sqlite: roster items: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: roster items: %w", err)
	}
	return items, version, nil
}

func decodeGroups(js string) ([]string, error) {
	var g []string
	if err := json.Unmarshal([]byte(js), &g); err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	return storeutil.NormalizeGroups(g), nil
}

func (r roster) Get(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	it := storage.RosterItem{JID: contact}
	var g string
	err := r.s.db.QueryRowContext(ctx, `SELECT name, subscription, ask_out, pending_in, pre_approved, groups_json
		FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact).
		Scan(&it.Name, &it.Subscription, &it.AskOut, &it.PendingIn, &it.PreApproved, &g)
	if err == sql.ErrNoRows {
		return storage.RosterItem{}, fmt.Errorf("sqlite: roster item %s of %s: %w", contact, owner, storage.ErrNotFound)
	}
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("sqlite: roster get: %w", err)
	}
	if it.Groups, err = decodeGroups(g); err != nil {
		return storage.RosterItem{}, fmt.Errorf("sqlite: roster get: %w", err)
	}
	return it, nil
}

// bumpVersion gives owner's roster a new version from the global counter.
// The counter is global so versions are never reused, even across account
// deletion and re-registration.
func bumpVersion(ctx context.Context, tx *sql.Tx, owner string) (string, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'roster_version' RETURNING value`).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("bump version: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO roster_versions (owner, version) VALUES (?, ?)
		ON CONFLICT (owner) DO UPDATE SET version = excluded.version`, owner, v)
	if err != nil {
		return "", fmt.Errorf("bump version: %w", err)
	}
	return strconv.FormatInt(v, 10), nil
}

func (r roster) Put(ctx context.Context, owner string, item storage.RosterItem) (string, error) {
	item, err := storeutil.NormalizeItem(item)
	if err != nil {
		return "", fmt.Errorf("sqlite: roster put: %w", err)
	}
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	g, err := json.Marshal(groups)
	if err != nil {
		return "", fmt.Errorf("sqlite: roster put: %w", err)
	}
	var version string
	err = r.s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO roster_items
			(owner, contact, name, subscription, ask_out, pending_in, pre_approved, groups_json)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, contact) DO UPDATE SET name = excluded.name, subscription = excluded.subscription,
				ask_out = excluded.ask_out, pending_in = excluded.pending_in,
				pre_approved = excluded.pre_approved, groups_json = excluded.groups_json`,
			owner, item.JID, item.Name, item.Subscription, item.AskOut, item.PendingIn, item.PreApproved, string(g))
		if err != nil {
			return err
		}
		version, err = bumpVersion(ctx, tx, owner)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sqlite: roster put %s for %s: %w", item.JID, owner, err)
	}
	return version, nil
}

func (r roster) Delete(ctx context.Context, owner, contact string) (string, error) {
	var version string
	err := r.s.write(ctx, func(tx *sql.Tx) error {
		err := execChanging(ctx, tx, storage.ErrNotFound, `DELETE FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact)
		if err != nil {
			return err
		}
		version, err = bumpVersion(ctx, tx, owner)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sqlite: roster delete %s of %s: %w", contact, owner, err)
	}
	return version, nil
}
