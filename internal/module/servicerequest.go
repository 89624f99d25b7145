package module

import (
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// ServiceRequest is the triage every one-purpose service component (the
// file-transfer proxy, file upload) applies to what reaches its domain:
// presence is ignored, messages are refused, IQ results and errors are
// ignored (the service asks nothing), addresses with a localpart or
// resource are refused, and an IQ without a payload is a bad request. For
// a get or set to the bare domain it returns the payload; otherwise q is
// nil and reply is the answer to send (nil: none).
func ServiceRequest(el *xml.Element, to jid.JID) (q, reply *xml.Element) {
	switch el.Local {
	case stanza.KindPresence:
		return nil, nil
	case stanza.KindMessage:
		return nil, stanza.ErrorReply(el, stanza.ServiceUnavailable, "")
	}
	if typ := el.Attr("type"); typ != stanza.TypeGet && typ != stanza.TypeSet {
		return nil, nil
	}
	if to.Local() != "" || to.Resource() != "" {
		return nil, stanza.ErrorReply(el, stanza.ServiceUnavailable, "")
	}
	if q = el.FirstElement(); q == nil {
		return nil, stanza.ErrorReply(el, stanza.BadRequest, "")
	}
	return q, nil
}
