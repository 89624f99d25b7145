package stanza

import "parley/internal/xmpp/xml"

// StreamCondition is a stream error condition (RFC 6120 §4.9.3). A stream
// error is fatal: the sender writes <stream:error/> and closes the stream.
type StreamCondition string

// The stream error conditions of RFC 6120 §4.9.3.1-§4.9.3.25, in section
// order.
const (
	StreamBadFormat              StreamCondition = "bad-format"
	StreamBadNamespacePrefix     StreamCondition = "bad-namespace-prefix"
	StreamConflict               StreamCondition = "conflict"
	StreamConnectionTimeout      StreamCondition = "connection-timeout"
	StreamHostGone               StreamCondition = "host-gone"
	StreamHostUnknown            StreamCondition = "host-unknown"
	StreamImproperAddressing     StreamCondition = "improper-addressing"
	StreamInternalServerError    StreamCondition = "internal-server-error"
	StreamInvalidFrom            StreamCondition = "invalid-from"
	StreamInvalidNamespace       StreamCondition = "invalid-namespace"
	StreamInvalidXML             StreamCondition = "invalid-xml"
	StreamNotAuthorized          StreamCondition = "not-authorized"
	StreamNotWellFormed          StreamCondition = "not-well-formed"
	StreamPolicyViolation        StreamCondition = "policy-violation"
	StreamRemoteConnectionFailed StreamCondition = "remote-connection-failed"
	StreamReset                  StreamCondition = "reset"
	StreamResourceConstraint     StreamCondition = "resource-constraint"
	StreamRestrictedXML          StreamCondition = "restricted-xml"
	StreamSeeOtherHost           StreamCondition = "see-other-host"
	StreamSystemShutdown         StreamCondition = "system-shutdown"
	StreamUndefinedCondition     StreamCondition = "undefined-condition"
	StreamUnsupportedEncoding    StreamCondition = "unsupported-encoding"
	StreamUnsupportedFeature     StreamCondition = "unsupported-feature"
	StreamUnsupportedStanzaType  StreamCondition = "unsupported-stanza-type"
	StreamUnsupportedVersion     StreamCondition = "unsupported-version"
)

// Valid reports whether c is defined by RFC 6120 §4.9.3.
func (c StreamCondition) Valid() bool {
	switch c {
	case StreamBadFormat, StreamBadNamespacePrefix, StreamConflict, StreamConnectionTimeout,
		StreamHostGone, StreamHostUnknown, StreamImproperAddressing, StreamInternalServerError,
		StreamInvalidFrom, StreamInvalidNamespace, StreamInvalidXML, StreamNotAuthorized,
		StreamNotWellFormed, StreamPolicyViolation, StreamRemoteConnectionFailed, StreamReset,
		StreamResourceConstraint, StreamRestrictedXML, StreamSeeOtherHost, StreamSystemShutdown,
		StreamUndefinedCondition, StreamUnsupportedEncoding, StreamUnsupportedFeature,
		StreamUnsupportedStanzaType, StreamUnsupportedVersion:
		return true
	}
	return false
}

// String returns the condition's element name.
func (c StreamCondition) String() string { return string(c) }

// StreamError builds <stream:error/> (RFC 6120 §4.9.2): an element in the
// streams namespace NSStream whose children are the condition in NSStreams
// and, when text is not empty, a <text xml:lang='en'/>. An unknown
// condition is sent as undefined-condition so the peer can parse it.
//
// For see-other-host use SeeOtherHost, which carries the new address.
func StreamError(c StreamCondition, text string) *xml.Element {
	return streamError(c, "", text)
}

// SeeOtherHost builds the see-other-host stream error (RFC 6120 §4.9.3.19),
// whose condition element MUST contain the host (and optional port) the
// peer should connect to instead, e.g. "example.net:5222" or
// "[2001:db8::1]:5222".
func SeeOtherHost(hostport, text string) *xml.Element {
	return streamError(StreamSeeOtherHost, hostport, text)
}

func streamError(c StreamCondition, condText, text string) *xml.Element {
	if !c.Valid() {
		c = StreamUndefinedCondition
	}
	cond := &xml.Element{Space: NSStreams, Local: string(c)}
	if condText != "" {
		cond.Children = []xml.Node{xml.CharData(condText)}
	}
	e := &xml.Element{Space: NSStream, Local: "error", Children: make([]xml.Node, 0, 2)}
	e.Children = append(e.Children, cond)
	if text != "" {
		e.Children = append(e.Children, textElement(NSStreams, text))
	}
	return e
}

// ParseStreamError extracts the condition and text from a received
// <stream:error/>. For see-other-host, text is still the <text/> element;
// the new host is the condition element's character data, which callers
// read with el.ChildText(NSStreams, "see-other-host"). An unknown condition
// is reported as StreamUndefinedCondition; ok is false if el is not a
// stream error or has no condition.
func ParseStreamError(el *xml.Element) (cond StreamCondition, text string, ok bool) {
	if el == nil || el.Space != NSStream || el.Local != "error" {
		return "", "", false
	}
	name, text := conditionAndText(el, NSStreams)
	if name == "" {
		return "", "", false
	}
	if cond = StreamCondition(name); !cond.Valid() {
		cond = StreamUndefinedCondition
	}
	return cond, text, true
}
