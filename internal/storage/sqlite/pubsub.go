package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type pubsub struct{ s *Store }

// nodeExists fails with storage.ErrNotFound when the node is missing. Inside
// a write transaction (which holds SQLite's write lock) the answer stays
// true until the transaction ends.
func nodeExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, service, node string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM pubsub_nodes WHERE owner = ? AND node = ?`, service, node).Scan(&one)
	if err == sql.ErrNoRows {
		return storage.ErrNotFound
	}
	return err
}

func (p pubsub) CreateNode(ctx context.Context, n storage.PubSubNode, maxNodes int) error {
	created := n.Created
	if created.IsZero() {
		created = time.Now()
	}
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		if maxNodes > 0 {
			var count int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pubsub_nodes WHERE owner = ?`, n.Service).Scan(&count); err != nil {
				return err
			}
			if count >= maxNodes {
				// An existing name is still a conflict, not a quota
				// problem: the caller learns the more precise reason.
				if err := nodeExists(ctx, tx, n.Service, n.Node); err == nil {
					return storage.ErrExists
				}
				return storage.ErrQuotaExceeded
			}
		}
		return execChanging(ctx, tx, storage.ErrExists, `INSERT INTO pubsub_nodes (owner, node, config, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (owner, node) DO NOTHING`,
			n.Service, n.Node, storeutil.NonNil(n.Config), formatTime(created))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create pubsub node %s/%s: %w", n.Service, n.Node, err)
	}
	return nil
}

func (p pubsub) Node(ctx context.Context, service, node string) (storage.PubSubNode, error) {
	n := storage.PubSubNode{Service: service, Node: node}
	var created string
	err := p.s.db.QueryRowContext(ctx, `SELECT config, created_at FROM pubsub_nodes WHERE owner = ? AND node = ?`,
		service, node).Scan(&n.Config, &created)
	if err == sql.ErrNoRows {
		return n, fmt.Errorf("sqlite: pubsub node %s/%s: %w", service, node, storage.ErrNotFound)
	}
	if err == nil {
		n.Created, err = parseTime(created)
	}
	if err != nil {
		return n, fmt.Errorf("sqlite: pubsub node %s/%s: %w", service, node, err)
	}
	n.Config = storeutil.NonNil(n.Config)
	return n, nil
}

func (p pubsub) Nodes(ctx context.Context, service string) ([]storage.PubSubNode, error) {
	rows, err := p.s.db.QueryContext(ctx, `SELECT node, config, created_at FROM pubsub_nodes WHERE owner = ? ORDER BY node`, service)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pubsub nodes of %s: %w", service, err)
	}
	defer rows.Close()
	var out []storage.PubSubNode
	for rows.Next() {
		n := storage.PubSubNode{Service: service}
		var created string
		if err := rows.Scan(&n.Node, &n.Config, &created); err != nil {
			return nil, fmt.Errorf("sqlite: pubsub nodes of %s: %w", service, err)
		}
		if n.Created, err = parseTime(created); err != nil {
			return nil, fmt.Errorf("sqlite: pubsub nodes of %s: %w", service, err)
		}
		n.Config = storeutil.NonNil(n.Config)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pubsub nodes of %s: %w", service, err)
	}
	return out, nil
}

func (p pubsub) SetConfig(ctx context.Context, service, node string, config []byte) error {
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		return execChanging(ctx, tx, storage.ErrNotFound, `UPDATE pubsub_nodes SET config = ? WHERE owner = ? AND node = ?`,
			storeutil.NonNil(config), service, node)
	})
	if err != nil {
		return fmt.Errorf("sqlite: configure pubsub node %s/%s: %w", service, node, err)
	}
	return nil
}

