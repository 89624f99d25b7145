package stanza

import (
	"strconv"

	"parley/internal/xmpp/xml"
)

// Error types (RFC 6120 §8.3.2): what the sender should do about the error.
const (
	ErrorTypeAuth     = "auth"     // retry after providing credentials
	ErrorTypeCancel   = "cancel"   // do not retry (the error cannot be remedied)
	ErrorTypeContinue = "continue" // proceed (the condition was only a warning)
	ErrorTypeModify   = "modify"   // retry after changing the data sent
	ErrorTypeWait     = "wait"     // retry after waiting (the error is temporary)
)

// validErrorType reports whether t is one of the five RFC 6120 error types.
func validErrorType(t string) bool {
	switch t {
	case ErrorTypeAuth, ErrorTypeCancel, ErrorTypeContinue, ErrorTypeModify, ErrorTypeWait:
		return true
	}
	return false
}

// Condition is a defined stanza error condition (RFC 6120 §8.3.3). Its value
// is the element name of the condition, e.g. "item-not-found". Being a string
// constant rather than a table entry keeps the catalogue immutable; Type and
// Code are switch statements.
type Condition string

// The stanza error conditions of RFC 6120 §8.3.3, in section order.
const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	Gone                  Condition = "gone"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RecipientUnavailable  Condition = "recipient-unavailable"
	Redirect              Condition = "redirect"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	RemoteServerTimeout   Condition = "remote-server-timeout"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	SubscriptionRequired  Condition = "subscription-required"
	UndefinedCondition    Condition = "undefined-condition"
	UnexpectedRequest     Condition = "unexpected-request"
)

// Cond returns the Condition named name and whether name is one of the
// conditions defined by RFC 6120 §8.3.3.
func Cond(name string) (Condition, bool) {
	c := Condition(name)
	return c, c.Valid()
}

// Valid reports whether c is defined by RFC 6120 §8.3.3.
func (c Condition) Valid() bool { return c.Type() != "" }

// Type returns the error type RFC 6120 §8.3.3 says the condition SHOULD be
// sent with, or "" for an undefined condition. Where the RFC allows two
// types the first one it names is used (feature-not-implemented: cancel,
// policy-violation: modify, unexpected-request: wait); undefined-condition
// allows any type and defaults to cancel. Callers that know better use
// ErrorElementTyped.
//
// Where RFC 6120 and the older XEP-0086 table disagree (gone, and
// internal-server-error, which XEP-0086 gives as modify and wait) the RFC
// wins: it is the normative source and what current clients expect.
func (c Condition) Type() string {
	switch c {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolation, Redirect:
		return ErrorTypeModify
	case Conflict, FeatureNotImplemented, Gone, InternalServerError, ItemNotFound,
		NotAllowed, RemoteServerNotFound, ServiceUnavailable, UndefinedCondition:
		return ErrorTypeCancel
	case Forbidden, NotAuthorized, RegistrationRequired, SubscriptionRequired:
		return ErrorTypeAuth
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraint, UnexpectedRequest:
		return ErrorTypeWait
	}
	return ""
}

// Code returns the legacy numeric error code from XEP-0086 §2 (Table 1),
// which pre-XMPP-1.0 ("Jabber") clients look at instead of the condition
// element. It returns 0 when XEP-0086 defines no code (policy-violation
// postdates it) or c is not a defined condition; the 'code' attribute is
// then omitted.
func (c Condition) Code() int {
	switch c {
	case Gone, Redirect:
		return 302
	case BadRequest, JIDMalformed, UnexpectedRequest:
		return 400
	case NotAuthorized:
		return 401
	case Forbidden:
		return 403
	case ItemNotFound, RecipientUnavailable, RemoteServerNotFound:
		return 404
	case NotAllowed:
		return 405
	case NotAcceptable:
		return 406
	case RegistrationRequired, SubscriptionRequired:
		return 407
	case Conflict:
		return 409
	case InternalServerError, ResourceConstraint, UndefinedCondition:
		return 500
	case FeatureNotImplemented:
		return 501
	case ServiceUnavailable:
		return 503
	case RemoteServerTimeout:
		return 504
	}
	return 0
}

// String returns the condition's element name.
func (c Condition) String() string { return string(c) }

// langEn is the xml:lang of the <text/> elements Parley writes. Server
// messages are English; clients that want localised text map conditions
// themselves.
var langEn = xml.Attr{Space: xml.NSXML, Local: "lang", Value: "en"}

// textElement builds the <text xml:lang='en'/> of a stanza or stream error;
// ns is the conditions namespace of the error's kind (RFC 6120 §8.3.2,
// §4.9.2 use the same layout).
func textElement(ns, text string) *xml.Element {
	return &xml.Element{Space: ns, Local: "text", Attrs: []xml.Attr{langEn}, Children: []xml.Node{xml.CharData(text)}}
}

