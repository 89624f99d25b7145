package csi

import (
	"testing"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

func parse(t *testing.T, s string) *xml.Element {
	t.Helper()
	el, err := xml.ParseElement([]byte(s), xml.DefaultLimits(), stanza.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

// TestClassify pins down what waits while a session is inactive and what
// is urgent, and which held stanzas supersede one another.
func TestClassify(t *testing.T) {
	const self = "alice@localhost/phone"
	const cs = " xmlns='http://jabber.org/protocol/chatstates'"
	for _, tc := range []struct {
		name, stanza string
		hold         bool
		key          string
	}{
		{"available presence", "<presence from='bob@localhost/r'/>", true, "presence\x00bob@localhost/r"},
		{"presence with show", "<presence from='bob@localhost/r'><show>away</show></presence>", true, "presence\x00bob@localhost/r"},
		{"unavailable presence", "<presence from='bob@localhost/r' type='unavailable'/>", true, "presence\x00bob@localhost/r"},
		{"own presence reflected", "<presence from='" + self + "'/>", false, ""},
		{"other own resource", "<presence from='alice@localhost/laptop'/>", true, "presence\x00alice@localhost/laptop"},
		{"subscribe", "<presence from='bob@localhost' type='subscribe'/>", false, ""},
		{"subscribed", "<presence from='bob@localhost' type='subscribed'/>", false, ""},
		{"unsubscribed", "<presence from='bob@localhost' type='unsubscribed'/>", false, ""},
		{"presence error", "<presence from='bob@localhost' type='error'/>", false, ""},
		{"MUC occupant", "<presence from='room@conference.localhost/bob'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>", true, "presence\x00room@conference.localhost/bob"},
		{"MUC self-presence", "<presence from='room@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='110'/></x></presence>", false, ""},
		{"presence with store hint", "<presence from='bob@localhost/r'><store xmlns='urn:xmpp:hints'/></presence>", false, "presence\x00bob@localhost/r"},
		{"iq", "<iq type='get' id='1' from='bob@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>", false, ""},
		{"iq result", "<iq type='result' id='1' from='localhost'/>", false, ""},
		{"chat message", "<message type='chat' from='bob@localhost/r'><body>hi</body></message>", false, ""},
		{"chat message with state", "<message type='chat' from='bob@localhost/r'><body>hi</body><active" + cs + "/></message>", false, "chatstate\x00in\x00bob@localhost/r\x00"},
		{"empty body", "<message from='bob@localhost/r'><body/></message>", false, ""},
		{"composing", "<message type='chat' from='bob@localhost/r'><composing" + cs + "/></message>", true, "chatstate\x00in\x00bob@localhost/r\x00"},
		{"paused in a thread", "<message type='chat' from='bob@localhost/r'><paused" + cs + "/><thread>t1</thread></message>", true, "chatstate\x00in\x00bob@localhost/r\x00t1"},
		{"chat state with no-store and stanza-id", "<message type='chat' from='bob@localhost/r'><gone" + cs + "/><no-store xmlns='urn:xmpp:hints'/><origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>", true, "chatstate\x00in\x00bob@localhost/r\x00"},
		{"chat state with store hint", "<message type='chat' from='bob@localhost/r'><composing" + cs + "/><store xmlns='urn:xmpp:hints'/></message>", false, "chatstate\x00in\x00bob@localhost/r\x00"},
		{"chat state with a receipt", "<message type='chat' from='bob@localhost/r'><active" + cs + "/><received xmlns='urn:xmpp:receipts' id='m1'/></message>", false, "chatstate\x00in\x00bob@localhost/r\x00"},
		{"groupchat chat state", "<message type='groupchat' from='room@conference.localhost/bob'><composing" + cs + "/></message>", true, "chatstate\x00in\x00room@conference.localhost/bob\x00"},
		{"message error", "<message type='error' from='bob@localhost/r'><composing" + cs + "/></message>", false, ""},
		{"receipt alone", "<message from='bob@localhost/r'><received xmlns='urn:xmpp:receipts' id='m1'/></message>", false, ""},
		{"call invitation", "<message type='chat' from='bob@localhost/r'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>", false, ""},
		{"encrypted without body", "<message type='chat' from='bob@localhost/r'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", false, ""},
		{"MUC subject", "<message type='groupchat' from='room@conference.localhost'><subject>s</subject></message>", false, ""},
		{"empty message", "<message from='bob@localhost/r'/>", false, ""},
		{"PEP event", "<message from='bob@localhost' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'/></event></message>", true, ""},
		{"PEP event, normal type, delayed", "<message from='bob@localhost'><event xmlns='http://jabber.org/protocol/pubsub#event'/><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>", true, ""},
		{"headline without body", "<message type='headline' from='news.localhost'><x xmlns='jabber:x:oob'><url>u</url></x></message>", true, ""},
		{"headline with body", "<message type='headline' from='news.localhost'><body>news</body></message>", false, ""},
		{"headline with store hint", "<message type='headline' from='news.localhost'><store xmlns='urn:xmpp:hints'/></message>", false, ""},
		{"carbon of a chat state", "<message from='alice@localhost'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='bob@localhost/r' to='alice@localhost/laptop'><composing" + cs + "/></message></forwarded></received></message>", true, "carbon\x00chatstate\x00in\x00bob@localhost/r\x00"},
		{"sent carbon of a chat state", "<message from='alice@localhost'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='alice@localhost/laptop' to='bob@localhost'><paused" + cs + "/></message></forwarded></sent></message>", true, "carbon\x00chatstate\x00out\x00bob@localhost\x00"},
		{"carbon of a chat message", "<message from='alice@localhost'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='bob@localhost/r'><body>hi</body></message></forwarded></received></message>", false, ""},
		{"carbon without a message", "<message from='alice@localhost'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/></received></message>", false, ""},
		{"carbon of a stored chat state", "<message from='alice@localhost'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='bob@localhost/r'><composing" + cs + "/><store xmlns='urn:xmpp:hints'/></message></forwarded></received></message>", false, "carbon\x00chatstate\x00in\x00bob@localhost/r\x00"},
		{"MAM result", "<message from='alice@localhost'><result xmlns='urn:xmpp:mam:2' id='1'/></message>", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := classify(parse(t, tc.stanza), self)
			if v.hold != tc.hold || v.key != tc.key {
				t.Fatalf("hold=%v key=%q, want hold=%v key=%q", v.hold, v.key, tc.hold, tc.key)
			}
			if v.presence && !v.hold {
				t.Fatal("an urgent stanza marked for a delay stamp")
			}
		})
	}
}
