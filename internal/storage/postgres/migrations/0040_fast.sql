-- XEP-0484 FAST tokens (PostgreSQL). owner is the account's bare JID, so
-- Accounts.Delete removes them with the account's other data; hash is the
-- token's SHA-256 (the token itself is never stored).
CREATE TABLE fast_tokens (
    owner      TEXT        NOT NULL,
    id         TEXT        NOT NULL,
    client_id  TEXT        NOT NULL,
    software   TEXT        NOT NULL DEFAULT '',
    device     TEXT        NOT NULL DEFAULT '',
    mechanism  TEXT        NOT NULL,
    hash       BYTEA       NOT NULL,
    current    BOOLEAN     NOT NULL DEFAULT false,
    count      BIGINT      NOT NULL DEFAULT 0,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    last_used  TIMESTAMPTZ,
    PRIMARY KEY (owner, id)
);
CREATE INDEX fast_tokens_client ON fast_tokens (owner, client_id);