// conditionAndText reads a stanza or stream error element laid out as RFC
// 6120 §8.3.2 and §4.9.2 define: among the children in the conditions
// namespace ns, the first <text/> is the text and the first other element
// names the condition. Either is "" when absent.
func conditionAndText(e *xml.Element, ns string) (cond, text string) {
	for _, n := range e.Children {
		c, isEl := n.(*xml.Element)
		if !isEl || c.Space != ns {
			continue
		}
		if c.Local == "text" {
			if text == "" {
				text = c.Text()
			}
			continue
		}
		if cond == "" {
			cond = c.Local
		}
	}
	return cond, text
}

// ErrorElement builds
//
//	<error type='T' code='N'><C xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
//	  <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>text</text></error>
//
// with c's default type and legacy code. The <text/> is omitted when text is
// empty. The <error/> itself is in the stream content namespace (Space "").
func ErrorElement(c Condition, text string) *xml.Element {
	return ErrorElementTyped(c, "", text, nil)
}

// ErrorElementTyped is ErrorElement with an explicit error type and an
// optional application-specific condition element, which RFC 6120 §8.3.2
// places after <text/>. An empty or unknown typ is replaced by c.Type() (and
// by "cancel" for an unknown condition) so that Parley never emits an error
// a peer must reject as malformed. An unknown c is sent as
// undefined-condition for the same reason.
func ErrorElementTyped(c Condition, typ string, text string, appSpecific *xml.Element) *xml.Element {
	if !c.Valid() {
		c = UndefinedCondition
	}
	if !validErrorType(typ) {
		typ = c.Type()
	}
	e := &xml.Element{Local: "error", Attrs: make([]xml.Attr, 0, 2), Children: make([]xml.Node, 0, 3)}
	e.Attrs = append(e.Attrs, xml.Attr{Local: "type", Value: typ})
	if code := c.Code(); code != 0 {
		e.Attrs = append(e.Attrs, xml.Attr{Local: "code", Value: strconv.Itoa(code)})
	}
	e.Children = append(e.Children, &xml.Element{Space: NSStanzas, Local: string(c)})
	if text != "" {
		e.Children = append(e.Children, textElement(NSStanzas, text))
	}
	if appSpecific != nil {
		e.Children = append(e.Children, appSpecific)
	}
	return e
}

// ErrorReply builds the error response to orig following RFC 6120 §8.3.1:
// same element name and id, type "error", 'to' and 'from' swapped (each
// omitted when empty) and the <error/> element for c.
//
// For message and presence the original children are included before the
// <error/>, a courtesy §8.3.1 allows so the sender can tell which stanza
// failed; they are shared with orig, not copied (elements are immutable).
// For iq they are left out: the id already identifies the request and the
// payload can be large.
//
// It returns nil when orig is not a stanza or is itself of type "error":
// §8.3.1 forbids answering an error with an error, which would let two
// entities bounce errors at each other forever. Callers simply drop the
// stanza when they get nil.
func ErrorReply(orig *xml.Element, c Condition, text string) *xml.Element {
	return errorReply(orig, ErrorElement(c, text))
}

// ErrorReplyFor is ErrorReply for an *Error returned by a handler or by
// ValidateIQ, honouring its Type override.
func ErrorReplyFor(orig *xml.Element, e *Error) *xml.Element {
	return errorReply(orig, e.Element())
}

func errorReply(orig, errEl *xml.Element) *xml.Element {
	if !IsStanza(orig) || orig.Attr("type") == TypeError {
		return nil
	}
	if orig.Local == KindIQ {
		r := reply(orig, TypeError, 1)
		r.Children = append(r.Children, errEl)
		return r
	}
	r := reply(orig, TypeError, len(orig.Children)+1)
	for _, n := range orig.Children {
		// A stanza that is not of type error has no <error/>; skip one
		// anyway so the reply never carries two.
		if el, ok := n.(*xml.Element); ok && el.Space == "" && el.Local == "error" {
			continue
		}
		r.Children = append(r.Children, n)
	}
	r.Children = append(r.Children, errEl)
	return r
}

// ParseError extracts the stanza error from el, which may be either a stanza
// of type error or the <error/> element itself. ok is false if there is no
// <error/> element or it carries no condition in the stanzas namespace.
// A condition name this package does not know (e.g. one from a later
// specification) is reported as UndefinedCondition. typ is the 'type'
// attribute if it is one of the five defined types, otherwise the
// condition's default. text is the first <text/> in the stanzas namespace.
func ParseError(el *xml.Element) (cond Condition, typ, text string, ok bool) {
	if el == nil {
		return "", "", "", false
	}
	e := el
	if IsStanza(el) {
		// xml.Element.Child treats an empty space as a wildcard, so look
		// for the <error/> in the content namespace by hand.
		e = nil
		for _, n := range el.Children {
			if c, isEl := n.(*xml.Element); isEl && c.Space == "" && c.Local == "error" {
				e = c
				break
			}
		}
	}
	if e == nil || e.Space != "" || e.Local != "error" {
		return "", "", "", false
	}
	name, text := conditionAndText(e, NSStanzas)
	if name == "" {
		return "", "", "", false
	}
	if cond = Condition(name); !cond.Valid() {
		cond = UndefinedCondition
	}
	typ = e.Attr("type")
	if !validErrorType(typ) {
		typ = cond.Type()
	}
	return cond, typ, text, true
}
