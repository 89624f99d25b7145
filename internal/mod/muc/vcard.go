package muc

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Room vCards and avatars (XEP-0054 on a room's bare JID, XEP-0486 MUC
// Avatars): anybody who may see the room reads its vCard, owners (host
// admins count as owners) set it, and the SHA-1 of each PHOTO is
// advertised as muc#roominfo_avatarhash in the room's disco#info, so
// clients learn of the avatar before joining. A change is announced to
// occupants with status code 104, as a configuration change (XEP-0486
// §3.2). Persistent rooms keep the vCard in the key/value store (bucket
// muc.vcards, owner the service domain, key the room), apart from the
// room's record, so saving the room (subject, affiliations) does not
// rewrite an image each time; temporary rooms keep it in memory.
const (
	NSVCard      = "vcard-temp"
	bucketVCards = "muc.vcards"
)

// roomVCard is a room's vCard; the room's mutex guards it.
type roomVCard struct {
	el     *xml.Element
	hashes []string // SHA-1 (hex) of each PHOTO's image, in order
	stored bool     // in the store (the room is persistent)
}

// newRoomVCard parses what an owner set; nil for an empty vCard (which
// removes the avatar, XEP-0486 §3.2).
func newRoomVCard(el *xml.Element) *roomVCard {
	if len(el.Elements()) == 0 {
		return nil
	}
	return &roomVCard{el: el, hashes: photoHashes(el)}
}

// photoHashes returns the XEP-0153 hash of every PHOTO with inline data;
// XEP-0486 §5.1: several PHOTOs are the same image in several formats,
// and the hash field lists all of them.
func photoHashes(card *xml.Element) []string {
	var out []string
	for _, p := range card.Elements() {
		if p.Space != NSVCard || p.Local != "PHOTO" {
			continue
		}
		b64 := strings.Join(strings.Fields(p.ChildText(NSVCard, "BINVAL")), "")
		if b64 == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		sum := sha1.Sum(b)
		out = append(out, hex.EncodeToString(sum[:]))
	}
	return out
}

// avatarHashes are the room's avatar hashes for disco#info (none without
// an avatar: XEP-0486 §4 says not to include the field then).
func (r *room) avatarHashes() []string {
	if r.vcard == nil {
		return nil
	}
	return r.vcard.hashes
}

// vcardIQ answers a vcard-temp get or set addressed to the room. The
// caller has applied the rules of who may see the room at all.
func (r *room) vcardIQ(ctx context.Context, el, q *xml.Element, from jid.JID) *xml.Element {
	if q.Local != "vCard" {
		return stanza.ErrorReply(el, stanza.BadRequest, "expected <vCard xmlns='vcard-temp'/>")
	}
	if el.Attr("type") == stanza.TypeGet {
		if !r.cfg.Public && r.cfg.MembersOnly && affRank(r.affOf(from)) < affRank(AffMember) && r.byReal[from] == nil {
			// A hidden members-only room does not exist for
			// outsiders (as in disco#info).
			return stanza.ErrorReply(el, stanza.ItemNotFound, "")
		}
		if r.vcard == nil {
			// "Nothing set": clients need no error handling for it.
			return stanza.IQResult(el, xml.New(NSVCard, "vCard"))
		}
		return stanza.IQResult(el, r.vcard.el)
	}
	if r.affOf(from) != AffOwner {
		// XEP-0486 §3.2 and §7: only owners (and service admins).
		return stanza.ErrorReply(el, stanza.Forbidden, "only room owners may set the room's vCard")
	}
	if limit := r.svc.h.Config.Limits.MaxVCardBytes; len(q.Bytes()) > limit {
		return stanza.ErrorReply(el, stanza.NotAcceptable, "vCard exceeds "+strconv.Itoa(limit)+" bytes")
	}
	prev := r.avatarHashes()
	next := newRoomVCard(q)
	if next != nil && r.cfg.Persistent {
		sctx, cancel := storeCtx(ctx)
		err := r.svc.h.Store.KV().Set(sctx, bucketVCards, r.svc.domain, r.local, q.Bytes())
		cancel()
		if err != nil {
			r.svc.log.Error("muc: storing the room's vCard", "room", r.jid.String(), "err", err)
			return stanza.ErrorReply(el, stanza.InternalServerError, "")
		}
		next.stored = true
	} else if next == nil && r.vcard != nil && r.vcard.stored {
		r.svc.deleteVCard(ctx, r)
	}
	r.vcard = next
	if !equalStrings(prev, r.avatarHashes()) {
		// XEP-0486 §3.2: occupants learn of it as of a configuration
		// change, and look at disco#info again.
		r.statusMessage(ctx, 104)
	}
	return stanza.IQResult(el, nil)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// saveVCard stores the vCard of a room that became persistent after it
// was set; save calls it.
func (r *room) saveVCard(ctx context.Context) {
	if r.vcard == nil || r.vcard.stored {
		return
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := r.svc.h.Store.KV().Set(sctx, bucketVCards, r.svc.domain, r.local, r.vcard.el.Bytes()); err != nil {
		r.svc.log.Error("muc: storing the room's vCard", "room", r.jid.String(), "err", err)
		return
	}
	r.vcard.stored = true
}

// deleteVCard forgets a room's stored vCard (the room was destroyed or is
// no longer persistent; in the latter case it stays in memory).
func (s *Service) deleteVCard(ctx context.Context, r *room) {
	if r.vcard == nil || !r.vcard.stored {
		return
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := s.h.Store.KV().Delete(sctx, bucketVCards, s.domain, r.local); err != nil {
		s.log.Error("muc: deleting the room's vCard", "room", r.jid.String(), "err", err)
		return
	}
	r.vcard.stored = false
}

// loadVCards gives the persistent rooms loaded at start their vCards;
// vCards of rooms that are no longer loaded stay stored. A record that
// does not parse is skipped with a log line.
func (s *Service) loadVCards(ctx context.Context) error {
	recs, err := s.h.Store.KV().List(ctx, bucketVCards, s.domain)
	if err != nil {
		return err
	}
	l := s.h.Config.Limits
	limits := xml.Limits{MaxStanzaBytes: 2 * max(l.MaxVCardBytes, l.MaxStanzaBytes), MaxDepth: l.MaxDepth + 1, MaxAttrs: l.MaxAttrs}
	for local, b := range recs {
		s.mu.Lock()
		r := s.rooms[local]
		s.mu.Unlock()
		if r == nil {
			continue
		}
		el, err := xml.ParseElement(b, limits, stanza.NSClient)
		if err != nil {
			s.log.Error("muc: skipping a stored room vCard", "room", local, "err", err)
			continue
		}
		r.mu.Lock()
		if r.vcard = newRoomVCard(el); r.vcard != nil {
			r.vcard.stored = true
		}
		r.mu.Unlock()
	}
	return nil
}
