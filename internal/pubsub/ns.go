package pubsub

// XEP-0060 namespaces, and those of the protocols it embeds.
const (
	NS               = "http://jabber.org/protocol/pubsub"
	NSOwner          = NS + "#owner"
	NSEvent          = NS + "#event"
	NSErrors         = NS + "#errors"
	NSNodeConfig     = NS + "#node_config"
	NSPublishOptions = NS + "#publish-options"
	NSMetaData       = NS + "#meta-data"
	// NSData is XEP-0004 Data Forms.
	NSData = "jabber:x:data"
	// NSAddress is XEP-0033 Extended Stanza Addressing (the "replyto" of
	// XEP-0163 §4.3.1).
	NSAddress = "http://jabber.org/protocol/address"
)

// Feature returns the disco#info feature of a XEP-0060 feature name
// ("publish" → "http://jabber.org/protocol/pubsub#publish").
func Feature(name string) string { return NS + "#" + name }
