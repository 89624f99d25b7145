-- Publish-subscribe (XEP-0060) nodes and what hangs off them (PostgreSQL).
--
-- owner is the service: an account's bare JID for its personal eventing
-- service (XEP-0163), so Accounts.Delete removes an account's nodes by
-- owner like every other per-account table, or a domain for a standalone
-- service. Child rows cascade from their node. Item and subscription
-- writes lock the node's row first, which serialises them per node.

CREATE TABLE pubsub_nodes (
    owner      TEXT        NOT NULL,
    node       TEXT        NOT NULL,
    config     BYTEA       NOT NULL, -- encoded by package pubsub, opaque here
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, node)
);

-- seq orders items by publication (a replaced item gets a new value).
CREATE SEQUENCE pubsub_item_seq;

CREATE TABLE pubsub_items (
    owner        TEXT        NOT NULL,
    node         TEXT        NOT NULL,
    item_id      TEXT        NOT NULL,
    seq          BIGINT      NOT NULL,
    publisher    TEXT        NOT NULL DEFAULT '',
    payload      BYTEA       NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, node, item_id),
    FOREIGN KEY (owner, node) REFERENCES pubsub_nodes (owner, node) ON DELETE CASCADE
);
CREATE INDEX pubsub_items_seq ON pubsub_items (owner, node, seq);

CREATE TABLE pubsub_affiliations (
    owner       TEXT NOT NULL,
    node        TEXT NOT NULL,
    jid         TEXT NOT NULL,
    affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'publisher', 'publish-only', 'member', 'outcast')),
    PRIMARY KEY (owner, node, jid),
    FOREIGN KEY (owner, node) REFERENCES pubsub_nodes (owner, node) ON DELETE CASCADE
);

CREATE TABLE pubsub_subscriptions (
    owner TEXT NOT NULL,
    node  TEXT NOT NULL,
    jid   TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('subscribed', 'pending', 'unconfigured')),
    PRIMARY KEY (owner, node, jid),
    FOREIGN KEY (owner, node) REFERENCES pubsub_nodes (owner, node) ON DELETE CASCADE
);
