package clientproxy

import (
	"crypto/rand"
	"encoding/base64"
	"strings"

	"parley/internal/xmpp/jid"
)

// Jabber Address Translation.
//
// A forwarded request leaves the service as
//
//	from = <requester, XEP-0106 escaped>@<service domain>/<token>
//
// The localpart tells the implementing client who is asking (so it can make
// its own authorisation decisions); it is informational only. The resource
// is a fresh random token that names the entry in the pending table, and is
// the only thing the reply is matched on: a reply is accepted only if its
// 'to' carries a token we issued, its 'from' is the resource the request
// went to, and its id is the request's id. When the escaped requester does
// not fit in a localpart (RFC 7622: at most 1023 bytes) the localpart is
// left out and only <domain>/<token> is used.

// translate builds the address the forwarded request comes from.
func translate(domain, requester jid.JID, token string) jid.JID {
	if j, err := jid.New(Escape(requester.String()), domain.Domain(), token); err == nil {
		return j
	}
	j, _ := jid.New("", domain.Domain(), token)
	return j
}

// newToken returns an unguessable pending-table key that is a valid resource.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Escape applies XEP-0106 JID Escaping to s so that any JID can be carried
// in a localpart.
func Escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case ' ':
			b.WriteString(`\20`)
		case '"':
			b.WriteString(`\22`)
		case '&':
			b.WriteString(`\26`)
		case '\'':
			b.WriteString(`\27`)
		case '/':
			b.WriteString(`\2f`)
		case ':':
			b.WriteString(`\3a`)
		case '<':
			b.WriteString(`\3c`)
		case '>':
			b.WriteString(`\3e`)
		case '@':
			b.WriteString(`\40`)
		case '\\':
			b.WriteString(`\5c`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Unescape reverses XEP-0106 escaping (for implementing clients written in
// Go, and tests).
func Unescape(s string) string {
	codes := map[string]string{
		`\20`: " ", `\22`: `"`, `\26`: "&", `\27`: "'", `\2f`: "/",
		`\3a`: ":", `\3c`: "<", `\3e`: ">", `\40`: "@", `\5c`: `\`,
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 <= len(s) {
			if r, ok := codes[strings.ToLower(s[i:i+3])]; ok {
				b.WriteString(r)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
