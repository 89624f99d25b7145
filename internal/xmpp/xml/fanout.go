package xml

// Fan-out: one stanza sent to many recipients (a groupchat message to every
// occupant of a room) differs per copy only in its top-level attributes
// (the recipient's "to"); its children, which are most of its bytes, are
// the same for all. ForFanout serialises the children once and every copy
// made from the result with WithAttr or SetAttr reuses those bytes, so the
// per-copy work is the start tag.
//
// The cached bytes are only a shortcut: the tree is still there for
// anything that inspects the stanza, and the serialiser uses the bytes only
// when they are provably what it would write itself:
//
//   - the element still has the children the bytes were made from (the
//     same backing array and length: WithChildren, WithoutChildren, Append
//     and any copy with other children fall back to the tree);
//   - its namespace is the one the children were written under (a child's
//     xmlns depends on its parent's);
//   - the content namespace of the stream being written is the one the
//     bytes were made for, unless no child's serialisation depends on it
//     (the usual case: only a Space "" element below an element in another
//     namespace, a forwarded stanza, is written with the content namespace).
//
// Like the rest of the tree, the children must not be changed in place
// after ForFanout; the checks above catch replaced children, not mutated
// ones.

// fanout is the serialisation of an element's children, the bytes between
// its start and end tags.
type fanout struct {
	space     string // the element's Space when the bytes were made
	contentNS string // the content namespace the bytes were made for
	anyNS     bool   // the bytes do not depend on the content namespace
	first     *Node  // &Children[0]: identifies the children slice
	n         int    // len(Children)
	b         []byte
}

// ForFanout returns a shallow copy of e that carries the serialisation of
// e's children for a stream with content namespace contentNS. Copies made
// from it with WithAttr (a per-recipient "to") share those bytes, so
// writing each copy re-serialises only its start tag. The result writes
// exactly the bytes e writes, to any stream; the bytes are used only where
// they are valid (see above). An element without children is returned as
// it is.
func (e *Element) ForFanout(contentNS string) *Element {
	if len(e.Children) == 0 || e.fan.valid(e, contentNS) {
		return e
	}
	// The element's whole size bounds its children's: one allocation.
	b := make([]byte, 0, sizeElement(e, "", contentNS))
	for _, c := range e.Children {
		b = appendChild(b, c, e.Space, contentNS)
	}
	x := new(elementFanout) // the copy and its cache together
	x.el = *e
	x.el.Attrs = e.Attrs[:len(e.Attrs):len(e.Attrs)] // shared: no append into e's spare slot
	x.f = fanout{
		space:     e.Space,
		contentNS: contentNS,
		anyNS:     !childrenUseContentNS(e),
		first:     &e.Children[0],
		n:         len(e.Children),
		b:         b,
	}
	x.el.fan = &x.f
	return &x.el
}

// elementFanout is ForFanout's result and its cache, allocated together.
type elementFanout struct {
	el Element
	f  fanout
}

// valid reports whether f holds the serialisation of e's children in
// contentNS. A nil f is never valid.
func (f *fanout) valid(e *Element, contentNS string) bool {
	return f != nil && f.n == len(e.Children) && f.n > 0 && f.first == &e.Children[0] &&
		f.space == e.Space && (f.anyNS || f.contentNS == contentNS)
}

// childrenUseContentNS reports whether serialising e's children consults
// the content namespace: some descendant has Space "" under a parent in
// another namespace (appendElement then writes xmlns='contentNS').
func childrenUseContentNS(e *Element) bool {
	for _, c := range e.Children {
		el, ok := c.(*Element)
		if !ok || el == nil {
			continue
		}
		if el.Space == "" && e.Space != "" {
			return true
		}
		if el.fan.valid(el, "") && el.fan.anyNS {
			continue // its own children were already found independent
		}
		if childrenUseContentNS(el) {
			return true
		}
	}
	return false
}
