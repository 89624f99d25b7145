-- Previous passwords of an account, hashed (auth.password.history: a new
-- password may not be one of them). seq orders them, newest highest; the
-- rows go with the account by ON DELETE CASCADE.

CREATE TABLE password_history (
    host       TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (host, username, seq),
    FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
) WITHOUT ROWID;
