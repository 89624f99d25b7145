package logring

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRingKeepsNewestInOrder(t *testing.T) {
	r := New(3)
	for i := range 5 {
		fmt.Fprintf(r, "line %d\n", i)
	}
	got := strings.Join(r.Lines(0), ",")
	if got != "line 2,line 3,line 4" {
		t.Fatalf("lines = %q", got)
	}
	if got := strings.Join(r.Lines(2), ","); got != "line 3,line 4" {
		t.Fatalf("last 2 = %q", got)
	}
}

func TestRingBoundsLineLength(t *testing.T) {
	r := New(2)
	_, _ = r.Write([]byte(strings.Repeat("x", 3*MaxLineBytes)))
	if l := r.Lines(0)[0]; len(l) > MaxLineBytes+4 {
		t.Fatalf("stored %d bytes", len(l))
	}
}

func TestTeeCopiesWithAttrsAndLevel(t *testing.T) {
	var out bytes.Buffer
	r := New(10)
	log := slog.New(Tee(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}), r)).With("host", "example.com")
	log.Debug("hidden")
	log.WithGroup("g").Info("hello", "k", "v")
	lines := r.Lines(0)
	if len(lines) != 1 {
		t.Fatalf("ring = %q", lines)
	}
	if !strings.Contains(lines[0], "host=example.com") || !strings.Contains(lines[0], "g.k=v") || !strings.Contains(out.String(), "hello") {
		t.Fatalf("ring %q, log %q", lines[0], out.String())
	}
}
