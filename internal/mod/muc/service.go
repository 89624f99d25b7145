package muc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Service is the MUC service of one host: the rooms under its domain.
type Service struct {
	h      *module.Host
	cfg    config.MUC
	domain string
	jid    jid.JID
	log    *slog.Logger

	mu    sync.Mutex
	rooms map[string]*room // by room localpart
	// created counts the live rooms each user created (bare JID), so one
	// user cannot take every slot of max_rooms (max_rooms_per_user).
	created map[string]int
	// dirRooms maps the rooms defined in the directory to their entries'
	// DNs (directory.go), for writing owners' changes back.
	dirRooms map[string]string

	// archive keeps room archives (XEP-0313) and recorder the host's
	// compliance log, when the host has them; set before the service is
	// routed and not changed afterwards.
	archive  Archive
	recorder Recorder

	// oidKey is the key of XEP-0421 occupant ids (occupantid.go), read
	// before the service is routed and not changed afterwards.
	oidKey []byte
	// stopping is set when the server begins to shut down (closing):
	// joins are refused with service-unavailable from then on.
	stopping atomic.Bool
}

func newService(h *module.Host, cfg config.MUC) *Service {
	j, _ := jid.New("", cfg.Domain, "")
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	return &Service{h: h, cfg: cfg, domain: j.Domain(), jid: j, log: log.With("muc", cfg.Domain),
		rooms: make(map[string]*room), created: make(map[string]int)}
}

// closing sends each occupant of each room its own unavailable presence
// with status 332 (ServerClosing) and forgets the occupants; from then on
// joins are refused (stopping), so nobody believes itself in a room again
// before the server is gone.
func (s *Service) closing(ctx context.Context) {
	s.stopping.Store(true)
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		for _, o := range r.sortedOccupants() {
			s.route(ctx, r.presenceFor(o, o, presOpts{unavailable: true, role: RoleNone, selfCodes: []int{332}}))
			r.removeOccupant(o)
		}
		r.mu.Unlock()
	}
}

// Domain returns the service's domain.
func (s *Service) Domain() string { return s.domain }

// RoomCount returns the number of rooms (tests and metrics).
func (s *Service) RoomCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// HasRoom reports whether a room with that localpart exists.
func (s *Service) HasRoom(local string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[local] != nil
}

// Deliver implements router.Component: it receives every stanza addressed
// to the service domain or to a room or occupant under it.
func (s *Service) Deliver(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if el.Attr("from") == "" {
		el = el.WithAttr("from", from.String())
	}
	if el.Attr("to") == "" {
		el = el.WithAttr("to", to.String())
	}
	if to.Local() == "" {
		s.serviceStanza(ctx, el, from, to)
		return
	}
	switch el.Local {
	case stanza.KindPresence:
		s.presence(ctx, el, from, to)
	case stanza.KindMessage:
		s.message(ctx, el, from, to)
	case stanza.KindIQ:
		s.iq(ctx, el, from, to)
	}
}

// route sends a stanza the service originates. Nothing is ever addressed
// to the service's own domain: that would re-enter Deliver while a room
// lock is held.
func (s *Service) route(ctx context.Context, el *xml.Element) {
	if el == nil {
		return
	}
	to, err := jid.Parse(el.Attr("to"))
	if err != nil || to.Domain() == s.domain {
		s.log.Debug("muc: not routing to own domain", "to", el.Attr("to"))
		return
	}
	s.h.Router.Route(ctx, el)
}

// errorReply answers el with a stanza error (never an error to an error).
func (s *Service) errorReply(ctx context.Context, el *xml.Element, c stanza.Condition, text string) {
	s.route(ctx, stanza.ErrorReply(el, c, text))
}

// errorReplyTyped answers el with a stanza error of an explicit type.
func (s *Service) errorReplyTyped(ctx context.Context, el *xml.Element, c stanza.Condition, typ, text string) {
	s.route(ctx, stanza.ErrorReplyFor(el, &stanza.Error{Condition: c, Type: typ, Text: text}))
}

