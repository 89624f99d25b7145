package stanza

import (
	"time"

	"parley/internal/xmpp/xml"
)

// delayLayout is the XEP-0082 DateTime profile with millisecond precision in
// UTC. Milliseconds keep the order of offline messages stored within the
// same second; UTC ("Z") is what XEP-0203 §3 requires.
const delayLayout = "2006-01-02T15:04:05.000Z"

// Delay builds a XEP-0203 delayed-delivery stamp,
//
//	<delay xmlns='urn:xmpp:delay' from='from' stamp='2006-01-02T15:04:05.000Z'>reason</delay>
//
// added to stanzas delivered later than they were sent (offline messages,
// MUC history, presence sent at login). from is the JID of the entity that
// delayed the stanza, usually the server's domain, and is omitted when
// empty; reason becomes the optional natural-language character data.
// stamp is converted to UTC.
func Delay(from string, stamp time.Time, reason string) *xml.Element {
	e := &xml.Element{Space: NSDelay, Local: "delay", Attrs: make([]xml.Attr, 0, 2)}
	if from != "" {
		e.Attrs = append(e.Attrs, xml.Attr{Local: "from", Value: from})
	}
	e.Attrs = append(e.Attrs, xml.Attr{Local: "stamp", Value: stamp.UTC().Format(delayLayout)})
	if reason != "" {
		e.Children = []xml.Node{xml.CharData(reason)}
	}
	return e
}
