package loadgen

import "bytes"

// Cheap views of one framed element (a Framer frame). They look at raw
// bytes: attribute values come back still escaped, which is fine for what
// the generator compares (its own ids, JIDs and stamps, which need no
// escaping).

// Name returns the element's qualified name (e.g. "message",
// "stream:features").
func Name(el []byte) []byte {
	if len(el) < 2 || el[0] != '<' {
		return nil
	}
	for i := 1; i < len(el); i++ {
		switch el[i] {
		case ' ', '\t', '\r', '\n', '/', '>':
			return el[1:i]
		}
	}
	return el[1:]
}

// startTag returns the element's start tag up to and including its '>'.
func startTag(el []byte) []byte {
	var q byte
	for i := 1; i < len(el); i++ {
		c := el[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '>':
			return el[:i+1]
		}
	}
	return el
}

// Attr returns the raw value of the start tag's attribute name, or nil.
// It walks the attributes in order, so a value that contains text looking
// like another attribute cannot be mistaken for it.
func Attr(el []byte, name string) []byte {
	i := len(Name(el)) + 1
	for i < len(el) {
		for i < len(el) && isSpace(el[i]) {
			i++
		}
		if i >= len(el) || el[i] == '>' || el[i] == '/' {
			return nil
		}
		eq := bytes.IndexByte(el[i:], '=')
		if eq < 0 {
			return nil
		}
		an := bytes.TrimRight(el[i:i+eq], " \t\r\n")
		j := i + eq + 1
		for j < len(el) && isSpace(el[j]) {
			j++
		}
		if j >= len(el) || (el[j] != '"' && el[j] != '\'') {
			return nil
		}
		e := bytes.IndexByte(el[j+1:], el[j])
		if e < 0 {
			return nil
		}
		if string(an) == name {
			return el[j+1 : j+1+e]
		}
		i = j + 1 + e + 1
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ChildText returns the character data of the first descendant element
// with the given local name (no prefix), up to its first child or end tag,
// or nil when there is none.
func ChildText(el []byte, local string) []byte {
	body := el[len(startTag(el)):]
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(local))
		if j < 0 {
			return nil
		}
		j += i
		k := j + len(local)
		if j > 0 && body[j-1] == '<' && k < len(body) {
			// <local> or <local attrs>
			switch body[k] {
			case '>':
				return textUntilTag(body[k+1:])
			case ' ', '\t', '\r', '\n':
				t := startTag(body[j-1:])
				if len(t) >= 2 && t[len(t)-2] == '/' {
					return body[:0] // <local/>: empty
				}
				return textUntilTag(body[j-1+len(t):])
			case '/':
				return body[:0]
			}
		}
		i = j + 1
	}
}

func textUntilTag(b []byte) []byte {
	if i := bytes.IndexByte(b, '<'); i >= 0 {
		return b[:i]
	}
	return b
}

// HasChild reports whether the element contains the byte string s (a cheap
// test such as `<starttls` or `urn:ietf:params:xml:ns:xmpp-bind`).
func HasChild(el []byte, s string) bool { return bytes.Contains(el, []byte(s)) }

// Bare cuts the resource off a JID.
func Bare(jid []byte) []byte {
	if i := bytes.IndexByte(jid, '/'); i >= 0 {
		return jid[:i]
	}
	return jid
}

// Resource returns the resource of a JID (nil when none).
func Resource(jid []byte) []byte {
	if i := bytes.IndexByte(jid, '/'); i >= 0 {
		return jid[i+1:]
	}
	return nil
}
