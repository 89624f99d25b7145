package xml

import "testing"

// A decoded stanza has a spare attribute slot so that the stream layer can
// stamp "from" in place; copies that share its attributes must not see
// each other's additions through that slot.
func TestSpareAttrSlotNotShared(t *testing.T) {
	el, err := ParseElement([]byte(`<message xmlns='jabber:client' to='a@b' id='1'><body>x</body></message>`), Limits{}, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	if cap(el.Attrs) == len(el.Attrs) {
		t.Fatalf("no spare slot: len %d cap %d", len(el.Attrs), cap(el.Attrs))
	}
	copies := []*Element{
		el.WithChildren(New("", "x")),
		el.WithoutChildren(func(*Element) bool { return false }),
		el.ForFanout("jabber:client"),
	}
	el.SetAttr("from", "original")
	for i, c := range copies {
		c.SetAttr("from", "copy")
		if got := el.Attr("from"); got != "original" {
			t.Fatalf("copy %d: SetAttr on the copy changed the original's from to %q", i, got)
		}
		if c.Attr("from") != "copy" {
			t.Fatalf("copy %d lost its own from", i)
		}
	}
}
