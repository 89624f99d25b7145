package muc

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// Key is how the web console reaches the module of a host:
// module.Lookup(h, muc.Key), then Service (nil while the host runs no
// chat-room service).
var Key = module.NewServiceKey[*Module]("muc")

// Errors of the management API.
var (
	ErrRoomExists   = errors.New("muc: the room exists already")
	ErrNoRoom       = errors.New("muc: no such room")
	ErrRoomName     = errors.New("muc: not a valid room name")
	ErrRoomsLimited = errors.New("muc: max_rooms reached")
)

// RoomInfo describes a room for administrators.
type RoomInfo struct {
	JID                             jid.JID
	Title, Description              string
	Persistent, Public, MembersOnly bool
	Occupants                       int
	Created                         time.Time
}

// OccupantInfo describes one occupant for administrators.
type OccupantInfo struct {
	Nick, Role, Affiliation string
	JID                     jid.JID // real full JID
}

// Rooms lists the service's rooms, sorted by name.
func (s *Service) Rooms() []RoomInfo {
	s.mu.Lock()
	rs := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	out := make([]RoomInfo, 0, len(rs))
	for _, r := range rs {
		r.mu.Lock()
		if !r.gone {
			out = append(out, RoomInfo{JID: r.jid, Title: r.cfg.Name, Description: r.cfg.Description,
				Persistent: r.cfg.Persistent, Public: r.cfg.Public, MembersOnly: r.cfg.MembersOnly,
				Occupants: len(r.occupants), Created: r.created})
		}
		r.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID.Local() < out[j].JID.Local() })
	return out
}

// lookup returns the live room local, locked; the caller unlocks it.
func (s *Service) lookup(local string) (*room, error) {
	s.mu.Lock()
	r := s.rooms[local]
	s.mu.Unlock()
	if r == nil {
		return nil, ErrNoRoom
	}
	r.mu.Lock()
	if r.gone {
		r.mu.Unlock()
		return nil, ErrNoRoom
	}
	return r, nil
}

// Occupants lists a room's occupants, sorted by nickname.
func (s *Service) Occupants(local string) ([]OccupantInfo, error) {
	r, err := s.lookup(local)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	var out []OccupantInfo
	for _, o := range r.sortedOccupants() {
		out = append(out, OccupantInfo{Nick: o.nick, Role: o.role, Affiliation: r.affOf(o.real), JID: o.real})
	}
	return out, nil
}

// CreateRoom creates a persistent room owned by owner (a bare JID), as an
// administrator does from the console: configured at once, never locked.
func (s *Service) CreateRoom(ctx context.Context, local, title, description string, public, membersOnly bool, owner jid.JID) error {
	j, err := jid.New(strings.ToLower(strings.TrimSpace(local)), s.domain, "")
	if err != nil || j.Local() == "" {
		return ErrRoomName
	}
	s.mu.Lock()
	if s.rooms[j.Local()] != nil {
		s.mu.Unlock()
		return ErrRoomExists
	}
	if len(s.rooms) >= s.cfg.MaxRooms {
		s.mu.Unlock()
		return ErrRoomsLimited
	}
	r := newRoom(s, j.Local())
	r.created = time.Now()
	r.cfg.Persistent, r.cfg.Name, r.cfg.Description = true, title, description
	r.cfg.Public, r.cfg.MembersOnly = public, membersOnly
	r.affs[owner.Bare().String()] = affEntry{Aff: AffOwner}
	s.rooms[j.Local()] = r
	r.mu.Lock()
	s.mu.Unlock()
	defer r.mu.Unlock()
	r.save(ctx)
	return nil
}

// ConfigureRoom changes a room's title, description, visibility and
// membership rule, and stores it.
func (s *Service) ConfigureRoom(ctx context.Context, local, title, description string, public, membersOnly bool) error {
	r, err := s.lookup(local)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	r.cfg.Name, r.cfg.Description, r.cfg.Public, r.cfg.MembersOnly = title, description, public, membersOnly
	r.save(ctx)
	return nil
}

// DestroyRoom destroys a room as its owner would (XEP-0045 §10.9): the
// occupants are told, the stored room and its archive are deleted.
func (s *Service) DestroyRoom(ctx context.Context, local, reason string) error {
	r, err := s.lookup(local)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	d := xml.New(NSOwner, "destroy")
	if reason != "" {
		d.Append(xml.New("", "reason").AppendText(reason))
	}
	r.destroy(ctx, d)
	return nil
}
