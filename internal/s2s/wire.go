package s2s

import (
	"parley/internal/s2s/dialback"
	"parley/internal/stream"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// wire returns el in the form other servers expect on a server-to-server
// stream: stream-level elements as <stream:features>/<stream:error> and
// dialback elements as <db:result>/<db:verify>, using the prefixes our
// stream header declares, rather than the equivalent unprefixed elements
// with their own xmlns that the generic serializer writes. Both forms are
// the same XML, but ejabberd's codec matches these elements by their
// prefixed names and silently ignores the other form (it then waits for
// features that never come, or drops a db:result); every RFC 6120 and
// XEP-0220 example uses the prefixes. Anything else is returned unchanged.
func wire(el *xml.Element) *xml.Element {
	if el == nil {
		return nil
	}
	switch el.Space {
	case dialback.NS:
		return dialback.Wire(el)
	case stanza.NSStream:
		return stream.Prefixed(el)
	}
	return el
}

// streamErrorBytes is the wire form of a stream error (RFC 6120 §4.9).
func streamErrorBytes(cond stanza.StreamCondition, text string) []byte {
	return wire(stanza.StreamError(cond, text)).AppendToNS(nil, stanza.NSServer)
}
