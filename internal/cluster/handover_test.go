package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"parley/internal/router"
	"parley/internal/xmpp/jid"
)

// handoverRecorder is a holder's c2s for the handover tests: it hands
// over alice@example.com/phone (session phone-1, registered on node 1)
// for previd "p1" and records the outcome the node settles on.
type handoverRecorder struct {
	outcome chan bool
}

func (h *handoverRecorder) hand(_ context.Context, bare jid.JID, previd string, hc uint32) (*router.Handover, func(bool), error) {
	switch {
	case previd != "p1" || bare.String() != "alice@example.com":
		return nil, nil, router.ErrNoHandover
	case hc > 5:
		return nil, nil, &router.HandoverRefused{H: hc, Sent: 5, Handled: 2}
	}
	ho := &router.Handover{JID: "alice@example.com/phone", Sid: "phone-1", Handled: 2, Acked: hc}
	return ho, func(moved bool) { h.outcome <- moved }, nil
}

// The registry decides a handover's outcome: the holder's session moved
// once the new node's bind replaced its entry, and stays when no bind
// comes; an unknown previd and a too-high h are answered as such.
func TestHandover(t *testing.T) {
	rec := &handoverRecorder{outcome: make(chan bool, 1)}
	ns := startNodesWith(t, memEngines, 2, 0, func(i int, o *Options) {
		if i == 0 {
			o.OnHandover = rec.hand
			o.HandoverWait = time.Second
		}
	})
	holder := ns[0]
	phone := jid.MustParse("alice@example.com/phone")
	s := &fakeSession{r: holder.r, id: "phone-1"}
	if _, _, err := holder.r.Bind(s, phone.Bare(), "phone"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bare := phone.Bare()

	if _, err := ns[1].n.Handover(ctx, bare, "nope", 0); !errors.Is(err, router.ErrNoHandover) {
		t.Fatalf("unknown previd: %v", err)
	}
	var refused *router.HandoverRefused
	if _, err := ns[1].n.Handover(ctx, bare, "p1", 9); !errors.As(err, &refused) || refused.Handled != 2 || refused.Sent != 5 {
		t.Fatalf("h too high: %v", err)
	}

	// No bind follows: the session stays.
	ho, err := ns[1].n.Handover(ctx, bare, "p1", 1)
	if err != nil || ho.JID != phone.String() || ho.Acked != 1 {
		t.Fatalf("handover: %+v, %v", ho, err)
	}
	select {
	case moved := <-rec.outcome:
		if moved {
			t.Fatal("moved without a bind on the new node")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder never settled")
	}

	// The new node binds the full JID: the session moved.
	if _, err := ns[1].n.Handover(ctx, bare, "p1", 1); err != nil {
		t.Fatal(err)
	}
	ns[1].bind(t, phone.String())
	select {
	case moved := <-rec.outcome:
		if !moved {
			t.Fatal("the new node's bind was not seen as the move")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder never settled")
	}
}
