package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

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
	rows, err := r.s.pool.Query(ctx, `SELECT COALESCE(v.version, 0), i.contact, i.name, i.subscription,
			i.ask_out, i.pending_in, i.pre_approved, i.groups
		FROM (SELECT $1::text AS owner) o
		LEFT JOIN roster_versions v ON v.owner = o.owner
		LEFT JOIN roster_items i ON i.owner = o.owner
		ORDER BY i.contact COLLATE "C"`, owner)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: roster items: %w", err)
	}
	defer rows.Close()
	var (
		items   []storage.RosterItem
		version string
	)
	for rows.Next() {
		var (
			ver                int64
			contact, name, sub *string
			ask, pend, pre     *bool
			groups             []string
		)
		if err := rows.Scan(&ver, &contact, &name, &sub, &ask, &pend, &pre, &groups); err != nil {
			return nil, "", fmt.Errorf("postgres: roster items: %w", err)
		}
		version = strconv.FormatInt(ver, 10)
		if contact == nil {
			continue
		}
		items = append(items, storage.RosterItem{JID: *contact, Name: *name, Subscription: *sub,
			AskOut: *ask, PendingIn: *pend, PreApproved: *pre, Groups: storeutil.NormalizeGroups(groups)})
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("postgres: roster items: %w", err)
	}
	return items, version, nil
}

func (r roster) Get(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	it := storage.RosterItem{JID: contact}
	var groups []string
	err := r.s.pool.QueryRow(ctx, `SELECT name, subscription, ask_out, pending_in, pre_approved, groups
		FROM roster_items WHERE owner = $1 AND contact = $2`, owner, contact).
		Scan(&it.Name, &it.Subscription, &it.AskOut, &it.PendingIn, &it.PreApproved, &groups)
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("postgres: roster item %s of %s: %w", contact, owner, notFound(err))
	}
	it.Groups = storeutil.NormalizeGroups(groups)
	return it, nil
}

// bumpVersion gives owner's roster a new version and, as a side effect,
// locks the owner's version row until the transaction ends, serialising
// roster writes per owner. nextval in the DO UPDATE branch runs after the
// row lock is taken, so successive versions of one owner increase.
func bumpVersion(ctx context.Context, tx pgx.Tx, owner string) (string, error) {
	var v int64
	err := tx.QueryRow(ctx, `INSERT INTO roster_versions (owner, version) VALUES ($1, nextval('roster_version_seq'))
		ON CONFLICT (owner) DO UPDATE SET version = nextval('roster_version_seq')
		RETURNING version`, owner).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("bump version: %w", err)
	}
	return strconv.FormatInt(v, 10), nil
}

func (r roster) Put(ctx context.Context, owner string, item storage.RosterItem) (string, error) {
	item, err := storeutil.NormalizeItem(item)
	if err != nil {
		return "", fmt.Errorf("postgres: roster put: %w", err)
	}
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	var version string
	err = r.s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if version, err = bumpVersion(ctx, tx, owner); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO roster_items
			(owner, contact, name, subscription, ask_out, pending_in, pre_approved, groups)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (owner, contact) DO UPDATE SET name = EXCLUDED.name, subscription = EXCLUDED.subscription,
				ask_out = EXCLUDED.ask_out, pending_in = EXCLUDED.pending_in,
				pre_approved = EXCLUDED.pre_approved, groups = EXCLUDED.groups`,
			owner, item.JID, item.Name, item.Subscription, item.AskOut, item.PendingIn, item.PreApproved, groups)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("postgres: roster put %s for %s: %w", item.JID, owner, err)
	}
	return version, nil
}

func (r roster) Delete(ctx context.Context, owner, contact string) (string, error) {
	var version string
	err := r.s.tx(ctx, func(tx pgx.Tx) error {
		// Version first, like Put, so both lock in the same order. If the
		// item is absent the rollback undoes the bump (the sequence value
		// is merely skipped).
		var err error
		if version, err = bumpVersion(ctx, tx, owner); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM roster_items WHERE owner = $1 AND contact = $2`, owner, contact)
		if err != nil {
			return err
		}
		return affected(tag.RowsAffected())
	})
	if err != nil {
		return "", fmt.Errorf("postgres: roster delete %s of %s: %w", contact, owner, err)
	}
	return version, nil
}
