package postgres

import (
	"context"

	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"parley/internal/storage"
	"parley/internal/storage/internal/storeutil"
)

type pubsub struct{ s *Store }

// lockNode locks the node's row for the rest of the transaction, or fails
// with storage.ErrNotFound. Every write below a node takes this lock first,
// which serialises them per node (a publish and its trim cannot interleave
// with another publish) and orders locks node-first everywhere, as
// Accounts.Delete and DeleteNode (through the cascade) do too.
func lockNode(ctx context.Context, tx pgx.Tx, service, node string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM pubsub_nodes WHERE owner = $1 AND node = $2 FOR UPDATE`, service, node).Scan(&one)
	return notFound(err)
}

func (p pubsub) CreateNode(ctx context.Context, n storage.PubSubNode, maxNodes int) error {
	created := n.Created
	if created.IsZero() {
		created = time.Now()
	}
	err := p.s.tx(ctx, func(tx pgx.Tx) error {
		if maxNodes > 0 {
			// A per-service advisory lock makes count+insert atomic, as
			// for the offline quota; the service needs no row of its own.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, pubsubLockClass, ownerLockKey(n.Service)); err != nil {
				return err
			}
			var count int
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT COUNT(*), COALESCE(bool_or(node = $2), false) FROM pubsub_nodes WHERE owner = $1`,
				n.Service, n.Node).Scan(&count, &exists); err != nil {
				return err
			}
			if exists {
				return storage.ErrExists
			}
			if count >= maxNodes {
				return storage.ErrQuotaExceeded
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO pubsub_nodes (owner, node, config, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (owner, node) DO NOTHING`, n.Service, n.Node, storeutil.NonNil(n.Config), created)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: create pubsub node %s/%s: %w", n.Service, n.Node, err)
	}
	return nil
}

func (p pubsub) Node(ctx context.Context, service, node string) (storage.PubSubNode, error) {
	n := storage.PubSubNode{Service: service, Node: node}
	err := p.s.pool.QueryRow(ctx, `SELECT config, created_at FROM pubsub_nodes WHERE owner = $1 AND node = $2`,
		service, node).Scan(&n.Config, &n.Created)
	if err != nil {
		return n, fmt.Errorf("postgres: pubsub node %s/%s: %w", service, node, notFound(err))
	}
	n.Config = storeutil.NonNil(n.Config)
	n.Created = n.Created.UTC()
	return n, nil
}

func (p pubsub) Nodes(ctx context.Context, service string) ([]storage.PubSubNode, error) {
	rows, err := p.s.pool.Query(ctx, `SELECT node, config, created_at FROM pubsub_nodes WHERE owner = $1 ORDER BY node COLLATE "C"`, service)
	if err != nil {
		return nil, fmt.Errorf("postgres: pubsub nodes of %s: %w", service, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.PubSubNode, error) {
		n := storage.PubSubNode{Service: service}
		err := row.Scan(&n.Node, &n.Config, &n.Created)
		n.Config = storeutil.NonNil(n.Config)
		n.Created = n.Created.UTC()
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pubsub nodes of %s: %w", service, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (p pubsub) SetConfig(ctx context.Context, service, node string, config []byte) error {
	tag, err := p.s.pool.Exec(ctx, `UPDATE pubsub_nodes SET config = $3 WHERE owner = $1 AND node = $2`,
		service, node, storeutil.NonNil(config))
	if err == nil {
		err = affected(tag.RowsAffected())
	}
	if err != nil {
		return fmt.Errorf("postgres: configure pubsub node %s/%s: %w", service, node, err)
	}
	return nil
}

func (p pubsub) DeleteNode(ctx context.Context, service, node string) error {
	// Items, affiliations and subscriptions go by ON DELETE CASCADE, after
	// the node's row is locked: the same order as every other write.
	tag, err := p.s.pool.Exec(ctx, `DELETE FROM pubsub_nodes WHERE owner = $1 AND node = $2`, service, node)
	if err == nil {
		err = affected(tag.RowsAffected())
	}
	if err != nil {
		return fmt.Errorf("postgres: delete pubsub node %s/%s: %w", service, node, err)
	}
	return nil
}

func (p pubsub) PutItem(ctx context.Context, service, node string, it storage.PubSubItem, maxItems int) error {
	published := it.Published
	if published.IsZero() {
		published = time.Now()
	}
	err := p.s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockNode(ctx, tx, service, node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO pubsub_items (owner, node, item_id, seq, publisher, payload, published_at)
			VALUES ($1, $2, $3, nextval('pubsub_item_seq'), $4, $5, $6)
			ON CONFLICT (owner, node, item_id) DO UPDATE SET seq = EXCLUDED.seq, publisher = EXCLUDED.publisher,
				payload = EXCLUDED.payload, published_at = EXCLUDED.published_at`,
			service, node, it.ID, it.Publisher, storeutil.NonNil(it.Payload), published)
		if err != nil {
			return err
		}
		return trimItems(ctx, tx, service, node, maxItems)
	})
	if err != nil {
		return fmt.Errorf("postgres: publish to %s/%s: %w", service, node, err)
	}
	return nil
}

