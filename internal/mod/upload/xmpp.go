package upload

import (
	"context"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"parley/internal/access"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Deliver implements module.Component: the XMPP side of the service.
func (m *Module) Deliver(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if reply := m.handle(ctx, el, from, to); reply != nil {
		m.h.Router.Route(ctx, reply)
	}
}

func (m *Module) handle(ctx context.Context, el *xml.Element, from, to jid.JID) *xml.Element {
	q, reply := module.ServiceRequest(el, to)
	if q == nil {
		return reply
	}
	typ := el.Attr("type")
	switch {
	case typ == stanza.TypeGet && q.Space == nsInfo && q.Local == "query":
		if q.Attr("node") != "" {
			return stanza.ErrorReply(el, stanza.ItemNotFound, "")
		}
		return stanza.IQResult(el, m.info())
	case typ == stanza.TypeGet && q.Space == nsItems && q.Local == "query":
		return stanza.IQResult(el, xml.New(nsItems, "query"))
	case typ == stanza.TypeGet && q.Space == NS && q.Local == "request":
		return m.requestSlot(ctx, el, q, from)
	}
	return stanza.ErrorReply(el, stanza.ServiceUnavailable, "")
}

// info is the disco#info answer: identity store/file, the feature, and the
// max-file-size form (XEP-0363 §3, in the XEP-0128 way), which saves clients
// a slot request for a file that is too large.
func (m *Module) info() *xml.Element {
	field := func(v, val string) *xml.Element {
		f := xml.New(nsData, "field").SetAttr("var", v)
		if v == "FORM_TYPE" {
			f.SetAttr("type", "hidden")
		}
		return f.Append(xml.New(nsData, "value").AppendText(val))
	}
	return xml.New(nsInfo, "query").
		Append(xml.New(nsInfo, "identity").SetAttr("category", "store").SetAttr("type", "file").SetAttr("name", m.cfg.Name)).
		Append(xml.New(nsInfo, "feature").SetAttr("var", nsInfo)).
		Append(xml.New(nsInfo, "feature").SetAttr("var", NS)).
		Append(xml.New(nsData, "x").SetAttr("type", "result").
			Append(field("FORM_TYPE", NS)).
			Append(field("max-file-size", strconv.FormatInt(m.cfg.MaxFileSize, 10))))
}

// requestSlot answers <request filename size content-type/> (XEP-0363 §4)
// with a <slot/>, or with the errors of §5.
func (m *Module) requestSlot(ctx context.Context, el, req *xml.Element, from jid.JID) *xml.Element {
	if from.Local() == "" || from.Domain() != m.h.Domain {
		return stanza.ErrorReply(el, stanza.NotAllowed, "only accounts of "+m.h.Domain+" may upload here")
	}
	if err := m.h.CheckAccess(ctx, access.Upload, from); err != nil {
		return stanza.ErrorReplyFor(el, access.ErrorFor(err))
	}
	name, ok := cleanFilename(req.Attr("filename"))
	if !ok {
		return stanza.ErrorReply(el, stanza.BadRequest, "filename: a file name of at most 255 bytes is required")
	}
	size, err := strconv.ParseInt(req.Attr("size"), 10, 64)
	if err != nil || size < 0 {
		return stanza.ErrorReply(el, stanza.BadRequest, "size: a number of bytes is required")
	}
	if size > m.cfg.MaxFileSize {
		return errorWith(el, stanza.NotAcceptable,
			fmt.Sprintf("File too large. The maximum file size is %d bytes", m.cfg.MaxFileSize),
			xml.New(NS, "file-too-large").Append(
				xml.New(NS, "max-file-size").AppendText(strconv.FormatInt(m.cfg.MaxFileSize, 10))))
	}
	ctype, ok := cleanContentType(req.Attr("content-type"))
	if !ok {
		return stanza.ErrorReply(el, stanza.BadRequest, "content-type: not a media type")
	}
	owner := from.Bare().String()
	now := m.now()
	if rf := m.idx.check(owner, size, now); rf != nil {
		return quotaError(el, rf)
	}
	s := slot{ID: newID(), Filename: name, Size: size, Type: ctype, Owner: owner,
		Expires: expiresAt(now, m.cfg.SlotTimeout.Duration)}
	u := m.http.BaseURL(m.h.Domain) + m.prefix + s.ID + "/" + url.PathEscape(name)
	m.h.Log.Debug("upload: slot", "owner", owner, "id", s.ID, "size", size, "type", ctype)
	return stanza.IQResult(el, xml.New(NS, "slot").
		Append(xml.New(NS, "put").SetAttr("url", u).
			Append(xml.New(NS, "header").SetAttr("name", "Authorization").AppendText("Bearer "+sign(m.key, m.cfg.Domain, s)))).
		Append(xml.New(NS, "get").SetAttr("url", u)))
}

// quotaError is XEP-0363 §5's temporary error: resource-constraint (type
// wait) with a <retry stamp/> when it is known when space comes back.
func quotaError(el *xml.Element, rf *refusal) *xml.Element {
	var retry *xml.Element
	if !rf.retry.IsZero() {
		retry = xml.New(NS, "retry").SetAttr("stamp", rf.retry.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return errorWith(el, stanza.ResourceConstraint, rf.text, retry)
}

// errorWith is stanza.ErrorReply with an application-specific condition
// (RFC 6120 §8.3.4), which XEP-0363 uses for <file-too-large/> and <retry/>.
func errorWith(el *xml.Element, c stanza.Condition, text string, app *xml.Element) *xml.Element {
	return stanza.ErrorReplyFor(el, &stanza.Error{Condition: c, Text: text, App: app})
}

// cleanFilename returns the name a file is stored and served under: the
// last path element of what the client sent (some send a path), without
// control characters or bidirectional overrides (which can disguise an
// extension: "photo\u202egnp.exe"), at most 255 bytes of UTF-8, and never
// "." or "..". The name only ever appears in URLs and headers; no file
// path is made from it.
func cleanFilename(s string) (string, bool) {
	if !utf8.ValidString(s) {
		return "", false
	}
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return "", false
	}
	return s, true
}

// cleanContentType returns the canonical form of a media type (lower-case
// type, parameters in order), application/octet-stream when none was given
// (XEP-0363 §6 lets the service assume it), or false for anything that
// does not parse.
func cleanContentType(s string) (string, bool) {
	if strings.TrimSpace(s) == "" {
		return "application/octet-stream", true
	}
	if len(s) > 255 {
		return "", false
	}
	mt, params, err := mime.ParseMediaType(s)
	if err != nil || strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/") {
		return "", false
	}
	out := mime.FormatMediaType(mt, params)
	return out, out != ""
}
