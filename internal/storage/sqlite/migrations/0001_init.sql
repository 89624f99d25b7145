-- Parley schema, version 1 (SQLite).
--
-- Times are TEXT in RFC 3339 UTC with nanoseconds (lexically sortable).
-- Owners are bare JIDs ("user@host"); accounts are keyed by (host, username).

CREATE TABLE accounts (
    host           TEXT    NOT NULL,
    username       TEXT    NOT NULL,
    plain_password TEXT    NOT NULL DEFAULT '',
    fields         TEXT    NOT NULL DEFAULT '{}', -- JSON object of string -> string
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT    NOT NULL,
    PRIMARY KEY (host, username)
) WITHOUT ROWID;

-- One row per SCRAM hash family (Credentials.Keys).
CREATE TABLE account_scram_keys (
    host       TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    hash       TEXT    NOT NULL, -- "SHA-1", "SHA-256", ...
    salt       BLOB    NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    PRIMARY KEY (host, username, hash),
    FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
) WITHOUT ROWID;

-- Single-row counters. roster_version is global rather than per owner so a
-- version string is never reused, even after an account is deleted and
-- registered again (a client's cached version must not match a new roster).
CREATE TABLE counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('roster_version', 0);

-- Current roster version per owner; no row means "never changed", which
-- Roster.Items reports as version 0 (the counter starts at 1).
CREATE TABLE roster_versions (
    owner   TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE roster_items (
    owner        TEXT    NOT NULL,
    contact      TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask_out      INTEGER NOT NULL DEFAULT 0,
    pending_in   INTEGER NOT NULL DEFAULT 0,
    pre_approved INTEGER NOT NULL DEFAULT 0,
    groups_json  TEXT    NOT NULL DEFAULT '[]', -- sorted, deduplicated JSON array
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;

-- AUTOINCREMENT so ids are never reused: Pop's "oldest first" is id order.
CREATE TABLE offline_messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    owner     TEXT    NOT NULL,
    stanza    BLOB    NOT NULL,
    stored_at TEXT    NOT NULL
);
CREATE INDEX offline_messages_owner_id ON offline_messages (owner, id);

CREATE TABLE vcards (
    owner TEXT NOT NULL PRIMARY KEY,
    vcard BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE private_xml (
    owner  TEXT NOT NULL,
    ns_key TEXT NOT NULL, -- "<local> <namespace>"
    data   BLOB NOT NULL,
    PRIMARY KEY (owner, ns_key)
) WITHOUT ROWID;

CREATE TABLE kv (
    bucket   TEXT NOT NULL,
    owner    TEXT NOT NULL,
    key_name TEXT NOT NULL,
    value    BLOB NOT NULL,
    PRIMARY KEY (bucket, owner, key_name)
) WITHOUT ROWID;
-- Accounts.Delete removes an owner's rows across all buckets.
CREATE INDEX kv_owner ON kv (owner);
