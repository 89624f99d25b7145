// Package xml is Parley's XML layer: a streaming decoder that turns an XMPP
// stream into owned element trees under hard limits (RFC 6120 §11 restricted
// XML), and a serializer that writes those trees back out.
//
// Parley never forwards raw bytes: every stanza is parsed once into an
// *Element, routed as that value, and serialised from the tree. Elements are
// treated as immutable once they leave the decoder; code that needs a changed
// stanza (a stamped "from", an added <delay/>) makes a shallow copy with the
// With* methods so that a stanza fanned out to many sessions is never changed
// under another goroutine's feet.
package xml

import "strings"

// NSXML is the namespace bound to the reserved "xml" prefix (xml:lang).
const NSXML = "http://www.w3.org/XML/1998/namespace"

// Attr is one attribute. Space is the attribute's namespace URI, empty for
// the usual unprefixed attributes (to, from, id, type).
type Attr struct {
	Space string
	Local string
	Value string
}

// Node is a child of an Element: either *Element or CharData.
type Node interface{ isNode() }

// CharData is text content, unescaped.
type CharData string

func (CharData) isNode() {}

// Element is one XML element with its namespace resolved.
//
// Space is the namespace URI. Inside a stream, elements in the stream's
// content namespace (jabber:client, jabber:server, jabber:component:accept)
// are stored with Space == "" so that a stanza read from a client stream can
// be written to a server stream unchanged: the serializer emits no xmlns for
// them and they inherit the stream's default namespace.
type Element struct {
	Space    string
	Local    string
	Attrs    []Attr
	Children []Node

	// fan is the serialisation of Children made by ForFanout, shared by
	// the copies WithAttr makes; nil for ordinary elements.
	fan *fanout
}

// Trees from the decoder share storage within their stanza (one string for
// its text, one block for its elements and attributes), so keeping any part
// of a stanza keeps all of it; stanzas are bounded by Limits.MaxStanzaBytes.

func (*Element) isNode() {}

// New returns an element with the given namespace and local name.
func New(space, local string) *Element { return &Element{Space: space, Local: local} }

// Attr returns the value of the unnamespaced attribute name, or "".
func (e *Element) Attr(name string) string {
	for _, a := range e.Attrs {
		if a.Space == "" && a.Local == name {
			return a.Value
		}
	}
	return ""
}

// HasAttr reports whether the unnamespaced attribute name is present.
func (e *Element) HasAttr(name string) bool {
	for _, a := range e.Attrs {
		if a.Space == "" && a.Local == name {
			return true
		}
	}
	return false
}

// Lang returns the xml:lang attribute.
func (e *Element) Lang() string {
	for _, a := range e.Attrs {
		if a.Space == NSXML && a.Local == "lang" {
			return a.Value
		}
	}
	return ""
}

// SetAttr sets (or adds) an unnamespaced attribute in place. Use it only on
// elements the caller has just built and not yet shared.
func (e *Element) SetAttr(name, value string) *Element {
	for i, a := range e.Attrs {
		if a.Space == "" && a.Local == name {
			e.Attrs[i].Value = value
			return e
		}
	}
	e.Attrs = append(e.Attrs, Attr{Local: name, Value: value})
	return e
}

// RemoveAttr deletes an unnamespaced attribute in place (builder use only).
func (e *Element) RemoveAttr(name string) *Element {
	out := e.Attrs[:0]
	for _, a := range e.Attrs {
		if !(a.Space == "" && a.Local == name) {
			out = append(out, a)
		}
	}
	e.Attrs = out
	return e
}

// Append adds children in place (builder use only) and returns e.
func (e *Element) Append(children ...Node) *Element {
	e.Children = append(e.Children, children...)
	return e
}

// AppendText adds a text child in place (builder use only) and returns e.
func (e *Element) AppendText(s string) *Element {
	if s != "" {
		e.Children = append(e.Children, CharData(s))
	}
	return e
}

// Child returns the first child element with the given namespace and local
// name, or nil. An empty space matches any namespace.
func (e *Element) Child(space, local string) *Element {
	for _, c := range e.Children {
		if el, ok := c.(*Element); ok && el.Local == local && (space == "" || el.Space == space) {
			return el
		}
	}
	return nil
}

// ChildNS returns the first child element in namespace space, or nil.
func (e *Element) ChildNS(space string) *Element {
	for _, c := range e.Children {
		if el, ok := c.(*Element); ok && el.Space == space {
			return el
		}
	}
	return nil
}

// Elements returns the child elements, skipping text.
func (e *Element) Elements() []*Element {
	var out []*Element
	for _, c := range e.Children {
		if el, ok := c.(*Element); ok {
			out = append(out, el)
		}
	}
	return out
}

