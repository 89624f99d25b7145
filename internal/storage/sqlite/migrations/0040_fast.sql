-- XEP-0484 FAST tokens (SQLite). owner is the account's bare JID, so
-- Accounts.Delete removes them with the account's other data; hash is the
-- token's SHA-256 (the token itself is never stored).
CREATE TABLE fast_tokens (
    owner      TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    software   TEXT    NOT NULL DEFAULT '',
    device     TEXT    NOT NULL DEFAULT '',
    mechanism  TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    current    INTEGER NOT NULL DEFAULT 0,
    count      INTEGER NOT NULL DEFAULT 0,
    issued_at  TEXT    NOT NULL,
    expires_at TEXT    NOT NULL,
    last_used  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (owner, id)
) WITHOUT ROWID;
CREATE INDEX fast_tokens_client ON fast_tokens (owner, client_id);
