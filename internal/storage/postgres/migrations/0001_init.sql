-- Parley schema, version 1 (PostgreSQL).
--
-- Owners are bare JIDs ("user@host"); accounts are keyed by (host, username).
-- Sorted listings use COLLATE "C" in queries so order is bytewise, like the
-- SQLite backend, whatever the database's locale.

CREATE TABLE accounts (
    host           TEXT        NOT NULL,
    username       TEXT        NOT NULL,
    plain_password TEXT        NOT NULL DEFAULT '',
    fields         JSONB       NOT NULL DEFAULT '{}', -- object of string -> string
    disabled       BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (host, username)
);

-- One row per SCRAM hash family (Credentials.Keys).
CREATE TABLE account_scram_keys (
    host       TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    hash       TEXT    NOT NULL, -- "SHA-1", "SHA-256", ...
    salt       BYTEA   NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key BYTEA   NOT NULL,
    server_key BYTEA   NOT NULL,
    PRIMARY KEY (host, username, hash),
    FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
);

-- Roster versions come from one sequence rather than a per-owner counter so
-- a version string is never reused, even after an account is deleted and
-- registered again (a client's cached version must not match a new roster).
CREATE SEQUENCE roster_version_seq;

-- Current roster version per owner; no row means "never changed", which
-- Roster.Items reports as version 0 (the counter starts at 1).
-- Roster writes lock this row first, which serialises them per owner.
CREATE TABLE roster_versions (
    owner   TEXT   NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE TABLE roster_items (
    owner        TEXT    NOT NULL,
    contact      TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask_out      BOOLEAN NOT NULL DEFAULT FALSE,
    pending_in   BOOLEAN NOT NULL DEFAULT FALSE,
    pre_approved BOOLEAN NOT NULL DEFAULT FALSE,
    groups       TEXT[]  NOT NULL DEFAULT '{}', -- sorted, deduplicated
    PRIMARY KEY (owner, contact)
);

-- Pop's "oldest first" is id order.
CREATE TABLE offline_messages (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner     TEXT        NOT NULL,
    stanza    BYTEA       NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX offline_messages_owner_id ON offline_messages (owner, id);

CREATE TABLE vcards (
    owner TEXT  NOT NULL PRIMARY KEY,
    vcard BYTEA NOT NULL
);

CREATE TABLE private_xml (
    owner  TEXT  NOT NULL,
    ns_key TEXT  NOT NULL, -- "<local> <namespace>"
    data   BYTEA NOT NULL,
    PRIMARY KEY (owner, ns_key)
);

CREATE TABLE kv (
    bucket   TEXT  NOT NULL,
    owner    TEXT  NOT NULL,
    key_name TEXT  NOT NULL,
    value    BYTEA NOT NULL,
    PRIMARY KEY (bucket, owner, key_name)
);
-- Accounts.Delete removes an owner's rows across all buckets.
CREATE INDEX kv_owner ON kv (owner);