// FirstElement returns the first child element, or nil.
func (e *Element) FirstElement() *Element {
	for _, c := range e.Children {
		if el, ok := c.(*Element); ok {
			return el
		}
	}
	return nil
}

// Text returns the concatenated direct text content of e.
func (e *Element) Text() string {
	var b strings.Builder
	for _, c := range e.Children {
		if t, ok := c.(CharData); ok {
			b.WriteString(string(t))
		}
	}
	return b.String()
}

// ChildText returns the text of the first child (space, local), or "".
func (e *Element) ChildText(space, local string) string {
	if c := e.Child(space, local); c != nil {
		return c.Text()
	}
	return ""
}

// WithAttr returns a shallow copy of e with attribute name set to value (or
// removed when value is ""). Children are shared with e, not copied.
//
// It is on every routed stanza's path (the stamped "from"), so the copy and
// its attributes are one allocation when there are few attributes.
func (e *Element) WithAttr(name, value string) *Element {
	var c *Element
	var attrs []Attr
	switch n := len(e.Attrs) + 1; {
	case n <= 4:
		x := new(elementAttrs4)
		c, attrs = &x.el, x.attrs[:0:n]
	case n <= 8:
		x := new(elementAttrs8)
		c, attrs = &x.el, x.attrs[:0:n]
	default:
		c, attrs = new(Element), make([]Attr, 0, n)
	}
	*c = *e
	found := false
	for _, a := range e.Attrs {
		if a.Space == "" && a.Local == name {
			found = true
			if value == "" {
				continue
			}
			a.Value = value
		}
		attrs = append(attrs, a)
	}
	if !found && value != "" {
		attrs = append(attrs, Attr{Local: name, Value: value})
	}
	c.Attrs = attrs
	return c
}

// An element and room for its attributes, allocated together.
type (
	elementAttrs4 struct {
		el    Element
		attrs [4]Attr
	}
	elementAttrs8 struct {
		el    Element
		attrs [8]Attr
	}
)

// WithChildren returns a shallow copy of e whose children are e's followed
// by extra. e itself is not changed.
func (e *Element) WithChildren(extra ...Node) *Element {
	c := *e
	// Attributes are shared: clipped, so an append cannot write into e's
	// spare slot (SetAttr on a decoded tree).
	c.Attrs = e.Attrs[:len(e.Attrs):len(e.Attrs)]
	c.fan = nil // other children
	c.Children = make([]Node, 0, len(e.Children)+len(extra))
	c.Children = append(c.Children, e.Children...)
	c.Children = append(c.Children, extra...)
	return &c
}

// WithoutChildren returns a shallow copy of e without the child elements for
// which drop returns true.
func (e *Element) WithoutChildren(drop func(*Element) bool) *Element {
	c := *e
	// Attributes are shared: clipped, so an append cannot write into e's
	// spare slot (SetAttr on a decoded tree).
	c.Attrs = e.Attrs[:len(e.Attrs):len(e.Attrs)]
	c.fan = nil // other children
	c.Children = make([]Node, 0, len(e.Children))
	for _, n := range e.Children {
		if el, ok := n.(*Element); ok && drop(el) {
			continue
		}
		c.Children = append(c.Children, n)
	}
	return &c
}

// Clone returns a deep copy of e.
func (e *Element) Clone() *Element {
	c := *e
	c.fan = nil // other children
	c.Attrs = append([]Attr(nil), e.Attrs...)
	c.Children = make([]Node, len(e.Children))
	for i, n := range e.Children {
		if el, ok := n.(*Element); ok {
			c.Children[i] = el.Clone()
		} else {
			c.Children[i] = n
		}
	}
	return &c
}

// Equal reports whether e and o are the same tree: same names, the same
// attributes in the same order, and equal children. Nil and empty Attrs or
// Children compare equal.
func (e *Element) Equal(o *Element) bool {
	if e == o {
		return true
	}
	if e == nil || o == nil || e.Space != o.Space || e.Local != o.Local ||
		len(e.Attrs) != len(o.Attrs) || len(e.Children) != len(o.Children) {
		return false
	}
	for i := range e.Attrs {
		if e.Attrs[i] != o.Attrs[i] {
			return false
		}
	}
	for i, c := range e.Children {
		switch c := c.(type) {
		case CharData:
			if oc, ok := o.Children[i].(CharData); !ok || oc != c {
				return false
			}
		case *Element:
			if oc, ok := o.Children[i].(*Element); !ok || !c.Equal(oc) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
