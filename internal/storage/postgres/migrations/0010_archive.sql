-- XEP-0313 message archives (PostgreSQL).
--
-- One archive per owner (an account's or a room's bare JID). Its messages
-- are numbered three ways, each without gaps: seq over the whole archive,
-- with_seq among those exchanged with one bare JID, res_seq among those
-- with one full JID (0 when the other party has no resource). Messages are
-- only appended at the end and deleted from the start (retention, the
-- per-owner cap) or all at once, so the numberings stay gap-free and every
-- count is a subtraction, not a scan (storage/internal/storeutil/archive.go).
-- Stamps never decrease in seq order, so a time range is a seq range too.
-- Appends lock the owner's archive_heads row first, which serialises them
-- per owner.

CREATE TABLE archive (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         TEXT        NOT NULL,
    seq           BIGINT      NOT NULL,
    with_jid      TEXT        NOT NULL, -- bare JID of the other party (rooms: the sender's real JID)
    with_resource TEXT        NOT NULL DEFAULT '',
    with_seq      BIGINT      NOT NULL,
    res_seq       BIGINT      NOT NULL,
    stanza_id     TEXT        NOT NULL, -- the archive UID clients see (XEP-0359)
    stamp         TIMESTAMPTZ NOT NULL, -- milliseconds
    stanza        BYTEA       NOT NULL
);
CREATE UNIQUE INDEX archive_owner_seq ON archive (owner, seq);
CREATE UNIQUE INDEX archive_owner_stanza_id ON archive (owner, stanza_id);
CREATE INDEX archive_owner_stamp ON archive (owner, stamp, seq);
-- Ordered like the archive within one party, carrying the party's
-- numbering, so that finding its first and last message in a range never
-- touches the table.
CREATE INDEX archive_owner_with ON archive (owner, with_jid, seq, with_seq);
CREATE INDEX archive_owner_res ON archive (owner, with_jid, with_resource, seq, res_seq);

-- The newest numbers per owner: the archive's seq and stamp (with_jid and
-- with_resource ''), with_seq per bare JID (with_resource ''), res_seq per
-- full JID. Rows outlive the messages they count, so numbers are never
-- reused after a purge. host is the owner's domain, for retention purges.
CREATE TABLE archive_heads (
    owner         TEXT        NOT NULL,
    with_jid      TEXT        NOT NULL,
    with_resource TEXT        NOT NULL,
    host          TEXT        NOT NULL,
    last_seq      BIGINT      NOT NULL,
    last_stamp    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, with_jid, with_resource)
);
CREATE INDEX archive_heads_host ON archive_heads (host, with_jid);

-- The compliance log of a host ([host.archive] compliance): every message
-- of its users, whatever their archiving preferences, in the order it was
-- taken. Never deleted with an account; only retention purges it (a prefix
-- at a time: stamps never decrease in id order within a host; appends to
-- one host's log take an advisory lock).
CREATE TABLE compliance_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host      TEXT        NOT NULL,
    stamp     TIMESTAMPTZ NOT NULL,
    type      TEXT        NOT NULL, -- the message type: chat, normal, groupchat
    from_bare TEXT        NOT NULL,
    from_jid  TEXT        NOT NULL, -- the sender as routed (in rooms: the real JID)
    to_bare   TEXT        NOT NULL,
    to_jid    TEXT        NOT NULL, -- the recipient as routed (in rooms: the room)
    stanza    BYTEA       NOT NULL
);
CREATE INDEX compliance_log_host ON compliance_log (host, id);
CREATE INDEX compliance_log_stamp ON compliance_log (host, stamp, id);
CREATE INDEX compliance_log_from ON compliance_log (host, from_bare, id);
CREATE INDEX compliance_log_to ON compliance_log (host, to_bare, id);
