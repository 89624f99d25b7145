package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
)

// A connection prepares a statement once and runs it again; the same text
// queried while the kept statement's rows are still open runs uncached and
// neither query disturbs the other; past maxCachedStmts statements run
// uncached and still answer.
func TestStatementCache(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kept := func(q string) *cachedStmt {
		var cs *cachedStmt
		_ = conn.Raw(func(dc any) error { cs = dc.(*stmtConn).stmts[q]; return nil })
		return cs
	}

	const q = "SELECT ? + 1"
	var first *cachedStmt
	for i := range 3 {
		var v int
		if err := conn.QueryRowContext(ctx, q, i).Scan(&v); err != nil || v != i+1 {
			t.Fatalf("run %d: %d, %v", i, v, err)
		}
		if i == 0 {
			first = kept(q)
		}
	}
	if first == nil || kept(q) != first {
		t.Fatal("the statement was not kept, or was prepared again")
	}

	const q2 = "SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 2 AS x) WHERE x >= ? ORDER BY x"
	rows, err := conn.QueryContext(ctx, q2, 1)
	if err != nil {
		t.Fatal(err)
	}
	var outer []int
	for rows.Next() {
		var x, inner int
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, x)
		if err := conn.QueryRowContext(ctx, q2, 2).Scan(&inner); err != nil || inner != 2 {
			t.Fatalf("inner query while the kept statement is busy: %d, %v", inner, err)
		}
	}
	if err := rows.Close(); err != nil || fmt.Sprint(outer) != "[1 2]" {
		t.Fatalf("outer rows %v, %v", outer, err)
	}
	if cs := kept(q2); cs == nil || cs.busy {
		t.Fatalf("after its rows closed the statement is %+v", cs)
	}

	for i := range maxCachedStmts + 10 {
		var v int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("statement %d: %d, %v", i, v, err)
		}
	}
	_ = conn.Raw(func(dc any) error {
		if n := len(dc.(*stmtConn).stmts); n != maxCachedStmts {
			t.Errorf("%d statements kept, want the bound %d", n, maxCachedStmts)
		}
		return nil
	})
}
