package pubsub

import (
	"errors"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Error is a XEP-0060 failure: a stanza error condition and, where the XEP
// names one (§7–§8 error cases, §13 schema), an application-specific
// condition in the pubsub#errors namespace. It is what every operation of
// Service returns for a request it refuses; anything else it returns is an
// internal failure.
type Error struct {
	Condition stanza.Condition
	// App is the pubsub#errors element name ("precondition-not-met"), or "".
	App string
	// Feature is the 'feature' attribute of an <unsupported/> App.
	Feature string
	// Text is an optional human-readable explanation.
	Text string
}

func (e *Error) Error() string {
	s := "pubsub: " + string(e.Condition)
	if e.App != "" {
		s += "/" + e.App
	}
	if e.Feature != "" {
		s += " (" + e.Feature + ")"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Stanza returns e as a stanza error, its pubsub#errors condition as the
// application-specific one (RFC 6120 §8.3.4).
func (e *Error) Stanza() *stanza.Error {
	se := &stanza.Error{Condition: e.Condition, Text: e.Text}
	if e.App != "" {
		se.App = xml.New(NSErrors, e.App)
		if e.Feature != "" {
			se.App.SetAttr("feature", e.Feature)
		}
	}
	return se
}

// Element builds the <error/> element of e.
func (e *Error) Element() *xml.Element { return e.Stanza().Element() }

// ErrorReply answers the IQ req with err: its XEP-0060 error when err is an
// *Error, internal-server-error otherwise (the caller logs those).
func ErrorReply(req *xml.Element, err error) *xml.Element {
	var pe *Error
	if !errors.As(err, &pe) {
		return stanza.ErrorReply(req, stanza.InternalServerError, "")
	}
	return stanza.ErrorReplyFor(req, pe.Stanza())
}

// Constructors for the errors XEP-0060 uses more than once.

func errf(c stanza.Condition, app, text string) *Error {
	return &Error{Condition: c, App: app, Text: text}
}

func unsupported(feature string) *Error {
	return &Error{Condition: stanza.FeatureNotImplemented, App: "unsupported", Feature: feature}
}

// errNodeRequired answers a request that names no node (§7.2.3.3, §8.2.3.3).
func errNodeRequired() *Error { return errf(stanza.BadRequest, "nodeid-required", "") }

// errNoNode answers a request for a node that does not exist.
func errNoNode() *Error { return errf(stanza.ItemNotFound, "", "") }

// errForbidden answers an entity without the privileges a request needs.
func errForbidden() *Error { return errf(stanza.Forbidden, "", "") }
