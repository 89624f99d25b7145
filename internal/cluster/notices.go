package cluster

import (
	"sync"
)

// Notices are small messages from one node to all the others, for jobs
// that run on one elected node (Leading) while every node keeps state
// derived from their result: the directory poller's leader polls and, when
// the directory changed, says so, and each other node reads it again. A
// notice is published at most once on one subject for the whole cluster
// and has no reply; a node that was fenced while it was sent misses it, so
// a notice says "look again", never "here is the new state".

// noticeSubject carries every notice; the topic travels in a header, so
// topics may contain any characters (a directory's base DN).
const noticeSubject = "parley.notice"

// Notify sends payload on topic to every other live node (this node does
// not hear its own notices).
func (n *Node) Notify(topic string, payload []byte) error {
	return n.eng.Publish(noticeSubject, Msg{Op: "notice", To: topic, From: n.opts.Name, Body: payload})
}

// OnNotice calls fn with the payload of every notice another node sends on
// topic, until cancel is called. Handlers run one at a time, in the order
// the notices arrive, on the goroutine that receives them: a handler that
// has slow work to do hands it to its own goroutine. The node subscribes
// when it joins (before Start returns), so OnNotice may be called at any
// time and misses only notices sent before it was called.
func (n *Node) OnNotice(topic string, fn func(payload []byte)) (cancel func()) {
	return n.notices.on(topic, fn)
}

// notice dispatches a message of noticeSubject.
func (n *Node) notice(m Msg) {
	if m.Op != "notice" || m.From == n.opts.Name {
		return
	}
	n.notices.dispatch(m.To, m.Body)
}

// noticeHandlers are the OnNotice handlers of one node, by topic.
type noticeHandlers struct {
	mu   sync.Mutex
	next int
	fns  map[string]map[int]func([]byte)
}

func (h *noticeHandlers) on(topic string, fn func([]byte)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns == nil {
		h.fns = make(map[string]map[int]func([]byte))
	}
	if h.fns[topic] == nil {
		h.fns[topic] = make(map[int]func([]byte))
	}
	id := h.next
	h.next++
	h.fns[topic][id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.fns[topic], id)
		if len(h.fns[topic]) == 0 {
			delete(h.fns, topic)
		}
	}
}

func (h *noticeHandlers) dispatch(topic string, payload []byte) {
	h.mu.Lock()
	fns := make([]func([]byte), 0, len(h.fns[topic]))
	for _, fn := range h.fns[topic] {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(payload)
	}
}

// Standalone is the cluster of a server without [cluster]: it is the only
// node, so it leads every job and nobody hears its notices. Code that runs
// elected jobs takes a Node or a Standalone through the same interface and
// runs the same way on one node as on many.
type Standalone struct{}

// Leading is always true: a lone node runs every job.
func (Standalone) Leading(string) bool { return true }

// Notify has no other node to tell.
func (Standalone) Notify(string, []byte) error { return nil }

// OnNotice never calls fn: no other node sends notices.
func (Standalone) OnNotice(string, func([]byte)) (cancel func()) { return func() {} }
