package stream

import (
	"bytes"
	"net"
	"time"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// End finishes a stream: it sends the stream error for cond (none when cond
// is "") and the closing tag, then closes the transport. Once the stream has
// a Writer, w owns the connection and the bytes go through it, so they never
// race a stanza write (after the queued stanzas when drain is set); before
// that (w nil) they are written directly to nc, waiting at most a second
// for a peer that stopped reading.
func End(w *Writer, nc net.Conn, cond stanza.StreamCondition, text string, drain bool) {
	var errEl *xml.Element
	if cond != "" {
		errEl = stanza.StreamError(cond, text)
	}
	EndWith(w, nc, errEl, drain)
}

// EndWith is End with a stream error element built by the caller (nil for
// none), for errors that carry an application-specific condition such as
// XEP-0198's <handled-count-too-high/>.
func EndWith(w *Writer, nc net.Conn, errEl *xml.Element, drain bool) {
	var buf bytes.Buffer
	if errEl != nil {
		_, _ = Prefixed(errEl).WriteTo(&buf)
	}
	buf.WriteString(xml.StreamClose)
	if w != nil {
		w.Close(drain, buf.Bytes())
		return
	}
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(buf.Bytes())
	CloseConn(nc)
}

// DrainsOnEnd reports whether a stream ended with cond should still write
// the stanzas already queued: yes for an ordinary close and a shutdown, no
// for an error, which says the peer is misbehaving or not reading.
func DrainsOnEnd(cond stanza.StreamCondition) bool {
	return cond == "" || cond == stanza.StreamSystemShutdown
}
