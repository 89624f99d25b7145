package stream

import (
	"errors"
	"net"
	"time"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// OpenBeforeError writes a minimal stream header of our own when the peer's
// header could not be read because of an XML or limit error. RFC 6120
// §4.9.1.2: an entity that reports a stream error before it opened its
// stream must open one first; otherwise the <stream:error> that follows would
// be neither well-formed (the stream prefix is undeclared) nor understood.
// A timeout is reported too (the peer may be there, just silent: the
// stream error that follows is <connection-timeout/>); other transport
// errors (EOF, reset) write nothing: there is no one to tell.
func OpenBeforeError(nc net.Conn, err error, contentNS, from string) {
	var xe *xml.Error
	var ne net.Error
	if !errors.As(err, &xe) && !(errors.As(err, &ne) && ne.Timeout()) {
		return
	}
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(xml.StreamHeaderBytes(xml.StreamHeader{
		Space: stanza.NSStream, Local: "stream", DefaultNS: contentNS,
		From: from, ID: NewID(), Version: "1.0",
	}))
}
