package sm

import (
	"errors"
	"math"
	"testing"

	"parley/internal/xmpp/xml"
)

func msg(i int) *xml.Element { return xml.New("", "message").SetAttr("id", FormatH(uint32(i))) }

func TestAckDropsAcknowledgedInOrder(t *testing.T) {
	o := NewOutbound(10)
	for i := range 5 {
		if err := o.Push(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Ack(3); err != nil {
		t.Fatal(err)
	}
	q := o.Unacked()
	if len(q) != 2 || q[0].Attr("id") != "3" || q[1].Attr("id") != "4" {
		t.Fatalf("unacked after h=3: %v", q)
	}
	if err := o.Ack(2); err != nil || len(o.Unacked()) != 2 {
		t.Fatalf("stale h=2: err %v, %d unacked", err, len(o.Unacked()))
	}
	if err := o.Ack(5); err != nil || len(o.Unacked()) != 0 {
		t.Fatalf("h=5: err %v, %d unacked", err, len(o.Unacked()))
	}
}

func TestAckAboveSentIsAnError(t *testing.T) {
	o := NewOutbound(10)
	_ = o.Push(msg(0))
	var e *HandledCountTooHigh
	if err := o.Ack(2); !errors.As(err, &e) || e.H != 2 || e.Sent != 1 {
		t.Fatalf("h=2 after one stanza: %v", err)
	}
	if len(o.Unacked()) != 1 {
		t.Fatal("a refused ack changed the queue")
	}
}

// The counters wrap at 2^32 (XEP-0198 §4): acks across the wrap work, and
// a too-high h across it is still caught.
func TestWrapAround(t *testing.T) {
	o := NewOutbound(100)
	o.sent, o.acked = math.MaxUint32-2, math.MaxUint32-2
	for i := range 6 {
		_ = o.Push(msg(i))
	}
	if o.Sent() != 3 {
		t.Fatalf("sent after wrap = %d, want 3", o.Sent())
	}
	if err := o.Ack(math.MaxUint32); err != nil {
		t.Fatal(err)
	}
	if q := o.Unacked(); len(q) != 4 || q[0].Attr("id") != "2" {
		t.Fatalf("unacked after h=max: %v", q)
	}
	if err := o.Ack(1); err != nil || len(o.Unacked()) != 2 {
		t.Fatalf("h=1 across the wrap: %v, %d unacked", err, len(o.Unacked()))
	}
	var e *HandledCountTooHigh
	if err := o.Ack(4); !errors.As(err, &e) {
		t.Fatalf("h=4 with 3 sent: %v", err)
	}
	if err := o.Ack(math.MaxUint32 - 1); err != nil {
		t.Fatalf("stale h across the wrap: %v", err)
	}
}

func TestQueueBound(t *testing.T) {
	o := NewOutbound(2)
	_ = o.Push(msg(0))
	_ = o.Push(msg(1))
	if err := o.Push(msg(2)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third push with max 2: %v", err)
	}
	if got := o.Take(); len(got) != 3 {
		t.Fatalf("Take returned %d stanzas, want all 3 (nothing dropped)", len(got))
	}
	if len(o.Unacked()) != 0 || o.Ack(o.Sent()) != nil {
		t.Fatal("Take did not leave an empty, consistent queue")
	}
}

func TestWantRequestOncePerAck(t *testing.T) {
	o := NewOutbound(10)
	if o.WantRequest() {
		t.Fatal("request with nothing unacked")
	}
	_ = o.Push(msg(0))
	if !o.WantRequest() || o.WantRequest() {
		t.Fatal("want exactly one outstanding request")
	}
	_ = o.Ack(1)
	_ = o.Push(msg(1))
	if !o.WantRequest() {
		t.Fatal("no request after the answer")
	}
}

func TestParseH(t *testing.T) {
	for s, ok := range map[string]bool{"0": true, "4294967295": true, "4294967296": false, "-1": false, "": false, "1e3": false, " 1": false, "00000000001": false} {
		if _, got := ParseH(s); got != ok {
			t.Errorf("ParseH(%q) ok=%v, want %v", s, got, ok)
		}
	}
}

func TestResumptionIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewResumptionID()
		if seen[id] || len(id) < 24 {
			t.Fatalf("weak or repeated id %q", id)
		}
		seen[id] = true
	}
}

// A restored queue continues the numbering: the client's next h means
// what it meant on the node that handed the session over, across the
// 32-bit wrap-around too.
func TestRestoreContinuesTheCounters(t *testing.T) {
	acked := uint32(1<<32 - 2)
	q := []*xml.Element{xml.New("", "message"), xml.New("", "message"), xml.New("", "message")}
	o := Restore(10, acked, q)
	if o.Sent() != 1 || o.Acked() != acked || len(o.Unacked()) != 3 {
		t.Fatalf("sent %d acked %d queue %d", o.Sent(), o.Acked(), len(o.Unacked()))
	}
	if err := o.Ack(0); err != nil { // two of the three, across the wrap
		t.Fatal(err)
	}
	if len(o.Unacked()) != 1 || o.Unacked()[0] != q[2] {
		t.Fatalf("left %d, want the third", len(o.Unacked()))
	}
	if err := o.Ack(2); err == nil {
		t.Fatal("h beyond what was sent was accepted")
	}
}
