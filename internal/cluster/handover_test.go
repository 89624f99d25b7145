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
	outcome chan router.HandoverOutcome
}

func (h *handoverRecorder) hand(_ context.Context, bare jid.JID, previd string, hc uint32) (*router.Handover, func(router.HandoverOutcome), error) {
	switch {
	case previd != "p1" || bare.String() != "alice@example.com":
		return nil, nil, router.ErrNoHandover
	case hc > 5:
		return nil, nil, &router.HandoverRefused{H: hc, Sent: 5, Handled: 2}
	}
	ho := &router.Handover{JID: "alice@example.com/phone", Sid: "phone-1", Handled: 2, Acked: hc}
	return ho, func(o router.HandoverOutcome) { h.outcome <- o }, nil
}

// continuing is a session bound from a handover (router.Continuing).
type continuing struct {
	*fakeSession
	prev string
}

func (c continuing) Continues() string { return c.prev }

// The registry decides a handover's outcome: the holder's session moved
// once a session continuing it replaced its entry, was replaced when any
// other session did, and stays when no bind comes; an unknown previd and
// a too-high h are answered as such.
func TestHandover(t *testing.T) {
	rec := &handoverRecorder{outcome: make(chan router.HandoverOutcome, 1)}
	ns := startNodesWith(t, memEngines, 2, 0, func(i int, o *Options) {
		if i == 0 {
			o.OnHandover = rec.hand
			o.HandoverWait = 3 * time.Second // long enough for a bind on a loaded machine
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

	settled := func(want router.HandoverOutcome) {
		t.Helper()
		select {
		case got := <-rec.outcome:
			if got != want {
				t.Fatalf("outcome %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the holder never settled")
		}
	}

	// No bind follows: the session stays.
	ho, err := ns[1].n.Handover(ctx, bare, "p1", 1)
	if err != nil || ho.JID != phone.String() || ho.Acked != 1 || ho.Sid != "phone-1" {
		t.Fatalf("handover: %+v, %v", ho, err)
	}
	settled(router.HandoverStayed)

	// A plain bind of the resource on the new node (a new login): replaced.
	if _, err := ns[1].n.Handover(ctx, bare, "p1", 1); err != nil {
		t.Fatal(err)
	}
	other := &fakeSession{r: ns[1].r, id: "phone-2"}
	if _, _, err := ns[1].r.Bind(other, bare, "phone"); err != nil {
		t.Fatal(err)
	}
	settled(router.HandoverReplaced)

	// Back on node 1, then handed over and bound by a session that
	// continues it: moved, and node 1's copy of the registry knows the
	// new session at once.
	if _, _, err := holder.r.Bind(s, bare, "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := ns[1].n.Handover(ctx, bare, "p1", 1); err != nil {
		t.Fatal(err)
	}
	next := continuing{&fakeSession{r: ns[1].r, id: "phone-3"}, "phone-1"}
	if _, _, err := ns[1].r.Bind(next, bare, "phone"); err != nil {
		t.Fatal(err)
	}
	settled(router.HandoverMoved)
	if p := holder.n.peer(phone); p == nil || p.ID() != "phone-3" {
		t.Fatalf("node 1 routes alice/phone to %v, want the continuing session", p)
	}
}
