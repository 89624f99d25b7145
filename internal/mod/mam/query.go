package mam

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"parley/internal/mod/muc"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NSValidate is XEP-0122 data form validation, used to mark the 'ids'
// field as open (XEP-0313 §4.1.5).
const NSValidate = "http://jabber.org/protocol/xdata-validate"

// stampLayout is how stamps are shown (XEP-0082 DateTime, UTC, the
// milliseconds storage keeps).
const stampLayout = "2006-01-02T15:04:05.000Z"

// reader is one archive as a query sees it.
type reader struct {
	owner     jid.JID // the archive: an account's or a room's bare JID
	requester jid.JID // full JID the results go to
	room      bool
	// seesRealJIDs: in a room archive, the requester may learn senders'
	// real JIDs (and so filter by them).
	seesRealJIDs bool
	// occupantID gives a room's XEP-0421 id of a sender (muc.RoomQuery).
	occupantID func(sender jid.JID) string
	// send delivers a result message, in order with the final reply.
	send func(*xml.Element)
}

// iqGet answers the account's get requests: the query form (§4.1.5),
// preferences (XEP-0441) and archive metadata (§5).
func (m *Module) iqGet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if ev.From.Bare() != ev.To.Bare() {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "an archive is read by its owner only")
	}
	switch q.Local {
	case "query":
		return stanza.IQResult(ev.Stanza, queryForm())
	case "prefs":
		return m.getPrefs(ev)
	case "metadata":
		return m.metadata(ev.Ctx, ev.Stanza, ev.To.Bare())
	}
	return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected query, prefs or metadata")
}

// iqSet answers the account's queries and preference changes.
func (m *Module) iqSet(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if ev.From.Bare() != ev.To.Bare() {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "an archive is read by its owner only")
	}
	switch q.Local {
	case "query":
		r := reader{owner: ev.To.Bare(), requester: ev.From, send: func(el *xml.Element) { ev.Reply(el) }}
		return m.query(ev.Ctx, r, ev.Stanza, q)
	case "prefs":
		return m.setPrefs(ev, q)
	}
	return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected query or prefs")
}

// queryForm is the answer to a form request: the fields a query may use,
// none marked required (§4.1.5).
func queryForm() *xml.Element {
	x := xml.New(NSData, "x").SetAttr("type", "form")
	x.Append(xml.New(NSData, "field").SetAttr("type", "hidden").SetAttr("var", "FORM_TYPE").
		Append(xml.New(NSData, "value").AppendText(NS)))
	for _, f := range [][2]string{{"with", "jid-single"}, {"start", "text-single"}, {"end", "text-single"},
		{"before-id", "text-single"}, {"after-id", "text-single"}} {
		x.Append(xml.New(NSData, "field").SetAttr("type", f[1]).SetAttr("var", f[0]))
	}
	x.Append(xml.New(NSData, "field").SetAttr("type", "list-multi").SetAttr("var", "ids").
		Append(xml.New(NSValidate, "validate").SetAttr("datatype", "xs:string").Append(xml.New(NSValidate, "open"))))
	return xml.New(NS, "query").Append(x)
}

// metadata answers §5: the first and last message of the archive, or an
// empty element for an empty archive.
func (m *Module) metadata(ctx context.Context, iq *xml.Element, owner jid.JID) *xml.Element {
	md := xml.New(NS, "metadata")
	if err := m.Flush(ctx); err != nil {
		return stanza.ErrorReply(iq, stanza.InternalServerError, "")
	}
	first, last, err := m.h.Store.Archive().Ends(ctx, owner.String())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return stanza.IQResult(iq, md)
	case err != nil:
		m.h.Log.Warn("mam: metadata", "owner", owner.String(), "err", err)
		return stanza.ErrorReply(iq, stanza.InternalServerError, "")
	}
	md.Append(xml.New(NS, "start").SetAttr("id", first.ID).SetAttr("timestamp", first.Stamp.UTC().Format(stampLayout)))
	md.Append(xml.New(NS, "end").SetAttr("id", last.ID).SetAttr("timestamp", last.Stamp.UTC().Format(stampLayout)))
	return stanza.IQResult(iq, md)
}

// request is a parsed query.
type request struct {
	queryID string
	q       storage.ArchiveQuery
	flip    bool
}

// queryError is why a query cannot run.
type queryError struct {
	cond stanza.Condition
	text string
}

func badRequest(text string) *queryError { return &queryError{stanza.BadRequest, text} }

