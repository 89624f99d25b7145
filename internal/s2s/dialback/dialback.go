// Package dialback implements the wire format of Server Dialback (XEP-0220)
// and the key generation of XEP-0185.
//
// Keys are stateless: key = HMAC-SHA256(hex(SHA256(secret)), receiving + " " +
// originating + " " + streamID), hex encoded. The authoritative server
// recomputes the key from a db:verify request instead of remembering what it
// sent, so a restart with a new secret invalidates every outstanding key and
// a db:verify for a key this server never issued cannot match.
package dialback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces of XEP-0220.
const (
	// NS qualifies <db:result/> and <db:verify/>.
	NS = "jabber:server:dialback"
	// NSFeature is the stream feature a receiving server offers.
	NSFeature = "urn:xmpp:features:dialback"
)

// Keys computes and checks dialback keys with one secret.
type Keys struct{ k []byte }

// NewKeys derives the HMAC key from secret (XEP-0185 §2).
func NewKeys(secret []byte) *Keys {
	sum := sha256.Sum256(secret)
	return &Keys{k: []byte(hex.EncodeToString(sum[:]))}
}

// Key is the key the originating server sends for (receiving, originating,
// streamID), where streamID is the id the receiving server gave the stream.
func (k *Keys) Key(receiving, originating, streamID string) string {
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// Valid reports whether key is the one this server would have generated.
// The comparison is constant-time.
func (k *Keys) Valid(receiving, originating, streamID, key string) bool {
	if key == "" || streamID == "" {
		return false
	}
	return hmac.Equal([]byte(k.Key(receiving, originating, streamID)), []byte(key))
}

// Result builds <db:result from to>key</db:result> (a request) or, with an
// empty key and a type, the answer.
func Result(from, to, typ, key string) *xml.Element {
	el := xml.New(NS, "result").SetAttr("from", from).SetAttr("to", to)
	if typ != "" {
		el.SetAttr("type", typ)
	}
	if key != "" {
		el.AppendText(key)
	}
	return el
}

// Verify builds <db:verify from to id>key</db:verify> or its answer.
func Verify(from, to, id, typ, key string) *xml.Element {
	el := xml.New(NS, "verify").SetAttr("from", from).SetAttr("to", to).SetAttr("id", id)
	if typ != "" {
		el.SetAttr("type", typ)
	}
	if key != "" {
		el.AppendText(key)
	}
	return el
}

// Error builds a db:result or db:verify of type error carrying a stanza
// error condition (XEP-0220 §2.4), e.g. item-not-found for a domain the
// receiving server does not host.
func Error(local, from, to, id string, cond stanza.Condition) *xml.Element {
	el := xml.New(NS, local).SetAttr("from", from).SetAttr("to", to).SetAttr("type", "error")
	if id != "" {
		el.SetAttr("id", id)
	}
	typ := "cancel"
	if cond == stanza.RemoteServerTimeout || cond == stanza.InternalServerError {
		typ = "wait"
	}
	return el.Append(xml.New("", "error").SetAttr("type", typ).Append(xml.New(stanza.NSStanzas, string(cond))))
}

// Prefix is the namespace prefix dialback elements carry on the wire; the
// stream header declares it (xmlns:db='jabber:server:dialback').
const Prefix = "db"

// Wire returns el (a dialback element built by Result, Verify or Error) in
// the form it must have on the wire: <db:result>/<db:verify>, relying on
// the stream header's xmlns:db declaration, instead of the equivalent
// <result xmlns='jabber:server:dialback'> the generic serializer writes.
// The two are the same XML, but ejabberd (xmpp codec) matches dialback
// elements by their prefixed name and silently drops the unprefixed form,
// and every XEP-0220 example uses the prefix. The returned tree is only
// fit for serialization: its Local carries the prefix and its Space is the
// stream's content namespace; children keep theirs (an <error/> child is
// in jabber:server, which is exactly the stream default).
func Wire(el *xml.Element) *xml.Element {
	if el == nil || el.Space != NS {
		return el
	}
	w := xml.New("", Prefix+":"+el.Local)
	w.Attrs = slices.Clone(el.Attrs)
	w.Children = slices.Clone(el.Children)
	return w
}

// Feature is the <dialback/> stream feature with <errors/> (we understand
// dialback errors).
func Feature() *xml.Element {
	return xml.New(NSFeature, "dialback").Append(xml.New(NSFeature, "errors"))
}
