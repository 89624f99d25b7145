package xml

// Interning: the decoder looks names up here so that common names cost no
// bytes in a stanza's string arena and long-lived trees share one copy.
// Element and attribute names go through a switch (compiled to a search on
// length and bytes, no hashing, no allocation for the []byte conversion);
// namespace URIs, which are longer and fewer, through a map filled once and
// only read afterwards.

// internName returns the shared copy of a common element or attribute
// name.
func internName(b []byte) (string, bool) {
	switch string(b) {
	case "message":
		return "message", true
	case "presence":
		return "presence", true
	case "iq":
		return "iq", true
	case "body":
		return "body", true
	case "subject":
		return "subject", true
	case "thread":
		return "thread", true
	case "show":
		return "show", true
	case "status":
		return "status", true
	case "priority":
		return "priority", true
	case "error":
		return "error", true
	case "text":
		return "text", true
	case "query":
		return "query", true
	case "item":
		return "item", true
	case "group":
		return "group", true
	case "to":
		return "to", true
	case "from":
		return "from", true
	case "id":
		return "id", true
	case "type":
		return "type", true
	case "lang":
		return "lang", true
	case "by":
		return "by", true
	case "code":
		return "code", true
	case "jid":
		return "jid", true
	case "name":
		return "name", true
	case "subscription":
		return "subscription", true
	case "ask":
		return "ask", true
	case "node":
		return "node", true
	case "ver":
		return "ver", true
	case "hash":
		return "hash", true
	case "stamp":
		return "stamp", true
	case "xmlns":
		return "xmlns", true
	case "stream":
		return "stream", true
	case "features":
		return "features", true
	case "bind":
		return "bind", true
	case "resource":
		return "resource", true
	case "session":
		return "session", true
	case "starttls":
		return "starttls", true
	case "auth":
		return "auth", true
	case "mechanism":
		return "mechanism", true
	case "mechanisms":
		return "mechanisms", true
	case "response":
		return "response", true
	case "challenge":
		return "challenge", true
	case "success":
		return "success", true
	case "failure":
		return "failure", true
	case "enable":
		return "enable", true
	case "enabled":
		return "enabled", true
	case "resume":
		return "resume", true
	case "resumed":
		return "resumed", true
	case "r":
		return "r", true
	case "a":
		return "a", true
	case "h":
		return "h", true
	case "x":
		return "x", true
	case "c":
		return "c", true
	case "delay":
		return "delay", true
	case "request":
		return "request", true
	case "received":
		return "received", true
	case "markable":
		return "markable", true
	case "displayed":
		return "displayed", true
	case "acknowledged":
		return "acknowledged", true
	case "origin-id":
		return "origin-id", true
	case "stanza-id":
		return "stanza-id", true
	case "active":
		return "active", true
	case "composing":
		return "composing", true
	case "paused":
		return "paused", true
	case "inactive":
		return "inactive", true
	case "gone":
		return "gone", true
	case "store":
		return "store", true
	case "no-store":
		return "no-store", true
	case "no-copy":
		return "no-copy", true
	case "no-permanent-store":
		return "no-permanent-store", true
	case "private":
		return "private", true
	case "sent":
		return "sent", true
	case "forwarded":
		return "forwarded", true
	case "result":
		return "result", true
	case "set":
		return "set", true
	case "pubsub":
		return "pubsub", true
	case "event":
		return "event", true
	case "items":
		return "items", true
	case "publish":
		return "publish", true
	case "retract":
		return "retract", true
	case "ping":
		return "ping", true
	case "vCard":
		return "vCard", true
	case "photo":
		return "photo", true
	case "nick":
		return "nick", true
	case "db":
		return "db", true
	case "verify":
		return "verify", true
	case "handshake":
		return "handshake", true
	}
	return "", false
}

// internedURIs holds well-known namespace URIs.
var internedURIs = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
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
