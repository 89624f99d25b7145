package mam

import (
	"context"
	"time"

	"parley/internal/config"
	"parley/internal/storage"
)

// Retention deletes the archived messages of host hc older than its
// [host.archive] max_age (at now), in its accounts' archives and in its
// chat rooms', and returns how many. The module's purge goroutine calls it
// every purge_interval; `parley archive purge` calls it by hand. A max_age
// of 0 keeps messages until the per-archive cap pushes them out.
func Retention(ctx context.Context, st storage.Store, hc *config.Host, now time.Time) (int64, error) {
	a := hc.Archive
	if !a.On() || a.MaxAge.Duration <= 0 {
		return 0, nil
	}
	cut := now.Add(-a.MaxAge.Duration)
	n, err := st.Archive().PurgeBefore(ctx, hc.Domain, cut)
	if err != nil || !hc.MUC.On() {
		return n, err
	}
	m, err := st.Archive().PurgeBefore(ctx, hc.MUC.Domain, cut)
	return n + m, err
}
