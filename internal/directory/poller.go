package directory

import (
	"context"
	"errors"
	"time"
)

// Coordinator is what the poller needs from a cluster: an election (one
// node at a time leads a job) and notices from the leader to the others.
// cluster.Node is the one of a clustered server; cluster.Standalone, which
// always leads and tells nobody, is the one of a lone server, so both run
// the same loop.
type Coordinator interface {
	Leading(job string) bool
	Notify(topic string, payload []byte) error
	OnNotice(topic string, fn func(payload []byte)) (cancel func())
}

// PollJob names the cluster-wide job (and the notices' topic) of polling
// this directory: nodes configured with the same user_base poll it once
// between them.
func (d *Directory) PollJob() string { return "directory-poll/" + d.cfg.UserBase }

// Run keeps the snapshot current until ctx ends. Every node reads the
// directory once when it starts. After that only the node that leads
// PollJob reads it, every poll_interval; when a read finds a change it
// tells the other nodes, which read the directory again (so their
// watchers — roster pre-population, directory rooms, host policies — see
// the change, and lookups served from their snapshots are current). A node
// that has just become the leader notifies after its first read whatever
// it found: it cannot know what the previous leader had told (a leader
// can die between its read and its notice, and a node that leads from its
// start read has no earlier read to compare with).
//
// A notice only says "read again": one lost (a node cut off from the
// cluster while it was sent) leaves that node's snapshot behind until
// Resync, the next change, or the node's own check every
// followerCheckTicks intervals; a read a node needed that failed is
// tried again at the next interval. Failures are logged by the pool (once
// per outage); the last good snapshot stays in use.
func (d *Directory) Run(ctx context.Context, c Coordinator) {
	job := d.PollJob()
	wake := make(chan struct{}, 1)
	poke := func([]byte) {
		select {
		case wake <- struct{}{}:
		default: // a read is already due; it will see this change too
		}
	}
	stop := c.OnNotice(job, poke)
	defer stop()
	d.mu.Lock()
	d.resync = func() { poke(nil) }
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.resync = nil
		d.mu.Unlock()
	}()

	_, ok := d.poll(ctx, "start")
	// retry: a read this node needed (at start, or for a notice) failed;
	// sinceRead: ticks since this node, not leading, last read.
	retry, sinceRead := !ok, 0
	t := time.NewTicker(d.cfg.PollInterval.Duration)
	defer t.Stop()
	leading := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			_, ok := d.poll(ctx, "notice")
			retry, sinceRead = !ok, 0
		case <-t.C:
			was := leading
			if leading = c.Leading(job); !leading {
				// A follower reads again when a read it needed failed,
				// and every followerCheckTicks ticks in any case: a lost
				// notice then costs at most that long.
				if sinceRead++; retry || sinceRead >= followerCheckTicks {
					_, ok := d.poll(ctx, "check")
					retry, sinceRead = !ok, 0
				}
				continue
			}
			if changed, ok := d.poll(ctx, "poll"); ok && (changed || !was) {
				if err := c.Notify(job, nil); err != nil {
					d.log.Warn("directory: telling the other nodes of a change", "err", err)
					leading = false // so the next read notifies again
				}
			} else if !ok {
				leading = false // the next successful read notifies
			}
		}
	}
}

// followerCheckTicks is how many poll intervals a node that does not lead
// the poll goes without reading the directory itself: notices are at most
// once, so this bounds how long one lost keeps a node's snapshot behind.
const followerCheckTicks = 10

// Resync makes Run read the directory again soon, as a notice does: the
// server calls it when its node rejoins the cluster, having perhaps missed
// notices while it was cut off. Without Run it does nothing.
func (d *Directory) Resync() {
	d.mu.Lock()
	f := d.resync
	d.mu.Unlock()
	if f != nil {
		f()
	}
}

// poll reads the directory for reason ("start", "poll", "notice",
// "check") and
// reports whether something changed and whether the read succeeded.
func (d *Directory) poll(ctx context.Context, reason string) (changed, ok bool) {
	if d.pool.m != nil {
		d.pool.m.DirectoryRefreshes.WithLabelValues(reason).Inc()
	}
	_, changed, err := d.refresh(ctx)
	if err != nil && !errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
		d.log.Warn("directory: refresh", "reason", reason, "err", err)
	}
	return changed, err == nil
}
