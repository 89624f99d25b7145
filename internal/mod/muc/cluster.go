package muc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// RoomAcquired is called in a cluster when this node becomes the room's
// server (internal/cluster: the room's lease was free or its holder
// died). Whatever this node had in memory for the room is from an earlier
// time (its start, or an earlier tenure whose occupants are gone), so the
// room is read again from storage: a persistent room comes back with its
// stored configuration, affiliations and subject and no occupants; a room
// that is not stored is forgotten, and the next join creates it anew.
// When storage cannot be read it returns the error and changes nothing:
// the cluster then gives the room's lease up rather than let this node
// serve what it held.
func (m *Module) RoomAcquired(ctx context.Context, room jid.JID) error {
	s := m.svc
	if s == nil || room.Domain() != s.domain || room.Local() == "" {
		return nil
	}
	local := room.Local()
	b, err := s.h.Store.KV().Get(ctx, bucketRooms, s.domain, local)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.Error("muc: reloading room on takeover", "room", room.String(), "err", err)
		return fmt.Errorf("muc: reloading %s: %w", room, err)
	}
	s.mu.Lock()
	old := s.rooms[local]
	s.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		s.dropRoom(old)
		old.mu.Unlock()
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	var st storedRoom
	if err := json.Unmarshal(b, &st); err != nil || st.Version != storeVersion {
		// As at start (load): skipped, not retried, since reading it
		// again cannot help.
		s.log.Error("muc: stored room unreadable on takeover", "room", room.String())
		return nil
	}
	r := newRoom(s, local)
	r.cfg = st.Config
	r.cfg.Persistent = true
	if st.Affiliations != nil {
		r.affs = st.Affiliations
	}
	r.subject, r.subjNick, r.subjOID, r.created = st.Subject, st.SubjectNick, st.SubjectOID, st.Created
	s.mu.Lock()
	if s.rooms[local] == nil {
		s.rooms[local] = r
	}
	s.mu.Unlock()
	s.log.Info("muc: room taken over from storage", "room", room.String())
	return nil
}
