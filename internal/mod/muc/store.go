package muc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"parley/internal/xmpp/jid"
)

// Persistent rooms live in the generic key/value store: bucket
// "muc.rooms", owner the service domain, key the room's localpart, value a
// versioned JSON record. Temporary rooms are never stored; discussion
// history is kept in memory only.
const (
	bucketRooms  = "muc.rooms"
	storeVersion = 1
)

type storedRoom struct {
	Version      int                 `json:"v"`
	Config       roomConfig          `json:"config"`
	Affiliations map[string]affEntry `json:"affiliations"`
	Subject      string              `json:"subject,omitempty"`
	SubjectNick  string              `json:"subject_nick,omitempty"`
	// SubjectOID is the XEP-0421 occupant id of who set the subject
	// (absent in records written before ids, and for the room's own).
	SubjectOID string    `json:"subject_oid,omitempty"`
	Created    time.Time `json:"created"`
}

// save stores a persistent room; the caller holds r.mu. A failure is
// logged: the room keeps working and the next change tries again.
func (r *room) save(ctx context.Context) {
	if !r.cfg.Persistent || r.gone {
		return
	}
	b, err := json.Marshal(storedRoom{
		Version: storeVersion, Config: r.cfg, Affiliations: r.affs,
		Subject: r.subject, SubjectNick: r.subjNick, SubjectOID: r.subjOID, Created: r.created,
	})
	if err == nil {
		sctx, cancel := storeCtx(ctx)
		err = r.svc.h.Store.KV().Set(sctx, bucketRooms, r.svc.domain, r.local, b)
		cancel()
	}
	if err != nil {
		r.svc.log.Error("muc: storing room", "room", r.jid.String(), "err", err)
	}
	r.saveVCard(ctx)
}

// deleteStored forgets a room's stored record (destroyed, or no longer
// persistent).
func (s *Service) deleteStored(ctx context.Context, r *room) {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := s.h.Store.KV().Delete(sctx, bucketRooms, s.domain, r.local); err != nil {
		s.log.Error("muc: deleting room", "room", r.jid.String(), "err", err)
	}
	s.deleteVCard(ctx, r)
}

// load restores the persistent rooms at start. Records of a newer version
// or that do not decode are skipped with a log line rather than stopping
// the server.
func (s *Service) load(ctx context.Context) error {
	recs, err := s.h.Store.KV().List(ctx, bucketRooms, s.domain)
	if err != nil {
		return err
	}
	for local, b := range recs {
		var st storedRoom
		if err := json.Unmarshal(b, &st); err != nil || st.Version != storeVersion {
			s.log.Error("muc: skipping stored room", "room", local, "err", fmt.Sprint(err), "version", st.Version)
			continue
		}
		if _, err := jid.New(local, s.domain, ""); err != nil {
			s.log.Error("muc: skipping stored room with a bad name", "room", local)
			continue
		}
		if len(s.rooms) >= s.cfg.MaxRooms {
			s.log.Warn("muc: more stored rooms than max_rooms; the rest stay stored but unloaded")
			break
		}
		r := newRoom(s, local)
		r.cfg = st.Config
		r.cfg.Persistent = true
		if st.Affiliations != nil {
			r.affs = st.Affiliations
		}
		r.subject, r.subjNick, r.subjOID, r.created = st.Subject, st.SubjectNick, st.SubjectOID, st.Created
		s.rooms[local] = r
	}
	return nil
}
