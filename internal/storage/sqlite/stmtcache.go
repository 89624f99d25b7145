package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"

	sqlitedrv "modernc.org/sqlite"
)

// The driver prepares every statement it is given, parses and plans it,
// runs it once and throws it away: for the short statements Parley runs
// on every login (the account and its SCRAM keys, the login and
// last-activity records) preparing costs twice what running does. Each
// connection therefore keeps the statements it has prepared, keyed by their
// text, and runs them again (SQLite re-prepares a kept statement by itself
// when the schema changes). The cache sits under database/sql, in the
// driver connection, so every query of the package, in a transaction or
// not, uses it without knowing.

// maxCachedStmts bounds the statements one connection keeps. Parley's
// statements are a fixed set of texts, apart from a few built from the
// filters of an archive query; past the bound, statements run uncached.
const maxCachedStmts = 256

// cachingConnector opens the driver's connections wrapped in stmtConn.
type cachingConnector struct {
	dsn string
	drv *sqlitedrv.Driver
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return newStmtConn(conn)
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is what stmtConn needs of the driver's connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// stmtConn is a driver connection that keeps its prepared statements.
// database/sql never uses one connection from two goroutines at once, so
// it needs no lock.
type stmtConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

// cachedStmt is a kept statement; busy while rows read from it are open
// (a second query with the same text meanwhile runs uncached).
type cachedStmt struct {
	st interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy bool
}

func newStmtConn(c driver.Conn) (driver.Conn, error) {
	sc, ok := c.(sqliteConn)
	if !ok {
		_ = c.Close()
		return nil, errors.New("sqlite: driver connection lacks the context interfaces")
	}
	return &stmtConn{sqliteConn: sc, stmts: make(map[string]*cachedStmt)}, nil
}

// stmt returns the kept statement for query, preparing it on first use;
// nil when it cannot be kept (the cache is full, it is in use, or the
// driver's statement lacks the context methods): the caller then runs
// query uncached, and any preparation error shows there.
func (c *stmtConn) stmt(ctx context.Context, query string) *cachedStmt {
	if cs, ok := c.stmts[query]; ok {
		if cs.busy {
			return nil
		}
		return cs
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	st, ok := ds.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		_ = ds.Close()
		return nil
	}
	cs := &cachedStmt{st: st}
	c.stmts[query] = cs
	return cs
}

func (c *stmtConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if cs := c.stmt(ctx, query); cs != nil {
		return cs.st.ExecContext(ctx, args)
	}
	return c.sqliteConn.ExecContext(ctx, query, args)
}

func (c *stmtConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs := c.stmt(ctx, query)
	if cs == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &stmtRows{Rows: rows, cs: cs}, nil
}

// Close closes the kept statements, then the connection.
func (c *stmtConn) Close() error {
	for _, cs := range c.stmts {
		_ = cs.st.Close()
	}
	c.stmts = nil
	return c.sqliteConn.Close()
}

// stmtRows frees its statement for the next query when closed (closing a
// kept statement's rows resets the statement; it is not finalised).
type stmtRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *stmtRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}
