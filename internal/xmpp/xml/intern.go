package xml

// interned holds the element and attribute names and namespace URIs that
// make up most XMPP traffic. The decoder looks names up here (a map lookup
// with a []byte key does not allocate) so that common names cost no bytes
// in a stanza's string arena and long-lived trees share one copy. It is
// filled once and only read afterwards.
var interned = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		// RFC 6120/6121 stanzas and their children
		"message", "presence", "iq", "body", "subject", "thread", "show",
		"status", "priority", "error", "text", "query", "item", "group",
		"to", "from", "id", "type", "lang", "by", "code", "jid", "name",
		"subscription", "ask", "node", "ver", "hash", "stamp", "xmlns",
		"stream", "features", "bind", "resource", "session", "starttls",
		"auth", "mechanism", "mechanisms", "response", "challenge",
		"success", "failure", "enable", "enabled", "resume", "resumed",
		"r", "a", "h", "x", "c", "delay", "request", "received",
		"markable", "displayed", "acknowledged", "origin-id", "stanza-id",
		"active", "composing", "paused", "inactive", "gone", "store",
		"no-store", "no-copy", "no-permanent-store", "private", "sent",
		"forwarded", "result", "set", "pubsub", "event", "items",
		"publish", "retract", "ping", "vCard", "photo", "nick",
		"db", "verify", "handshake",
		// namespaces
		"jabber:client", "jabber:server", "jabber:component:accept",
		"jabber:iq:roster", "jabber:iq:private", "jabber:iq:version",
		"jabber:iq:last", "jabber:iq:register", "jabber:x:data",
		"jabber:server:dialback", "vcard-temp", "vcard-temp:x:update",
		NSStream, NSXML,
		"urn:ietf:params:xml:ns:xmpp-streams", "urn:ietf:params:xml:ns:xmpp-stanzas",
		"urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl",
		"urn:ietf:params:xml:ns:xmpp-bind", "urn:ietf:params:xml:ns:xmpp-session",
		"http://jabber.org/protocol/chatstates", "http://jabber.org/protocol/caps",
		"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
		"http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#user",
		"http://jabber.org/protocol/pubsub", "http://jabber.org/protocol/pubsub#event",
		"http://jabber.org/protocol/nick",
		"urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "urn:xmpp:sid:0",
		"urn:xmpp:hints", "urn:xmpp:delay", "urn:xmpp:ping", "urn:xmpp:sm:3",
		"urn:xmpp:carbons:2", "urn:xmpp:forward:0", "urn:xmpp:mam:2",
		"urn:xmpp:csi:0", "urn:xmpp:time", "urn:xmpp:eme:0",
		"eu.siacs.conversations.axolotl", "urn:xmpp:omemo:2",
	} {
		m[s] = s
	}
	return m
}()
