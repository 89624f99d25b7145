package last

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// record is what is kept per account: when its last session ended and the
// <status/> of the last unavailable presence it broadcast.
type record struct {
	Unix   int64  `json:"t"`
	Status string `json:"status,omitempty"`
}

// statusKey is the session value holding the status of the session's last
// broadcast unavailable presence. It moves with a session resumed on
// another node (module.MovingKey).
type statusKey struct{}

var _ module.MovingKey = statusKey{}

func (statusKey) MovingName() string  { return "last.status" }
func (statusKey) Encode(v any) string { s, _ := v.(string); return s }
func (statusKey) Decode(s string) any { return s }

// uptime answers a query to the domain with the seconds since the server
// started (XEP-0012 §5); no character data, as §5 says.
func (l *Last) uptime(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
	return stanza.IQResult(ev.Stanza, query(time.Since(l.h.Started), ""))
}

// account answers a query to an account's bare JID (§3). Only the account
// itself and entities allowed to see its presence may ask; everybody else
// gets forbidden, which §3 mandates. An account with a connected or
// available resource is active now: seconds='0' and no text, which §3
// makes a MUST for "at least one connected or available resource" (so a
// session that has sent no presence counts, and an account asking about
// itself always has one: the asking session). An account that never
// logged out since records began has no answer: item-not-found (the XEP
// names no condition for this; it is the truthful one and does not reveal
// more than forbidden would to authorized requesters).
func (l *Last) account(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
	owner := ev.To.Bare()
	ok, err := l.h.MaySeePresence(ev.Ctx, owner, ev.From)
	if err != nil {
		l.h.Log.Warn("last: roster lookup", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	if !ok {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "")
	}
	if len(l.h.Router.Sessions(owner)) > 0 {
		return stanza.IQResult(ev.Stanza, query(0, ""))
	}
	b, err := l.h.Store.KV().Get(ev.Ctx, kvBucket, owner.String(), kvKey)
	var rec record
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	case err != nil:
		l.h.Log.Warn("last: read", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	return stanza.IQResult(ev.Stanza, query(time.Since(time.Unix(rec.Unix, 0)), rec.Status))
}

// guardFull answers a last-activity request to a full JID of the host
// from anyone not allowed to see the account's presence with forbidden,
// from the server, and does not deliver it (§4: the server "MUST NOT
// deliver the IQ-get to an available resource but instead MUST return a
// <forbidden/> error"). It does so whether or not that resource is
// connected: an answer that differed would tell the requester what §8
// forbids it to learn, the user's network availability. A full JID of an
// account that does not exist gets service-unavailable, as its bare JID
// does (RFC 6121 §8.5.1). Everything else (authorised requesters, other
// payloads, results and errors) goes on to the core, which delivers it.
func (l *Last) guardFull(ev *module.StanzaEvent) bool {
	if ev.Stanza.Attr("type") != stanza.TypeGet {
		return false
	}
	if q := ev.Stanza.FirstElement(); q == nil || q.Space != NS || q.Local != "query" {
		return false
	}
	owner := ev.To.Bare()
	ok, err := l.h.MaySeePresence(ev.Ctx, owner, ev.From)
	if err != nil {
		l.h.Log.Warn("last: roster lookup", "owner", owner.String(), "err", err)
		ev.Reply(stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, ""))
		return true
	}
	if ok {
		return false
	}
	cond := stanza.Forbidden
	if exists, err := l.h.AccountExists(ev.Ctx, owner.Local()); err == nil && !exists && len(l.h.Router.Sessions(owner)) == 0 {
		cond = stanza.ServiceUnavailable
	}
	ev.Reply(stanza.ErrorReply(ev.Stanza, cond, ""))
	return true
}

// onOutPresence remembers the status of a broadcast unavailable presence
// (no 'to': directed presence says nothing about the account) and forgets
// it when the session becomes available again, so that the status recorded
// at logout is the one the user left with.
func (l *Last) onOutPresence(ev *module.StanzaEvent) bool {
	if ev.Origin == nil || !ev.To.IsZero() {
		return false
	}
	switch ev.Stanza.Attr("type") {
	case "unavailable":
		ev.Origin.SetValue(statusKey{}, ev.Stanza.ChildText("", "status"))
	case "":
		ev.Origin.SetValue(statusKey{}, "")
	}
	return false
}

// onUnbound records the logout when the account's last session ended. The
// router unbinds a session before firing "unbound", so an empty session
// list means this was the last one. Nothing is recorded for an account that
// was just deleted (its sessions end after the deletion), so a removed
// account leaves no data behind.
func (l *Last) onUnbound(ev *module.SessionEvent) bool {
	if ev.Moved {
		return false // not a logout: it goes on on another node
	}
	bare := ev.Session.JID().Bare()
	if len(l.h.Router.Sessions(bare)) > 0 {
		return false
	}
	if ok, err := l.h.AccountExists(ev.Ctx, bare.Local()); err == nil && !ok {
		return false
	}
	status, _ := ev.Session.Value(statusKey{}).(string)
	b, _ := json.Marshal(record{Unix: time.Now().Unix(), Status: status})
	if err := l.h.Store.KV().Set(context.WithoutCancel(ev.Ctx), kvBucket, bare.String(), kvKey, b); err != nil {
		l.h.Log.Warn("last: record logout", "owner", bare.String(), "err", err)
	}
	return false
}

// query builds <query xmlns='jabber:iq:last' seconds='N'>text</query>.
func query(d time.Duration, text string) *xml.Element {
	secs := max(int64(d/time.Second), 0)
	return xml.New(NS, "query").SetAttr("seconds", strconv.FormatInt(secs, 10)).AppendText(text)
}
