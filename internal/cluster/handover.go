package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"parley/internal/router"
	"parley/internal/xmpp/jid"
)

// XEP-0198 resumption across nodes. A client whose connection was lost
// may reach another node (a load balancer's choice) and ask it to resume.
// That node finds the nodes holding sessions of the account in the
// registry and asks each in turn for a "handover" of the session with the
// client's previd. The holder (Options.OnHandover: c2s) applies the
// client's h and answers with a copy of the session's state, which the
// new node binds. The registry then decides: when the holder sees its
// entry for the full JID replaced, the session moved and ends there
// without telling anyone; if it still names the holder's session after
// settleTimeout, the new node did not take it (or never got the answer),
// and the session stays. No message has to arrive for the outcome to be
// right.

// settleTimeout is the default of Options.HandoverWait, how long a holder
// waits for the new node's bind (the requester's own wait is shorter: c2s
// handoverTimeout), and settlePoll is how often it reads the registry
// meanwhile. maxHandoverBytes bounds an answer: NATS refuses messages
// over its max_payload (1 MiB by default).
const (
	settleTimeout    = 10 * time.Second
	settlePoll       = 50 * time.Millisecond
	maxHandoverBytes = 900 << 10
)

// handoverRequest is the body of a "handover" request.
type handoverRequest struct {
	Bare   string `json:"bare"`
	PrevID string `json:"previd"`
	H      uint32 `json:"h"`
}

// Answers to a "handover" request (Msg.Op); Body is the router.Handover
// or the router.HandoverRefused as JSON.
const (
	opHandedOver = "ok"
	opRefused    = "refused"
	opNotHere    = "none"
)

// Handover implements router.Bus.
func (n *Node) Handover(ctx context.Context, bare jid.JID, previd string, h uint32) (*router.Handover, error) {
	if !n.healthy.Load() {
		return nil, router.ErrNoHandover
	}
	body, err := json.Marshal(handoverRequest{Bare: bare.String(), PrevID: previd, H: h})
	if err != nil {
		return nil, err
	}
	for _, node := range n.holders(bare) {
		resp, err := n.eng.Request(ctx, subjectPrefix+node, Msg{Op: "handover", From: n.opts.Name, Body: body})
		if err != nil {
			n.log.Warn("cluster: handover request", "jid", bare.String(), "node", node, "err", err)
			continue
		}
		switch resp.Op {
		case opHandedOver:
			var ho router.Handover
			if err := json.Unmarshal(resp.Body, &ho); err != nil {
				return nil, err
			}
			return &ho, nil
		case opRefused:
			var e router.HandoverRefused
			if err := json.Unmarshal(resp.Body, &e); err != nil {
				return nil, err
			}
			return nil, &e
		}
	}
	return nil, router.ErrNoHandover
}

// holders are the live nodes other than this one that hold sessions of
// bare, as the registry says (read afresh: the session may be young).
func (n *Node) holders(bare jid.JID) []string {
	ctx, cancel := context.WithTimeout(context.Background(), rereadTimeout)
	if en, err := n.sessions.Get(ctx, key(bare)); err == nil {
		n.applyRecord(en)
	}
	cancel()
	n.mu.RLock()
	rec := n.records[key(bare)]
	seen := map[string]bool{n.opts.Name: true}
	var out []string
	for _, e := range rec.R {
		if !seen[e.Node] && n.liveLocked(e.Node, e.Inc) {
			seen[e.Node] = true
			out = append(out, e.Node)
		}
	}
	n.mu.RUnlock()
	return out
}

// handoverIn answers another node's "handover" request. It runs in a
// goroutine of its own: handing over ends a session, which writes to the
// registry.
func (n *Node) handoverIn(m Msg) {
	if m.Reply == nil {
		return
	}
	var req handoverRequest
	if json.Unmarshal(m.Body, &req) != nil || n.opts.OnHandover == nil {
		m.Reply(Msg{Op: opNotHere})
		return
	}
	bare, err := jid.Parse(req.Bare)
	if err != nil {
		m.Reply(Msg{Op: opNotHere})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Lease)
	defer cancel()
	ho, finish, err := n.opts.OnHandover(ctx, bare, req.PrevID, req.H)
	var refused *router.HandoverRefused
	switch {
	case errors.As(err, &refused):
		body, _ := json.Marshal(refused)
		m.Reply(Msg{Op: opRefused, Body: body})
		return
	case err != nil:
		m.Reply(Msg{Op: opNotHere})
		return
	}
	full, err := jid.Parse(ho.JID)
	body, merr := json.Marshal(ho)
	if err != nil || merr != nil || len(body) > maxHandoverBytes {
		// Too big to cross (a client far behind on its acknowledgements):
		// the session stays, and the client binds afresh.
		n.log.Warn("cluster: session not handed over", "jid", ho.JID, "bytes", len(body), "err", errors.Join(err, merr))
		finish(router.HandoverStayed)
		m.Reply(Msg{Op: opNotHere})
		return
	}
	n.log.Info("cluster: handing a session over", "jid", ho.JID, "to", m.From)
	m.Reply(Msg{Op: opHandedOver, Body: body})
	finish(n.settle(full, ho.Sid))
}

// settle watches the registry entry of full until it stops naming this
// node's session sid, for at most Options.HandoverWait: replaced by a
// session that continues sid (its entry's Prev), the session moved, and
// the entry is applied to this node's copy at once, so that what is still
// queued for the session finds it there; replaced by any other session,
// it was a new login of the resource. A node that can no longer read the
// registry and is cut off keeps the session: its sessions end with its
// fencing anyway.
func (n *Node) settle(full jid.JID, sid string) router.HandoverOutcome {
	wait := n.opts.HandoverWait
	if wait <= 0 {
		wait = settleTimeout
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		time.Sleep(settlePoll)
		// Read even when this node is leaving the cluster (a shutdown):
		// the new node may have the session already, and ending it here
		// as a logout would tell everyone it left.
		ctx, cancel := context.WithTimeout(context.Background(), rereadTimeout)
		en, err := n.sessions.Get(ctx, key(full.Bare()))
		cancel()
		if err != nil {
			if !n.healthy.Load() {
				return router.HandoverStayed
			}
			continue
		}
		var rec record
		if json.Unmarshal(en.Value, &rec) != nil {
			continue
		}
		// Another session in the entry: replaced. No entry at all says
		// nothing (a new session may have come and gone), so the wait
		// goes on, and at its end the session stays.
		e, ok := rec.R[full.Resource()]
		if !ok || (e.Node == n.opts.Name && e.Sid == sid) {
			continue
		}
		if e.Prev != sid {
			return router.HandoverReplaced
		}
		n.applyRecord(en)
		return router.HandoverMoved
	}
	return router.HandoverStayed
}