func (p pubsub) DeleteNode(ctx context.Context, service, node string) error {
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		// Children are listed rather than left to ON DELETE CASCADE alone,
		// so the outcome does not depend on foreign_keys being enabled.
		for _, table := range []string{"pubsub_items", "pubsub_affiliations", "pubsub_subscriptions"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE owner = ? AND node = ?`, service, node); err != nil {
				return err
			}
		}
		return execChanging(ctx, tx, storage.ErrNotFound, `DELETE FROM pubsub_nodes WHERE owner = ? AND node = ?`, service, node)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete pubsub node %s/%s: %w", service, node, err)
	}
	return nil
}

func (p pubsub) PutItem(ctx context.Context, service, node string, it storage.PubSubItem, maxItems int) error {
	published := it.Published
	if published.IsZero() {
		published = time.Now()
	}
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, service, node); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pubsub_items (owner, node, item_id, seq, publisher, payload, published_at)
			VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM pubsub_items WHERE owner = ?1 AND node = ?2), ?4, ?5, ?6)
			ON CONFLICT (owner, node, item_id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher,
				payload = excluded.payload, published_at = excluded.published_at`,
			service, node, it.ID, it.Publisher, storeutil.NonNil(it.Payload), formatTime(published))
		if err != nil {
			return err
		}
		return trim(ctx, tx, service, node, maxItems)
	})
	if err != nil {
		return fmt.Errorf("sqlite: publish to %s/%s: %w", service, node, err)
	}
	return nil
}

// trim deletes all but the keep newest items of a node; keep <= 0 means no
// limit and deletes nothing.
func trim(ctx context.Context, tx *sql.Tx, service, node string, keep int) error {
	if keep <= 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE owner = ?1 AND node = ?2 AND seq NOT IN
		(SELECT seq FROM pubsub_items WHERE owner = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3)`, service, node, keep)
	return err
}

func (p pubsub) Items(ctx context.Context, service, node string, max int) ([]storage.PubSubItem, error) {
	limit := -1 // SQLite: no limit
	if max > 0 {
		limit = max
	}
	// One statement with the existence check, so "no items" and "no node"
	// come from the same snapshot.
	rows, err := p.s.db.QueryContext(ctx, `SELECT i.item_id, i.publisher, i.payload, i.published_at, i.seq
		FROM pubsub_nodes n LEFT JOIN (SELECT * FROM pubsub_items WHERE owner = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3) i
			ON i.owner = n.owner AND i.node = n.node
		WHERE n.owner = ?1 AND n.node = ?2 ORDER BY i.seq`, service, node, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items of %s/%s: %w", service, node, err)
	}
	defer rows.Close()
	items, err := scanItems(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items of %s/%s: %w", service, node, err)
	}
	return items, nil
}

// scanItems reads (id, publisher, payload, published_at, seq) rows of a
// LEFT JOIN on the node: no row at all means no node, one all-NULL row a
// node without items.
func scanItems(rows *sql.Rows) ([]storage.PubSubItem, error) {
	found := false
	var out []storage.PubSubItem
	for rows.Next() {
		found = true
		var (
			id, publisher, published sql.NullString
			payload                  []byte
			seq                      sql.NullInt64
		)
		if err := rows.Scan(&id, &publisher, &payload, &published, &seq); err != nil {
			return nil, err
		}
		if !id.Valid {
			continue
		}
		t, err := parseTime(published.String)
		if err != nil {
			return nil, err
		}
		out = append(out, storage.PubSubItem{ID: id.String, Publisher: publisher.String, Payload: storeutil.NonNil(payload), Published: t})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, storage.ErrNotFound
	}
	return out, nil
}

func (p pubsub) ItemsByID(ctx context.Context, service, node string, ids []string) ([]storage.PubSubItem, error) {
	args := make([]any, 0, len(ids)+2)
	marks := make([]string, 0, len(ids))
	for _, id := range ids {
		args = append(args, id)
		marks = append(marks, "?")
	}
	in := "NULL" // matches nothing: no IDs asked, none returned
	if len(marks) > 0 {
		in = strings.Join(marks, ", ")
	}
	args = append(args, service, node)
	rows, err := p.s.db.QueryContext(ctx, `SELECT i.item_id, i.publisher, i.payload, i.published_at, i.seq
		FROM pubsub_nodes n LEFT JOIN pubsub_items i ON i.owner = n.owner AND i.node = n.node AND i.item_id IN (`+in+`)
		WHERE n.owner = ? AND n.node = ? ORDER BY i.seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items of %s/%s: %w", service, node, err)
	}
	defer rows.Close()
	items, err := scanItems(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items of %s/%s: %w", service, node, err)
	}
	return items, nil
}

func (p pubsub) DeleteItem(ctx context.Context, service, node, id string) error {
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, service, node); err != nil {
			return err
		}
		return execChanging(ctx, tx, storage.ErrNotFound, `DELETE FROM pubsub_items WHERE owner = ? AND node = ? AND item_id = ?`, service, node, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: retract %s from %s/%s: %w", id, service, node, err)
	}
	return nil
}

