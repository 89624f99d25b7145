// Package logring keeps the server's most recent log lines in memory, for
// the web console's log tail. A Handler wraps the server's slog handler:
// every record goes on to the real log unchanged and is also formatted as
// one logfmt line into a Ring of fixed size, the oldest line dropped when
// it is full. Memory is bounded by the line count and by a cap on each
// line's length.
package logring

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// MaxLineBytes bounds one stored line; a longer one is cut.
const MaxLineBytes = 4096

// Ring is a fixed-size ring of log lines, safe for concurrent use.
type Ring struct {
	mu    sync.Mutex
	lines []string
	next  int // where the next line goes
	full  bool
}

// New returns a ring holding the last n lines (at least 1).
func New(n int) *Ring {
	return &Ring{lines: make([]string, max(1, n))}
}

// Write stores one line per call (slog's text handler writes a whole
// record at once); it implements io.Writer for that handler.
func (r *Ring) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	if len(line) > MaxLineBytes {
		line = line[:MaxLineBytes] + "…"
	}
	r.mu.Lock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
	return len(p), nil
}

// Lines returns up to n of the newest lines, oldest first (n <= 0: all).
func (r *Ring) Lines(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if r.full {
		out = append(out, r.lines[r.next:]...)
	}
	out = append(out, r.lines[:r.next]...)
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Handler sends records to next and a logfmt copy to a Ring.
type Handler struct {
	next slog.Handler
	text slog.Handler
}

// Tee returns a handler that logs to next and keeps a copy in r. The copy
// records what next enables (the configured level).
func Tee(next slog.Handler, r *Ring) *Handler {
	return &Handler{next: next, text: slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug})}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	_ = h.text.Handle(ctx, rec.Clone())
	return h.next.Handle(ctx, rec)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), text: h.text.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), text: h.text.WithGroup(name)}
}