// serviceStanza handles stanzas to the service domain itself.
func (s *Service) serviceStanza(ctx context.Context, el *xml.Element, from, to jid.JID) {
	switch el.Local {
	case stanza.KindIQ:
		typ := el.Attr("type")
		if typ != stanza.TypeGet && typ != stanza.TypeSet {
			return
		}
		q := el.FirstElement()
		if q == nil {
			s.errorReply(ctx, el, stanza.BadRequest, "")
			return
		}
		switch {
		case typ == stanza.TypeGet && q.Space == NSDiscoInfo && q.Local == "query":
			if q.Attr("node") != "" {
				s.errorReply(ctx, el, stanza.ItemNotFound, "")
				return
			}
			s.route(ctx, stanza.IQResult(el, s.serviceInfo()))
		case typ == stanza.TypeGet && q.Space == NSDiscoItems && q.Local == "query":
			if q.Attr("node") != "" {
				s.errorReply(ctx, el, stanza.ItemNotFound, "")
				return
			}
			s.route(ctx, stanza.IQResult(el, s.serviceItems(from)))
		case typ == stanza.TypeGet && q.Space == NSPing && q.Local == "ping":
			s.route(ctx, stanza.IQResult(el, nil))
		case typ == stanza.TypeGet && q.Space == NSUnique && q.Local == "unique":
			if !s.mayCreate(from) {
				s.errorReply(ctx, el, stanza.NotAllowed, "")
				return
			}
			s.route(ctx, stanza.IQResult(el, xml.New(NSUnique, "unique").AppendText(uniqueName())))
		default:
			s.errorReply(ctx, el, stanza.ServiceUnavailable, "")
		}
	case stanza.KindMessage:
		if t := stanza.Type(el); t != stanza.TypeError && t != "headline" {
			s.errorReply(ctx, el, stanza.ServiceUnavailable, "")
		}
	}
	// Presence to the service itself means nothing and is ignored.
}

func uniqueName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Service) serviceInfo() *xml.Element {
	q := xml.New(NSDiscoInfo, "query")
	q.Append(xml.New(NSDiscoInfo, "identity").SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", s.cfg.Name))
	for _, f := range []string{NSDiscoInfo, NSDiscoItems, NS, NSUnique, NSPing, NSVCard, NSStableID, NSOccupantID} {
		q.Append(xml.New(NSDiscoInfo, "feature").SetAttr("var", f))
	}
	return q
}

// serviceItems lists the public, configured rooms (XEP-0045 §6.3). Hidden
// and locked rooms are never listed.
func (s *Service) serviceItems(from jid.JID) *xml.Element {
	q := xml.New(NSDiscoItems, "query")
	for _, r := range s.roomList() {
		r.mu.Lock()
		if !r.gone && !r.locked && r.cfg.Public {
			it := xml.New(NSDiscoItems, "item").SetAttr("jid", r.jid.String())
			if n := r.cfg.Name; n != "" {
				it.SetAttr("name", n)
			}
			q.Append(it)
		}
		r.mu.Unlock()
	}
	return q
}

// roomList returns the rooms sorted by address, copied out of the map so
// that no room lock is taken under Service.mu.
func (s *Service) roomList() []*room {
	s.mu.Lock()
	out := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		out = append(out, r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].local < out[j].local })
	return out
}

// getRoom returns the room with that localpart, locked, or nil. A room that
// was destroyed while the caller waited for its lock counts as absent.
func (s *Service) getRoom(local string) *room {
	s.mu.Lock()
	r := s.rooms[local]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if r.gone {
		r.mu.Unlock()
		return nil
	}
	return r
}

// mayCreate applies room_creation ([host.muc], or the directory's
// override) to a would-be room creator; the access rule muc_create is
// checked after it (createAccess).
func (s *Service) mayCreate(from jid.JID) bool {
	creation := s.cfg.RoomCreation
	if s.h.Access != nil {
		creation = s.h.Access.Effective().RoomCreation
	}
	switch creation {
	case "anyone":
		return true
	case "admins":
		return s.isHostAdmin(from)
	default:
		return from.Local() != "" && from.Domain() == s.h.Domain
	}
}

// isHostAdmin reports whether from is an administrator of the parent host;
// host admins count as owners of every room (XEP-0045 §5.2 leaves
// service-level administration to the implementation).
func (s *Service) isHostAdmin(from jid.JID) bool {
	return s.h.IsAdmin(context.Background(), from)
}

// createRoom adds a new room and returns it locked, or nil with the
// condition to refuse with.
func (s *Service) createRoom(local string, creator jid.JID) (*room, stanza.Condition) {
	s.mu.Lock()
	if s.rooms[local] != nil {
		s.mu.Unlock()
		return nil, ""
	}
	if len(s.rooms) >= s.cfg.MaxRooms {
		s.mu.Unlock()
		return nil, stanza.ResourceConstraint
	}
	owner := creator.Bare().String()
	if s.created[owner] >= s.cfg.MaxRoomsPerUser && !s.isHostAdmin(creator) {
		s.mu.Unlock()
		return nil, stanza.ResourceConstraint
	}
	s.created[owner]++
	r := newRoom(s, local)
	r.creator = owner
	r.created = time.Now()
	r.mu.Lock()
	s.rooms[local] = r
	s.mu.Unlock()
	return r, ""
}

// dropRoom removes r from the service. The caller holds r.mu.
func (s *Service) dropRoom(r *room) {
	r.gone = true
	s.mu.Lock()
	if s.rooms[r.local] == r {
		delete(s.rooms, r.local)
		if r.creator != "" {
			if s.created[r.creator]--; s.created[r.creator] <= 0 {
				delete(s.created, r.creator)
			}
		}
	}
	s.mu.Unlock()
}

// storeCtx gives storage writes their own deadline: the sender's
// connection may be closing while its departure is processed.
func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