func (p pubsub) TrimItems(ctx context.Context, service, node string, keep int) error {
	err := p.s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, service, node); err != nil {
			return err
		}
		if keep <= 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE owner = ? AND node = ?`, service, node)
			return err
		}
		return trim(ctx, tx, service, node, keep)
	})
	if err != nil {
		return fmt.Errorf("sqlite: trim %s/%s: %w", service, node, err)
	}
	return nil
}

func (p pubsub) SetAffiliation(ctx context.Context, service, node, jid, affiliation string) error {
	remove, err := storeutil.PubSubAffiliation(affiliation)
	if err == nil {
		err = p.s.write(ctx, func(tx *sql.Tx) error {
			if err := nodeExists(ctx, tx, service, node); err != nil {
				return err
			}
			if remove {
				_, err := tx.ExecContext(ctx, `DELETE FROM pubsub_affiliations WHERE owner = ? AND node = ? AND jid = ?`, service, node, jid)
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO pubsub_affiliations (owner, node, jid, affiliation) VALUES (?, ?, ?, ?)
				ON CONFLICT (owner, node, jid) DO UPDATE SET affiliation = excluded.affiliation`, service, node, jid, affiliation)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("sqlite: affiliation of %s with %s/%s: %w", jid, service, node, err)
	}
	return nil
}

func (p pubsub) Affiliations(ctx context.Context, service, node string) ([]storage.PubSubAffiliation, error) {
	var out []storage.PubSubAffiliation
	err := p.list(ctx, "pubsub_affiliations", "affiliation", service, node, func(n, j, v string) {
		out = append(out, storage.PubSubAffiliation{Node: n, JID: j, Affiliation: v})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: affiliations of %s/%s: %w", service, node, err)
	}
	return out, nil
}

func (p pubsub) SetSubscription(ctx context.Context, service, node, jid, state string, max int) error {
	remove, err := storeutil.PubSubSubscriptionState(state)
	if err == nil {
		err = p.s.write(ctx, func(tx *sql.Tx) error {
			if err := nodeExists(ctx, tx, service, node); err != nil {
				return err
			}
			if remove {
				_, err := tx.ExecContext(ctx, `DELETE FROM pubsub_subscriptions WHERE owner = ? AND node = ? AND jid = ?`, service, node, jid)
				return err
			}
			if max > 0 {
				var n, mine int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(jid = ?), 0) FROM pubsub_subscriptions WHERE owner = ? AND node = ?`,
					jid, service, node).Scan(&n, &mine); err != nil {
					return err
				}
				if mine == 0 && n >= max {
					return storage.ErrQuotaExceeded
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO pubsub_subscriptions (owner, node, jid, state) VALUES (?, ?, ?, ?)
				ON CONFLICT (owner, node, jid) DO UPDATE SET state = excluded.state`, service, node, jid, state)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("sqlite: subscription of %s to %s/%s: %w", jid, service, node, err)
	}
	return nil
}

func (p pubsub) Subscriptions(ctx context.Context, service, node string) ([]storage.PubSubSubscription, error) {
	var out []storage.PubSubSubscription
	err := p.list(ctx, "pubsub_subscriptions", "state", service, node, func(n, j, v string) {
		out = append(out, storage.PubSubSubscription{Node: n, JID: j, State: v})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscriptions of %s/%s: %w", service, node, err)
	}
	return out, nil
}

// list reads (node, jid, column) rows of table for one node, or for the
// whole service when node is "". Asking for a node that does not exist is
// ErrNotFound, as for every other per-node method.
func (p pubsub) list(ctx context.Context, table, column, service, node string, add func(n, j, v string)) error {
	q := `SELECT node, jid, ` + column + ` FROM ` + table + ` WHERE owner = ?`
	args := []any{service}
	if node != "" {
		if err := nodeExists(ctx, p.s.db, service, node); err != nil {
			return err
		}
		q += ` AND node = ?`
		args = append(args, node)
	}
	rows, err := p.s.db.QueryContext(ctx, q+` ORDER BY node, jid`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n, j, v string
		if err := rows.Scan(&n, &j, &v); err != nil {
			return err
		}
		add(n, j, v)
	}
	return rows.Err()
}
