package muc

import (
	"context"
	"errors"
	"time"

	"parley/internal/directory"
)

// Persistent rooms defined in the directory (seed 001 "Multi-User Chat":
// room configuration held in the directory, managed by directory
// administration). On a host whose accounts live in a directory with a
// room_base, every room entry becomes a persistent, members-only room of
// this service: its name and description from the entry, its members and
// admins from the entry's member and admin attributes. They live alongside
// rooms created over XMPP. Polling (directory.poll_interval) applies changes
// to existing rooms; the affiliations the directory gave are replaced, the
// ones owners set over XMPP are kept. A room removed from the directory is
// left as it is (an owner may destroy it).

// directoryRooms applies the directory's rooms now and on every change.
// It returns the watch cancel function (nil without a directory).
func (s *Service) directoryRooms(ctx context.Context) func() {
	d, ok := s.h.AccountSource.(*directory.Directory)
	if !ok || d.Config().RoomBase == "" {
		return nil
	}
	snap := d.Current()
	if snap == nil {
		var err error
		if snap, err = d.Refresh(ctx); err != nil && !errors.Is(err, directory.ErrUnavailable) {
			s.log.Warn("muc: directory rooms", "err", err)
		}
	}
	if snap != nil {
		s.applyDirectoryRooms(ctx, snap)
	}
	return d.Watch(func(_, snap *directory.Snapshot) { s.applyDirectoryRooms(context.Background(), snap) })
}

func (s *Service) applyDirectoryRooms(ctx context.Context, snap *directory.Snapshot) {
	host := s.h.Domain
	for _, def := range snap.Rooms {
		s.mu.Lock()
		r := s.rooms[def.Name]
		if r == nil {
			if len(s.rooms) >= s.cfg.MaxRooms {
				s.mu.Unlock()
				s.log.Warn("muc: max_rooms reached; directory room not created", "room", def.Name)
				continue
			}
			r = newRoom(s, def.Name)
			r.created = time.Now()
			r.cfg.Persistent, r.cfg.MembersOnly, r.cfg.Name = true, true, def.Name
			s.rooms[def.Name] = r
		}
		s.mu.Unlock()

		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue
		}
		r.cfg.Persistent = true
		if def.Description != "" {
			r.cfg.Description = def.Description
		}
		want := map[string]string{}
		for _, j := range def.MemberJIDs(host) {
			want[j] = AffMember
		}
		for _, j := range def.AdminJIDs(host) {
			want[j] = AffAdmin
		}
		for bare, e := range r.affs {
			if e.Reason == directoryReason && want[bare] == "" {
				delete(r.affs, bare)
			}
		}
		for bare, aff := range want {
			if cur, ok := r.affs[bare]; !ok || cur.Reason == directoryReason {
				r.affs[bare] = affEntry{Aff: aff, Reason: directoryReason}
			}
		}
		r.save(ctx)
		r.mu.Unlock()
	}
}

// directoryReason marks affiliations that come from the directory.
const directoryReason = "from the directory"