// parse reads the query's data form (§4.1), its XEP-0059 set and
// <flip-page/>. Malformed input is bad-request, a field this server does
// not know feature-not-implemented (§4.1.5), <index/> paging too (XEP-0059
// §2.6: out-of-order pages are optional).
func (m *Module) parse(q *xml.Element, r reader) (request, *queryError) {
	req := request{queryID: q.Attr("queryid")}
	if q.Attr("node") != "" {
		// Reserved for pubsub archives (XEP-0442): no such node here.
		return req, &queryError{stanza.ItemNotFound, "this archive has no nodes"}
	}
	if x := q.Child(NSData, "x"); x != nil {
		if e := m.parseForm(x, r, &req.q); e != nil {
			return req, e
		}
	}
	req.q.Limit = m.cfg.MaxPageSize
	if set := q.Child(NSRSM, "set"); set != nil {
		after, before := false, false
		for _, c := range set.Elements() {
			if c.Space != NSRSM {
				continue
			}
			switch c.Local {
			case "max":
				n, err := strconv.Atoi(strings.TrimSpace(c.Text()))
				if err != nil || n < 0 {
					return req, badRequest("<max/> must be a number")
				}
				// More than the server sends at once is capped: the client
				// pages on, as XEP-0313 §4.3.1 allows.
				req.q.Limit = min(n, m.cfg.MaxPageSize)
			case "after":
				if c.Text() == "" {
					return req, badRequest("<after/> needs an id")
				}
				after, req.q.PageAfter = true, c.Text()
			case "before":
				before, req.q.PageBefore, req.q.Last = true, c.Text(), true
			case "index":
				return req, &queryError{stanza.FeatureNotImplemented, "paging by index is not supported; use <after/> or <before/>"}
			}
		}
		if after && before {
			// Undefined in XEP-0059; XEP-0313 §4.3.2 points to the form.
			return req, badRequest("use the before-id and after-id fields for a range, not both <after/> and <before/>")
		}
	}
	req.flip = q.Child(NS, "flip-page") != nil
	return req, nil
}

// parseForm reads a submitted query form into q.
func (m *Module) parseForm(x *xml.Element, r reader, q *storage.ArchiveQuery) *queryError {
	if t := x.Attr("type"); t != "submit" && t != "" {
		return badRequest("the query form must be of type submit")
	}
	seen := map[string]bool{}
	for _, f := range x.Elements() {
		if f.Space != NSData || f.Local != "field" {
			continue
		}
		name := f.Attr("var")
		if name == "" || seen[name] {
			return badRequest("every field needs a var, once")
		}
		seen[name] = true
		var vals []string
		for _, v := range f.Elements() {
			if v.Space == NSData && v.Local == "value" && v.Text() != "" {
				vals = append(vals, v.Text())
			}
		}
		if name != "ids" && len(vals) > 1 {
			return badRequest("field " + name + " takes one value")
		}
		val := ""
		if len(vals) == 1 {
			val = vals[0]
		}
		switch name {
		case "FORM_TYPE":
			if val != NS {
				return badRequest("FORM_TYPE must be " + NS)
			}
		case "with":
			if val == "" {
				continue
			}
			j, err := jid.Parse(val)
			if err != nil {
				return badRequest("with: not a JID")
			}
			if r.room && !r.seesRealJIDs {
				// §4.1.1: only who may know the senders may filter by them.
				return &queryError{stanza.Forbidden, "this room does not show you its occupants' real JIDs"}
			}
			q.With, q.WithResource = j.Bare().String(), j.Resource()
		case "start", "end":
			if val == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return badRequest(name + ": not a XEP-0082 DateTime")
			}
			if name == "start" {
				q.Start = t
			} else {
				q.End = t
			}
		case "after-id":
			q.AfterID = val
		case "before-id":
			q.BeforeID = val
		case "ids":
			if len(vals) > m.cfg.MaxPageSize {
				return &queryError{stanza.PolicyViolation, "at most " + strconv.Itoa(m.cfg.MaxPageSize) + " ids per query"}
			}
			if len(vals) > 0 {
				q.IDs = vals
			}
		default:
			return &queryError{stanza.FeatureNotImplemented, "unknown field " + name}
		}
	}
	return nil
}

