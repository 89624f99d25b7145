package muc

import (
	"context"
	"errors"
	"slices"
	"time"

	"parley/internal/directory"
	"parley/internal/xmpp/stanza"
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
//
// What the directory holds of such a room (its description, its title with
// room_title_attribute, its members and admins) is changed in the
// directory: with [directory] room_write = true an owner's change over
// XMPP (the configuration form, affiliation changes) is written to the
// room's entry first and applied only if the directory accepted it; with
// room_write = false (default) it is refused with not-allowed and a text
// saying why. Everything else (moderation, history, passwords, owners) is
// the room's own, changed over XMPP as in any room.

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

		s.mu.Lock()
		if s.dirRooms == nil {
			s.dirRooms = map[string]string{}
		}
		s.dirRooms[def.Name] = def.DN
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
		if def.Title != "" {
			r.cfg.Name = def.Title
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

// dirRoom returns the directory and the entry of room local, or nil when
// it is no directory room.
func (s *Service) dirRoom(local string) (*directory.Directory, string) {
	d, ok := s.h.AccountSource.(*directory.Directory)
	if !ok {
		return nil, ""
	}
	s.mu.Lock()
	dn := s.dirRooms[local]
	s.mu.Unlock()
	if dn == "" {
		return nil, ""
	}
	return d, dn
}

// roomWriteRefused is the text of a refused change to a directory room.
const roomWriteRefused = "this room is defined in the directory: its name, description, members and admins are changed there (the server's directory room_write is off)"

// writeDirectory writes c to r's directory entry before the change is
// applied: nil when r is no directory room, c touches nothing the
// directory holds, or the directory took it; otherwise the error to answer
// with. The caller holds r.mu (the write is bounded by the directory's
// request timeout).
func (s *Service) writeDirectory(ctx context.Context, r *room, c directory.RoomChange) *stanza.Error {
	d, dn := s.dirRoom(r.local)
	if d == nil || c.Empty() {
		return nil
	}
	if !d.Config().RoomWrite {
		return &stanza.Error{Condition: stanza.NotAllowed, Text: roomWriteRefused}
	}
	ctx, cancel := storeCtx(ctx)
	defer cancel()
	err := d.UpdateRoom(ctx, dn, s.h.Domain, c)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, directory.ErrUnavailable):
		return &stanza.Error{Condition: stanza.ServiceUnavailable, Type: stanza.ErrorTypeWait, Text: "the directory that holds this room is unreachable; try again later"}
	case errors.Is(err, directory.ErrRoomRefused):
		return &stanza.Error{Condition: stanza.NotAllowed, Text: err.Error()}
	}
	s.log.Warn("muc: directory room update", "room", r.local, "err", err)
	return &stanza.Error{Condition: stanza.InternalServerError, Text: "the room's directory entry could not be changed"}
}

// configChange is what a configuration form changes of the fields the
// directory holds (the title only with room_title_attribute).
func (s *Service) configChange(r *room, prev, next roomConfig, admins []string) directory.RoomChange {
	var c directory.RoomChange
	d, _ := s.dirRoom(r.local)
	if d == nil {
		return c
	}
	if next.Description != prev.Description {
		c.Description = &next.Description
	}
	if next.Name != prev.Name && d.Config().RoomTitleAttribute != "" {
		c.Title = &next.Name
	}
	if admins != nil {
		c.AddAdmins, c.RemoveAdmins = diff(r.listAff(AffAdmin), admins)
	}
	return c
}

// affChange is what affiliation changes (bare JID → new affiliation) do
// to the directory's members and admins.
func affChange(r *room, changes map[string]string) directory.RoomChange {
	var c directory.RoomChange
	for bare, aff := range changes {
		old := AffNone
		if e, ok := r.affs[bare]; ok {
			old = e.Aff
		}
		if old == aff {
			continue
		}
		switch old {
		case AffMember:
			c.RemoveMembers = append(c.RemoveMembers, bare)
		case AffAdmin:
			c.RemoveAdmins = append(c.RemoveAdmins, bare)
		}
		switch aff {
		case AffMember:
			c.AddMembers = append(c.AddMembers, bare)
		case AffAdmin:
			c.AddAdmins = append(c.AddAdmins, bare)
		}
	}
	return c
}

// diff returns what is in want but not in have (add), and the reverse.
func diff(have, want []string) (add, remove []string) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			remove = append(remove, h)
		}
	}
	return add, remove
}

// markDirectory records that the affiliations of bare JIDs in c now come
// from the directory (written there), so that the next poll keeps them and
// a later removal in the directory removes them.
func markDirectory(r *room, c directory.RoomChange) {
	if d, _ := r.svc.dirRoom(r.local); d == nil {
		return // a room of the server's own: the reason given stays
	}
	for _, l := range [][]string{c.AddMembers, c.AddAdmins} {
		for _, b := range l {
			if e, ok := r.affs[b]; ok {
				e.Reason = directoryReason
				r.affs[b] = e
			}
		}
	}
}
