package mam

import (
	"context"
	"time"

	"parley/internal/config"
	"parley/internal/storage"
)

// Purged counts what one retention run deleted.
type Purged struct {
	// Archive counts messages of account and room archives.
	Archive int64
	// Compliance counts records of the compliance log.
	Compliance int64
}

// Retention applies the retention of host hc at now: archived messages
// older than [host.archive] max_age, in its accounts' archives and its chat
// rooms', and compliance log records older than compliance_max_age. The
// module's purge goroutine calls it every purge_interval; `parley archive
// purge` calls it by hand. An age of 0 deletes nothing (archives are then
// bounded by max_messages alone).
func Retention(ctx context.Context, st storage.Store, hc *config.Host, now time.Time) (Purged, error) {
	var p Purged
	a := hc.Archive
	if age := a.MaxAge.Duration; age > 0 {
		cut := now.Add(-age)
		n, err := st.Archive().PurgeBefore(ctx, hc.Domain, cut)
		p.Archive += n
		if err != nil {
			return p, err
		}
		if hc.MUC.On() {
			n, err := st.Archive().PurgeBefore(ctx, hc.MUC.Domain, cut)
			p.Archive += n
			if err != nil {
				return p, err
			}
		}
	}
	if age := a.ComplianceMaxAge.Duration; age > 0 {
		n, err := st.Compliance().PurgeBefore(ctx, hc.Domain, now.Add(-age))
		p.Compliance += n
		if err != nil {
			return p, err
		}
	}
	return p, nil
}
