package s2s

import (
	"context"
	"log/slog"

	"parley/internal/xmpp/xml"
)

// Debug tracing of stream negotiation. Federation problems with other
// implementations are almost always in the few elements before the first
// stanza (headers, features, STARTTLS, SASL, dialback), so those are logged
// in full at debug level; stanzas are not (they carry user content and are
// counted by metrics instead). Nothing is formatted unless debug is on.

// traceEl logs one negotiation or dialback element; stream is "in" or
// "out", dir is "send" or "recv", peer the remote domain or address.
func (s *Service) traceEl(stream, dir, peer string, el *xml.Element) {
	if el == nil || !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	s.log.Debug("s2s xml", "stream", stream, "dir", dir, "peer", peer, "xml", el.String())
}

// traceHeader logs a stream header sent or received.
func (s *Service) traceHeader(stream, dir, peer string, h xml.StreamHeader) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	var prefixes []string
	for _, p := range h.Prefixes {
		prefixes = append(prefixes, p.Prefix+"="+p.URI)
	}
	s.log.Debug("s2s stream header", "stream", stream, "dir", dir, "peer", peer, "ns", h.DefaultNS,
		"from", h.From, "to", h.To, "id", h.ID, "version", h.Version, "prefixes", prefixes)
}