// query runs a query on r's archive: the matching messages go to the
// requester one by one through r.send (§4.2), and the returned IQ result
// carries <fin/> with the XEP-0059 set (§4.3).
func (m *Module) query(ctx context.Context, r reader, iq, q *xml.Element) *xml.Element {
	req, qerr := m.parse(q, r)
	if qerr != nil {
		return stanza.ErrorReply(iq, qerr.cond, qerr.text)
	}
	// Everything archived before the query, the message whose id the
	// client just saw included, is in the answer.
	if err := m.Flush(ctx); err != nil {
		return stanza.ErrorReply(iq, stanza.InternalServerError, "")
	}
	page, err := m.h.Store.Archive().Query(ctx, r.owner.String(), req.q)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// §4.1.3 and §4.3.2: an id that is not in the archive.
		return stanza.ErrorReply(iq, stanza.ItemNotFound, "no such message in the archive")
	case err != nil:
		m.h.Log.Warn("mam: query", "owner", r.owner.String(), "err", err)
		return stanza.ErrorReply(iq, stanza.InternalServerError, "")
	}
	msgs := page.Messages
	for i := range msgs {
		j := i
		if req.flip {
			// §4.3.4: the same page, newest first.
			j = len(msgs) - 1 - i
		}
		r.send(m.result(r, req.queryID, msgs[j]))
	}
	fin := xml.New(NS, "fin")
	if page.Complete {
		fin.SetAttr("complete", "true")
	}
	set := xml.New(NSRSM, "set")
	if len(msgs) > 0 {
		set.Append(xml.New(NSRSM, "first").SetAttr("index", strconv.Itoa(page.Index)).AppendText(msgs[0].ID))
		set.Append(xml.New(NSRSM, "last").AppendText(msgs[len(msgs)-1].ID))
	}
	set.Append(xml.New(NSRSM, "count").AppendText(strconv.Itoa(page.Count)))
	return stanza.IQResult(iq, fin.Append(set))
}

// result wraps one archived message for the requester (§4.2): a message
// from the archive's JID with <result/>, the XEP-0297 <forwarded/> message
// and a XEP-0203 delay with the archive stamp.
func (m *Module) result(r reader, queryID string, a storage.ArchivedMessage) *xml.Element {
	fwd := xml.New(NSForward, "forwarded").Append(stanza.Delay("", a.Stamp, ""))
	orig, err := xml.ParseElement(a.Stanza, m.parseLimits(), stanza.NSClient)
	if err != nil {
		// The id, stamp and place stay, so paging stays consistent;
		// only the message is missing (§3.2 allows leaving it out).
		m.h.Log.Error("mam: archived stanza does not parse; sent without it", "owner", r.owner.String(), "id", a.ID, "err", err)
	} else {
		if r.room {
			orig = roomView(orig, a, r.seesRealJIDs, r.occupantID)
		}
		fwd.Append(orig)
	}
	res := xml.New(NS, "result").SetAttr("id", a.ID)
	if queryID != "" {
		res.SetAttr("queryid", queryID)
	}
	return xml.New("", "message").SetAttr("from", r.owner.String()).SetAttr("to", r.requester.String()).
		SetAttr("id", newID()).Append(res.Append(fwd))
}

// roomView is a room message as a reader sees it (§6.1.2): no 'to', the
// sender's occupant JID as 'from', no muc#user element but the room's own,
// naming the real JID to those who may see it. The room archived it with
// the sender's XEP-0421 occupant-id; one archived before rooms attached
// ids gets it now from the sender's real JID kept beside it (occupantID),
// since XEP-0421 §4 wants it on messages read from the archive too. A
// message from the room itself (a XEP-0425 moderation) speaks for no
// occupant and gets none.
func roomView(msg *xml.Element, a storage.ArchivedMessage, seesRealJIDs bool, occupantID func(jid.JID) string) *xml.Element {
	out := msg.WithoutChildren(func(c *xml.Element) bool { return c.Space == NSMUCUser }).WithAttr("to", "")
	fromRoom := false
	if f, err := jid.Parse(out.Attr("from")); err == nil && f.Resource() == "" {
		fromRoom = true
	}
	if occupantID != nil && !fromRoom && out.Child(muc.NSOccupantID, "occupant-id") == nil {
		if sender, err := jid.Parse(a.With); a.With != "" && err == nil {
			out = out.WithChildren(xml.New(muc.NSOccupantID, "occupant-id").SetAttr("id", occupantID(sender)))
		}
	}
	if seesRealJIDs {
		real := a.With
		if a.WithResource != "" {
			real += "/" + a.WithResource
		}
		out = out.WithChildren(xml.New(NSMUCUser, "x").Append(xml.New(NSMUCUser, "item").SetAttr("jid", real)))
	}
	return out
}

// parseLimits are the limits archived stanzas are read back with: they
// passed the stream limits when they arrived, and the limits may have been
// lowered since. The data is the server's own; the limits only guard
// against a corrupted store.
func (m *Module) parseLimits() xml.Limits {
	l := m.h.Config.Limits
	return xml.Limits{MaxStanzaBytes: 2 * l.MaxStanzaBytes, MaxDepth: l.MaxDepth + 1, MaxAttrs: l.MaxAttrs}
}
