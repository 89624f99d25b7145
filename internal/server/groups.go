package server

import (
	"bytes"
	"context"
	"time"

	"parley/internal/access"
)

// groupWatch notices group membership changes made by another process:
// `parley group add/del` writes storage directly (the server may not even
// run), and marks the host's groups changed with a fresh random value
// (access.KVGroups.Touch). The server reads that one key per host every
// auth.groups_poll_interval and, when it changed, tells the host's access
// control (cached memberships dropped, shared roster groups re-read and
// pushed). Storage stays the one source of truth, so nothing is lost when
// the server is down while groups change (it reads them at start), there
// is no second channel that could disagree with storage, and it works the
// same on SQLite and PostgreSQL. The cost is one indexed key read per
// host per interval, and a change takes up to one interval to arrive.
type groupWatch struct {
	stop context.CancelFunc
	done chan struct{}
}

func (s *Server) startGroupWatch() {
	ctx, cancel := context.WithCancel(context.Background())
	s.groupWatch = groupWatch{stop: cancel, done: make(chan struct{})}
	kv := access.KVGroups{Store: s.store}
	seen := map[string][]byte{}
	read := func() map[string]bool {
		changed := map[string]bool{}
		for _, h := range s.hosts {
			v, err := kv.Version(ctx, h.Domain)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("groups: reading the change mark", "host", h.Domain, "err", err)
				}
				continue
			}
			if prev, ok := seen[h.Domain]; ok && !bytes.Equal(prev, v) {
				changed[h.Domain] = true
			}
			seen[h.Domain] = v
		}
		return changed
	}
	read()
	go func() {
		defer close(s.groupWatch.done)
		t := time.NewTicker(s.cfg.Auth.GroupsPollInterval.Duration)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			changed := read()
			for _, h := range s.hosts {
				if changed[h.Domain] && h.Access != nil {
					s.log.Info("groups: membership changed; re-reading", "host", h.Domain)
					h.Access.GroupsChanged()
					h.ForgetAdmins()
				}
			}
		}
	}()
}

func (s *Server) stopGroupWatch() {
	if s.groupWatch.stop != nil {
		s.groupWatch.stop()
		<-s.groupWatch.done
		s.groupWatch.stop = nil
	}
}
