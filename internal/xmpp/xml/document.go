package xml

import (
	"bytes"
	"errors"
	"io"
)

// ParseDocument parses b as one XML document holding exactly one element,
// as a message-framed transport delivers them (RFC 7395: every WebSocket
// message is one stanza, <open/> or <close/>). The rules and limits are a
// stream's: restricted XML, lim's size, depth and attribute bounds, and
// elements in contentNS stored with Space "" as Decoder does. The element
// may rely on contentNS as its default namespace and on the stream prefix
// being bound, which RFC 7395 asks clients to declare but not every
// client does.
func ParseDocument(b []byte, lim Limits, contentNS string) (*Element, error) {
	hdr := StreamHeaderBytes(StreamHeader{Space: NSStream, Local: "stream", DefaultNS: contentNS})
	d := NewDecoder(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(b)), lim)
	if _, err := d.ReadHeader(); err != nil {
		return nil, err
	}
	d.SetContentNamespace(contentNS)
	el, err := d.Next()
	switch {
	case errors.Is(err, io.EOF):
		return nil, &Error{CondNotWellFormed, "empty message"}
	case errors.Is(err, ErrStreamClosed):
		return nil, &Error{CondNotWellFormed, "stream closing tag in a message"}
	case err != nil:
		return nil, err
	}
	if _, err := d.Next(); !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, ErrStreamClosed) {
			return nil, &Error{CondNotWellFormed, "more than one element in a message"}
		}
		return nil, err
	}
	return el, nil
}
