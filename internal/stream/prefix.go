package stream

import (
	"slices"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Prefixed returns el as it should appear on the wire of a stream whose
// header declares xmlns:stream (every stream Parley opens): stream-level
// elements in the http://etherx.jabber.org/streams namespace become
// <stream:features>, <stream:error>, ... instead of the equivalent
// unprefixed <features xmlns='http://etherx.jabber.org/streams'>. Both are
// the same XML, but some peers match these elements by their prefixed name
// and silently ignore the other form (ejabberd on server streams, tsung and
// naive clients on client streams); every RFC 6120 example uses the prefix.
// Any other element is returned unchanged. The result is for serialising
// only: it is not a namespace-correct tree.
func Prefixed(el *xml.Element) *xml.Element {
	if el == nil || el.Space != stanza.NSStream {
		return el
	}
	// The prefix goes into Local and Space becomes the stream default, so
	// the serializer writes no xmlns for this element; children keep their
	// own namespaces.
	w := xml.New("", "stream:"+el.Local)
	w.Attrs = slices.Clone(el.Attrs)
	w.Children = slices.Clone(el.Children)
	return w
}
