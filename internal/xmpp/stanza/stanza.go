// Package stanza gives names and small helpers to the three XMPP stanzas
// (RFC 6120 §8) as they travel through Parley: *xml.Element values in the
// stream content namespace (Space ""), with Local "message", "presence" or
// "iq".
//
// It deliberately has no stanza struct types: routing code looks at a few
// attributes of a stanza and passes the tree on unchanged, so the helpers
// here are read-only views over the element (allocation-free) and builders
// for the few stanzas the server originates itself: IQ results, error
// replies (RFC 6120 §8.3), stream errors (§4.9) and XEP-0203 delay stamps.
//
// Everything in the package is immutable: conditions are string constants
// whose type and legacy code come from switch statements, so there is no
// package state to guard or to be changed by accident.
package stanza

import "parley/internal/xmpp/xml"

// Namespaces used by the core protocol.
const (
	// NSStanzas qualifies stanza error conditions and <text/> (RFC 6120 §8.3.2).
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	// NSStreams qualifies stream error conditions and <text/> (RFC 6120 §4.9.2).
	NSStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	// NSStream is the namespace of <stream:stream/>, <stream:features/> and
	// <stream:error/> (RFC 6120 §4.8.1).
	NSStream = "http://etherx.jabber.org/streams"
	// NSClient, NSServer and NSComponent are the stream content namespaces
	// for client-to-server, server-to-server (RFC 6120 §4.8.3) and
	// component (XEP-0114) streams. Stanzas read from any of them are
	// stored with Space "" (see xml.Element), so these constants matter
	// only when writing stream headers.
	NSClient    = "jabber:client"
	NSServer    = "jabber:server"
	NSComponent = "jabber:component:accept"
	// NSDelay is the XEP-0203 Delayed Delivery namespace.
	NSDelay = "urn:xmpp:delay"
)

// Stanza kinds, i.e. the element names of the three stanzas.
const (
	KindMessage  = "message"
	KindPresence = "presence"
	KindIQ       = "iq"
)

// Values of the 'type' attribute that the server itself produces or checks.
const (
	TypeError  = "error"
	TypeGet    = "get"
	TypeSet    = "set"
	TypeResult = "result"
	// TypeNormal is the default message type (RFC 6121 §5.2.2).
	TypeNormal = "normal"
)

// IsStanza reports whether el is a message, presence or iq in the stream
// content namespace. Elements in other namespaces (stream features, SASL,
// stream management) are not stanzas even if they share a local name.
func IsStanza(el *xml.Element) bool {
	if el == nil || el.Space != "" {
		return false
	}
	switch el.Local {
	case KindMessage, KindPresence, KindIQ:
		return true
	}
	return false
}

// Kind returns "message", "presence" or "iq", or "" if el is not a stanza.
func Kind(el *xml.Element) string {
	if !IsStanza(el) {
		return ""
	}
	return el.Local
}

// Type returns the stanza's 'type' with the RFC defaults applied: a message
// without a type is "normal" (RFC 6121 §5.2.2); a presence without a type is
// returned as "", which means "available" (RFC 6121 §4.7.1); an iq has no
// default and its raw value is returned. For non-stanzas it returns "".
func Type(el *xml.Element) string {
	if !IsStanza(el) {
		return ""
	}
	t := el.Attr("type")
	if t == "" && el.Local == KindMessage {
		return TypeNormal
	}
	return t
}

// IQResult builds the result for the IQ request req (RFC 6120 §8.2.3): same
// id, type "result", addresses swapped (omitted when the request had none),
// and payload as the only child when it is not nil. It returns nil if req is
// not an IQ of type get or set, since only requests may be answered.
func IQResult(req *xml.Element, payload *xml.Element) *xml.Element {
	if Kind(req) != KindIQ {
		return nil
	}
	if t := req.Attr("type"); t != TypeGet && t != TypeSet {
		return nil
	}
	res := reply(req, TypeResult, 1)
	if payload != nil {
		res.Children = append(res.Children, payload)
	}
	return res
}

// reply starts a response to orig: same name and id, the given type, 'to'
// set to orig's 'from' and 'from' set to orig's 'to' (RFC 6120 §8.3.1 and
// §8.2.3), each omitted when empty. An absent 'from' on a stanza from a
// client means "the sender's full JID"; the session layer stamps that before
// routing, so an empty 'to' here is delivered back over the same stream.
func reply(orig *xml.Element, typ string, children int) *xml.Element {
	r := &xml.Element{Local: orig.Local, Attrs: make([]xml.Attr, 0, 4)}
	if children > 0 {
		r.Children = make([]xml.Node, 0, children)
	}
	if orig.HasAttr("id") {
		r.Attrs = append(r.Attrs, xml.Attr{Local: "id", Value: orig.Attr("id")})
	}
	r.Attrs = append(r.Attrs, xml.Attr{Local: "type", Value: typ})
	if from := orig.Attr("from"); from != "" {
		r.Attrs = append(r.Attrs, xml.Attr{Local: "to", Value: from})
	}
	if to := orig.Attr("to"); to != "" {
		r.Attrs = append(r.Attrs, xml.Attr{Local: "from", Value: to})
	}
	return r
}

// ValidateIQ checks the structural rules of RFC 6120 §8.2.3 that every IQ
// must satisfy before it is routed or handled: an 'id' is present; 'type'
// is get, set, result or error; a get or set carries exactly one child
// element; a result carries at most one; an error carries an <error/>
// child. It returns nil or an *Error whose Condition (bad-request) is what
// the reply should carry; pass that to ErrorReply. Character data directly
// inside the iq is ignored, as inter-element whitespace is legal there.
func ValidateIQ(el *xml.Element) error {
	if Kind(el) != KindIQ {
		return &Error{Condition: BadRequest, Text: "not an iq stanza"}
	}
	if el.Attr("id") == "" {
		return &Error{Condition: BadRequest, Text: "iq without id"}
	}
	n := 0
	hasError := false
	for _, c := range el.Children {
		if ch, ok := c.(*xml.Element); ok {
			n++
			if ch.Local == "error" && ch.Space == "" {
				hasError = true
			}
		}
	}
	switch el.Attr("type") {
	case TypeGet, TypeSet:
		if n != 1 {
			return &Error{Condition: BadRequest, Text: "iq get/set must have exactly one child element"}
		}
	case TypeResult:
		if n > 1 {
			return &Error{Condition: BadRequest, Text: "iq result must have at most one child element"}
		}
	case TypeError:
		if !hasError {
			return &Error{Condition: BadRequest, Text: "iq error without error element"}
		}
	default:
		return &Error{Condition: BadRequest, Text: "iq type must be get, set, result or error"}
	}
	return nil
}

// Error is a stanza-level failure carrying the condition to report. Handlers
// return it so that the layer that owns the stream can build the reply with
// ErrorReply(orig, e.Condition, e.Text) in one place.
type Error struct {
	Condition Condition
	// Type overrides Condition.Type() when not empty.
	Type string
	// Text is the human-readable <text/>, or "".
	Text string
	// App is an application-specific condition (RFC 6120 §8.3.4), such as
	// XEP-0191's <blocked xmlns='urn:xmpp:blocking:errors'/>, or nil.
	App *xml.Element
}

func (e *Error) Error() string {
	if e.Text == "" {
		return "stanza error: " + string(e.Condition)
	}
	return "stanza error: " + string(e.Condition) + ": " + e.Text
}

// Element builds the <error/> element for e.
func (e *Error) Element() *xml.Element {
	return ErrorElementTyped(e.Condition, e.Type, e.Text, e.App)
}
