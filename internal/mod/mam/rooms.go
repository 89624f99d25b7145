package mam

import (
	"context"
	"fmt"

	"parley/internal/mod/muc"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// rooms is the archive the module offers the host's chat-room service
// (muc.Archive): the service decides which rooms archive and who may read
// them, this side stores and answers queries.
type rooms struct{ m *Module }

var _ muc.Archive = rooms{}

// Namespace implements muc.Archive.
func (rooms) Namespace() string { return NS }

// Features implements muc.Archive: what an archiving room announces.
func (rooms) Features() []string { return []string{NS, NSExtended} }

// Store implements muc.Archive. The stored copy is the room's message
// without 'to'; the sender's real JID is kept beside it, for readers who
// may see it and for 'with' filters.
func (r rooms) Store(ctx context.Context, room jid.JID, msg *xml.Element, sender jid.JID) string {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	return r.m.append(sctx, room, sender, msg.WithAttr("to", ""))
}

// Query implements muc.Archive: the same queries as on an account, at the
// room's JID (§3.4.2). Results and the reply go straight to the
// requester's session when it is on this server, else through the router.
func (r rooms) Query(ctx context.Context, q muc.RoomQuery) {
	send := func(el *xml.Element) {
		if s := r.m.h.Router.Session(q.From); s != nil {
			s.Send(el)
			return
		}
		r.m.h.Router.Route(ctx, el)
	}
	typ := q.IQ.Attr("type")
	var reply *xml.Element
	switch {
	case typ == stanza.TypeGet && q.Payload.Local == "query":
		reply = stanza.IQResult(q.IQ, queryForm())
	case typ == stanza.TypeGet && q.Payload.Local == "metadata":
		reply = r.m.metadata(ctx, q.IQ, q.Room)
	case typ == stanza.TypeSet && q.Payload.Local == "query":
		rd := reader{owner: q.Room, requester: q.From, room: true, seesRealJIDs: q.SeesRealJIDs, occupantID: q.OccupantID, send: send}
		reply = r.m.query(ctx, rd, q.IQ, q.Payload)
	case q.Payload.Local == "prefs":
		reply = stanza.ErrorReply(q.IQ, stanza.FeatureNotImplemented, "a room's archiving is part of its configuration")
	default:
		reply = stanza.ErrorReply(q.IQ, stanza.BadRequest, "expected query or metadata")
	}
	send(reply)
}

// Lookup implements muc.Archive: the message as the room stored it (its
// occupant JID as 'from', no 'to') and the sender's real JID kept beside
// it. The writer is flushed first, so a message the room just sent is
// found.
func (r rooms) Lookup(ctx context.Context, room jid.JID, id string) (*xml.Element, jid.JID, error) {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := r.m.Flush(sctx); err != nil {
		return nil, jid.JID{}, err
	}
	page, err := r.m.h.Store.Archive().Query(sctx, room.String(), storage.ArchiveQuery{IDs: []string{id}, Limit: 1})
	if err != nil {
		return nil, jid.JID{}, err
	}
	if len(page.Messages) == 0 {
		return nil, jid.JID{}, storage.ErrNotFound
	}
	a := page.Messages[0]
	msg, err := xml.ParseElement(a.Stanza, r.m.parseLimits(), stanza.NSClient)
	if err != nil {
		return nil, jid.JID{}, fmt.Errorf("mam: archived stanza %s does not parse: %w", id, err)
	}
	var sender jid.JID
	if a.With != "" {
		real := a.With
		if a.WithResource != "" {
			real += "/" + a.WithResource
		}
		if sender, err = jid.Parse(real); err != nil {
			return nil, jid.JID{}, fmt.Errorf("mam: archived sender of %s: %w", id, err)
		}
	}
	return msg, sender, nil
}

// Replace implements muc.Archive: the tombstone takes the message's
// place, id and stamp (storage.Archive.Replace). The writer is flushed
// first: the message may still be queued.
func (r rooms) Replace(ctx context.Context, room jid.JID, id string, tombstone *xml.Element) error {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := r.m.Flush(sctx); err != nil {
		return err
	}
	return r.m.h.Store.Archive().Replace(sctx, room.String(), id, tombstone.WithAttr("to", "").Bytes())
}

// Forget implements muc.Archive.
func (r rooms) Forget(ctx context.Context, room jid.JID) {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	// Messages still queued for the room must not outlive it.
	err := r.m.Flush(sctx)
	if err == nil {
		err = r.m.h.Store.Archive().Delete(sctx, room.String())
	}
	if err != nil {
		r.m.h.Log.Warn("mam: deleting room archive", "room", room.String(), "err", err)
	}
}