// trimItems deletes all but the keep newest items of a node; keep <= 0
// means no limit and deletes nothing. The caller holds the node's lock.
func trimItems(ctx context.Context, tx pgx.Tx, service, node string, keep int) error {
	if keep <= 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `DELETE FROM pubsub_items WHERE owner = $1 AND node = $2 AND seq NOT IN
		(SELECT seq FROM pubsub_items WHERE owner = $1 AND node = $2 ORDER BY seq DESC LIMIT $3)`, service, node, keep)
	return err
}

// collectItems reads (id, publisher, payload, published_at) rows of a LEFT
// JOIN on the node: no row at all means no node, one all-NULL row a node
// without items.
func collectItems(rows pgx.Rows) ([]storage.PubSubItem, error) {
	defer rows.Close()
	found := false
	var out []storage.PubSubItem
	for rows.Next() {
		found = true
		var (
			id, publisher *string
			payload       []byte
			published     *time.Time
		)
		if err := rows.Scan(&id, &publisher, &payload, &published); err != nil {
			return nil, err
		}
		if id == nil {
			continue
		}
		out = append(out, storage.PubSubItem{ID: *id, Publisher: *publisher, Payload: storeutil.NonNil(payload), Published: published.UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, storage.ErrNotFound
	}
	return out, nil
}

func (p pubsub) Items(ctx context.Context, service, node string, max int) ([]storage.PubSubItem, error) {
	var limit *int // NULL: LIMIT ALL
	if max > 0 {
		limit = &max
	}
	rows, err := p.s.pool.Query(ctx, `SELECT i.item_id, i.publisher, i.payload, i.published_at
		FROM pubsub_nodes n LEFT JOIN LATERAL (SELECT * FROM pubsub_items WHERE owner = n.owner AND node = n.node
			ORDER BY seq DESC LIMIT $3) i ON true
		WHERE n.owner = $1 AND n.node = $2 ORDER BY i.seq`, service, node, limit)
	var items []storage.PubSubItem
	if err == nil {
		items, err = collectItems(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: items of %s/%s: %w", service, node, err)
	}
	return items, nil
}

func (p pubsub) ItemsByID(ctx context.Context, service, node string, ids []string) ([]storage.PubSubItem, error) {
	if ids == nil {
		ids = []string{}
	}
	rows, err := p.s.pool.Query(ctx, `SELECT i.item_id, i.publisher, i.payload, i.published_at
		FROM pubsub_nodes n LEFT JOIN pubsub_items i ON i.owner = n.owner AND i.node = n.node AND i.item_id = ANY($3)
		WHERE n.owner = $1 AND n.node = $2 ORDER BY i.seq`, service, node, ids)
	var items []storage.PubSubItem
	if err == nil {
		items, err = collectItems(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: items of %s/%s: %w", service, node, err)
	}
	return items, nil
}

func (p pubsub) DeleteItem(ctx context.Context, service, node, id string) error {
	err := p.s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockNode(ctx, tx, service, node); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM pubsub_items WHERE owner = $1 AND node = $2 AND item_id = $3`, service, node, id)
		if err != nil {
			return err
		}
		return affected(tag.RowsAffected())
	})
	if err != nil {
		return fmt.Errorf("postgres: retract %s from %s/%s: %w", id, service, node, err)
	}
	return nil
}

func (p pubsub) TrimItems(ctx context.Context, service, node string, keep int) error {
	err := p.s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockNode(ctx, tx, service, node); err != nil {
			return err
		}
		if keep <= 0 {
			_, err := tx.Exec(ctx, `DELETE FROM pubsub_items WHERE owner = $1 AND node = $2`, service, node)
			return err
		}
		return trimItems(ctx, tx, service, node, keep)
	})
	if err != nil {
		return fmt.Errorf("postgres: trim %s/%s: %w", service, node, err)
	}
	return nil
}

func (p pubsub) SetAffiliation(ctx context.Context, service, node, jid, affiliation string) error {
	remove, err := storeutil.PubSubAffiliation(affiliation)
	if err == nil {
		err = p.s.tx(ctx, func(tx pgx.Tx) error {
			if err := lockNode(ctx, tx, service, node); err != nil {
				return err
			}
			if remove {
				_, err := tx.Exec(ctx, `DELETE FROM pubsub_affiliations WHERE owner = $1 AND node = $2 AND jid = $3`, service, node, jid)
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO pubsub_affiliations (owner, node, jid, affiliation) VALUES ($1, $2, $3, $4)
				ON CONFLICT (owner, node, jid) DO UPDATE SET affiliation = EXCLUDED.affiliation`, service, node, jid, affiliation)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("postgres: affiliation of %s with %s/%s: %w", jid, service, node, err)
	}
	return nil
}

func (p pubsub) Affiliations(ctx context.Context, service, node string) ([]storage.PubSubAffiliation, error) {
	var out []storage.PubSubAffiliation
	err := p.list(ctx, "pubsub_affiliations", "affiliation", service, node, func(n, j, v string) {
		out = append(out, storage.PubSubAffiliation{Node: n, JID: j, Affiliation: v})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: affiliations of %s/%s: %w", service, node, err)
	}
	return out, nil
}

func (p pubsub) SetSubscription(ctx context.Context, service, node, jid, state string, max int) error {
	remove, err := storeutil.PubSubSubscriptionState(state)
	if err == nil {
		err = p.s.tx(ctx, func(tx pgx.Tx) error {
			if err := lockNode(ctx, tx, service, node); err != nil {
				return err
			}
			if remove {
				_, err := tx.Exec(ctx, `DELETE FROM pubsub_subscriptions WHERE owner = $1 AND node = $2 AND jid = $3`, service, node, jid)
				return err
			}
			if max > 0 {
				var n int
				var mine bool
				if err := tx.QueryRow(ctx, `SELECT COUNT(*), COALESCE(bool_or(jid = $3), false) FROM pubsub_subscriptions
					WHERE owner = $1 AND node = $2`, service, node, jid).Scan(&n, &mine); err != nil {
					return err
				}
				if !mine && n >= max {
					return storage.ErrQuotaExceeded
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO pubsub_subscriptions (owner, node, jid, state) VALUES ($1, $2, $3, $4)
				ON CONFLICT (owner, node, jid) DO UPDATE SET state = EXCLUDED.state`, service, node, jid, state)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("postgres: subscription of %s to %s/%s: %w", jid, service, node, err)
	}
	return nil
}

func (p pubsub) Subscriptions(ctx context.Context, service, node string) ([]storage.PubSubSubscription, error) {
	var out []storage.PubSubSubscription
	err := p.list(ctx, "pubsub_subscriptions", "state", service, node, func(n, j, v string) {
		out = append(out, storage.PubSubSubscription{Node: n, JID: j, State: v})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: subscriptions of %s/%s: %w", service, node, err)
	}
	return out, nil
}

// list reads (node, jid, column) rows of table for one node, or for the
// whole service when node is "". Asking for a node that does not exist is
// ErrNotFound, as for every other per-node method; the check and the rows
// come from one statement.
func (p pubsub) list(ctx context.Context, table, column, service, node string, add func(n, j, v string)) error {
	var rows pgx.Rows
	var err error
	if node == "" {
		rows, err = p.s.pool.Query(ctx, `SELECT node, jid, `+column+` FROM `+table+` WHERE owner = $1
			ORDER BY node COLLATE "C", jid COLLATE "C"`, service)
	} else {
		rows, err = p.s.pool.Query(ctx, `SELECT n.node, t.jid, t.`+column+` FROM pubsub_nodes n
			LEFT JOIN `+table+` t ON t.owner = n.owner AND t.node = n.node
			WHERE n.owner = $1 AND n.node = $2 ORDER BY t.jid COLLATE "C"`, service, node)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	found := node == ""
	for rows.Next() {
		found = true
		var n string
		var j, v *string
		if err := rows.Scan(&n, &j, &v); err != nil {
			return err
		}
		if j != nil {
			add(n, *j, *v)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !found {
		return storage.ErrNotFound
	}
	return nil
}
