package cluster

import (
	"context"
	"encoding/json"
	"errors"

	"parley/internal/router"
	"parley/internal/xmpp/jid"
)

// XEP-0198 resumption across nodes. A client whose connection was lost
// may reach another node (a load balancer's choice) and ask it to resume.
// That node finds the nodes holding sessions of the account in the
// registry and asks each in turn for a "handover" of the session with the
// client's previd; the holder (Options.OnHandover: c2s) applies the
// client's h, ends its session without telling anyone (it has moved) and
// answers with its state, which the new node binds afresh.

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
	ho, err := n.opts.OnHandover(ctx, bare, req.PrevID, req.H)
	var refused *router.HandoverRefused
	switch {
	case errors.As(err, &refused):
		body, _ := json.Marshal(refused)
		m.Reply(Msg{Op: opRefused, Body: body})
	case err != nil:
		m.Reply(Msg{Op: opNotHere})
	default:
		body, err := json.Marshal(ho)
		if err != nil {
			m.Reply(Msg{Op: opNotHere})
			return
		}
		n.log.Info("cluster: session handed over", "jid", ho.JID, "to", m.From)
		m.Reply(Msg{Op: opHandedOver, Body: body})
	}
}
